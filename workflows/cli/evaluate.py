"""`sessionflow evaluate ...`: scores against ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sessions.reformulation import DEFAULT_THRESHOLD
from workflows.cli.annotate import HierarchyModelOption, ThresholdOption
from workflows.cli.common import fail
from workflows.cli.progress import out
from workflows.cli.segment import (
    CLI_METHODS,
    MODEL_METHODS,
    BreakOption,
    ConfigOption,
    ContainOption,
    GapOption,
    JaccardOption,
    JoinOption,
    MissionJaccardOption,
    MissionPSameOption,
    MissionWindowOption,
    ModelOption,
    OverlapOption,
    PSameOption,
    check_method,
    configs,
    session_scorer,
)

app = typer.Typer(help="Score results against ground truth.", no_args_is_help=True, rich_markup_mode=None)

METRIC_HEADERS = {
    "precision": "P", "recall": "R", "f1": "F1", "rand": "Rand",
    "boundary_precision": "bP", "boundary_recall": "bR", "boundary_f1": "bF1",
}  # fmt: skip


@app.command()
def segmentation(
    gt: Annotated[Path, typer.Option("--gt", help="A ground-truth file.")],
    format: Annotated[
        str,
        typer.Option("--format", "-f", help="webis-smc (missions), gayo-avello (sessions), aol (a `synth` log: both)."),
    ],
    pred: Annotated[
        Path | None, typer.Option("--pred", help="A `segment` output directory to score (instead of --method).")
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option("--method", help="time, lexical, cascade, learned (needs --model) or all; repeatable [cascade]."),
    ] = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as one JSON object.")] = False,
    figure: Annotated[
        Path | None, typer.Option("--figure", help="Also draw the F1 of every system as bars into this PNG.")
    ] = None,
    config: ConfigOption = None,
    gap_minutes: GapOption = None,
    join_within_s: JoinOption = None,
    break_after_minutes: BreakOption = None,
    min_overlap: OverlapOption = None,
    min_jaccard: JaccardOption = None,
    min_containment: ContainOption = None,
    mission_min_jaccard: MissionJaccardOption = None,
    mission_window: MissionWindowOption = None,
    min_p_same: PSameOption = None,
    mission_min_p_same: MissionPSameOption = None,
) -> None:
    """Pair-counting P/R/F1, Rand index and boundary P/R/F1 of sessions and missions.

    Scores per user over all pairs of a user's queries (positive: same gold
    session or mission), next to time-gap baselines of 5, 15, 26, 30 and 60
    minutes. Gayo-Avello has gold sessions, Webis-SMC-12 gold missions, a synthetic
    log (`sessionflow synth`) both; both levels of every system are scored against
    the gold the file has. With --model
    (a session model), `cascade` is scored without and with the model (its middle
    stage and mission links), and `learned` becomes available.
    """
    from sessions.ingest import read_logs
    from sessions.io import MemorySink, read_table
    from sessions.pipeline import SESSIONS_FILE
    from workflows.jobs.evaluate_segmentation import evaluate_methods

    if pred is not None and method:
        raise fail("--pred and --method exclude each other: score a segmentation, or run methods")
    try:
        events, rejected = MemorySink(), MemorySink()
        read_logs([gt], format, events, rejected)
        gold = events.frame()
        if pred is not None:
            systems = {f"pred:{pred}": read_table(pred / SESSIONS_FILE)}
            scores = evaluate_methods(gold, {}, systems=systems)
        else:
            everything = [*CLI_METHODS, *(MODEL_METHODS if model else ())]
            methods = everything if "all" in (method or []) else (method or ["cascade"])
            for m in methods:
                check_method(m, model)
            scores = evaluate_methods(gold, {m: configs(
                config, m, gap_minutes, join_within_s, break_after_minutes, min_overlap, min_jaccard,
                min_containment, mission_min_jaccard, mission_window, min_p_same, mission_min_p_same,
            ) for m in methods}, session_scorer(model))  # fmt: skip
        if figure is not None:
            from workflows.figures import segmentation_bars

            segmentation_bars(scores, f"{gt.name}: {gold.height:,} queries", figure)
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    golds = scores["gold"].unique(maintain_order=True).to_list()
    if as_json:
        by_gold: dict = {}
        for row in scores.iter_rows(named=True):
            by_gold.setdefault(row["gold"], {}).setdefault(row["system"], {})[row["level"]] = {
                k: round(row[k], 4) for k in METRIC_HEADERS
            }
        # `gold` and `scores`: the log's first gold level (the only one of Webis-SMC-12 or
        # Gayo-Avello); `by_gold`: every level it has (a synthetic log has both)
        typer.echo(json.dumps({"gold": golds[0], "file": str(gt), "rows": gold.height, "scores": by_gold[golds[0]],
                               "by_gold": by_gold}))  # fmt: skip
        return
    users = gold["user_id"].n_unique()
    table = Table(title=f"{gt.name}: {gold.height:,} queries, {users} users, gold {' and '.join(golds)}")
    table.add_column("system", no_wrap=True)
    table.add_column("level")
    if len(golds) > 1:
        table.add_column("gold")
    for header in METRIC_HEADERS.values():
        table.add_column(header, justify="right")
    for row in scores.iter_rows(named=True):
        gold_cell = [row["gold"]] if len(golds) > 1 else []
        table.add_row(row["system"], row["level"], *gold_cell, *(f"{row[k]:.3f}" for k in METRIC_HEADERS))
    out.print(table)


@app.command()
def pairs(
    model: Annotated[str, typer.Option("--model", help="A session model: models:/session-model@champion, runs:/...")],
    pairs: Annotated[
        Path, typer.Option("--pairs", help="A `mine` output directory, or a CSV with query_a, query_b, label.")
    ],
    split: Annotated[str, typer.Option(help="Split of a `mine` output: train, val, test or all [test].")] = "test",
    baseline: Annotated[
        str | None, typer.Option(help="Encoder for the not-fine-tuned baseline [the one the model started from].")
    ] = None,
    examples: Annotated[int, typer.Option(help="Show this many most confident right and wrong pairs.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
) -> None:
    """ROC AUC and accuracy of a session model on labelled pairs, next to baselines.

    Baselines on the same pairs: character 3-gram Jaccard, and the pretrained encoder
    without fine-tuning. The model's accuracy is at its calibrated threshold
    (p_same >= 0.5); the baselines' at their best threshold on these pairs.
    Then the model's most confident right and wrong pairs.
    """
    from workflows.jobs.evaluate_pairs import evaluate_pairs, read_pairs
    from workflows.tracking.store import use_store

    try:
        use_store()
        labelled = read_pairs(pairs, None if split == "all" else split)
        result = evaluate_pairs(model, labelled, baseline)
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    rounded = {name: {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}
               for name, m in result.metrics.items()}  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"pairs": str(pairs), "split": split, "metrics": rounded}))
        return
    first = next(iter(rounded.values()))
    table = Table(title=f"{pairs} ({split}): {first['pairs']:,} pairs, {first['positives']:,} positive")
    for header in ("scorer", "AUC", "accuracy", "at threshold"):
        table.add_column(header, justify="left" if header == "scorer" else "right")
    for name, m in rounded.items():
        table.add_row(name, f"{m['auc']:.3f}", f"{m['accuracy']:.3f}", f"{m['threshold']:.3f}")
    out.print(table)
    right, wrong = result.examples(examples)
    for title, frame in (("most confident right", right), ("most confident wrong", wrong)):
        t = Table(title=f"session model: {title}", title_justify="left")
        for header in ("query_a", "query_b", "label", "p_same"):
            t.add_column(header, justify="right" if header in ("label", "p_same") else "left")
        for a, b, label, p in frame.iter_rows():
            t.add_row(a, b, str(label), f"{p:.3f}")
        out.print(t)


@app.command()
def hierarchy(
    model: Annotated[
        str, typer.Option(help="models:/hierarchy-model@champion, models:/NAME/VERSION, runs:/RUN_ID or a run id.")
    ],
    data: Annotated[
        str | None, typer.Option(help="wordnet-mammals, wordnet-nouns or hierarcaps:DIR [the model's].")
    ] = None,
    holdout: Annotated[str | None, typer.Option(help="none, edges or nodes [the model's].")] = None,
    holdout_share: Annotated[float | None, typer.Option(help="Share held out [the model's].")] = None,
    max_eval_nodes: Annotated[int | None, typer.Option(help="Rank the ancestors of at most this many nodes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
) -> None:
    """Reconstruction and link prediction of a hierarchy model (Nickel & Kiela 2017).

    map / mean_rank: each node's ancestors ranked among its non-ancestors by
    distance, on the training pairs; link_map / link_mean_rank: the held-out pairs
    among non-ancestors, training ancestors filtered out; spearman_norm_depth: norm
    against WordNet depth. On HierarCaps also kendall_tau (norm order against level
    order of the test hierarchies) and retrieval_precision_at_K / retrieval_recall_at_K
    (each hierarchy's most specific caption retrieves its ancestors among all test
    captions: the more general ones, nearest first), next to the pretrained
    encoder's (kendall_tau_pretrained_norm, pretrained_cosine_*). The data and
    held-out split default to the model's own.
    """
    from workflows.jobs.evaluate_hierarchy import evaluate_hierarchy

    try:
        metrics, cfg = evaluate_hierarchy(
            model, data=data, holdout=holdout, holdout_share=holdout_share, max_eval_nodes=max_eval_nodes
        )
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    if as_json:
        print(json.dumps(metrics))
        return
    table = Table(title=f"{model}: {cfg.data}, holdout {cfg.holdout}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}")
    out.print(table)


@app.command()
def reformulation(
    gt: Annotated[Path, typer.Option("--gt", help="A synthetic log with gold_reformulation (`sessionflow synth`).")],
    model: HierarchyModelOption = "models:/hierarchy-model@champion",
    format: Annotated[str, typer.Option("--format", "-f", help="aol or diffusiondb (the synth styles).")] = "aol",
    tune_on: Annotated[
        Path | None, typer.Option(help="Another synthetic log: each method's threshold is the best there.")
    ] = None,
    threshold: ThresholdOption = DEFAULT_THRESHOLD,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
) -> None:
    """Reformulation types (`sessionflow annotate`) against a synthetic log's truth.

    Judged in the log's gold sessions on the pairs whose gold type is specialisation
    (a WordNet hyponym), generalisation (a hypernym) or lateral (a sibling): accuracy
    and each type's recall, for the hierarchy model's norm, for the number of terms
    (longer = more specific) and for always answering lateral. The confusion
    counts also show how repeats, typos and added or dropped terms are read.
    """
    from workflows.jobs.annotate import evaluate_reformulations

    try:
        results = evaluate_reformulations(gt, model, format, tune_on, threshold)
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    if as_json:
        typer.echo(json.dumps(results))
        return
    first = next(iter(results.values()))
    table = Table(title=f"{gt}: {first['pairs']:,} specialisation, generalisation and lateral pairs")
    for header in ("specificity", "threshold", "accuracy", "specialisation", "generalisation", "lateral"):
        table.add_column(header, justify="left" if header == "specificity" else "right")
    for name, r in results.items():
        recall = r["recall"]
        t = "" if r["threshold"] is None else f"{r['threshold']:.2f}"
        table.add_row(name, t, f"{r['accuracy']:.3f}", *(f"{recall[k]:.3f}" for k in recall))
    out.print(table)
    confusion = Table(title="hierarchy model: gold type (rows) -> predicted", title_justify="left")
    predicted = ("specialisation", "generalisation", "lateral", "repeat")
    for header in ("gold", *predicted):
        confusion.add_column(header, justify="left" if header == "gold" else "right")
    for gold, counts in first["confusion"].items():
        confusion.add_row(gold, *(f"{counts.get(p, 0):,}" for p in predicted))
    out.print(confusion)
