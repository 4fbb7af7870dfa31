"""The `sessionflow` command line.

    sessionflow demo                          # all of the below on a synthetic log, ~8 min
    sessionflow synth --users 1000 --rows 400000 --style aol --output out/synth.tsv.gz
    sessionflow ingest out/synth.tsv.gz --format aol --output out/events
    sessionflow segment out/events --method cascade --output out/sessions
    sessionflow evaluate segmentation --gt webis-smc-12.dev.txt --format webis-smc --method all
    sessionflow mine out/sessions --output out/pairs
    sessionflow train session --pairs out/pairs --model minilm-local --workers 2
    sessionflow evaluate pairs --model models:/session-model@champion --pairs out/pairs
    sessionflow train hierarchy --data wordnet-mammals --model minilm-local --dim 10
    sessionflow evaluate hierarchy --model models:/hierarchy-model@champion --json

Each command lives in `workflows/commands/`; heavy imports happen inside them, so
`--help` stays fast.
"""

from __future__ import annotations

import sys

import typer

from workflows.cli import evaluate, train
from workflows.cli.annotate import annotate
from workflows.cli.demo import demo
from workflows.cli.ingest import ingest
from workflows.cli.mine import mine
from workflows.cli.models import compare, promote
from workflows.cli.score import score
from workflows.cli.segment import segment
from workflows.cli.synth import synth

app = typer.Typer(
    name="sessionflow",
    help="Find search sessions and missions in query and prompt logs, mine query pairs, "
    "train session and hierarchy encoders, and score whole logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command()(demo)
app.command()(ingest)
app.command()(synth)
app.command()(segment)
app.command()(mine)
app.command()(annotate)
app.command()(score)
app.command()(compare)
app.command()(promote)
app.add_typer(train.app, name="train")
app.add_typer(evaluate.app, name="evaluate")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
