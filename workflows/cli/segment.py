"""`sessionflow segment`: canonical events -> sessions and missions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workflows.cli.common import FORMAT_HELP, AddressOption, EngineOption, fail, peak_rss_mib
from workflows.cli.ingest import MapOption, ingest_rows
from workflows.cli.progress import out, row_progress, summary_table
from workflows.config import build, check_sections, read_yaml
from workflows.distributed.runtime import check_engine, ray_runtime

SECTIONS = ("segment", "missions")
CLI_METHODS = ("time", "lexical", "cascade")
MODEL_METHODS = ("learned",)  # need --model

# Options shared by `segment` and `evaluate segmentation` (None = the config's value).
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML with `segment:` and `missions:` sections; options override it.")
]
MethodOption = Annotated[str | None, typer.Option(help="time, lexical, cascade, or learned (needs --model) [cascade].")]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="A session model (models:/session-model@champion, runs:/...): decides `learned`, the middle "
        "stage of `cascade`, and adds embedding links to missions.",
    ),
]
PSameOption = Annotated[
    float | None, typer.Option(help="learned / cascade with --model: same session when p_same >= this [0.5].")
]
MissionPSameOption = Annotated[
    float | None, typer.Option(help="missions with --model: link sessions when p_same >= this [0.5].")
]
GapOption = Annotated[float | None, typer.Option(help="time: break after a gap of this many minutes [30].")]
JoinOption = Annotated[float | None, typer.Option(help="cascade: gaps up to this many seconds join [0].")]
BreakOption = Annotated[float | None, typer.Option(help="cascade: gaps over this many minutes break [180].")]
OverlapOption = Annotated[float | None, typer.Option(help="lexical evidence: term overlap at least this [0.5].")]
JaccardOption = Annotated[float | None, typer.Option(help="lexical evidence: 3-gram Jaccard at least this [0.1].")]
ContainOption = Annotated[
    float | None, typer.Option(help="lexical evidence: share of 3-grams in the session so far [0.6].")
]
MissionJaccardOption = Annotated[
    float | None, typer.Option(help="missions: link sessions with 3-gram Jaccard at least this [0.1].")
]
MissionWindowOption = Annotated[
    int | None, typer.Option(help="missions: compare a session with the next N sharing a term [3].")
]


def configs(
    config: Path | None,
    method: str | None = None,
    gap_minutes: float | None = None,
    join_within_s: float | None = None,
    break_after_minutes: float | None = None,
    min_overlap: float | None = None,
    min_jaccard: float | None = None,
    min_containment: float | None = None,
    mission_min_jaccard: float | None = None,
    mission_window: int | None = None,
    min_p_same: float | None = None,
    mission_min_p_same: float | None = None,
):  # -> tuple[SegmentConfig, MissionConfig]
    """The resolved segmentation and mission configs of a command's options."""
    from sessions.missions import MissionConfig
    from sessions.segment import SegmentConfig

    values = read_yaml(config)
    check_sections(values, SECTIONS)
    seg = build(
        SegmentConfig, "segment", values,
        dict(method=method, gap_minutes=gap_minutes, join_within_s=join_within_s,
             break_after_minutes=break_after_minutes, min_overlap=min_overlap, min_jaccard=min_jaccard,
             min_containment=min_containment, min_p_same=min_p_same),
    )  # fmt: skip
    missions = build(
        MissionConfig, "missions", values,
        dict(min_jaccard=mission_min_jaccard, window=mission_window, min_p_same=mission_min_p_same),
    )  # fmt: skip
    return seg, missions


def check_method(method: str, model: str | None) -> None:
    if method in MODEL_METHODS and model is None:
        raise ValueError(f"--method {method} needs --model (a session model)")
    if method not in CLI_METHODS + MODEL_METHODS:
        raise ValueError(f"--method {method}: choose one of {', '.join(CLI_METHODS + MODEL_METHODS)}")


def session_scorer(model: str | None):
    """The session model at `model` as segmentation takes it (None without one)."""
    if model is None:
        return None
    from workflows.tracking.session_model import SessionScorer
    from workflows.tracking.store import use_store

    use_store()
    return SessionScorer(model)


def segment(
    inputs: Annotated[list[Path], typer.Argument(help="Raw log files/directories, or one `ingest` output directory.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")],
    format: Annotated[str | None, typer.Option("--format", "-f", help=f"Format of raw logs: {FORMAT_HELP}.")] = None,
    map: MapOption = None,
    config: ConfigOption = None,
    method: MethodOption = None,
    gap_minutes: GapOption = None,
    join_within_s: JoinOption = None,
    break_after_minutes: BreakOption = None,
    min_overlap: OverlapOption = None,
    min_jaccard: JaccardOption = None,
    min_containment: ContainOption = None,
    mission_min_jaccard: MissionJaccardOption = None,
    mission_window: MissionWindowOption = None,
    model: ModelOption = None,
    min_p_same: PSameOption = None,
    mission_min_p_same: MissionPSameOption = None,
    engine: EngineOption = "ray",
    address: AddressOption = None,
) -> None:
    """Cut each user's queries into sessions and link sessions into missions.

    Writes OUTPUT/sessions.parquet (row_id, user_id, ts, query, session_id,
    session_seq, mission_id) for every accepted row, OUTPUT/rejected.parquet and
    OUTPUT/report.json (the ingest accounting, sessions, missions, resolved config).
    Methods: time (gap threshold), lexical (3-gram Jaccard and term overlap with the
    previous query and the session so far), cascade (short gaps join, long gaps
    break, lexical evidence decides in between; after Hagen et al. 2013), learned
    (the session model's p_same of each consecutive pair, --model). With
    --engine ray (the default) users are hash-shuffled into buckets and segmented by
    Ray tasks; --engine local runs one process; both give the same sessions.
    """
    from sessions.formats import ColumnMap
    from sessions.pipeline import segment_logs

    try:
        seg, missions = configs(
            config, method, gap_minutes, join_within_s, break_after_minutes, min_overlap, min_jaccard,
            min_containment, mission_min_jaccard, mission_window, min_p_same, mission_min_p_same,
        )  # fmt: skip
        check_method(seg.method, model)
        mapping = ColumnMap.parse(map) if map else None
        if check_engine(engine) == "ray":
            with ray_runtime(address):
                from workflows.distributed import data as ray_pipelines  # imports ray: after the runtime's settings

                report = ray_pipelines.segment(inputs, format, output, seg, missions, mapping=mapping, model_uri=model)
        else:
            scorer = session_scorer(model)
            with row_progress(f"segment ({seg.method})") as progress:
                report = segment_logs(
                    inputs, format, output, seg, missions, mapping=mapping, scorer=scorer, embedder=scorer,
                    model_name=model, on_block=lambda path, parsed: progress.advance(0, parsed.rows_read),
                )  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    d = report.to_dict()
    rows = {
        **ingest_rows(d),
        "sessions": report.sessions,
        "missions": report.missions,
        "seconds": report.seconds,
        "peak RSS (MiB)": peak_rss_mib(),
    }
    out.print(summary_table(f"segment ({seg.method})", {**rows, **report.outputs}))
