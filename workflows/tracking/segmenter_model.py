"""The registered `segmenter-model`: an MLflow pyfunc around the same-session classifier.

    model = mlflow.pyfunc.load_model("models:/segmenter-model@champion")
    model.predict(pd.DataFrame({"user_id": [...], "ts": [...], "query": [...]}))  # -> session_id, session_seq

The classifier (`sessions.learned.SameSessionClassifier`: a scikit-learn estimator
over `sessions.learned.PAIR_FEATURES`, and its threshold) is pickled with the
python model; the package `sessions` ships with it. `segmentation_model(uri)` loads
either kind of model `segment --method learned` takes: this one, or a session model.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import polars as pl
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

import sessions.learned
from sessions.learned import PAIR_FEATURES, SameSessionClassifier
from sessions.segment import SESSION_COLUMNS, SegmentConfig, segment
from workflows.tracking.store import REQUIREMENTS, load_pyfunc, pip_requirements

NAME = "segmenter-model"
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("string", "user_id"),
            ColSpec("datetime", "ts"),
            ColSpec("string", "query"),
            ColSpec("long", "row_id", required=False),
        ]
    )
)


class SegmenterModel(mlflow.pyfunc.PythonModel):
    """A log's rows (user_id, ts, query[, row_id]) -> their sessions
    (`sessions.segment.SESSION_COLUMNS`, each user's rows together in time order).
    `ts`: datetimes in UTC without a time zone (MLflow's datetime columns are naive)."""

    def __init__(self, classifier: SameSessionClassifier) -> None:
        self.classifier = classifier

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        events = pl.from_pandas(model_input.reset_index(drop=True))
        missing = {"user_id", "ts", "query"} - set(events.columns)
        if missing:
            raise ValueError(f"give columns user_id, ts and query; missing: {', '.join(sorted(missing))}")
        if "row_id" not in events.columns:
            events = events.with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Int64))
        ts = events["ts"]
        if not isinstance(ts.dtype, pl.Datetime):
            raise ValueError(f"ts must be a datetime column, not {ts.dtype}")
        events = events.with_columns(
            user_id=pl.col("user_id").cast(pl.String),
            query=pl.col("query").cast(pl.String).fill_null(""),
            ts=pl.col("ts").dt.replace_time_zone("UTC") if ts.dtype.time_zone is None else pl.col("ts"),  # type: ignore[union-attr]
        )
        return segment(events, SegmentConfig(method="learned"), self.classifier).select(SESSION_COLUMNS).to_pandas()


def log_segmenter_model(classifier: SameSessionClassifier, level: str) -> str:
    """Log the pyfunc to the active run; its model URI (`models:/m-...`)."""
    example = pd.DataFrame({
        "user_id": ["u", "u"], "ts": pd.to_datetime(["2006-03-01 10:00:00", "2006-03-01 10:01:00"]),
        "query": ["cute catd", "cute cats"],
    })  # fmt: skip
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=SegmenterModel(classifier),
        signature=SIGNATURE,
        input_example=example,
        pip_requirements=pip_requirements((*REQUIREMENTS, "polars")),
        code_paths=[str(Path(sessions.learned.__file__).resolve().parent)],  # the package `sessions`, shipped
        metadata={
            "kind": "segmenter",
            "level": level,
            "features": list(PAIR_FEATURES),
            "classifier": classifier.cfg.model,
            "threshold": classifier.cfg.threshold,
        },
    )
    return info.model_uri


def segmentation_model(uri: str):  # -> SameSessionClassifier | SessionScorer
    """The model at `uri` as segmentation takes it: a segmenter model's classifier
    (`sessions.segment.SessionClassifier`: decides `learned`), or a session model's
    `SessionScorer` (a `PairScorer` and mission linking's `Embedder`). ValueError in
    one line when the store has no model there, or one of another kind."""
    from mlflow.exceptions import MlflowException

    loaded = load_pyfunc(uri)
    try:
        model = loaded.unwrap_python_model()
    except MlflowException:  # another flavour than a python model
        model = None
    if isinstance(model, SegmenterModel):
        return model.classifier
    from workflows.tracking.session_model import SessionScorer  # imports torch: only for a session model

    return SessionScorer(uri, loaded)


def check_method(uri: str, method: str) -> None:
    """ValueError in one line when the model at `uri` cannot take part in `method`:
    a segmenter model decides `learned` only. Reads the model's metadata, not its weights."""
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    try:
        kind = (get_model_info(uri).metadata or {}).get("kind")
    except (MlflowException, OSError):
        return  # no model there: loading it says so
    if kind == "segmenter" and method != "learned":
        raise ValueError(f"{uri} is a segmenter model: it decides --method learned, not {method}")
