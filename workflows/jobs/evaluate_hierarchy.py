"""`sessionflow evaluate hierarchy`: a trained hierarchy model's metrics, by URI or run id.

A model is found by `models:/hierarchy-model@champion`, `models:/NAME/VERSION`,
`runs:/RUN_ID[/model]` or a bare run id; its run's `config.json` tells which data,
held-out split and seed it was trained with, so link prediction scores the same
held-out pairs (unless told otherwise: a split of WordNet that would hold out pairs the
model trained on is refused, `reconstruction_split`). On HierarCaps the pretrained encoder's
numbers come alongside (`pretrained_cosine_*`, `kendall_tau_pretrained_norm`).

`--protocol hit` scores HiT's tasks (He et al. 2024; `hierarchies.hit`): on the data a
model trained on, only with the split it trained with (`--holdout hit-multi` or
`hit-mixed`), since any other would test it on pairs it trained on; a text model
trained on other data (HierarCaps, say) on `--data`'s mixed-hop split, both tasks.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workflows.jobs.train_hierarchy import SPLIT, WORDNET, HierarchyTrainConfig
from workflows.training.hierarchy import evaluate_with_baselines, load_data, load_model, refuse_unread_nodes

PROTOCOLS = ("reconstruction", "hit")


def evaluate_hierarchy(
    uri: str, protocol: str = "reconstruction", **overrides: Any
) -> tuple[dict[str, float], HierarchyTrainConfig]:
    """Metrics of the model at `uri` on its data (or `data=`, `holdout=`, ... in `overrides`).

    protocol `hit`: also HiT's F1 (`hit_split` says which split). ValueError when the
    protocol cannot score this model fairly.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from workflows.tracking.store import require_model, run_of, use_store

    if uri.startswith("models:/"):  # a registered pyfunc (a lookup table is a run's artifact)
        require_model(uri, ("hierarchy",))
    run_id = run_of(uri)
    job = use_store(existing=True).get_run(run_id).data.tags.get("sessionflow.job")
    if job not in (None, "train hierarchy"):  # runs of earlier versions carry no job tag
        raise ValueError(f"{uri}: run {run_id} is a {job} run, not a hierarchy model's")
    try:
        trained = mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json")
    except (MlflowException, OSError):
        raise ValueError(f"{uri}: run {run_id} logs no model (no config.json): not a hierarchy model's run") from None
    if trained.get("lr") == 0:  # runs logged before the models' own defaults recorded "the default" as 0
        trained["lr"] = None
    if trained.get("head") == "hit":  # runs logged before HiT's refused a head's --lr recorded the unused default
        trained["lr"] = None
    given = {k: v for k, v in overrides.items() if v is not None}
    if trained["model"] == "lookup" and given.get("data", trained["data"]) != trained["data"]:
        raise ValueError(f"a lookup table places only the nodes of its own data ({trained['data']}), "
                         f"not {given['data']}: score it on its own (no --data), or give a text model")  # fmt: skip
    if str(given.get("data", "")).startswith("hierarcaps:") and "holdout" not in given:
        given["holdout"] = "none"  # its own test hierarchies: the model's WordNet split was told "no --holdout"
    if protocol == "hit":
        given["holdout"] = hit_split(trained, given)
    elif protocol != "reconstruction":
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    try:
        cfg = HierarchyTrainConfig(**{**trained, **given}).resolved()  # refuses a meaningless setting first
    except ValueError as err:  # in the words of this command's options: `holdout_share` is --holdout-share
        raise ValueError(re.sub(r"\b(holdout_share|max_eval_nodes)\b", lambda m: "--" + m[1].replace("_", "-"),
                                str(err))) from None  # fmt: skip
    if protocol == "reconstruction":
        reconstruction_split(trained, given)
    data = load_data(cfg)
    refuse_unread_nodes(data, cfg)  # a node with no point is no divergence either
    with tempfile.TemporaryDirectory() as tmp:
        if cfg.lookup:
            local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/table", dst_path=tmp))
            model = load_model(local, cfg, data.split.full.n_nodes)
        else:
            from workflows.tracking.hierarchy_model import load

            model = load(uri if uri.startswith("models:/") else f"runs:/{run_id}/model")
    return evaluate_with_baselines(model, data, cfg), cfg


def hit_split(trained: dict, given: dict) -> str:
    """The HiT split (`hit-multi` or `hit-mixed`) to score a model trained with the
    config `trained`, on the data and holdout in `given` (or its own).

    HiT's tasks are built on WordNet, and the mammals are part of the nouns: a model
    trained on either is scored only on the data and split it trained with (or, after
    `hit-mixed`, on `hit-multi`, whose test pairs it never trained on either); a text
    model trained on other data (HierarCaps) on `given`'s WordNet data, mixed-hop by
    default (a lookup table is scored on its own data alone: `evaluate_hierarchy` refuses
    other data before). ValueError otherwise, naming why.
    """
    data, holdout = given.get("data", trained["data"]), given.get("holdout")
    if data not in WORDNET:
        raise ValueError(f"HiT's protocol is built on WordNet: give --data {' or '.join(WORDNET)} (not {data})")
    if holdout is not None and not holdout.startswith("hit-"):
        raise ValueError(f"--protocol hit holds out HiT's pairs: --holdout hit-multi or hit-mixed, not {holdout}")
    if trained["data"] not in WORDNET:  # a text model (a lookup table is scored on its own data alone)
        return holdout or "hit-mixed"
    own, wanted = trained["holdout"], holdout or trained["holdout"]
    fair = own.startswith("hit-") and wanted in (own, "hit-multi") and data == trained["data"]
    if not fair or given.get("seed", trained["seed"]) != trained["seed"]:
        raise ValueError(
            f"this model trained on {trained['data']} with holdout {own} (seed {trained['seed']}), so the test pairs "
            f"of {data}'s {wanted if wanted.startswith('hit-') else 'HiT'} split are among its training pairs (the "
            f"mammals are part of the nouns); it can be scored on "
            f"{'its own split' if own.startswith('hit-') else 'no HiT split of WordNet'}"
        )
    return wanted


def reconstruction_split(trained: dict, given: dict) -> None:
    """Refuse a held-out split in `given` (its data, holdout, holdout_share and seed over
    those of `trained`, the model's config) that holds out pairs the model trained on,
    so that link prediction would score seen pairs.

    Fair: the model's own split; no holdout; a model trained on other data than WordNet
    (HierarCaps), whose pairs no WordNet split holds; `--holdout edges` after a HiT split,
    which trained on direct edges only while `split_edges` holds out none; a HiT split as
    `hit_split` allows it. Any other split of WordNet draws other pairs than the model's
    own (the mammals are part of the nouns) and holds out some it trained on.
    ValueError otherwise, in one line.
    """
    own = {name: trained.get(name, getattr(HierarchyTrainConfig, name)) for name in SPLIT}  # a run's, or the default
    wanted = {name: given.get(name, own[name]) for name in SPLIT}
    if wanted["holdout"] == "none" or wanted == own or own["data"] not in WORDNET:
        return
    if wanted["holdout"].startswith("hit-"):
        hit_split(trained, given)
        return
    if wanted["holdout"] == "edges" and own["holdout"].startswith("hit-"):
        return
    other = ", ".join(f"--{name.replace('_', '-')} {wanted[name]}" for name in SPLIT if wanted[name] != own[name])
    raise ValueError(
        f"this model trained on {own['data']} with holdout {own['holdout']} (share {own['holdout_share']:g}, seed "
        f"{own['seed']}), so pairs held out by {other} are among its training pairs; link prediction scores it "
        f"on its own split (leave them out) or none (--holdout none)"
    )


@dataclass(frozen=True)
class EvaluateHierarchyJob:
    """What `sessionflow evaluate hierarchy` evaluates, on what (by default the model's own data)."""

    model: str = field(default="models:/hierarchy-model@champion", metadata={
        "help": "models:/hierarchy-model@champion, models:/NAME/VERSION, runs:/RUN_ID or a run id"})  # fmt: skip
    data: str | None = field(default=None, metadata={
        "help": "wordnet-mammals, wordnet-nouns or hierarcaps:DIR (none: the model's)"})  # fmt: skip
    holdout: Literal["none", "edges", "nodes", "hit-multi", "hit-mixed"] | None = field(default=None, metadata={
        "help": "held out for link prediction (none given: the model's)"})  # fmt: skip
    holdout_share: float | None = field(default=None, metadata={"help": "share held out (none: the model's)"})
    max_eval_nodes: int | None = field(default=None, metadata={
        "help": "rank the ancestors of at most this many nodes (none: the model's)"})  # fmt: skip
    protocol: Literal["reconstruction", "hit"] = field(default="reconstruction", metadata={
        "help": "reconstruction and link prediction (Nickel & Kiela 2017), or also HiT's multi-hop and "
                "mixed-hop F1 (He et al. 2024) on the split the model trained with"})  # fmt: skip

    def __post_init__(self) -> None:
        # the training config's checks of the numbers given, before the model loads (`--holdout-share 2` was
        # taken until then); with no split of its own, so that a share is judged with the model's holdout later
        given = {name: getattr(self, name) for name in ("holdout_share", "max_eval_nodes")}
        HierarchyTrainConfig(holdout="none", **{name: value for name, value in given.items() if value is not None})


def run(job: EvaluateHierarchyJob) -> tuple[dict[str, float], HierarchyTrainConfig]:
    """`evaluate_hierarchy` with the job's settings: the metrics and the config they were computed with."""
    return evaluate_hierarchy(job.model, job.protocol, data=job.data, holdout=job.holdout,
                              holdout_share=job.holdout_share, max_eval_nodes=job.max_eval_nodes)  # fmt: skip
