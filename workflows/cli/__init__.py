"""The `sessionflow` command line.

    sessionflow demo                          # all of the below on a synthetic log, ~9 min
    sessionflow synth --users 1000 --rows 400000 --style aol --output out/synth.tsv.gz
    sessionflow ingest out/synth.tsv.gz --format aol --output out/events
    sessionflow segment out/events --method cascade --output out/sessions
    sessionflow evaluate segmentation --gt webis-smc-12.dev.txt --format webis-smc --method all
    sessionflow evaluate crossval --gt gayo-avello-2009.dev.csv --format gayo-avello
    sessionflow train segmenter --gt gayo-avello-2009.dev.csv --format gayo-avello
    sessionflow mine out/sessions --output out/pairs
    sessionflow train session --pairs out/pairs --model minilm-local --workers 2
    sessionflow evaluate pairs --model models:/session-model@champion --pairs out/pairs
    sessionflow train hierarchy --data wordnet-mammals --model minilm-local --dim 10
    sessionflow evaluate hierarchy --model models:/hierarchy-model@champion --json

The CLI only parses and prints: each command's options are derived from its job's
config (`workflows.cli.options`), the job runs in `workflows.jobs`, and a module
here prints its result. Only the console script (`workflows.main`) imports it.
Heavy imports (ray, torch, mlflow) happen inside the jobs, so `--help` stays fast.

May import: typer, rich, `workflows.jobs` (configs and `run`), `workflows.config`.
"""

from __future__ import annotations

import os

import typer

from workflows.cli import annotate, demo, evaluate, ingest, mine, models, score, segment, synth, train
from workflows.cli.options import Group, command
from workflows.jobs.annotate import AnnotateJob
from workflows.jobs.demo import DemoConfig
from workflows.jobs.evaluate_crossval import EvaluateCrossvalJob
from workflows.jobs.evaluate_hierarchy import EvaluateHierarchyJob
from workflows.jobs.evaluate_pairs import EvaluatePairsJob
from workflows.jobs.evaluate_reformulation import EvaluateReformulationJob
from workflows.jobs.evaluate_segmentation import EvaluateSegmentationJob
from workflows.jobs.ingest import IngestJob
from workflows.jobs.mine import MineJob
from workflows.jobs.registry import CompareJob, PromoteJob
from workflows.jobs.score import ScoreJob
from workflows.jobs.segment import SegmentJob
from workflows.jobs.synth import SynthJob
from workflows.jobs.train_hierarchy import TrainHierarchyJob
from workflows.jobs.train_segmenter import TrainSegmenterJob
from workflows.jobs.train_session import TrainSessionJob

# No weight-loading bars (transformers draws them through huggingface_hub's switch); the
# Ray workers a command starts inherit the setting.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

app = typer.Typer(
    name="sessionflow",
    help="Find search sessions and missions in query and prompt logs, mine query pairs, "
    "train session and hierarchy encoders, and score whole logs. Every command takes "
    "--config FILE.yaml (its settings; options given override them) and --print-config.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=Group,
)
evaluate_app = typer.Typer(help="Score results against ground truth.", no_args_is_help=True, rich_markup_mode=None,
                           cls=Group)  # fmt: skip
train_app = typer.Typer(help="Train models (the encoders with Ray Train, the segmenter with scikit-learn); runs and "
                        "models go to MLflow.", no_args_is_help=True,
                        rich_markup_mode=None, cls=Group)  # fmt: skip

# every command: its job's config (the options), the function that runs it and prints
COMMANDS = [
    (app, "demo", DemoConfig, demo.demo),
    (app, "ingest", IngestJob, ingest.ingest),
    (app, "synth", SynthJob, synth.synth),
    (app, "segment", SegmentJob, segment.segment),
    (app, "mine", MineJob, mine.mine),
    (app, "annotate", AnnotateJob, annotate.annotate),
    (app, "score", ScoreJob, score.score),
    (app, "compare", CompareJob, models.compare),
    (app, "promote", PromoteJob, models.promote),
    (train_app, "session", TrainSessionJob, train.session),
    (train_app, "hierarchy", TrainHierarchyJob, train.hierarchy),
    (train_app, "segmenter", TrainSegmenterJob, train.segmenter),
    (evaluate_app, "segmentation", EvaluateSegmentationJob, evaluate.segmentation),
    (evaluate_app, "crossval", EvaluateCrossvalJob, evaluate.crossval),
    (evaluate_app, "pairs", EvaluatePairsJob, evaluate.pairs),
    (evaluate_app, "hierarchy", EvaluateHierarchyJob, evaluate.hierarchy),
    (evaluate_app, "reformulation", EvaluateReformulationJob, evaluate.reformulation),
]
for target, name, config, fn in COMMANDS:
    command(target, config, name)(fn)
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")
