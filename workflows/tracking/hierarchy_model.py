"""The registered `hierarchy-model`: an MLflow pyfunc around the hierarchy text model.

    model = mlflow.pyfunc.load_model("models:/hierarchy-model@champion")
    model.predict(pd.DataFrame({"text": ["mammal", "toy poodle"]}))  # -> point, norm

`norm` is the distance from the origin in the model's own metric (the Poincaré ball's:
2 artanh(sqrt(c) |point|) / sqrt(c), unbounded, not the Euclidean length of `point`, which
stays below 1; R^d's for a Euclidean model): the specificity of a text, general texts
near 0.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import torch
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

import models.encoder
from models.hierarchy import HierarchyTextModel, load_hierarchy_model
from models.poincare import LookupEmbedding
from sessions.lexicon import encode
from sessions.reformulation import per_distinct
from workflows.tracking.session_model import texts_of
from workflows.tracking.store import load_pyfunc, pip_requirements, rows_of, text_type

NAME = "hierarchy-model"
KIND = "hierarchy"  # `workflows.tracking.store.model_kind`
SIGNATURE = ModelSignature(inputs=Schema([ColSpec(text_type(), "text")]))


class HierarchyModel(mlflow.pyfunc.PythonModel):
    """text -> point (float64 coordinates) and norm (distance from the origin)."""

    def __init__(self, model: HierarchyTextModel | None = None) -> None:
        self.model = model

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.model = load_hierarchy_model(context.artifacts["model"])

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        assert self.model is not None
        model_input = rows_of(model_input)
        if "text" not in model_input.columns:
            raise ValueError("give a column text")
        points = self.model.points(texts_of(model_input["text"]))
        return pd.DataFrame({"point": list(points), "norm": norms(self.model, points)})


def norms(model: HierarchyTextModel | LookupEmbedding, points: np.ndarray) -> np.ndarray:
    """Distances from the origin of `points` (n, d) of either kind of model, on the model's
    device: (n,) the specificity of their texts."""
    device = next(model.parameters()).device
    return model.norm(torch.from_numpy(points).to(device)).cpu().numpy()


class HierarchyGeometry:
    """A hierarchy text model as the logs use it (`sessions.reformulation.Geometry`):
    texts -> specificity (the norm), pairs of texts -> (distance, norms); each distinct
    text encoded once per call, on the model's device."""

    def __init__(self, model: HierarchyTextModel) -> None:
        self.model = model

    @classmethod
    def load(cls, uri: str) -> HierarchyGeometry:
        """The logged hierarchy model `uri` (`models:/...`, `runs:/...`; `load`) of the current store."""
        return cls(load(uri))

    def specificity(self, texts: pl.Series) -> np.ndarray:
        """`sessions.reformulation.Geometry.specificity`: each text's distance from the origin (`norms`), (n,)."""
        return per_distinct(texts, lambda distinct: norms(self.model, self.model.points(distinct)))

    @torch.no_grad()
    def relate(self, earlier: pl.Series, later: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`Geometry.relate` by the model's geodesic distance and norms, (n,) float64 each;
        ValueError when `earlier` and `later` differ in length."""
        if len(earlier) != len(later):
            raise ValueError(f"{len(earlier)} earlier texts for {len(later)} later ones")
        if len(earlier) == 0:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        codes, distinct = encode(pl.concat([earlier, later]))
        points = self.model.points(distinct.to_list())  # (texts, d)
        a, b = points[codes[: len(earlier)]], points[codes[len(earlier) :]]
        device = next(self.model.parameters()).device
        distance = self.model.distance(torch.from_numpy(a).to(device), torch.from_numpy(b).to(device))
        return distance.double().cpu().numpy(), norms(self.model, a), norms(self.model, b)


def log_hierarchy_model(model_dir: Path, base_model: str) -> str:
    """Log the pyfunc to the active run; its model URI (`models:/m-...`)."""
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=HierarchyModel(),
        artifacts={"model": str(model_dir)},
        signature=SIGNATURE,
        input_example=pd.DataFrame({"text": ["mammal", "toy poodle"]}),
        pip_requirements=pip_requirements(),
        code_paths=[str(Path(models.encoder.__file__).resolve().parent)],  # the package `models`, shipped
        metadata={"base_model": base_model, "kind": KIND},
    )
    return info.model_uri


def load(uri: str) -> HierarchyTextModel:
    """The text model inside a logged hierarchy pyfunc (`models:/...`, `runs:/...`).

    ValueError in one line when `uri` holds no model (`store.load_pyfunc`) or a model of
    another kind.
    """
    model = load_pyfunc(uri).unwrap_python_model()
    if not isinstance(model, HierarchyModel) or model.model is None:
        raise ValueError(f"{uri} is not a hierarchy model")
    return model.model
