"""`sessionflow mine`: sessions -> labelled query pairs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from workflows.common import FORMAT_HELP, AddressOption, EngineOption, fail, peak_rss_mib
from workflows.config import build, check_sections, read_yaml
from workflows.engine import check_engine, ray_runtime
from workflows.progress import out, summary_table

PAIRS_FILE = "pairs.parquet"


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
    from sessions.io import read_table, write_json, write_parquet
    from sessions.pairs import MiningConfig, mine_pairs
    from sessions.pipeline import SESSIONS_FILE

    start = time.perf_counter()
    try:
        values = read_yaml(config)
        check_sections(values, ("mining",))
        cfg = build(
            MiningConfig, "mining", values,
            dict(negatives_per_positive=negatives_per_positive, max_pairs_per_session=max_pairs_per_session, seed=seed),
        )  # fmt: skip
        source = sessions / SESSIONS_FILE if sessions.is_dir() else sessions
        if gold is not None:
            source = sessions
            _mine_gold(sessions, format, gold, output, cfg.seed)
        elif not source.exists():
            raise FileNotFoundError(f"{source}: no sessions here; run `sessionflow segment` first")
        elif check_engine(engine) == "ray":
            with ray_runtime(address):
                from workflows import ray_pipelines  # imports ray: after the runtime's settings

                ray_pipelines.mine(source, output / PAIRS_FILE, cfg)
        else:
            write_parquet(mine_pairs(read_table(source), cfg), output / PAIRS_FILE)
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    pairs = read_table(output / PAIRS_FILE)
    counts = pairs.group_by("split", "kind").len().sort("split", "kind")
    report = {
        "pairs": pairs.height,
        "positives": int(pairs["label"].sum()),
        "negatives": int((pairs["label"] == 0).sum()),
        "by_split_and_kind": {s: dict(zip(g["kind"], g["len"], strict=True)) for (s,), g in counts.group_by("split")},
        "users_by_split": dict(pairs.group_by("split").agg(pl_n_unique("user_id")).iter_rows()),
        "config": cfg.to_dict() if gold is None else {"gold": gold, "seed": cfg.seed},
        "source": str(source),
        "outputs": {PAIRS_FILE: str(output / PAIRS_FILE), "report.json": str(output / "report.json")},
        "seconds": round(time.perf_counter() - start, 3),
    }
    write_json(report, output / "report.json")
    table = {f"{s} {k}": n for s, kinds in sorted(report["by_split_and_kind"].items()) for k, n in kinds.items()}
    out.print(summary_table("mine", {"pairs": report["pairs"], **table, "seconds": report["seconds"],
                                     "peak RSS (MiB)": peak_rss_mib(), **report["outputs"]}))  # fmt: skip


def _mine_gold(log: Path, fmt: str | None, level: str, output: Path, seed: int) -> None:
    from sessions.io import write_parquet
    from sessions.pairs import gold_pairs
    from sessions.pipeline import load_events

    columns = ("row_id", "user_id", "ts", "query", "gold_session", "gold_mission")
    events, _ = load_events([log], fmt, output, columns=columns)
    write_parquet(gold_pairs(events, level, seed=seed), output / PAIRS_FILE)


def pl_n_unique(column: str):
    import polars as pl

    return pl.col(column).n_unique()
