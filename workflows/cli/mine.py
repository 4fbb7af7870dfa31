"""`sessionflow mine`: sessions -> labelled query pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workflows.cli.common import FORMAT_HELP, AddressOption, EngineOption, fail, peak_rss_mib
from workflows.cli.progress import out, summary_table
from workflows.config import build, check_sections, read_yaml


def mine(
    sessions: Annotated[
        Path, typer.Argument(help="A `segment` output directory (its sessions.parquet); with --gold, a labelled log.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")],
    gold: Annotated[
        str | None,
        typer.Option(
            help="session or mission: pairs for evaluation from the log's ground-truth labels "
            "(webis-smc, gayo-avello, synth logs), all in split test; half the negatives "
            "the same user's other sessions (missions), half other users'."
        ),
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", "-f", help=f"With --gold: format of the labelled log: {FORMAT_HELP}.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML with a `mining:` section.")] = None,
    negatives_per_positive: Annotated[
        float | None, typer.Option(help="Negatives per positive [1.0, i.e. 50:50].")
    ] = None,
    max_pairs_per_session: Annotated[
        int | None, typer.Option(help="At most this many positives a session [10].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every random choice [0].")] = None,
    engine: EngineOption = "ray",
    address: AddressOption = None,
) -> None:
    """Mine labelled query pairs from sessions for the session model.

    Writes OUTPUT/pairs.parquet (query_a, query_b, label, kind, user_id, split) and
    OUTPUT/report.json (counts by kind and split). Positives: distinct queries of one
    session (case and spacing variants are not pairs). Negatives: random (another
    user), same_user (another mission), lexical_hard (shares a term, another
    session). Splits train/val/test by a hash of the user id: no user in two splits.
    Users are mined in buckets (the same with --engine ray or local).

    With --gold session|mission, SESSIONS is a log with ground-truth labels (or its
    `ingest` directory) and the pairs follow the labels, for `evaluate pairs`.
    """
    from sessions.pairs import MiningConfig
    from workflows.jobs.mine import mine_job

    try:
        values = read_yaml(config)
        check_sections(values, ("mining",))
        cfg = build(
            MiningConfig, "mining", values,
            dict(negatives_per_positive=negatives_per_positive, max_pairs_per_session=max_pairs_per_session, seed=seed),
        )  # fmt: skip
        report = mine_job(sessions, output, cfg, gold=gold, fmt=format, engine=engine, address=address)
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    table = {f"{s} {k}": n for s, kinds in sorted(report["by_split_and_kind"].items()) for k, n in kinds.items()}
    out.print(summary_table("mine", {"pairs": report["pairs"], **table, "seconds": report["seconds"],
                                     "peak RSS (MiB)": peak_rss_mib(), **report["outputs"]}))  # fmt: skip
