"""`sessionflow ingest`: raw logs -> canonical events, rejected rows and a report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sessions.formats.options import ReadOptions
from sessions.ingest import EVENTS_FILE, IngestReport
from sessions.records import DEFAULT_BLOCK_BYTES
from workflows.jobs import common

# A block is held several times over while it is parsed, and Arrow's strings count their
# bytes in 32 bits: 2**43 MiB was an OverflowError from pyarrow, 2 GiB a MemoryError.
MAX_BLOCK_MB = 1024


@dataclass(frozen=True)
class IngestJob:
    """What `sessionflow ingest` reads and where it writes."""

    inputs: tuple[str, ...] = common.inputs(
        "log files, directories (their files, by name) or glob patterns, local or URIs (s3://...), in order"
    )
    format: str | None = common.log_format(common.FORMAT_HELP.replace("raw logs", "the logs"))
    output: str | None = common.output()
    overwrite: bool = common.overwrite()
    read: ReadOptions = common.read_options()
    block_mb: int = field(default=DEFAULT_BLOCK_BYTES >> 20, metadata={
        "help": f"read this many MiB at a time, 1 to {MAX_BLOCK_MB:,} (bounds memory)"})  # fmt: skip
    engine: common.Engine = common.engine()
    address: str | None = common.address()

    def __post_init__(self) -> None:
        if not 1 <= self.block_mb <= MAX_BLOCK_MB:
            raise ValueError(f"--block-mb must be from 1 to {MAX_BLOCK_MB:,}, not {self.block_mb:,}")
        common.check_engine(self.engine, self.address)


def run(job: IngestJob, on_rows: Callable[[int], None] | None = None) -> IngestReport:
    """Ingest `job.inputs` into OUTPUT/{events,rejected}.parquet and report.json.

    With the ray engine each file is parsed by a Ray task and the events are written
    as a dataset of parts by bucket of users; locally one process streams them
    (`on_rows(n)` after each block). Both account for every row the same way and
    raise `sessions.ingest.AccountingError` when rows_in != rows_ok + rows_rejected.
    ValueError / FileNotFoundError for bad settings or inputs, and when no record could
    be read (`common.require_rows_read`: what the job wrote is deleted again).
    """
    common.require(job.inputs, "inputs", argument=True)
    fmt = common.require(job.format, "format")
    common.check_format(fmt, job.read)
    common.check_log_inputs(job.inputs, fmt, ingested=False)
    engine, why = common.choose_engine(job.engine, job.address, job.inputs, fmt)
    config = common.as_run(job, engine, why)
    output = common.output_dir(job.output, EVENTS_FILE, job.overwrite, job.inputs)
    if engine == "ray":
        from workflows.distributed.nodes import require_every_node_reaches
        from workflows.distributed.runtime import WITHOUT_RAY, ray_runtime

        with ray_runtime(job.address, without_ray=WITHOUT_RAY):
            require_every_node_reaches(output, job.inputs)
            from workflows.distributed import data  # imports ray: after the runtime's settings

            report = data.ingest(
                job.inputs, fmt, output, options=job.read, block_bytes=job.block_mb << 20, config=config
            )
    else:
        from sessions.ingest import ingest

        on_block = (lambda path, parsed: on_rows(parsed.rows_read)) if on_rows else None
        report = ingest(job.inputs, fmt, output, options=job.read, block_bytes=job.block_mb << 20, on_block=on_block,
                        config=config)  # fmt: skip
    common.require_rows_read(report.to_dict(), output)
    return report
