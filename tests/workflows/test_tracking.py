"""The champion alias moves only to a better model, and only among comparable runs."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from workflows.tracking import CHAMPION, promote_if_best


def _version(client: MlflowClient, data: str, value: float) -> str:
    with mlflow.start_run() as run:
        mlflow.log_param("data", data)
        mlflow.log_metric("map", value)
    return str(client.create_model_version("m", f"runs:/{run.info.run_id}/model", run.info.run_id).version)


def test_champion_moves_to_a_better_model_on_the_same_data_only(store):
    client = store
    client.create_registered_model("m")
    first = _version(client, "mammals", 0.5)
    assert promote_if_best(client, "m", first, "map", same=("data",))
    worse, better_elsewhere = _version(client, "mammals", 0.4), _version(client, "nouns", 0.9)
    assert not promote_if_best(client, "m", worse, "map", same=("data",))
    assert not promote_if_best(client, "m", better_elsewhere, "map", same=("data",))  # not comparable
    better = _version(client, "mammals", 0.6)
    assert promote_if_best(client, "m", better, "map", same=("data",))
    assert str(client.get_model_version_by_alias("m", CHAMPION).version) == better
