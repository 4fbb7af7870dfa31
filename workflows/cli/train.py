"""`sessionflow train ...`: fine-tune models with Ray Train, tracked in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workflows.cli.common import AddressOption, fail
from workflows.cli.progress import out, summary_table
from workflows.config import build, check_sections, read_yaml

app = typer.Typer(help="Train models with Ray Train; runs and models go to MLflow.", no_args_is_help=True,
                  rich_markup_mode=None)  # fmt: skip

StorageOption = Annotated[
    str | None,
    typer.Option(help="Where Ray Train keeps checkpoints (a path or s3://...; shared by all nodes) [~/ray_results]."),
]
ExperimentOption = Annotated[str | None, typer.Option(help="MLflow experiment [the model's name].")]
RegisterOption = Annotated[bool, typer.Option(help="Register the model and move `champion` to it if it is the best.")]


@app.command()
def session(
    pairs: Annotated[Path, typer.Option("--pairs", help="A `mine` output directory (its pairs.parquet).")],
    model: Annotated[
        str | None, typer.Option(help="Encoder: minilm-local, tiny, a Hub id or a directory [minilm-local].")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Ray Train workers (DDP) [1].")] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="One GPU per worker (nccl, mixed precision).")] = False,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training examples [1].")] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop after this many steps (0: the epochs decide) [0].")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Examples per worker and step [64].")] = None,
    lr: Annotated[
        float | None, typer.Option(help="Peak learning rate (AdamW, linear warm-up and decay) [3e-5].")
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="InfoNCE temperature [0.05].")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per query at most [32].")] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between validations and checkpoints [100].")] = None,
    patience: Annotated[int | None, typer.Option(help="Stop after this many validations without gain [3].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the example order and initialisation [0].")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML with a `session:` section.")] = None,
    experiment: ExperimentOption = None,
    register: RegisterOption = True,
    storage: StorageOption = None,
    address: AddressOption = None,
) -> None:
    """Fine-tune the session model (a bi-encoder) on mined pairs with Ray Train.

    InfoNCE over dot products, in-batch negatives gathered from every worker plus the
    mined hard negatives; validation ROC AUC every --eval-every steps, with a
    checkpoint each time, early stopping, and resumption from the last checkpoint
    when a worker fails. Then the best checkpoint is calibrated on the validation
    pairs and logged to MLflow, registered as `session-model`, and given the
    `champion` alias when its validation AUC beats the current champion's.
    """
    from workflows.jobs.train_session import EXPERIMENT, SessionTrainConfig, train_session

    try:
        values = read_yaml(config)
        check_sections(values, ("session",))
        overrides = dict(
            model=model, workers=workers, gpu=gpu or None, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
            lr=lr, temperature=temperature, max_length=max_length, eval_every=eval_every, patience=patience, seed=seed,
        )  # fmt: skip
        cfg = build(SessionTrainConfig, "session", values, overrides)
        outcome = train_session(
            pairs, cfg, experiment=experiment or EXPERIMENT, register=register, storage=storage, address=address
        )
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    rows = {
        "MLflow run": outcome.run_id,
        "logged model": outcome.model_uri,
        "registered": outcome.registered or "(not registered)",
        "champion": "yes" if outcome.champion else "no",
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in outcome.metrics.items()},
        "best checkpoint": outcome.checkpoint,
    }
    out.print(summary_table(f"train session ({cfg.model}, {cfg.workers} worker(s))", rows))


@app.command()
def hierarchy(
    data: Annotated[
        str, typer.Option(help="wordnet-mammals, wordnet-nouns, or hierarcaps:DIR (text models) [wordnet-mammals].")
    ] = "wordnet-mammals",
    model: Annotated[
        str | None,
        typer.Option(help="lookup (a point per node), or an encoder: minilm-local, tiny, a Hub id [minilm-local]."),
    ] = None,
    manifold: Annotated[
        str | None, typer.Option(help="poincare or euclidean (order too, for lookup) [poincare].")
    ] = None,
    dim: Annotated[int | None, typer.Option(help="Dimensions of the embedding [10].")] = None,
    holdout: Annotated[
        str | None, typer.Option(help="none, edges or nodes: held out for link prediction [none].")
    ] = None,
    holdout_share: Annotated[float | None, typer.Option(help="Share of edges or nodes held out [0.1].")] = None,
    gloss: Annotated[bool, typer.Option("--gloss", help="Node text = lemmas and the WordNet gloss.")] = False,
    mobius_layers: Annotated[int | None, typer.Option(help="Möbius linear layers after expmap0 [0].")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray Train workers (DDP) [1].")] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="One GPU per worker (nccl).")] = False,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training pairs [5].")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps (0: the epochs decide).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Pairs per worker and step [64].")] = None,
    negatives: Annotated[int | None, typer.Option(help="Non-ancestors per pair (lookup) or batch [64].")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (0: 25 for lookup, 1e-3 for the text head).")] = None,
    burnin_epochs: Annotated[int | None, typer.Option(help="Epochs at lr/10, negatives by frequency [0].")] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between evaluations and checkpoints [100].")] = None,
    patience: Annotated[int | None, typer.Option(help="Stop after this many evaluations without gain [3].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of splits, order and initialisation [0].")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML with a `hierarchy:` section.")] = None,
    experiment: ExperimentOption = None,
    register: RegisterOption = True,
    storage: StorageOption = None,
    address: AddressOption = None,
) -> None:
    """Embed a hierarchy in the Poincaré ball (or R^d) with Ray Train.

    `--model lookup` trains the reference of Nickel & Kiela 2017 (a point per node);
    an encoder name trains the text model (encoder -> linear -> scale -> expmap0),
    which places texts it has never seen. Reconstruction MAP and mean rank, link
    prediction on held-out edges or nodes and Spearman(norm, depth) are logged to
    MLflow (on HierarCaps also Kendall's tau of norm against level on its test
    hierarchies, next to the pretrained encoder's norm); at --dim 2 a Poincaré-disk
    plot too. Text models are registered as
    `hierarchy-model`; `champion` goes to the best reconstruction MAP among runs on
    the same data and held-out split.
    """
    from workflows.jobs.train_hierarchy import EXPERIMENT, HierarchyTrainConfig, train_hierarchy

    try:
        values = read_yaml(config)
        check_sections(values, ("hierarchy",))
        overrides = dict(
            data=data, model=model, manifold=manifold, dim=dim, holdout=holdout, holdout_share=holdout_share,
            gloss=gloss or None, mobius_layers=mobius_layers, workers=workers, gpu=gpu or None, epochs=epochs,
            max_steps=max_steps, batch_size=batch_size, negatives=negatives, lr=lr, burnin_epochs=burnin_epochs,
            eval_every=eval_every, patience=patience, seed=seed,
        )  # fmt: skip
        cfg = build(HierarchyTrainConfig, "hierarchy", values, overrides)
        outcome = train_hierarchy(cfg, experiment=experiment or EXPERIMENT, register=register, storage=storage,
                                  address=address)  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    rows = {
        "MLflow run": outcome.run_id,
        "logged model": outcome.model_uri,
        "registered": outcome.registered or "(not registered)",
        "champion": "yes" if outcome.champion else "no",
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in outcome.metrics.items()},
        "figures": ", ".join(outcome.figures) or "(none)",
    }
    out.print(summary_table(f"train hierarchy ({cfg.data}, {cfg.model}, {cfg.manifold}, dim {cfg.dim})", rows))
