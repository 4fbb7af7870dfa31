"""Mining pairs as a job: sessions (or a labelled log) in, `pairs.parquet` and a report out.

`run` serves `sessionflow mine` and the demo.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Literal

import polars as pl

from sessions import storage
from sessions.formats.options import ReadOptions
from sessions.ingest import REJECTED_FILE
from sessions.io import job_output, parquet_rows, read_table, scan_table, write_report, write_table
from sessions.pairs import (
    MiningConfig,
    check_sessions,
    empty_splits,
    gold_mining,
    gold_pairs,
    mine_pairs,
    negatives_short,
)
from sessions.pipeline import SESSIONS_FILE, load_events
from workflows.distributed.nodes import require_every_node_reaches
from workflows.distributed.runtime import WITHOUT_RAY, ray_runtime
from workflows.jobs import common

PAIRS_FILE = "pairs.parquet"
REPORT_FILE = "report.json"
GOLD_HELP = (
    "session or mission: pairs for evaluation from the log's ground-truth labels (webis-smc, gayo-avello, "
    "synth logs), all in split test; half the negatives the same user's other sessions (missions), half other users' "
    "(of the mining settings, only --seed applies)"
)


@dataclass(frozen=True)
class MineJob:
    """What `sessionflow mine` reads, how it mines pairs and where it writes."""

    sessions: str | None = field(
        default=None,
        metadata={
            "help": "a `segment` output directory (its sessions.parquet), or a sessions table of your own (a "
            "Parquet file of segment's columns); with --gold, a labelled log",
            "argument": True,
        },
    )
    output: str | None = common.output()
    overwrite: bool = common.overwrite()
    gold: Literal["session", "mission"] | None = field(default=None, metadata={"help": GOLD_HELP})
    format: str | None = common.log_format(f"with --gold: {common.FORMAT_HELP}")
    read: ReadOptions = common.read_options()  # with --gold: how the labelled log is read (--map for a table)
    mining: MiningConfig = field(default_factory=MiningConfig, metadata={"prefix": ""})
    engine: common.Engine = common.engine()
    address: str | None = common.address()

    def __post_init__(self) -> None:
        if self.format is not None and self.gold is None:
            raise ValueError("--format reads a labelled log, with --gold; a `segment` output needs none")
        if self.gold is None:
            common.refuse_read_options(self.read, "a labelled log, with --gold", "a `segment` output")
        elif given := [f.name for f in fields(MiningConfig) if f.name != "seed"
                       and getattr(self.mining, f.name) != getattr(MiningConfig(), f.name)]:  # fmt: skip
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ValueError(f"{flags}: not used with --gold, whose pairs follow fixed rules (negatives half "
                             "other users', half the same user's other groups; all in split test): only --seed "
                             "applies")  # fmt: skip
        common.check_engine(self.engine, self.address)


def run(job: MineJob) -> dict:
    """Mine pairs from a `segment` output (or, with `gold`, from a labelled log) into
    OUTPUT/pairs.parquet; write and return the report (counts by split and kind).
    ValueError / FileNotFoundError for bad settings or inputs."""
    sessions = common.require(job.sessions, "sessions", argument=True)
    common.check_format(job.format, job.read)
    if not storage.exists(sessions):
        otherwise = "no such labelled log" if job.gold else "no sessions here; run `sessionflow segment` first"
        raise FileNotFoundError(f"{sessions}: {storage.why_missing(sessions, otherwise)}")
    source = sessions
    if job.gold is None:  # a `segment` output, checked before the output is claimed: a rerun refused for it
        source = job_output(sessions, SESSIONS_FILE, own_file=True) if storage.is_dir(sessions) else sessions
        check_sessions(scan_table(source), source)
    output = common.output_dir(job.output, PAIRS_FILE, job.overwrite, [sessions])
    cfg, gold, fmt = job.mining, job.gold, job.format
    start = time.perf_counter()
    target = storage.join(output, PAIRS_FILE)
    accounting, unlabelled = {}, 0
    if gold is None:
        rows = parquet_rows(source)  # events, each segmented: every one is read, none rejected
        accounting = {"rows_in": rows, "rows_ok": rows, "rows_rejected": 0}
    if gold is not None:
        engine, why = "local", "--gold: a labelled log is mined in this process"
        columns = ("row_id", "user_id", "ts", "query", "gold_session", "gold_mission")
        # the rejected rows go to rejected.parquet
        events, accounting = load_events([sessions], fmt, output, options=job.read, columns=columns)
        common.require_rows_read(accounting, output)
        unlabelled = events[f"gold_{gold}"].null_count()  # read, but in no gold group: in no pair
        if unlabelled == events.height:  # "these events carry no gold_mission labels" said not why
            # an ingest output's: as its ingest read the log, by the report load_events gave (it was "(format None)")
            read = job.read if fmt is not None else ReadOptions(map=accounting["config"]["read"].get("map"))
            raise ValueError(f"--gold {gold}: {common.no_labels(sessions, [gold], accounting['format'], read)}")
        write_table(gold_pairs(events, gold, seed=cfg.seed), target)
    else:
        engine, why = common.choose_engine(job.engine, job.address, [source], None)
        if engine == "ray":
            with ray_runtime(job.address, without_ray=WITHOUT_RAY):
                require_every_node_reaches(output, [source])
                from workflows.distributed import data  # imports ray: after the runtime's settings

                data.mine(source, target, cfg)
        else:
            write_table(mine_pairs(read_table(source), cfg), target)
    pairs = read_table(target)
    counts = pairs.group_by("split", "kind").len().sort("split", "kind")
    rejected = {REJECTED_FILE: storage.join(output, REJECTED_FILE)} if gold is not None else {}
    report = {
        **accounting,  # the rows read: in = ok + rejected
        "pairs": pairs.height,
        "positives": int(pairs["label"].sum()),
        "negatives": int((pairs["label"] == 0).sum()),
        "by_split_and_kind": {s: dict(zip(g["kind"], g["len"], strict=True)) for (s,), g in counts.group_by("split")},
        "users_by_split": dict(pairs.group_by("split").agg(pl.col("user_id").n_unique()).iter_rows()),
        "negatives_short": negatives_short(pairs, gold_mining(cfg.seed) if gold is not None else cfg),
        "empty_splits": [] if gold is not None or not pairs.height else empty_splits(pairs, cfg),
        "unlabelled": unlabelled,  # with --gold: accepted rows without a label at the level, in no pair
        "config": common.as_run(job, engine, why) | ({"mining": asdict(gold_mining(cfg.seed))} if gold else {}),
        "source": str(source),
        "outputs": {PAIRS_FILE: target, **rejected, REPORT_FILE: storage.join(output, REPORT_FILE)},
        "seconds": round(time.perf_counter() - start, 3),
    }
    write_report(report, output)
    return report
