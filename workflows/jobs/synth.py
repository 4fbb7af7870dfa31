"""`sessionflow synth`: a synthetic log with known sessions, missions and reformulations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from synth import SynthConfig
from workflows.jobs import common

if TYPE_CHECKING:
    from synth.writer import SynthSummary

SUFFIXES = {"aol": (".tsv", ".txt", ".tsv.gz", ".txt.gz"), "prompt": (".parquet",)}


@dataclass(frozen=True)
class SynthJob:
    """What `sessionflow synth` generates and where it writes it."""

    output: str | None = common.output("output: .tsv/.txt[.gz] (aol) or .parquet (prompt)")
    synth: SynthConfig = field(default_factory=lambda: SynthConfig(users=1000), metadata={"prefix": ""})
    overwrite: bool = field(default=False, metadata={
        "help": "replace a file at --output that is not a synthetic log (one is replaced without it)"})  # fmt: skip


def run(job: SynthJob, on_rows: Callable[[int], None] | None = None) -> SynthSummary:
    """Write the log of `job.synth` to `job.output` (`on_rows(n)` after each chunk).

    The topics come from WordNet's nouns (hierarchies.wordnet); ValueError for bad settings,
    and for a file at the output that is not a synthetic log, unless `job.overwrite` (a
    real log of the same name was replaced without a word).
    """
    from sessions import storage
    from synth import Taxonomy, write_log
    from synth.writer import is_synthetic_log

    output = common.require(job.output, "output")
    suffixes = SUFFIXES[job.synth.style]
    if not storage.name(output).endswith(suffixes):
        raise ValueError(f"--output {output}: the {job.synth.style} style's log is written as {' or '.join(suffixes)}")
    common.output_file(output, "--output")
    if not job.overwrite and storage.exists(output) and not is_synthetic_log(output):
        raise ValueError(f"--output {output}: a file that is not a synthetic log is there; --overwrite replaces it")
    on_chunk = (lambda chunk: on_rows(chunk.rows.height)) if on_rows else None
    return write_log(job.synth, Taxonomy.wordnet(), output, on_chunk=on_chunk)


def expected_rows(job: SynthJob) -> int:
    """How many rows the log will have (for a progress bar)."""
    from synth.generate import user_budgets

    return job.synth.rows if job.synth.rows is not None else int(user_budgets(job.synth).sum())
