"""`sessionflow demo`: the whole system on one log, end to end."""

from __future__ import annotations

from rich.text import Text

from workflows.cli.progress import console, out, summary_table
from workflows.jobs.demo import DemoConfig


def demo(cfg: DemoConfig) -> None:
    """Run the whole system on one log and summarise it (about 10 minutes on 2 CPU cores).

    Generates a synthetic AOL-style log with ground truth (or takes --data), ingests
    it, segments it into sessions and missions, scores the segmentation against the
    truth next to time-gap baselines, mines pairs, fine-tunes the session model,
    trains the hierarchy model on the WordNet mammals (10-d), registers both in
    MLflow and scores the log with them. Writes OUTPUT/{events,sessions,pairs,scores},
    OUTPUT/figures/*.png and OUTPUT/summary.json; the figures and numbers also go to
    MLflow (the `demo` experiment and the two training runs). Every step takes the
    settings of its own command, under a prefix: --segment-*, --mission-*,
    --mining-*, --session-*, --hierarchy-*, --score-* (the synthetic log's have
    none). A log this small is ingested, segmented, mined and scored in this process
    and the models trained on a local Ray (each command's default, --engine auto);
    with --address or RAY_ADDRESS every step runs on that cluster.
    """
    from workflows.jobs.demo import run

    def done(step: str, numbers: dict, seconds: float) -> None:
        out.print(summary_table(f"{step} ({seconds:.0f} s)", numbers))

    summary = run(cfg, on_step=lambda step: console.rule(Text(step, style="bold")), on_done=done)
    out.print(summary_table("models and runs", {**summary.models, **{f"run {k}": v for k, v in summary.runs.items()}}))
    out.print(summary_table("outputs", summary.outputs))
    out.print("figures:\n" + "\n".join(f"  {f}" for f in summary.figures))
    out.print("(the Ray workers' own output is in Ray's log files; a local Ray's: /tmp/ray/session_latest/logs)")
    out.print(f"\nfinished in {summary.seconds['total']:.0f} s. To browse the runs, models and figures:")
    out.print(f"  {summary.mlflow_ui}   # then open http://127.0.0.1:5000", highlight=False, soft_wrap=True)
