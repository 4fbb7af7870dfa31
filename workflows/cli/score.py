"""`sessionflow score`: a whole log scored with the registered models (Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sessions.reformulation import DEFAULT_THRESHOLD
from workflows.cli.annotate import ThresholdOption
from workflows.cli.common import FORMAT_HELP, AddressOption, fail, peak_rss_mib
from workflows.cli.ingest import MapOption, ingest_rows
from workflows.cli.progress import out, summary_table


def score(
    inputs: Annotated[list[Path], typer.Argument(help="Raw log files/directories, or one `ingest` output directory.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")],
    format: Annotated[str | None, typer.Option("--format", "-f", help=f"Format of raw logs: {FORMAT_HELP}.")] = None,
    map: MapOption = None,
    session_model: Annotated[
        str, typer.Option(help="The session model [models:/session-model@champion].")
    ] = "models:/session-model@champion",
    hierarchy_model: Annotated[
        str | None, typer.Option(help="A hierarchy model: adds specificity and reformulation.")
    ] = None,
    embeddings: Annotated[bool, typer.Option("--embeddings", help="Also write each query's vector (float16).")] = False,
    workers: Annotated[
        int, typer.Option(help="Encoding actors [one per CPU, or per GPU share with --gpus-per-worker].")
    ] = 0,
    gpus_per_worker: Annotated[float, typer.Option(help="GPUs per encoding actor [0: CPU].")] = 0.0,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass [256].")] = 256,
    buckets: Annotated[int, typer.Option(help="Buckets of users and of texts [4 per CPU of the cluster].")] = 0,
    method: Annotated[
        str, typer.Option(help="Sessions: cascade (the model decides what lexical evidence would break) or learned.")
    ] = "cascade",
    min_p_same: Annotated[float, typer.Option(help="The model joins two queries when p_same >= this [0.5].")] = 0.5,
    threshold: ThresholdOption = DEFAULT_THRESHOLD,
    address: AddressOption = None,
) -> None:
    """Score every row of a log with the registered models, on Ray.

    Every distinct query is encoded once by a pool of actors (each loads the models
    once; a GPU each with --gpus-per-worker) and joined back to every event. Writes
    OUTPUT/scores.parquet, a row per accepted input row: row_id, user_id, ts, query,
    p_same_prev (the same-session probability with the user's previous query),
    session_id, session_seq and mission_id (found with the session model: by default
    the cascade, where it decides the pairs lexical evidence would break; --method
    learned lets it decide every pair);
    with --hierarchy-model also specificity and reformulation (specialisation,
    generalisation, lateral, repeat); with --embeddings the vector (float16). Also
    OUTPUT/rejected.parquet and OUTPUT/report.json (row accounting). Resumable: a
    job stopped half-way and started again with the same arguments finishes only
    what is missing (its work is kept in OUTPUT/.score-work until the end).
    """
    from workflows.distributed.runtime import ray_runtime
    from workflows.distributed.score_job import ScoreConfig
    from workflows.tracking.store import use_store

    try:
        from sessions.formats import ColumnMap

        mapping = ColumnMap.parse(map) if map else None
        cfg = ScoreConfig(
            session_model=session_model, hierarchy_model=hierarchy_model, embeddings=embeddings, workers=workers,
            gpus_per_worker=gpus_per_worker, batch_size=batch_size, buckets=buckets, method=method,
            min_p_same=min_p_same, threshold=threshold,
        )  # fmt: skip
        use_store()
        with ray_runtime(address):
            from workflows.distributed.score_job import score as run

            report = run(inputs, format, output, cfg, mapping=mapping)
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    d = report.to_dict()
    resumed = {k: v for k, v in report.resumed.items() if v}
    rows = {
        **ingest_rows(d), "distinct texts": report.distinct_texts, "sessions": report.sessions,
        "missions": report.missions, "resumed (units found done)": resumed or "no", "seconds": report.seconds,
        "peak RSS (MiB)": peak_rss_mib(), **report.outputs,
    }  # fmt: skip
    out.print(summary_table("score", rows))
