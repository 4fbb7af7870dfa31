"""The registered `segmenter-model`: an MLflow pyfunc around the same-session classifier.

    model = mlflow.pyfunc.load_model("models:/segmenter-model@champion")
    model.predict(pd.DataFrame({"user_id": [...], "ts": [...], "query": [...]}))  # + sessions, missions

The classifier (`sessions.learned.SameSessionClassifier`: a scikit-learn estimator
over `sessions.learned.PAIR_FEATURES`, and its threshold) is pickled with the
python model; the package `sessions` ships with it. `segmentation_model(uri)` loads
either kind of model `segment --method learned` takes: this one, or a session model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
import polars as pl
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

import sessions.learned
from sessions.learned import PAIR_FEATURES, SameSessionClassifier
from sessions.missions import MissionConfig
from sessions.pipeline import SESSIONS_SCHEMA, sessions_with_missions
from sessions.segment import SegmentConfig
from workflows.tracking import store
from workflows.tracking.store import REQUIREMENTS, load_pyfunc, pip_requirements, require_model, rows_of

if TYPE_CHECKING:
    from workflows.tracking.session_model import SessionScorer

NAME = "segmenter-model"
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(AnyType(), "user_id"),  # text or integers, as `segment` takes them
            ColSpec(AnyType(), "ts"),  # datetimes with a zone or without (MLflow's datetime refuses a zone)
            ColSpec(store.text_type(), "query"),
            ColSpec("long", "row_id", required=False),
        ]
    )
)


class SegmenterModel(mlflow.pyfunc.PythonModel):
    """A log's rows (user_id, ts, query[, row_id]) -> the same rows, in the same order,
    with `session_id`, `session_seq` and `mission_id` (`sessions.pipeline.SESSIONS_SCHEMA`;
    missions linked by the rule, `sessions.missions`), as a frame or a dict of lists
    (`store.rows_of`). `user_id` and `query`: texts or numbers, read by `store.text_cells`
    as `ingest` reads a typed table's (599381 and 599381.0 are the user 599381), which
    refuses any other cell in one line. `ts`: datetimes or ISO 8601 texts (as
    JSON serves them), in UTC when they have no zone, converted to UTC when they have
    one; answered in UTC without a zone, as MLflow's datetime columns are. A user's
    queries of one time stamp are taken in `row_id` order, without it in the frame's
    order."""

    def __init__(self, classifier: SameSessionClassifier) -> None:
        self.classifier = classifier

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        missing = {"user_id", "ts", "query"} - set(model_input.columns)
        if missing:
            raise ValueError(f"give columns user_id, ts and query; missing: {', '.join(sorted(missing))}")
        frame = rows_of(model_input).reset_index(drop=True)
        for column in ("user_id", "query"):  # text, numbers as `ingest` reads them, or None (`store.text_of`)
            frame[column] = pd.Series(store.text_cells(frame[column]), dtype=object, index=frame.index)
        if pd.api.types.is_object_dtype(frame["ts"]) or pd.api.types.is_string_dtype(frame["ts"]):
            frame["ts"] = iso_times(frame["ts"])  # JSON's times (served), or text given in Python
        events = pl.from_pandas(frame).with_row_index("_position")
        if "row_id" not in events.columns:
            events = events.with_columns(row_id=pl.col("_position").cast(pl.Int64))
        ts = events["ts"].dtype
        if not isinstance(ts, pl.Datetime):
            raise ValueError(f"ts must be a datetime column, not {ts}")
        for column in ("user_id", "ts"):
            if n := events[column].null_count():
                first = events["_position"].filter(events[column].is_null())[0]
                raise ValueError(f"{n:,} {'row has' if n == 1 else 'rows have'} no {column} (the first: row {first}): "
                                 "give every row one")  # fmt: skip
        if events["row_id"].is_duplicated().any():
            raise ValueError("row_id must be unique: it names each row of the answer")
        utc = (
            pl.col("ts").dt.replace_time_zone("UTC")
            if ts.time_zone is None
            else pl.col("ts").dt.convert_time_zone("UTC")
        )
        given = events["query"].cast(pl.String)  # answered as given: a missing query stays missing
        events = events.with_columns(query=given.fill_null(""), ts=utc)  # segmented as no text
        found = sessions_with_missions(events, SegmentConfig(method="learned"), MissionConfig(), self.classifier)
        return (
            events.select("_position", "row_id")
            .join(found, on="row_id", how="left", maintain_order="left")
            .sort("_position")
            .with_columns(query=given)
            .select(list(SESSIONS_SCHEMA))
            .with_columns(pl.col("ts").dt.replace_time_zone(None))
            .to_pandas()
        )


def iso_times(ts: pd.Series) -> pd.Series:
    """Times written as ISO 8601 text (as JSON carries them to a served model, `mlflow models
    serve`), or datetime objects, as UTC datetimes: a time without an offset is UTC.
    ValueError in one line naming the first cell that is no ISO 8601 time and its row
    (pandas' own message runs on to advice of its own options, cut short)."""
    try:
        return pd.to_datetime(ts, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        read = pd.to_datetime(ts, utc=True, format="ISO8601", errors="coerce")
        bad = ts[read.isna() & ts.notna()]
        cell = f"{_as_shown(bad.iloc[0])} (row {bad.index[0]}) is not" if len(bad) else "times that are not"
        raise ValueError(f"ts: {cell} an ISO 8601 time; give datetimes or ISO 8601 times") from None


def _as_shown(value: object) -> str:
    """A cell as a one-line message shows it: `repr`, cut at 60 characters."""
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:57]}..."


# What the shipped package `sessions` imports beyond REQUIREMENTS (its docstring's list).
SESSIONS_REQUIREMENTS = ("polars", "pyarrow", "fsspec", "numba", "zlib-ng", "zstandard", "lz4")


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
        pip_requirements=pip_requirements((*REQUIREMENTS, *SESSIONS_REQUIREMENTS)),
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


def segmentation_model(uri: str) -> SameSessionClassifier | SessionScorer:
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


def segmenter_level(uri: str) -> str | None:
    """The gold level ("sessions" or "missions") the segmenter model at `uri` was trained
    on, from its MLmodel file alone (the `level` of its metadata, `log_segmenter_model`);
    None for another kind of model. A missions one decides whether two consecutive
    queries are of one mission, so its sessions are runs of one mission."""
    from mlflow.models import get_model_info

    metadata = get_model_info(uri).metadata or {}
    return metadata.get("level") if metadata.get("kind") == "segmenter" else None


def require_segmentation_model(uri: str, methods: Sequence[str]) -> None:
    """ValueError in one line, before any output, unless the store has at `uri` a model
    that one of `methods` takes: a session model (any), or a segmenter model (`learned`
    only). Reads the MLmodel file, not the weights (`store.require_model`)."""
    kind = require_model(uri, ("session", "segmenter"))
    if kind == "segmenter" and "learned" not in methods:
        raise ValueError(f"{uri} is a segmenter model: it decides --method learned, not {methods[0]}")
