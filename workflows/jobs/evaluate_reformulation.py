"""`sessionflow evaluate reformulation`: reformulation types against a synthetic log's truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sessions.reformulation import DEFAULT_RATIO, check_ratio
from workflows.jobs import common
from workflows.jobs.annotate import HIERARCHY_MODEL_HELP, RATIO_HELP


@dataclass(frozen=True)
class EvaluateReformulationJob:
    """What `sessionflow evaluate reformulation` judges, on which log."""

    gt: str | None = field(default=None, metadata={
        "help": "a synthetic log with gold_reformulation (`sessionflow synth`)"})  # fmt: skip
    model: str = field(default="models:/hierarchy-model@champion", metadata={"help": HIERARCHY_MODEL_HELP})
    format: Literal["aol", "diffusiondb"] = field(default="aol", metadata={
        "help": "format of the log (the synth styles)", "short": "-f"})  # fmt: skip
    tune_on: str | None = field(default=None, metadata={
        "help": "another synthetic log: the model's ratio is the best of 0.05-0.7 there "
                "(--ratio is then not used)"})  # fmt: skip
    ratio: float = field(default=DEFAULT_RATIO, metadata={"help": RATIO_HELP})

    def __post_init__(self) -> None:
        check_ratio(self.ratio)


def run(job: EvaluateReformulationJob) -> dict[str, dict]:
    """`workflows.jobs.annotate.evaluate_reformulations` with the job's settings: per
    method its ratio, accuracy, recall by type and confusion counts. ValueError in one
    line for a `--tune-on` that is the `--gt` file itself (a link to it included)."""
    from sessions import storage
    from workflows.jobs.annotate import evaluate_reformulations
    from workflows.tracking.store import require_model

    gt = common.require(job.gt, "gt")
    require_model(job.model, ("hierarchy",))  # a lookup table or a session model named, not MLflow's message
    if job.tune_on is not None and storage.file_identity(job.tune_on) == storage.file_identity(gt):
        raise ValueError(
            f"--tune-on {job.tune_on} is the --gt log itself: the ratio would be chosen on the pairs it is then "
            "scored on; give another synthetic log (sessionflow synth --seed 1 -o dev.tsv)"
        )
    return evaluate_reformulations(gt, job.model, job.format, job.tune_on, job.ratio)
