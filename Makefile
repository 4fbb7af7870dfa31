# Set-up is idempotent: `make test` and `make demo` create .venv/ once, then reuse it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A local CPU build of torch, where the machine provides one (no CUDA download);
# elsewhere pip resolves torch the ordinary way.
WHEELS ?= /opt/wheels
TORCH_WHEEL := $(firstword $(wildcard $(WHEELS)/torch-*+cpu-cp311-*.whl))
STAMP := $(VENV)/.installed
DEMO_DIR ?= out/demo

.PHONY: setup os-deps demo docs test clean

setup: $(STAMP) os-deps

# The packages are installed by uv (https://docs.astral.sh/uv/; pip fetches it, a few
# seconds): on this project's machine the same packages pip resolves, in about 17 s
# instead of 100-140 s with pip on 2 cores (about 30 s for the whole recipe). uv does
# not read pip's configuration, so it is handed the local wheels (--find-links) and
# pip's index (PIP_INDEX_URL, else pip's global.index-url, where one is set); where uv
# cannot install (not fetched, or a package only an extra index of pip's configuration
# has), pip installs instead. Neither compiles bytecode at install (uv never does; pip
# --no-compile): a module is compiled when first imported (a third of pip's time went
# to compiling every module of every package). The bytecode must then be kept: `test`
# and `demo` run without PYTHONDONTWRITEBYTECODE (set in many CI images), or every Ray
# worker would compile torch, Ray and MLflow again (about 10 s a process on 2 cores).
FIND_LINKS := $(if $(wildcard $(WHEELS)),--find-links $(WHEELS))
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet uv || true
	index=$${PIP_INDEX_URL:-$$($(BIN)/python -m pip config get global.index-url 2>/dev/null)}; \
	test -x $(BIN)/uv && $(BIN)/uv pip install --quiet --python $(BIN)/python $(FIND_LINKS) $${index:+--index-url "$$index"} \
	  $(TORCH_WHEEL) -e '.[dev]' || $(BIN)/python -m pip install --no-compile $(TORCH_WHEEL) -e '.[dev]'
	touch $@

# WordNet 3.0: the user's nltk data, or Debian's wordnet-base + wordnet-sense-index.
os-deps: $(STAMP)
	@$(BIN)/python -c "import nltk; nltk.data.find('corpora/wordnet')" 2>/dev/null \
	  || test -f /usr/share/wordnet/data.noun \
	  || scripts/install-wordnet.sh

# The whole system on a synthetic log (~10 min on 2 cores: the README's demo table);
# runs go to ./mlflow.db.
demo: setup
	env -u PYTHONDONTWRITEBYTECODE RAY_AUTH_MODE=disabled RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=0.2 \
	  $(BIN)/sessionflow demo --output $(DEMO_DIR)

# From the last demo: the README's demo table, docs/demo-summary.json and docs/figures, the
# notebooks executed on it (docs/notebooks), and MLflow UI screenshots where a Chromium is found.
docs: setup
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	env -u PYTHONDONTWRITEBYTECODE RAY_AUTH_MODE=disabled HF_HUB_OFFLINE=1 \
	  $(BIN)/python -m workflows.jobs.demo_docs $(DEMO_DIR)/summary.json

# Two pytest workers (pytest-xdist), a test module each at a time (module-scoped
# fixtures such as the demo's run are made once): most of the suite waits on Ray, MLflow
# and process starts, which two workers overlap on 2 cores (tests/conftest.py starts
# the longest modules first). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: setup
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

clean:
	rm -rf $(VENV) out .pytest_cache
