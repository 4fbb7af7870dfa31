"""The packages depend one way (docs/architecture.md): each rule below is what a
package's own docstring says it may import, checked on every import statement of the
source (imports under `if TYPE_CHECKING:` are for type hints only and not counted)."""

from __future__ import annotations

import ast
import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package (or subpackage) -> modules it must not import (prefixes)
FORBIDDEN = {
    "sessions": ("hierarchies", "synth", "models", "workflows", "ray", "torch", "mlflow", "transformers"),
    "hierarchies": ("sessions", "synth", "models", "workflows", "ray", "torch", "mlflow"),
    "synth": ("models", "workflows", "ray", "torch", "mlflow"),
    "models": ("sessions", "synth", "workflows", "ray", "mlflow"),
    "workflows": ("workflows.cli",),
    "workflows.distributed": ("workflows.jobs", "workflows.cli"),
    "workflows.training": ("workflows.jobs", "workflows.cli"),
    "workflows.tracking": ("workflows.jobs", "workflows.cli", "workflows.distributed", "workflows.training"),
}
EXEMPT = {"workflows": ("workflows.cli", "workflows.main")}  # the CLI itself, and the console script that starts it


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text())
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden |= {id(n) for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package.replace(".", "/")).rglob("*.py"))


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_what_their_room_allows(package):
    broken = []
    for path in sources(package):
        me = module_name(path)
        if any(under(me, e) for e in EXEMPT.get(package, ())):
            continue
        for name in imports(path):
            for forbidden in FORBIDDEN[package]:
                if under(name, forbidden) and not under(me, forbidden):
                    broken.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not broken, "\n".join(broken)


def test_nothing_outside_workflows_imports_it():
    for package in ("sessions", "hierarchies", "synth", "models"):
        for path in sources(package):
            assert not any(under(n, "workflows") for n in imports(path)), path


def test_every_package_says_what_it_holds_and_may_import():
    for package in ("sessions", "hierarchies", "synth", "models", "workflows", *(p for p in FORBIDDEN if "." in p),
                    "workflows.jobs", "workflows.cli"):  # fmt: skip
        init = ROOT / package.replace(".", "/") / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc.splitlines()) >= 2 and "import" in doc, f"{init}: no docstring on its room and imports"


def test_the_command_line_starts_without_the_heavy_libraries():
    """`sessionflow --help` parses every job's config, and imports neither Ray, torch nor MLflow."""
    code = "import sys, workflows.cli; print(sorted({'ray', 'torch', 'mlflow', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_the_modules_of_ray_tasks_import_no_library_their_tasks_do_not_use():
    """Every Ray job starts its worker processes afresh on every node, and each imports
    the module its tasks live in: the tasks that parse, segment, mine and score rows
    hand the tracking URI on and apply a calibration, so they import neither MLflow nor
    scikit-learn (about 1.7 and 2 s of CPU a process on 2 cores), nor torch (only the
    Encoder actor and Ray Train's workers need it, and import it there)."""
    modules = ("workflows.distributed.data", "workflows.distributed.score_job", "workflows.distributed.scoring")
    code = (f"import sys; import {', '.join(modules)}; "
            "print(sorted({'torch', 'mlflow', 'transformers', 'sklearn'} & set(sys.modules)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# Modules that import libraries of extras of pyproject.toml, which their docstrings name
EXTRAS = {"workflows/jobs/demo_docs.py": ("dev", "docs")}  # `make docs` installs both: notebooks, screenshots


def installed_closure(requirements: list[str]) -> set[str]:
    """The normalised names of the distributions `requirements` (PEP 508 strings) install,
    with what they require in turn (their extras named in the requirement), as installed
    here: what `pip install sessionflow` brings."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[tuple[str, str]] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        for wanted in ("", *req.extras):
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            with contextlib.suppress(PackageNotFoundError):  # not installed here: what it requires is not known
                todo += [(Requirement(r), wanted) for r in requires(name) or []]
    return {name for name, _ in seen}


def test_every_library_the_source_imports_is_a_dependency_of_the_install():
    """A library imported by the packages but listed only under an extra (`dev`) is missing
    from `pip install sessionflow`: psutil, imported by every job's output lock, was
    `dev`'s, and a plain install ended every `ingest` in `ModuleNotFoundError`."""
    import tomllib
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = installed_closure(project["dependencies"])
    distributions = packages_distributions()
    missing = []
    for package in ("sessions", "synth", "hierarchies", "models", "workflows"):
        for path in sources(package):
            extras = EXTRAS.get(str(path.relative_to(ROOT)), ())
            allowed = runtime.union(*(installed_closure(project["optional-dependencies"][e]) for e in extras))
            for name in imports(path):
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("sessions", "synth", "hierarchies", "models", "workflows"):
                    continue
                given = {canonicalize_name(d) for d in distributions.get(top, [top])}  # not installed: its name
                if not given & allowed:
                    missing.append(f"{path.relative_to(ROOT)} imports {top} ({', '.join(sorted(given))})")
    assert not missing, "\n".join(sorted(set(missing)))
