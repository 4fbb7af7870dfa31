"""`sessionflow annotate`: the specificity of every query and the reformulation type of
every consecutive pair of a session, from a hierarchy model."""

from __future__ import annotations

from workflows.cli.common import peak_rss_mib
from workflows.cli.ingest import ingest_rows
from workflows.cli.progress import out, summary_table
from workflows.jobs.annotate import AnnotateJob

QUERY_KINDS = {"start": "first of a session"}  # the report's name for a query with no reformulation type


def annotate(job: AnnotateJob) -> None:
    """Read a log for specialisation and generalisation with a hierarchy model.

    Each query gets a specificity: its distance from the origin of the model's ball
    (general texts near 0). Each query after the first of a session gets a
    reformulation type against the query before it, from what changed among its
    terms: repeat (the same terms), specialisation (terms added, none removed),
    generalisation (terms removed, none added); terms replaced by others are a
    specialisation when the model puts the new terms further from the origin by at
    least --ratio of their distance from the old ones, a generalisation when
    nearer, else lateral (HiT's subsumption score at 0). Sessions come from a
    `segment` output directory or a sessions table of your own (a Parquet file of
    segment's columns, by its path or in a directory as sessions.parquet), or are
    found with the default cascade first.
    Writes OUTPUT/annotations.parquet (the session columns plus specificity and
    reformulation, a row per accepted event) and OUTPUT/report.json; from raw logs
    also the sessions found (sessions.parquet) and the rows refused
    (rejected.parquet). One process: for whole logs on a cluster see
    `sessionflow score`.
    """
    from workflows.jobs.annotate import run

    report = run(job)
    part = report["annotate"]
    kinds = {f"queries: {QUERY_KINDS.get(t, t)}": n for t, n in sorted(part["reformulations"].items())}
    unread = {"queries the model cannot read (no specificity)": part["unread_texts"]} if part["unread_texts"] else {}
    rows = {**ingest_rows(report), **kinds, **unread,
            "seconds": part["seconds"], "peak RSS (MiB)": peak_rss_mib(),
            **({"sessions from": report["segmented"]["output"]} if "segmented" in report else {}),
            **report["outputs"]}  # fmt: skip
    out.print(summary_table(f"annotate ({job.model}, ratio {job.ratio})", rows))
