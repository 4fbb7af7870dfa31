"""`sessionflow mine`: sessions -> labelled query pairs."""

from __future__ import annotations

from sessions.pairs import RANDOM_DRAWS
from workflows.cli.common import engine_text, peak_rss_mib
from workflows.cli.ingest import ingest_rows
from workflows.cli.progress import out, summary_table
from workflows.jobs.mine import MineJob


def mine(job: MineJob) -> None:
    """Mine labelled query pairs from sessions for the session model.

    Writes OUTPUT/pairs.parquet (query_a, query_b, label, kind, user_id, split) and
    OUTPUT/report.json (counts by kind and split). Positives: distinct queries of one
    session (case and spacing variants are not pairs). Negatives: random (another
    user), same_user (another mission), lexical_hard (shares a term, another
    session); neither of the last two is two texts that one mission of the users
    mined with them (their bucket) holds. Splits train/val/test by a
    hash of the user id: no user in two splits. Users are mined in buckets (the
    same with --engine ray or local; auto, the default: local for sessions of at
    most 16 MiB of text without a cluster).

    With --gold session|mission, SESSIONS is a log with ground-truth labels (or its
    `ingest` directory) and the pairs follow the labels, for `evaluate pairs` (mined
    in this process, whatever --engine says: the report's engine_reason says so);
    rows without a label at that level are read, in no pair, and counted (unlabelled).
    """
    from workflows.jobs.mine import run

    report = run(job)
    table = {f"{s} {k}": n for s, kinds in sorted(report["by_split_and_kind"].items()) for k, n in kinds.items()}
    unlabelled = {f"rows without a gold {job.gold} (in no pair)": report["unlabelled"]} if report["unlabelled"] else {}
    rows = {**ingest_rows(report), **unlabelled, "pairs": report["pairs"], **table,
            "engine": engine_text(report["config"]), "seconds": report["seconds"], "peak RSS (MiB)": peak_rss_mib(),
            **report["outputs"]}  # fmt: skip
    out.print(summary_table("mine", rows))
    if (short := report["negatives_short"]) and job.gold:  # its rules are fixed: no setting asks for fewer
        users = sum(report["users_by_split"].values())
        held = "its one user holds" if users == 1 else f"its {users:,} users hold"
        out.print(
            f"note: {sum(short.values()):,} negatives fewer than positives: --gold draws as many, half other users' "
            f"queries and half the same user's other {job.gold}s, and {held} fewer to draw from"
        )
    elif short:
        by_split = ", ".join(f"{split} {n:,}" for split, n in short.items())
        buckets = job.mining.partitions
        ways = (
            "mine a larger log, ask for fewer, or pass --partitions 1 (a text pair is then kept once among all "
            "users of a split, not once a bucket: fewer positives where users share texts)"
            if buckets > 1 and max(report["users_by_split"].values(), default=0) > 1  # else no bucket helps
            else "mine a larger log or ask for fewer"
        )
        out.print(
            f"note: {sum(short.values()):,} negatives fewer than --negatives-per-positive asks ({by_split}): "
            f"negatives pair users of one bucket and split (--partitions {buckets}), at most about "
            f"{RANDOM_DRAWS} random ones a query and the hard ones its log holds; {ways}"
        )
    if empty := report["empty_splits"]:
        m, users = job.mining, sum(report["users_by_split"].values())
        out.print(
            f"note: no {' or '.join(empty)} pairs: users are dealt to the splits by a hash of their id (train "
            f"{m.train_share:g}, val {m.val_share:g}, the rest test) and none of the {users:,} users with pairs went "
            "there; `train session` validates on val and `evaluate pairs` reads test: mine a larger log"
        )
    m = job.mining
    shares = {"train": m.train_share, "val": m.val_share, "test": 1 - m.train_share - m.val_share}
    if not job.gold and (unasked := [split for split, share in shares.items() if share <= 1e-9]):
        uses = {"train": "`train session` trains on train and refuses these pairs",
                "val": "`train session` validates on val and refuses these pairs",
                "test": "`evaluate pairs` reads test and finds none"}  # fmt: skip
        out.print(
            f"note: no {' or '.join(unasked)} pairs (--train-share {m.train_share:g}, --val-share {m.val_share:g}): "
            f"{'; '.join(uses[split] for split in unasked)}"
        )
    if report["pairs"] == 0 and not job.gold:
        out.print(
            "note: no pairs: no session holds two distinct queries (a positive), and negatives are drawn as many as "
            "the positives; `train session` needs pairs of sessions of two or more queries"
        )
