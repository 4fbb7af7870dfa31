"""`sessionflow demo`: the whole system on one log, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workflows.cli.common import FORMAT_HELP, AddressOption, fail
from workflows.cli.progress import console, out, summary_table
from workflows.config import build, check_sections, read_yaml


def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")] = Path("out/demo"),
    data: Annotated[
        Path | None,
        typer.Option(help="Your own log (a file or a directory) instead of a synthetic one (with --format)."),
    ] = None,
    format: Annotated[str | None, typer.Option("--format", "-f", help=f"Format of --data: {FORMAT_HELP}.")] = None,
    users: Annotated[int | None, typer.Option(help="Users of the synthetic log [600].")] = None,
    rows: Annotated[int | None, typer.Option(help="Rows of the synthetic log [30000].")] = None,
    session_model: Annotated[
        str | None, typer.Option(help="Encoder the session model starts from [minilm-local].")
    ] = None,
    session_steps: Annotated[int | None, typer.Option(help="Training steps of the session model [100].")] = None,
    hierarchy_model: Annotated[
        str | None, typer.Option(help="Encoder the hierarchy model starts from [minilm-local].")
    ] = None,
    hierarchy_steps: Annotated[int | None, typer.Option(help="Training steps of the hierarchy model [300].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the log, the splits and the training [0].")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML with a `demo:` section (any field of DemoConfig).")
    ] = None,
    address: AddressOption = None,
) -> None:
    """Run the whole system on one log and summarise it (about 8 minutes on 2 CPU cores).

    Generates a synthetic AOL-style log with ground truth (or takes --data), ingests
    it, segments it into sessions and missions, scores the segmentation against the
    truth next to time-gap baselines, mines pairs, fine-tunes the session model,
    trains the hierarchy model on the WordNet mammals in 2-d, registers both in
    MLflow and scores the log with them. Writes OUTPUT/{events,sessions,pairs,scores},
    OUTPUT/figures/*.png and OUTPUT/summary.json; the figures and numbers also go to
    MLflow (the `demo` experiment and the two training runs). Uses a local Ray, or
    the cluster of --address / RAY_ADDRESS.
    """
    from workflows.jobs.demo import DemoConfig, run_demo

    try:
        values = read_yaml(config)
        check_sections(values, ("demo",))
        overrides = dict(users=users, rows=rows, session_model=session_model, session_steps=session_steps,
                         hierarchy_model=hierarchy_model, hierarchy_steps=hierarchy_steps, seed=seed)  # fmt: skip
        cfg = build(DemoConfig, "demo", values, overrides)
        summary = run_demo(output, cfg, data, format, address=address,
                           on_step=lambda step: console.rule(f"[bold]{step}"))  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    for step, numbers in summary.numbers.items():
        out.print(summary_table(f"{step} ({summary.seconds.get(step, 0):.0f} s)", numbers))
    out.print(summary_table("models and runs", {**summary.models, **{f"run {k}": v for k, v in summary.runs.items()}}))
    out.print(summary_table("outputs", summary.outputs))
    out.print("figures:\n" + "\n".join(f"  {f}" for f in summary.figures))
    out.print(f"\nfinished in {summary.seconds['total']:.0f} s. To browse the runs, models and figures:")
    out.print(f"  {summary.mlflow_ui}   # then open http://127.0.0.1:5000", highlight=False, soft_wrap=True)
