"""The cascade's nested cross-validation estimate under other grids of settings
(docs/segmentation.md, Sessions): does choosing more of its knobs on the development
users hold on users the choice never saw?

    .venv/bin/python benchmarks/cascade_grids.py [--seeds 0 1 2]

On Gayo-Avello's development users (sessions), for each grid: the nested estimate of
choosing the cascade's settings from it (`sessions.crossval.nested_cv`, 5 outer x 4
inner folds of users, by pair F1), as `evaluate crossval` makes it for the shipped grid
(`CASCADE_GRID`), pair F1 and boundary F1 as mean ± sd over the outer folds, and how
often each setting was chosen.
"""

from __future__ import annotations

import argparse
from collections import Counter

from sessions.crossval import nested_cv
from sessions.missions import MissionConfig
from sessions.segment import SegmentConfig
from workflows.jobs.evaluate_crossval import CASCADE_GRID, grid, labelled_users, rule

GAYO = "../shared/data/sessions-gt/gayo-avello-2009.dev.csv"
GRIDS: dict[str, dict[str, tuple]] = {
    "shipped (CASCADE_GRID)": CASCADE_GRID,
    # the session so far (min_containment, so_far_queries) chosen too, the time rules as shipped
    "session so far": {"min_jaccard": (0.05, 0.1, 0.2), "min_containment": (0.4, 0.6, 0.8),
                       "so_far_queries": (3, 5, 10)},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", default=GAYO)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    gold = labelled_users(args.gt, "gayo-avello", "sessions").gold
    print("| grid | seed | pair F1 | boundary F1 | chosen (outer folds) |\n|---|---|---|---|---|")
    for name, values in GRIDS.items():
        candidates = {k: rule(seg, MissionConfig()) for k, seg in grid(SegmentConfig(), values).items()}
        for seed in args.seeds:
            result = nested_cv(gold, candidates, ("sessions", "sessions", "f1"), seed=seed)
            s = result.summary().filter(level="sessions").row(0, named=True)
            chosen = Counter(result.folds.filter(level="sessions")["chosen"])
            print(
                f"| {name} | {seed} | {s['f1_mean']:.3f} ± {s['f1_sd']:.3f} | {s['boundary_f1_mean']:.3f} ± "
                f"{s['boundary_f1_sd']:.3f} | {'; '.join(f'{k} ({n})' for k, n in chosen.most_common())} |"
            )


if __name__ == "__main__":
    main()
