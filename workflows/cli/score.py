"""`sessionflow score`: a whole log scored with the registered models."""

from __future__ import annotations

from workflows.cli.common import engine_text, peak_rss_mib
from workflows.cli.ingest import ingest_rows
from workflows.cli.progress import out, summary_table
from workflows.jobs.score import ScoreJob


def score(job: ScoreJob) -> None:
    """Score every row of a log with the registered models.

    Every distinct query is encoded once and joined back to every event: in one
    process for a small log (--engine auto: inputs of at most 16 MiB of text, no
    cluster named), else on Ray by a pool of actors that load the models once each (a
    GPU each with --gpus-per-worker). Writes OUTPUT/scores.parquet, a row per accepted
    input row: row_id, user_id, ts, query, p_same_prev (the same-session probability
    with the user's previous query), session_id, session_seq and mission_id (found
    with the session model: by default the cascade, where it decides the pairs
    lexical evidence would break; --method learned lets it decide every pair);
    with --hierarchy-model also specificity and reformulation (specialisation,
    generalisation, lateral, repeat); with --embeddings the vector (float16). Also
    OUTPUT/rejected.parquet and OUTPUT/report.json (row accounting, the engine and
    why). On Ray it is resumable: a job stopped half-way and started again with the
    same arguments finishes only what is missing (its work is kept in
    OUTPUT/.score-work until the end); the one-process engine starts over.
    """
    from workflows.jobs.score import run

    report = run(job)
    resumed = {k: v for k, v in report.resumed.items() if v}
    found = ", ".join(f"{stage} {units:,}" for stage, units in resumed.items()) or "no"
    resuming = {"resumed (units found done)": found} if report.engine == "ray" else {}  # one process: never
    if pool := report.encoders:  # the Ray engine's, when it encoded anything
        each = f"{pool['gpus_each']:g} GPU" if pool["gpus_each"] else f"{pool['cpus_each']} CPU"
        note = f"; {pool['note']}" if "note" in pool else ""
        resuming["encoding actors"] = f"{pool['actors']} ({each} each{note})"
    done = report.to_dict()
    rows = {
        **ingest_rows(done), "engine": engine_text(done["config"]),
        "backend": report.backend, "distinct texts": report.distinct_texts,
        **({"texts the model cannot read": f"{report.unread_texts:,} (unknown tokens alone: no p_same_prev)"}
           if report.unread_texts else {}),
        "sessions": report.sessions,
        "missions": report.missions, **resuming, "seconds": report.seconds,
        "peak RSS (MiB)": peak_rss_mib(), **report.outputs,
    }  # fmt: skip
    out.print(summary_table("score", rows))
