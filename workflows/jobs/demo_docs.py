"""The docs that show a demo's results, generated from the demo (`make docs`).

    python -m workflows.jobs.demo_docs out/demo/summary.json [--no-notebooks] [--no-screenshots]

- copies the summary to `docs/demo-summary.json` and its figures to `docs/figures`, and rewrites the README between
  the markers `<!-- demo-table -->` and `<!-- /demo-table -->` with `readme_table` of it, so that the figures the
  README shows are those a run of the code printed (a test checks that the README's table is
  `readme_table(docs/demo-summary.json)`);
- executes every notebook of `notebooks/` against the demo and writes it, with its outputs, as Markdown in
  `docs/notebooks/` (`render_notebooks`; a test checks that each rendered copy has its notebook's code as it is);
- starts an `mlflow server` on the demo's store (on 127.0.0.1) and photographs pages of its UI with a headless
  Chromium into `docs/figures/mlflow-*.png` (`ui_screenshots`; skipped, with a note, where no Chromium is found).

Run it from the directory the demo ran in (its `mlflow.db`), as `make demo` and `make docs` do.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workflows.jobs.demo import DemoConfig

ROOT = Path(__file__).resolve().parents[2]
START, END = "<!-- demo-table -->", "<!-- /demo-table -->"
SUMMARY_COPY = ROOT / "docs" / "demo-summary.json"
# the demo's figures (OUTPUT/figures) -> the README's (docs/figures)
FIGURES = {
    "session_statistics.png": "demo-session-statistics.png",
    "segmentation.png": "demo-segmentation.png",
    "session-model_val_roc.png": "demo-session-model-roc.png",
    "session-model_mission_pca.png": "demo-mission-pca.png",
    "hierarchy-model_poincare_disk.png": "demo-poincare-disk.png",
    "hierarchy-model_specificity_by_depth.png": "demo-specificity-by-depth.png",
}


def readme_table(summary: dict) -> str:
    """The Markdown table of a demo's summary (`DemoSummary.to_dict()`): one row a step,
    what it found and its seconds. KeyError when the summary lacks a step's numbers."""
    n, s = summary["numbers"], summary["seconds"]
    hierarchy = DemoConfig().hierarchy
    synth, ingest, seg, mine = n.get("synth", {}), n["ingest"], n["segment"], n["mine"]
    ev, session, tree, score = (n["evaluate segmentation"], n["train session model"], n["train hierarchy model"],
                                n["score"])  # fmt: skip
    truth = f" (truth: {synth['sessions']:,})" if "sessions" in synth else ""
    truth_m = f" (truth: {synth['missions']:,})" if "missions" in synth else ""
    splits = " / ".join(f"{mine['users_by_split'].get(k, 0):,}" for k in ("train", "val", "test"))
    rows = [
        ("synth, ingest", f"{ingest['rows_in']:,} rows in, {ingest['rows_ok']:,} ok, {ingest['rows_rejected']:,} "
         "rejected", f"{s.get('synth', 0):.0f} + {s['ingest']:.0f}"),
        ("segment (cascade)", f"{seg['sessions']:,} sessions{truth}, {seg['missions']:,} missions{truth_m}",
         f"{s['segment']:.0f}"),
        ("evaluate segmentation", "pair F1 against the true sessions: cascade {:.3f}; baselines: time gap chosen by "
         "CV over users {:.3f} ({}), 30-min gap {:.3f}, lexical {:.3f}. Against the true missions: cascade {:.3f}; "
         "baselines: time gap chosen by CV {:.3f} ({}), 30-min sessions + linking {:.3f}, lexical + linking "
         "{:.3f}".format(
             ev["cascade sessions F1"], ev["time gap chosen by CV sessions F1"],
             _chosen(ev["time gap chosen by CV sessions"]), ev["time sessions F1"], ev["lexical sessions F1"],
             ev["cascade missions F1"], ev["time gap chosen by CV missions F1"],
             _chosen(ev["time gap chosen by CV missions"]), ev["time missions F1"], ev["lexical missions F1"]),
         f"{s['evaluate segmentation']:.0f}"),
        ("mine", f"{mine['pairs']:,} pairs ({splits} users in train / val / test)", f"{s['mine']:.0f}"),
        ("train session model", "validation AUC {:.3f} (MiniLM not fine-tuned {:.3f}, 3-gram Jaccard {:.3f}); mission "
         "silhouette {:.3f} ({:.3f} before)".format(
             session["val_auc"], session["val_auc_not_fine_tuned"], session["val_auc_jaccard"],
             session["mission_silhouette"], session["mission_silhouette_not_fine_tuned"]),
         f"{s['train session model']:.0f}"),
        ("train hierarchy model", f"{hierarchy.data.removeprefix('wordnet-')}, {hierarchy.dim}-d, {tree['steps']} "
         f"steps: Spearman(norm, depth) {tree['spearman_norm_depth']:.2f}, reconstruction MAP {tree['map']:.3f}",
         f"{s['train hierarchy model']:.0f}"),
        ("score", f"{score['rows']:,} rows, {score['distinct_texts']:,} distinct texts encoded once, "
         f"{score['rows_per_second']:.0f} rows/s with the start of the Ray actors", f"{s['score']:.0f}"),
    ]  # fmt: skip
    lines = ["| step | result (`out/demo/summary.json`) | seconds |", "|---|---|---|"]
    lines += [f"| {step} | {result} | {seconds} |" for step, result, seconds in rows]
    lines.append(f"| total | | {s['total']:,.0f} |")
    return "\n".join(lines)


def _chosen(counts: dict[str, int]) -> str:
    """What the outer folds chose, in words: '15 min in 5 of 5 folds', '30 min in 4, 60 min in 1'."""
    folds = sum(counts.values())
    if len(counts) == 1:
        return f"{next(iter(counts))} in {folds} of {folds} folds"
    return ", ".join(f"{name} in {n}" for name, n in counts.items()) + " folds"


def readme_block(readme: str) -> str:
    """The README's text between the demo-table markers (ValueError without them)."""
    if START not in readme or END not in readme:
        raise ValueError(f"the README has no {START} ... {END} block")
    return readme.split(START, 1)[1].split(END, 1)[0].strip()


def update(summary_path: Path, readme_path: Path = ROOT / "README.md") -> None:
    """Copy the summary to docs/demo-summary.json and its figures to docs/figures (`FIGURES`),
    and write its table into the README."""
    summary = json.loads(summary_path.read_text())
    readme = readme_path.read_text()
    readme_block(readme)  # the markers are there
    before, rest = readme.split(START, 1)
    after = rest.split(END, 1)[1]
    readme_path.write_text(f"{before}{START}\n{readme_table(summary)}\n{END}{after}")
    SUMMARY_COPY.write_text(json.dumps(summary, indent=1) + "\n")
    for figure in map(Path, summary["figures"]):
        if figure.name in FIGURES and figure.exists():
            shutil.copy(figure, SUMMARY_COPY.parent / "figures" / FIGURES[figure.name])


NOTEBOOKS = ROOT / "notebooks"
RENDERED = ROOT / "docs" / "notebooks"


def render_notebooks(demo_dir: Path, out: Path = RENDERED, timeout_s: float = 600) -> list[Path]:
    """Execute each notebook of `notebooks/` against the demo in `demo_dir` (its log, models and, in the
    current directory, its MLflow store) and write it as Markdown with its outputs: `out/NAME.md`,
    its images in `out/NAME_files/`. Returns the Markdown files. The notebooks' own settings
    (`SESSIONFLOW_LOG`, ...) are read from the environment as usual; `SESSIONFLOW_DEMO_DIR` is set
    to `demo_dir`. Raises nbclient's `CellExecutionError` on a cell that fails (nothing is written
    for that notebook). Uses nbclient to execute and nbconvert's Markdown exporter to render."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import MarkdownExporter

    written = []
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, _environment(SESSIONFLOW_DEMO_DIR=str(demo_dir.resolve()),
                                                            SESSIONFLOW_NOTEBOOK_OUT=tmp):  # fmt: skip
        for path in sorted(NOTEBOOKS.glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            NotebookClient(notebook, timeout=timeout_s, resources={"metadata": {"path": str(Path.cwd())}}).execute()
            files = f"{path.stem}_files"
            body, resources = MarkdownExporter().from_notebook_node(notebook, resources={"output_files_dir": files})
            shutil.rmtree(out / files, ignore_errors=True)
            for name, data in resources.get("outputs", {}).items():
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                (out / name).write_bytes(data)
            target = out / f"{path.stem}.md"
            source = f"notebooks/{path.name}"
            target.write_text(
                f"<!-- generated by `make docs` from {source}, executed on the demo: do not edit -->\n"
                f"*Rendered from [{source}](../../{source}), run on `make demo`'s output.*\n\n{body}"
            )
            written.append(target)
    return written


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# docs/figures/FILE -> the page of MLflow's UI it shows, a route of the UI's `#/...` with
# {experiment:NAME} (an experiment's id), {run:NAME} (its latest run's id) filled in
UI_PAGES = {
    "mlflow-session-model-runs.png": "#/experiments/{experiment:session-model}/runs",
    "mlflow-session-model-run.png": "#/experiments/{experiment:session-model}/runs/{run:session-model}",
    "mlflow-session-model-curves.png": (
        "#/experiments/{experiment:session-model}/runs/{run:session-model}/model-metrics"
    ),
    "mlflow-registered-session-model.png": "#/models/session-model",
    "mlflow-demo-run.png": "#/experiments/{experiment:demo}/runs/{run:demo}",
}


def chromium() -> str | None:
    """The path of a Chromium or Chrome executable (`SESSIONFLOW_CHROMIUM`, else the first on PATH), or None."""
    names = [os.environ.get("SESSIONFLOW_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome", "chrome"]
    return next((found for name in names if name and (found := shutil.which(name))), None)


def ui_screenshots(store: Path, out: Path = ROOT / "docs" / "figures", browser: str | None = None,
                   size: tuple[int, int] = (1440, 900), wait_ms: int = 20_000) -> list[Path]:  # fmt: skip
    """Start `mlflow server` on the SQLite store `store` (127.0.0.1, a free port, one worker), and
    photograph each page of `UI_PAGES` with a headless Chromium (`--screenshot`, `size` in pixels,
    after `wait_ms` of the page's virtual time, so that its requests are answered and drawn).
    Returns the PNG files. FileNotFoundError without a store or a browser; RuntimeError when the
    server does not answer within 60 s or a page cannot be photographed."""
    from workflows.tracking.store import use_store

    browser = browser or chromium()
    if browser is None:
        raise FileNotFoundError(
            "no Chromium found: install one (Debian: apt install chromium) or set SESSIONFLOW_CHROMIUM"
        )
    if not store.exists():
        raise FileNotFoundError(f"{store}: no MLflow store (run `make demo` first)")
    client = use_store(f"sqlite:///{store.resolve()}", existing=True)

    def fill(route: str) -> str:
        for kind in ("experiment", "run"):
            while f"{{{kind}:" in route:
                name = route.split(f"{{{kind}:", 1)[1].split("}", 1)[0]
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    raise RuntimeError(f"{store} has no experiment {name!r}: run `make demo` first")
                value = experiment.experiment_id
                if kind == "run":
                    runs = client.search_runs([value], order_by=["attributes.start_time DESC"], max_results=1)
                    if not runs:
                        raise RuntimeError(f"experiment {name!r} of {store} has no run")
                    value = runs[0].info.run_id
                route = route.replace(f"{{{kind}:{name}}}", value)
        return route

    routes = {name: fill(route) for name, route in UI_PAGES.items()}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with _mlflow_server(store) as url, tempfile.TemporaryDirectory() as profile:
        for name, route in routes.items():
            target = out / name
            command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                       f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                       f"--virtual-time-budget={wait_ms}", f"--screenshot={target}", f"{url}/{route}"]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if done.returncode != 0 or not target.exists():
                raise RuntimeError(f"{browser} could not photograph {route}: {done.stderr.strip().splitlines()[-1:]}")
            written.append(target)
    return written


@contextmanager
def _mlflow_server(store: Path) -> Iterator[str]:
    """`mlflow server` on `store` at 127.0.0.1 (a free port) for the length of the block; its URL."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow = Path(sys.executable).with_name("mlflow")
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{store.resolve()}", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{url}/health", timeout=1)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        tail = log.read().decode(errors="replace").strip().splitlines()[-1:]
                        raise RuntimeError(f"mlflow server on {store} did not start: {tail}") from None
                    time.sleep(0.5)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workflows.jobs.demo_docs", description=__doc__.split("\n")[0])
    parser.add_argument("summary", type=Path, help="the demo's summary.json (out/demo/summary.json)")
    parser.add_argument("--no-notebooks", action="store_true", help="do not execute and render the notebooks")
    parser.add_argument("--no-screenshots", action="store_true", help="do not photograph MLflow's UI")
    args = parser.parse_args(argv)
    if not args.summary.exists():
        sys.exit(f"error: {args.summary}: no demo summary (run `make demo` first)")
    update(args.summary)
    print(f"README table, docs/demo-summary.json and docs/figures from {args.summary}")
    if not args.no_notebooks:
        for path in render_notebooks(args.summary.parent):
            print(f"rendered {path.relative_to(ROOT)}")
    if not args.no_screenshots:
        if chromium() is None:
            print("MLflow UI screenshots skipped: no Chromium found (Debian: apt install chromium)")
        else:
            for path in ui_screenshots(Path("mlflow.db")):
                print(f"photographed {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
