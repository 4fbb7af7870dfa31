"""`sessionflow train ...`: fine-tune models with Ray Train, tracked in MLflow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflows.cli.progress import out, summary_table
from workflows.jobs.train_hierarchy import TrainHierarchyJob
from workflows.jobs.train_segmenter import TrainSegmenterJob
from workflows.jobs.train_session import TrainSessionJob

if TYPE_CHECKING:
    from workflows.training.loop import TrainOutcome


def session(job: TrainSessionJob) -> None:
    """Fine-tune the session model (a bi-encoder) on mined pairs with Ray Train.

    InfoNCE over dot products, in-batch negatives gathered from every worker plus the
    mined hard negatives; validation ROC AUC every --eval-every steps, with a
    checkpoint each time, early stopping, and resumption from the last checkpoint
    when a worker fails. Then the best checkpoint is calibrated on the validation
    pairs and logged to MLflow, registered as `session-model`, and given the
    `champion` alias when its validation AUC beats the current champion's, validated
    on the same pairs (by their content); the summary says why not.
    """
    from workflows.jobs.train_session import run

    cfg = job.session
    print_outcome(f"train session ({cfg.model}, {cfg.workers} worker(s))", run(job))


def hierarchy(job: TrainHierarchyJob) -> None:
    """Embed a hierarchy in the Poincaré ball (or R^d) with Ray Train.

    `--model lookup` trains the reference of Nickel & Kiela 2017 (a point per node);
    an encoder name trains the text model (encoder -> a hidden layer -> scale ->
    expmap0; the head fitted alone on the frozen encoder first, then fine-tuned with
    it: LP-FT), which places texts it has never seen. Reconstruction MAP and mean rank, link
    prediction on held-out edges or nodes and Spearman(norm, depth) are logged to
    MLflow (on HierarCaps also Kendall's tau of norm against level on its test
    hierarchies, next to the pretrained encoder's norm); for a Poincaré ball a disk
    plot too (more than 2 dimensions drawn around the root). Text models are
    registered as `hierarchy-model`; `champion` goes to the best reconstruction MAP
    among runs on the same data and held-out split.
    """
    from workflows.jobs.train_hierarchy import run, space

    cfg = job.hierarchy
    print_outcome(f"train hierarchy ({cfg.data}, {cfg.model}, {space(cfg)})", run(job))


def segmenter(job: TrainSegmenterJob) -> None:
    """Fit the same-session classifier on ground truth, with its nested CV estimate.

    A scikit-learn classifier (gradient boosting or logistic regression; --classifier
    auto lets inner folds choose) of P(same session) for each consecutive pair of a
    user's queries, over the gap, lexical similarities with the previous query and
    the user's last five, repeats, lengths, the user's activity and the shipped
    cascade's decision. User-level nested cross-validation on --gt gives the estimate
    (cv_f1_mean and the rest, mean and sd over outer folds), with the shipped cascade
    on the same folds (cascade_cv_*); then the classifier is fitted on every user,
    logged to MLflow and registered as `segmenter-model` (champion when its cv_f1_mean
    is the best on the same file and level). Use it with `segment --method learned
    --model models:/segmenter-model@champion`. One process, no Ray.
    """
    from workflows.jobs.train_segmenter import run

    print_outcome(f"train segmenter ({job.gt}, {job.classifier})", run(job))


def print_outcome(title: str, outcome: TrainOutcome) -> None:
    """The summary every `train` command ends with: the run, the logged and registered model, the metrics."""
    name, _, version = (outcome.registered or "").removeprefix("models:/").rpartition("/")
    lookup = outcome.model_uri.endswith("/table")  # a lookup table's points (`train hierarchy --model lookup`)
    unregistered = "a lookup table reads no text, so it is logged only" if lookup else "--no-register"
    rows = {
        "MLflow run": outcome.run_id,
        "logged model": outcome.model_uri,
        "registered": outcome.registered or f"(not registered: {unregistered})",
        "champion": "yes" if outcome.champion else (
            f"no: {outcome.champion.why}; `sessionflow promote {name} {version}` makes it" if outcome.registered
            else "no"),
        **outcome.metrics,  # floats to three decimals, as every summary shows them (`summary_table`)
    }  # fmt: skip
    if outcome.stopped:
        rows["stopped"] = outcome.stopped
    if outcome.checkpoint:  # trained with Ray Train
        rows["best checkpoint"] = outcome.checkpoint
        rows["figures"] = ", ".join(outcome.figures) or "(none)"
    out.print(summary_table(title, rows))
    for note in outcome.notes:
        out.print(f"note: {note}", soft_wrap=True, highlight=False)
