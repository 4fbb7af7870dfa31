"""Synthetic search and prompt logs with known sessions, missions and reformulations.

    >>> cfg = SynthConfig(users=1_000, rows=400_000, style="aol")
    >>> summary = write_log(cfg, taxonomy, "synth.tsv.gz")

Topics and reformulations come from a concept hierarchy (`Taxonomy`; the CLI uses
WordNet's nouns). See `config.SynthConfig` for the behaviour and its calibration.

The room: the generator of synthetic logs with ground truth, and nothing else.
May import: `hierarchies/` (WordNet) and `sessions/` (its data types); polars,
pyarrow, numpy. Nothing imports `synth/` but `workflows/` and the tests, so the data
packages never depend on it.
"""

from synth.config import SynthConfig
from synth.generate import Chunk, generate
from synth.taxonomy import Taxonomy
from synth.walk import OPS
from synth.writer import SynthSummary, write_log

__all__ = ["OPS", "Chunk", "SynthConfig", "SynthSummary", "Taxonomy", "generate", "write_log"]
