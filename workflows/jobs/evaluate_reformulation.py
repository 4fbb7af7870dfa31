"""`sessionflow evaluate reformulation`: reformulation types against a synthetic log's truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from workflows.jobs import common
from workflows.jobs.annotate import DEFAULT_THRESHOLD, HIERARCHY_MODEL_HELP, THRESHOLD_HELP


@dataclass(frozen=True)
class EvaluateReformulationJob:
    """What `sessionflow evaluate reformulation` judges, on which log."""

    gt: str | None = field(default=None, metadata={
        "help": "a synthetic log with gold_reformulation (`sessionflow synth`)"})  # fmt: skip
    model: str = field(default="models:/hierarchy-model@champion", metadata={"help": HIERARCHY_MODEL_HELP})
    format: Literal["aol", "diffusiondb"] = field(default="aol", metadata={
        "help": "format of the log (the synth styles)", "short": "-f"})  # fmt: skip
    tune_on: str | None = field(default=None, metadata={
        "help": "another synthetic log: each method's threshold is the best there"})  # fmt: skip
    threshold: float = field(default=DEFAULT_THRESHOLD, metadata={"help": THRESHOLD_HELP})


def run(job: EvaluateReformulationJob) -> dict[str, dict]:
    """`workflows.jobs.annotate.evaluate_reformulations` with the job's settings: per
    method its threshold, accuracy, recall by type and confusion counts."""
    from workflows.jobs.annotate import evaluate_reformulations

    gt = common.require(job.gt, "gt")
    return evaluate_reformulations(gt, job.model, job.format, job.tune_on, job.threshold)
