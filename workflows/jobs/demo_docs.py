"""The README's demo table, generated from a demo's `summary.json` (`make docs`).

    python -m workflows.jobs.demo_docs out/demo/summary.json

copies the summary to `docs/demo-summary.json` and its figures to `docs/figures`, and rewrites the README between the
markers `<!-- demo-table -->` and `<!-- /demo-table -->` with `readme_table` of it,
so that the figures the README shows are those a run of the code printed; a test
checks that the README's table is `readme_table(docs/demo-summary.json)`.
"""

from __future__ import annotations

import json
import sys
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
        ("evaluate segmentation", "pair F1 against the true sessions: cascade {:.3f}, 30-min gap {:.3f}; against the "
         "true missions: cascade {:.3f}, 30-min sessions linked {:.3f}".format(
             ev["cascade sessions F1"], ev["time sessions F1"], ev["cascade missions F1"], ev["time missions F1"]),
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


def readme_block(readme: str) -> str:
    """The README's text between the demo-table markers (ValueError without them)."""
    if START not in readme or END not in readme:
        raise ValueError(f"the README has no {START} ... {END} block")
    return readme.split(START, 1)[1].split(END, 1)[0].strip()


def update(summary_path: Path, readme_path: Path = ROOT / "README.md") -> None:
    """Copy the summary to docs/demo-summary.json and its figures to docs/figures (`FIGURES`),
    and write its table into the README."""
    import shutil

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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m workflows.jobs.demo_docs out/demo/summary.json")
    update(Path(sys.argv[1]))
