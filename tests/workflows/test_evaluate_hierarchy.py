"""`evaluate hierarchy` scores link prediction only on pairs the model never trained on:
the held-out split it may be given, checked before any data or model is read."""

from __future__ import annotations

import mlflow
import pytest
from typer.testing import CliRunner

from workflows.cli import app
from workflows.jobs.evaluate_hierarchy import reconstruction_split
from workflows.jobs.train_hierarchy import HierarchyTrainConfig

runner = CliRunner()

TABLE = {"data": "wordnet-mammals", "model": "lookup", "holdout": "edges", "holdout_share": 0.1, "seed": 0}
SEEN = {**TABLE, "holdout": "none"}  # trained on every pair
TEXT = {**TABLE, "model": "tiny"}
CAPTIONS = {**TABLE, "data": "hierarcaps:captions", "model": "tiny", "holdout": "none"}
HIT = {**TABLE, "holdout": "hit-multi"}


@pytest.mark.parametrize(
    ("trained", "given", "refused"),
    [
        (TABLE, {}, None),  # its own split
        (TABLE, {"holdout": "edges", "seed": 0, "data": "wordnet-mammals", "holdout_share": 0.1}, None),  # the same
        (TABLE, {"holdout": "none"}, None),  # no link prediction
        (SEEN, {}, None),
        (SEEN, {"holdout": "edges"}, "--holdout edges are among its training pairs"),
        ({**SEEN, "model": "tiny"}, {"holdout": "nodes"}, "--holdout nodes are among"),
        (TABLE, {"seed": 1}, "--seed 1 are among"),
        (TABLE, {"holdout_share": 0.2}, "--holdout-share 0.2 are among"),
        (TEXT, {"holdout": "nodes"}, "--holdout nodes are among"),
        ({**TEXT, "holdout": "nodes"}, {"holdout": "edges"}, "--holdout edges are among"),
        (TEXT, {"data": "wordnet-nouns"}, "--data wordnet-nouns are among"),  # the mammals are part of the nouns
        ({**TEXT, "data": "wordnet-nouns"}, {"data": "wordnet-mammals"}, "--data wordnet-mammals are among"),
        (CAPTIONS, {"data": "wordnet-nouns", "holdout": "nodes"}, None),  # another hierarchy: none of its pairs
        (HIT, {"holdout": "edges"}, None),  # HiT trains on direct edges, an edge split holds out none
        (HIT, {"holdout": "nodes"}, "--holdout nodes are among"),  # it holds out direct edges too
        (HIT, {"holdout": "hit-mixed"}, "among its training pairs"),  # as `hit_split` says
        ({**HIT, "holdout": "hit-mixed"}, {"holdout": "hit-multi"}, None),
    ],
)  # fmt: skip
def test_link_prediction_is_scored_only_on_pairs_the_model_never_trained_on(trained, given, refused):
    """`--protocol hit` refused such splits; the reconstruction protocol scored link_map
    0.251 on the training pairs of a model trained with --holdout none."""
    if refused is None:
        reconstruction_split(trained, given)
    else:
        with pytest.raises(ValueError, match=refused) as error:
            reconstruction_split(trained, given)
        assert "\n" not in str(error.value)


@pytest.fixture
def trained_on_every_pair(store) -> str:
    """A run as `train hierarchy --model lookup --holdout none` logs it: its config alone, read before the rest."""
    with mlflow.start_run() as run:
        mlflow.set_tag("sessionflow.job", "train hierarchy")
        mlflow.log_dict(HierarchyTrainConfig(model="lookup", holdout="none").resolved().to_dict(), "config.json")
    return run.info.run_id


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--holdout", "edges"], "so pairs held out by --holdout edges are among its training pairs"),
        (["--holdout", "edges", "--holdout-share", "0"], "--holdout-share must be above 0 to hold out edges"),
        (
            ["--data", "wordnet-nouns", "--holdout", "none"],  # it was a state_dict size mismatch's traceback
            "a lookup table places only the nodes of its own data (wordnet-mammals), not wordnet-nouns",
        ),
        (["--data", "wordnet-nouns", "--protocol", "hit"], "a lookup table places only the nodes of its own data"),
    ],
)
def test_evaluate_refuses_a_split_that_holds_out_training_pairs_in_one_line(trained_on_every_pair, args, says):
    result = runner.invoke(app, ["evaluate", "hierarchy", "--model", trained_on_every_pair, *args])
    assert result.exit_code == 2 and says in result.output, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_wordnet_models_split_is_not_carried_to_hierarcaps(store, tmp_path):
    """A new user's find: a text model trained with --holdout nodes, evaluated with --data
    hierarcaps:DIR and no --holdout, was told "HierarCaps is evaluated on its own test
    hierarchies: no --holdout", a holdout the user never gave (the model's). HierarCaps
    is read with none; the directory is then looked for."""
    with mlflow.start_run() as run:
        mlflow.set_tag("sessionflow.job", "train hierarchy")
        mlflow.log_dict(HierarchyTrainConfig(model="tiny", holdout="nodes").resolved().to_dict(), "config.json")
    result = runner.invoke(app, ["evaluate", "hierarchy", "--model", run.info.run_id, "--data",
                                 f"hierarcaps:{tmp_path / 'none'}"])  # fmt: skip
    assert result.exit_code == 2 and "no --holdout" not in result.output, result.output
    assert str(tmp_path / "none") in result.output and len(result.output.strip().splitlines()) == 1
