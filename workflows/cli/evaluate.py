"""`sessionflow evaluate ...`: scores against ground truth."""

from __future__ import annotations

from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from workflows.cli.common import echo_json
from workflows.cli.progress import out, rows_done
from workflows.jobs.evaluate_crossval import EvaluateCrossvalJob
from workflows.jobs.evaluate_hierarchy import EvaluateHierarchyJob
from workflows.jobs.evaluate_pairs import EvaluatePairsJob
from workflows.jobs.evaluate_reformulation import EvaluateReformulationJob
from workflows.jobs.evaluate_segmentation import EvaluateSegmentationJob, GoldLog

JsonOption = Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")]

METRIC_HEADERS = {
    "precision": "P", "recall": "R", "f1": "F1", "rand": "Rand", "ari": "ARI",
    "boundary_precision": "bP", "boundary_recall": "bR", "boundary_f1": "bF1", "adjacent_accuracy": "adj. acc.",
}  # fmt: skip


def segmentation(job: EvaluateSegmentationJob, as_json: JsonOption = False) -> None:
    """Pair-counting P/R/F1, (adjusted) Rand index, boundary P/R/F1 and adjacent-pair accuracy.

    Scores per user over all pairs of a user's queries (positive: same gold
    session or mission), next to time-gap baselines of 5, 15, 26, 30 and 60
    minutes. Gayo-Avello has gold sessions, Webis-SMC-12 gold missions, a synthetic
    log (`sessionflow synth`) both; both levels of every system are scored against
    the gold the file has. With --model
    (a session model), `cascade` is scored without and with the model (its middle
    stage and mission links), and `learned` becomes available. These are figures
    on every user of the file; `evaluate crossval` gives the estimates to quote.
    """
    from workflows.jobs.evaluate_segmentation import run

    result = run(job)
    scores, gold = result.scores, result.gold
    golds = scores["gold"].unique(maintain_order=True).to_list()
    if as_json:
        by_gold: dict = {}
        for row in scores.iter_rows(named=True):
            by_gold.setdefault(row["gold"], {}).setdefault(row["system"], {})[row["level"]] = {
                k: round(row[k], 4) for k in METRIC_HEADERS
            }
        by_size: dict = {}
        for row in result.by_user_size.iter_rows(named=True):
            bucket = by_size.setdefault(row["users"], {"users": row["n_users"], "rows": row["rows"], "by_gold": {}})
            bucket["by_gold"].setdefault(row["gold"], {}).setdefault(row["system"], {})[row["level"]] = {
                k: round(row[k], 4) for k in METRIC_HEADERS
            }
        # `gold` and `scores`: the log's first gold level (the only one of Webis-SMC-12 or
        # Gayo-Avello); `by_gold`: every level it has (a synthetic log has both);
        # `by_user_size`: the same for the users of each history length
        # `rows`: read and segmented; `rejected`: rows not read, by reason; `unlabelled`:
        # rows read without a label, by level (segmented, not scored)
        echo_json({"gold": golds[0], "file": str(job.gt), "rows": gold.height, "scores": by_gold[golds[0]],
                               "by_gold": by_gold, "by_user_size": by_size, "rejected": result.read.rejected,
                               "unlabelled": result.read.unlabelled(), "read_as": result.read.read_as,
                               "notes": [*result.notes, *result.read.notes]})  # fmt: skip
        return
    users = gold["user_id"].n_unique()
    name = job.gt.rsplit("/", 1)[-1] if job.gt else ""
    not_scored = result.read.accounting()
    table = Table(title=f"{name}: {gold.height:,} queries, {users} users, gold {' and '.join(golds)}"
                        + (f"\n(not scored: {not_scored})" if not_scored else "") + read_as(result.read))  # fmt: skip
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
    for note in (*result.notes, *result.read.notes):
        out.print(f"note: {note}", soft_wrap=True, highlight=False)
    out.print(user_size_table(result.by_user_size, golds))
    if job.figure is not None:  # where it went, as other commands list their outputs
        out.print(f"figure: {job.figure}", soft_wrap=True, highlight=False)


def read_as(read: GoldLog) -> str:
    """A table title's line saying how the ground truth's fields were read, where the file
    decided it (a TSV raw or CSV-quoted: the saved-back breaker's gold file read raw kept
    72 queries in pandas' quotes, and `evaluate` did not say so); '' otherwise."""
    return f"\n(read as {read.read_as})" if read.read_as else ""


CV_KEYS = {"f1": "pair F1", "precision": "pair P", "recall": "pair R", "ari": "ARI", "boundary_f1": "boundary F1",
           "adjacent_accuracy": "adj. acc."}  # fmt: skip


def crossval(job: EvaluateCrossvalJob, as_json: JsonOption = False) -> None:
    """User-level nested cross-validation: the estimate to publish.

    Users are dealt into --folds outer folds (stratified by history length). For each,
    every system's candidates are scored by --inner folds of the other users alone;
    the best is fitted on all of those users and scored on the outer fold, which took
    no part in the choice. Prints mean ± standard deviation over the outer folds of
    pair-counting F1, P, R, adjusted Rand index, boundary F1 and the accuracy on
    adjacent pairs, at the file's gold level (sessions or missions); how often each
    candidate was chosen; pair F1 by users' history length (every user scored by a
    choice made without them); and each system's errors on adjacent queries by kind
    (a repeat across a long gap, an interruption, the same topic in other words, ...).
    Systems: a 30-minute time gap, the time gap chosen from its grid, the lexical rule
    (on mission gold: the 30-minute gap and the lexical rule, each with the cascade's
    mission linking), the shipped cascade, the cascade chosen from its grid (the
    figure to quote: the shipped settings were chosen on development users), the
    learned same-session classifier (named as not estimated where no two consecutive
    queries of a user are both labelled, or all such pairs are of one kind), and with
    --model the cascade with a session
    model (its min_p_same chosen by the inner folds).
    On mission gold the cascade links missions and the time gaps' sessions are their
    missions. A `synth` log (--format aol) has both levels: --level picks one.
    """
    from workflows.jobs.evaluate_crossval import run

    result = run(job)
    table, chosen, by_size, errors = result.table(), result.chosen(), result.by_user_size(), result.errors_by_kind()
    if as_json:
        systems = {}
        for row in table.iter_rows(named=True):
            name = row["system"]
            sizes = by_size.filter(system=name)
            systems[name] = {
                "mean": {k: round(row[f"{k}_mean"], 4) for k in CV_KEYS},
                "sd": {k: round(row[f"{k}_sd"], 4) for k in CV_KEYS},
                "chosen": chosen[name],
                "by_user_size": {r["users"]: {"users": r["n_users"], "rows": r["rows"], "f1": round(r["f1"], 4)}
                                 for r in sizes.iter_rows(named=True)},
                "errors_by_kind": errors[name],
            }  # fmt: skip
        gold = result.gold
        # `rows`, `users`: those cross-validated (users with a label at `level`); `rejected`:
        # rows not read, by reason; `unlabelled`: rows read without a label, by level, the left-out
        # users' too; `users_unlabelled`, `users_unlabelled_rows`: users left out for having no label at
        # `level`, and their rows (rows + users_unlabelled_rows + rejected = the file's rows); `model`: --model;
        # `not_estimated`: systems left out, and why (a learned one with no labelled consecutive pair); `notes`:
        # what the reading noted (`common.reading_notes`: user ids written as floats, a damaged stream, ...)
        echo_json({"file": str(job.gt), "rows": gold.height, "users": gold["user_id"].n_unique(),
                               "level": result.level, "folds": job.folds, "inner": job.inner, "seed": job.seed,
                               "model": job.model, "rejected": result.read.rejected,
                               "unlabelled": result.read.unlabelled(), "users_unlabelled": result.users_unlabelled,
                               "users_unlabelled_rows": result.users_unlabelled_rows, "read_as": result.read.read_as,
                               "systems": systems, "not_estimated": result.not_estimated,
                               "notes": list(result.read.notes)})  # fmt: skip
        return
    gold = result.gold
    name = job.gt.rsplit("/", 1)[-1] if job.gt else ""
    left_out, their_rows = result.users_unlabelled, result.users_unlabelled_rows
    not_scored = "; ".join(filter(None, [
        result.read.accounting(gold),
        f"{left_out:,} user{'s' * (left_out != 1)} ({their_rows:,} row{'s' * (their_rows != 1)}) without a gold "
        f"{result.level[:-1]} left out"
        if left_out else "",
        *(f"{system} not estimated: {why}" for system, why in result.not_estimated.items()),
    ]))  # fmt: skip
    t = Table(title=f"{name}: {gold.height:,} queries, {gold['user_id'].n_unique()} users; "
                    f"{result.level}, {job.folds} outer x {job.inner} inner folds of users (mean ± sd)"
                    + (f"\n(not scored: {not_scored})" if not_scored else "") + read_as(result.read))  # fmt: skip
    t.add_column("system", no_wrap=True)
    for header in CV_KEYS.values():
        t.add_column(header, justify="right")
    for row in table.iter_rows(named=True):
        t.add_row(row["system"], *(f"{row[f'{k}_mean']:.3f} ± {row[f'{k}_sd']:.3f}" for k in CV_KEYS))
    out.print(t)
    for note in result.read.notes:
        out.print(f"note: {note}", soft_wrap=True, highlight=False)
    c = Table(title="the candidate each outer fold's inner folds chose")
    c.add_column("system", no_wrap=True)
    c.add_column("candidate")
    c.add_column("outer folds", justify="right")
    for system, counts in chosen.items():
        for candidate, n in counts.items():
            c.add_row(system, candidate, str(n))
    out.print(c)
    out.print(user_size_table(by_size, [result.level]))
    for table in error_kind_tables(errors, result.level):
        out.print(table)


def error_kind_tables(errors: dict[str, dict[str, int]], level: str) -> list[Table]:
    """Each system's out-of-fold errors on adjacent queries, by kind (`sessions.error_kinds`):
    a table of false breaks, one of false joins."""
    from sessions.error_kinds import FALSE_BREAKS, FALSE_JOINS

    pairs = next(iter(errors.values()))["pairs"] if errors else 0
    tables = []
    for total, kinds in (("false breaks", FALSE_BREAKS), ("false joins", FALSE_JOINS)):
        table = Table(title=f"{total} among the {pairs:,} pairs of adjacent queries, by kind ({level}, out of fold)")
        table.add_column("system", no_wrap=True)
        table.add_column("all", justify="right")
        for kind in kinds:
            table.add_column(kind, justify="right", overflow="fold", min_width=max(map(len, kind.split())))
        for system, counts in errors.items():
            table.add_row(system, f"{counts[total]:,}", *(f"{counts[f'{total[:-1]}: {k}']:,}" for k in kinds))
        tables.append(table)
    return tables


def user_size_table(by_size: pl.DataFrame, golds: list[str]) -> Table:
    """Pair F1 of every system and level for the users of each history length (queries
    per user), one column per length that has users: heavy users apart."""
    buckets = by_size.select("users", "n_users").unique(maintain_order=True).rows()
    table = Table(title="pair F1 by users' history length (users)")
    table.add_column("system", no_wrap=True)
    table.add_column("level")
    if len(golds) > 1:
        table.add_column("gold")
    for label, n_users in buckets:
        table.add_column(f"{label} ({n_users:,})", justify="right")
    f1 = {(r["system"], r["level"], r["gold"], r["users"]): r["f1"] for r in by_size.iter_rows(named=True)}
    for system, level, gold in by_size.select("system", "level", "gold").unique(maintain_order=True).rows():
        gold_cell = [gold] if len(golds) > 1 else []
        table.add_row(system, level, *gold_cell, *(f"{f1[(system, level, gold, label)]:.3f}" for label, _ in buckets))
    return table


def pairs(job: EvaluatePairsJob, as_json: JsonOption = False) -> None:
    """ROC AUC and accuracy of a session model on labelled pairs, next to baselines.

    Baselines on the same pairs: character 3-gram Jaccard, and the pretrained encoder
    without fine-tuning. The model's accuracy is at its calibrated threshold
    (p_same >= 0.5); the baselines' at their best threshold on these pairs. Pairs
    with a kind (a `mine` output) also get each scorer's AUC against each kind of
    negative alone. A pair with a query the model cannot read (emoji alone) scores as a
    dot product of 0, as in training's validation, and is counted. Then the model's
    most confident right and wrong pairs.
    """
    from models.encoder import encoding_progress
    from workflows.jobs.evaluate_pairs import run

    with rows_done("evaluate pairs: encoding", unit="texts") as on_texts, encoding_progress(on_texts):
        result = run(job)  # the model's texts, then its base encoder's: minutes on a CPU for 10,000s of pairs
    pairs, split, examples = job.pairs, result.split, job.examples
    rounded = {name: {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}
               for name, m in result.metrics.items()}  # fmt: skip
    if as_json:
        echo_json({"pairs": str(pairs), "split": split, "unread_pairs": result.unread_pairs, "metrics": rounded})
        return
    first = next(iter(rounded.values()))
    kinds = [key for key in first if key.startswith("auc_vs_")]
    unread = f", {result.unread_pairs:,} with a query the model cannot read (no evidence: a dot product of 0)"
    table = Table(title=f"{pairs} ({split}): {first['pairs']:,} pairs, {first['positives']:,} positive"
                        + (unread if result.unread_pairs else ""))  # fmt: skip
    for header in ("scorer", "AUC", *(f"AUC vs {k.removeprefix('auc_vs_')}" for k in kinds), "accuracy",
                   "at threshold"):  # fmt: skip
        table.add_column(header, justify="left" if header == "scorer" else "right")
    for name, m in rounded.items():
        table.add_row(name, f"{m['auc']:.3f}", *(f"{m[k]:.3f}" for k in kinds), f"{m['accuracy']:.3f}",
                      f"{m['threshold']:.3f}")  # fmt: skip
    out.print(table)
    right, wrong = result.examples(examples)
    for title, frame in (("most confident right", right), ("most confident wrong", wrong)) if examples else ():
        t = Table(title=f"session model: {title}", title_justify="left")
        for header in ("query_a", "query_b", "label", "p_same"):
            t.add_column(header, justify="right" if header in ("label", "p_same") else "left")
        for a, b, label, p in frame.iter_rows():
            t.add_row(a, b, str(label), f"{p:.3f}")
        out.print(t)


def hierarchy(job: EvaluateHierarchyJob, as_json: JsonOption = False) -> None:
    """Reconstruction and link prediction of a hierarchy model (Nickel & Kiela 2017).

    map / mean_rank: each node's ancestors ranked among its non-ancestors by
    distance, on the training pairs; link_map / link_mean_rank: the held-out pairs
    among non-ancestors, training ancestors filtered out; spearman_norm_depth: norm
    against WordNet depth. On HierarCaps also kendall_tau (norm order against level
    order of the test hierarchies) and retrieval_precision_at_K / retrieval_recall_at_K
    (each hierarchy's most specific caption retrieves its ancestors among all test
    captions: the more general ones, nearest first), next to the pretrained
    encoder's (kendall_tau_pretrained_norm, pretrained_cosine_*), on the hierarchies
    whose every caption the model reads (unread_chains counts the others). The data and
    held-out split default to the model's own.

    --protocol hit adds HiT's F1 (He et al. 2024): multi_hop_f1_rn / _hn and
    mixed_hop_f1_rn / _hn (random or sibling negatives, 10 per true pair), each at the
    λ and threshold chosen on the validation pairs (multi_hop_lambda_rn,
    multi_hop_threshold_rn, ...), for a model trained with --holdout hit-multi or
    hit-mixed, or a text model trained on other data.
    """
    from hierarchies.hit import BEYOND, lambdas_at_search_end
    from models.hierarchy_metrics import no_chain_read
    from workflows.jobs.evaluate_hierarchy import run

    metrics, cfg = run(job)
    model = job.model
    if as_json:
        echo_json(metrics)
        return
    table = Table(title=f"{model}: {cfg.data}, holdout {cfg.holdout}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}")
    out.print(table)
    if unread := no_chain_read(metrics):
        out.print(f"note: {unread}", soft_wrap=True, highlight=False)
    if capped := lambdas_at_search_end(metrics):
        out.print(f"note: {', '.join(capped)} at the end of the search ({BEYOND[-1]:g}): the validation pairs asked "
                  "for a larger λ; the F1 beside it may be short of what the model's points allow")  # fmt: skip


def reformulation(job: EvaluateReformulationJob, as_json: JsonOption = False) -> None:
    """Reformulation types (`sessionflow annotate`) against a synthetic log's truth.

    Judged in the log's gold sessions on the pairs whose gold type is specialisation
    (a WordNet hyponym), generalisation (a hypernym) or lateral (a sibling): accuracy
    and each type's recall, for the hierarchy model (what `annotate` does), for the
    number of terms in its place (replaced by more terms = more specific) and for
    always answering lateral. The confusion counts also show how repeats, typos and
    added or dropped terms are read.
    """
    from sessions.reformulation import RATIO_GRID
    from workflows.jobs.evaluate_reformulation import run

    results = run(job)
    gt = job.gt
    if as_json:
        echo_json(results)
        return
    first = next(iter(results.values()))
    table = Table(title=f"{gt}: {first['pairs']:,} specialisation, generalisation and lateral pairs")
    headers = ("types from", "ratio", "accuracy", "recall: specialisation", "generalisation", "lateral")
    for header in headers:
        table.add_column(header, justify="left" if header == "types from" else "right")
    for name, r in results.items():
        recall = r["recall"]
        t = "" if r["ratio"] is None else f"{r['ratio']:g}"
        table.add_row(name, t, f"{r['accuracy']:.3f}", *(f"{recall[k]:.3f}" for k in recall))
    out.print(table)
    if first.get("ratio_at_grid_end"):
        out.print(f"note: ratio {first['ratio']:g}, the best on --tune-on, is an end of the ratios tried "
                  f"({RATIO_GRID[0]:g} to {RATIO_GRID[-1]:g}): the best may lie beyond it (--ratio without --tune-on "
                  "tries any)")  # fmt: skip
    confusion = Table(title="hierarchy model: gold type (rows) -> predicted", title_justify="left")
    predicted = ("specialisation", "generalisation", "lateral", "repeat")
    for header in ("gold", *predicted):
        confusion.add_column(header, justify="left" if header == "gold" else "right")
    for gold, counts in first["confusion"].items():
        confusion.add_row(gold, *(f"{counts.get(p, 0):,}" for p in predicted))
    out.print(confusion)
