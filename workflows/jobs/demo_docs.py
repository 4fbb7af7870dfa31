"""The docs that show a demo's results, generated from the demo (`make docs`).

    python -m workflows.jobs.demo_docs out/demo/summary.json [--no-notebooks] [--no-screenshots]

- copies the summary to `docs/demo-summary.json` and its figures to `docs/figures`, and rewrites the README between
  the markers `<!-- demo-table -->` and `<!-- /demo-table -->` with `readme_table` of it, so that the figures the
  README shows are those a run of the code printed (a test checks that the README's table is
  `readme_table(docs/demo-summary.json)`);
- executes every notebook of `notebooks/` against the demo and writes it, with its outputs, as Markdown in
  `docs/notebooks/` (`render_notebooks`; a test checks that each rendered copy has its notebook's code as it is);
- starts an `mlflow server` on the demo's store (on 127.0.0.1) and photographs pages of its UI with a headless
  Chromium driven by Playwright into `docs/figures/mlflow-*.png` (`ui_screenshots`).

Needs the `docs` extra (`pip install -e '.[docs]'`: nbconvert, Playwright) and a Chromium (Debian: `apt install
chromium`; or `playwright install chromium`); `make docs` installs the extra.

Run it from the directory the demo ran in (its `mlflow.db`), as `make demo` and `make docs` do.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.jobs.demo import DemoConfig

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

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
         f"{score['rows_per_second']:.0f} rows/s " + ("in one process" if score.get("engine") == "local" else
                                                       "with the start of the Ray actors"),  # older demos: Ray
         f"{s['score']:.0f}"),
    ]  # fmt: skip
    lines = ["| step | result (`out/demo/summary.json`) | seconds |", "|---|---|---|"]
    lines += [f"| {step} | {result} | {seconds} |" for step, result, seconds in rows]
    lines.append(f"| total | | {s['total']:,.0f} |")
    return "\n".join(lines) + "\n\n" + strongest_baselines(ev)


def strongest_baselines(ev: dict) -> str:
    """One sentence: at each gold level, the strongest baseline of the demo's evaluation and
    where it stands against the cascade (all pair F1 over all users)."""
    baselines = {
        "sessions": {"the time gap chosen by CV": ev["time gap chosen by CV sessions F1"],
                     "the 30-minute gap": ev["time sessions F1"], "lexical": ev["lexical sessions F1"]},
        "missions": {"the time gap chosen by CV": ev["time gap chosen by CV missions F1"],
                     "30-minute sessions + linking": ev["time missions F1"],
                     "lexical + linking": ev["lexical missions F1"]},
    }  # fmt: skip
    parts = []
    for level, scores in baselines.items():
        name, best = max(scores.items(), key=lambda item: item[1])
        cascade = ev[f"cascade {level} F1"]
        where = "above" if best > cascade + 5e-4 else "below" if best < cascade - 5e-4 else "level with"
        parts.append(f"against the true {level}, {name} ({best:.3f}), {where} the cascade ({cascade:.3f})")
    return f"The strongest baseline (pair F1 over all users, as every figure of this row): {'; '.join(parts)}."


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
    SUMMARY_COPY.write_text(json.dumps(relative_to_root(summary), indent=1) + "\n")
    for figure in map(Path, summary["figures"]):
        if figure.name in FIGURES and figure.exists():
            shutil.copy(figure, SUMMARY_COPY.parent / "figures" / FIGURES[figure.name])


def relative_to_root(value: Any) -> Any:
    """`value` (a summary's JSON: dicts, lists, strings, numbers) with each path under the
    repository (`ROOT`), a string or a word of one (a command's), written relative to it,
    so that the committed copy names no one machine's checkout (`/home/me/sessionflow/out/x`
    is `out/x`, `sqlite:////home/me/sessionflow/mlflow.db` is `sqlite:///mlflow.db`: the
    commands run from the repository). Any other word is kept (`/x/home/me/sessionflow/y`,
    a `file://` URI, which cannot be relative)."""
    if isinstance(value, dict):
        return {key: relative_to_root(item) for key, item in value.items()}
    if isinstance(value, list):
        return [relative_to_root(item) for item in value]
    if not isinstance(value, str):
        return value
    under = f"{ROOT}{os.sep}"
    words = [
        word[len(under) :] if word.startswith(under)
        else f"sqlite:///{word[len('sqlite:///' + under) :]}" if word.startswith(f"sqlite:///{under}")
        else word
        for word in value.split(" ")
    ]  # fmt: skip
    return " ".join(words)


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
    # tqdm's note that Jupyter's widgets are missing is no output of the notebook's
    quiet = "ignore:IProgress not found"
    settings = {"SESSIONFLOW_DEMO_DIR": str(demo_dir.resolve()), "PYTHONWARNINGS": quiet,
                "HF_HUB_DISABLE_PROGRESS_BARS": "1"}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, _environment(**settings, SESSIONFLOW_NOTEBOOK_OUT=tmp):
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
                f"<!-- generated by `make docs` from {source}: do not edit -->\n"
                f"*Rendered from [{source}](../../{source}), executed by `make docs` after `make demo`: the outputs "
                f"are that run's.*\n\n{body}"
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


@dataclass(frozen=True)
class UIPage:
    """A page of MLflow's UI to photograph: its route (`#/...`, with {experiment:NAME} for
    an experiment's id and {run:NAME} for its latest run's id), the text to wait for, and,
    for a runs table, the columns to show and to hide (their names in its *Columns* menu)."""

    route: str
    wait_for: str
    columns: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()


# docs/figures/FILE -> the page it shows
UI_PAGES = {
    "mlflow-session-model-runs.png": UIPage("#/experiments/{experiment:session-model}/runs", "Columns",
                                            ("val_auc", "val_auc_not_fine_tuned", "val_auc_jaccard", "best_step",
                                             "steps", "pairs_per_s"), hide=("Dataset", "Source")),
    "mlflow-session-model-run.png": UIPage("#/experiments/{experiment:session-model}/runs/{run:session-model}",
                                           "About this run"),
    "mlflow-session-model-curves.png": UIPage(
        "#/experiments/{experiment:session-model}/runs/{run:session-model}/model-metrics", "eval"),
    "mlflow-registered-session-model.png": UIPage("#/models/session-model", "Versions"),
    "mlflow-demo-run.png": UIPage("#/experiments/{experiment:demo}/runs/{run:demo}", "About this run"),
}  # fmt: skip


def chromium() -> str | None:
    """The path of a Chromium or Chrome executable (`SESSIONFLOW_CHROMIUM`, else the first on PATH), or None
    (Playwright then tries its own, from `playwright install chromium`)."""
    names = [os.environ.get("SESSIONFLOW_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome", "chrome"]
    return next((found for name in names if name and (found := shutil.which(name))), None)


class NoBrowser(RuntimeError):
    """No Chromium to photograph MLflow's UI with (`ui_screenshots`)."""


def ui_screenshots(store: Path, out: Path = ROOT / "docs" / "figures", size: tuple[int, int] = (1440, 900),
                   timeout_s: float = 60) -> list[Path]:  # fmt: skip
    """Start `mlflow server` on the SQLite store `store` (127.0.0.1, a free port, one worker) and
    photograph each page of `UI_PAGES` into `out` with a headless Chromium driven by Playwright
    (`size` in pixels), as a user would see it: the *Model training* view, the assistant
    panel closed, a runs table with its key metric columns. Returns the PNG files.
    FileNotFoundError without a store; NoBrowser when no browser can be started; RuntimeError
    when the server does not answer within 60 s or a page does not show what it should within
    `timeout_s`."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from workflows.tracking.store import use_store

    if not store.exists():
        raise FileNotFoundError(f"{store}: no MLflow store (run `make demo` first)")
    with _environment(MLFLOW_TRACKING_URI=f"sqlite:///{store.resolve()}"):
        client = use_store(existing=True)

    def resolved(match: re.Match) -> str:  # {experiment:NAME} -> its id, {run:NAME} -> its latest run's id
        kind, name = match.groups()
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise RuntimeError(f"{store} has no experiment {name!r}: run `make demo` first")
        if kind == "experiment":
            return experiment.experiment_id
        runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
        if not runs:
            raise RuntimeError(f"experiment {name!r} of {store} has no run")
        return runs[0].info.run_id

    pages = {name: dataclasses.replace(page, route=re.sub(r"\{(experiment|run):([^}]+)\}", resolved, page.route))
             for name, page in UI_PAGES.items()}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with _mlflow_server(store) as url, sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        except PlaywrightError as err:
            raise NoBrowser(f"no browser to photograph with ({str(err).splitlines()[0]}): install Chromium "
                            "(Debian: apt install chromium) or set SESSIONFLOW_CHROMIUM") from None  # fmt: skip
        page = browser.new_context(viewport={"width": size[0], "height": size[1]}).new_page()
        page.set_default_timeout(timeout_s * 1000)
        first = True
        for name, ui in pages.items():
            for attempt in range(2):  # a page drawn slowly gets a second chance
                try:
                    _photograph(page, f"{url}/{ui.route}", ui, out / name, first, size)
                    break
                except PlaywrightError as err:
                    if attempt:
                        raise RuntimeError(f"{name}: {str(err).splitlines()[0]}") from None
            first = False
            written.append(out / name)
        browser.close()
    return written


def _photograph(page: Page, url: str, ui: UIPage, path: Path, first: bool, size: tuple[int, int]) -> None:
    """One page of `ui_screenshots`, as `ui` asks, into `path`; Playwright's errors as they come."""
    page.goto(url)
    page.get_by_text(ui.wait_for, exact=True).first.wait_for()
    if first:  # settings the UI keeps in the browser's storage for the pages that follow
        _click_if_there(page.get_by_role("button", name="Close"))  # the assistant's panel
        _click_if_there(page.get_by_text("Model training", exact=True))
        page.wait_for_timeout(1500)  # the page drawn again in that view
    if ui.columns or ui.hide:
        columns = page.get_by_role("button", name="Columns", exact=True)
        columns.click()
        _click_if_there(page.get_by_text("Reset to defaults", exact=True))  # a second attempt starts over
        search = page.get_by_placeholder("Search columns")
        page.wait_for_timeout(500)
        if not search.is_visible():  # the reset closed the menu
            columns.click()
        menu = search.locator("xpath=ancestor::*[.//*[@role='tree']][1]")  # the menu, not the table
        for column in (*ui.hide, *ui.columns):  # each click toggles the column
            search.fill(column)
            # the part of each name that matches is highlighted: the innermost item of just this name
            menu.locator("span", has_text=re.compile(f"^{re.escape(column)}$")).last.click()
        page.keyboard.press("Escape")
    page.mouse.move(0, size[1] - 1)  # no hover tool bars on the charts
    page.wait_for_timeout(1500)  # charts and tables drawn
    page.screenshot(path=str(path))


def _click_if_there(locator: Locator) -> None:
    if locator.count():
        locator.first.click()


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
    """The command line of the module docstring (`argv`: sys.argv[1:] when None); exits with
    an error line when the summary is missing. Screenshots are skipped, said on stderr,
    where no browser is found."""
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
    if not args.no_screenshots:  # where a browser is found (`chromium`): the others are done without
        try:
            for path in ui_screenshots(Path("mlflow.db")):
                print(f"photographed {path.relative_to(ROOT)}")
        except NoBrowser as err:
            print(f"MLflow UI screenshots not taken: {err}", file=sys.stderr)


if __name__ == "__main__":
    main()
