"""Each mechanism of issue 17 alone, in user-level nested cross-validation (5 x 4 folds)
against the shipped cascade, on both development files: continuation across a long
gap (`resume_jaccard`) and the interruption look-ahead (`lookahead`).

    .venv/bin/python benchmarks/segmentation_mechanisms.py
"""

from __future__ import annotations

import dataclasses

import polars as pl

from sessions.crossval import cv_table, nested_cv
from sessions.missions import MissionConfig
from sessions.segment import SegmentConfig
from workflows.jobs.evaluate_crossval import rule
from workflows.jobs.evaluate_segmentation import read_gold

FILES = (
    ("../shared/data/sessions-gt/gayo-avello-2009.dev.csv", "gayo-avello", "sessions"),
    ("../shared/data/sessions-gt/webis-smc-12.dev.txt", "webis-smc", "missions"),
)


def main() -> None:
    base = SegmentConfig()
    variants = {"shipped": base}
    for r in (0.3, 0.5, 0.8):
        variants[f"resume_jaccard {r}"] = dataclasses.replace(base, resume_jaccard=r)
    for k in (1, 2, 3):
        variants[f"lookahead {k}"] = dataclasses.replace(base, lookahead=k)
    pl.Config.set_tbl_rows(40)
    pl.Config.set_tbl_width_chars(200)
    for path, fmt, level in FILES:
        gold = read_gold(path, fmt)
        results = {
            name: nested_cv(gold, {name: rule(cfg, MissionConfig())}, (level, level, "f1"))
            for name, cfg in variants.items()
        }
        print(path)
        print(cv_table(results).filter(pl.col("level") == level).drop("level", "gold"))


if __name__ == "__main__":
    main()
