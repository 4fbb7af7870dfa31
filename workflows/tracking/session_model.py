"""The registered `session-model`: an MLflow pyfunc around the fine-tuned encoder.

    model = mlflow.pyfunc.load_model("models:/session-model@champion")
    model.predict(pd.DataFrame({"query_a": ["cute catd"], "query_b": ["cute cats"]}))  # -> p_same
    model.predict(pd.DataFrame({"query": ["cute cats", "new york"]}))                # -> embedding
    model.predict({"query": ["cute cats", "new york"]})  # a dict of lists: the same rows (`store.rows_of`)

Artifacts: the encoder directory (`TextEncoder.save`) and the calibration (JSON).
`SessionScorer(uri)` is the same model as segmentation and mission linking take it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
import polars as pl
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

import models.encoder
from models.calibration import Calibration
from models.encoder import TextEncoder, load_encoder
from models.session import pair_scores
from sessions.storage import first_line
from workflows.tracking.store import load_pyfunc, pip_requirements, rows_of, text_cells, text_type

if TYPE_CHECKING:
    from models.onnx_encoder import OnnxTextEncoder

NAME = "session-model"
KIND = "session"  # `workflows.tracking.store.model_kind`
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(text_type(), "query_a", required=False),
            ColSpec(text_type(), "query_b", required=False),
            ColSpec(text_type(), "query", required=False),
        ]
    )
)


class SessionModel(mlflow.pyfunc.PythonModel):
    """query_a, query_b -> p_same (and score, the dot product; both NaN for a pair with a
    missing query); query -> embedding."""

    def __init__(self, encoder: TextEncoder | None = None, calibration: Calibration | None = None) -> None:
        self.encoder = encoder
        self.calibration = calibration

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.encoder = load_encoder(context.artifacts["encoder"])
        self.calibration = Calibration(**json.loads(Path(context.artifacts["calibration"]).read_text()))

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        assert self.encoder is not None and self.calibration is not None
        model_input = rows_of(model_input)
        columns = set(model_input.columns)
        if {"query_a", "query_b"} <= columns:  # a pair with a missing query has no score (NaN), not an empty text's
            # nor has a pair with a query the model cannot read (unknown tokens alone: an emoji, say)
            a, b = texts_of(model_input["query_a"]), texts_of(model_input["query_b"])
            scores = pair_scores(self.encoder, a, b, unread=np.nan)
            scores[(model_input["query_a"].isna() | model_input["query_b"].isna()).to_numpy()] = np.nan
            return pd.DataFrame({"p_same": self.calibration(scores), "score": scores})
        if "query" in columns:
            vectors = self.encoder.encode(texts_of(model_input["query"]))
            return pd.DataFrame({"embedding": list(vectors)})
        raise ValueError("give columns query_a and query_b (-> p_same), or query (-> embedding)")


def texts_of(column: pd.Series) -> list[str]:
    """A text column as strings (`store.text_cells`), missing values as empty texts.
    ValueError in one line for a cell that holds no text (a float, a list, a mapping, ...:
    `store.text_of`)."""
    return ["" if text is None else text for text in text_cells(column)]


def log_session_model(encoder_dir: Path, calibration: Calibration, base_model: str, work: Path) -> str:
    """Log the pyfunc to the active run; its model URI (`models:/m-...`)."""
    work.mkdir(parents=True, exist_ok=True)
    calibration_file = work / "calibration.json"
    calibration_file.write_text(json.dumps(calibration.to_dict()))
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=SessionModel(),
        artifacts={"encoder": str(encoder_dir), "calibration": str(calibration_file)},
        signature=SIGNATURE,
        input_example=pd.DataFrame({"query_a": ["cute catd"], "query_b": ["cute cats"]}),
        pip_requirements=pip_requirements(),
        code_paths=[str(Path(models.encoder.__file__).resolve().parent)],  # the package `models`, shipped
        metadata={"base_model": base_model, "kind": KIND},
    )
    return info.model_uri


def load(uri: str, loaded: mlflow.pyfunc.PyFuncModel | None = None) -> mlflow.pyfunc.PyFuncModel:
    """The logged session model at `uri` (or `loaded` already from there); ValueError in
    one line when there is none, or the model there is of another kind (a pyfunc of
    one's own registered under any name: its `predict` gives no `p_same`)."""
    from mlflow.exceptions import MlflowException

    model = loaded or load_pyfunc(uri)
    try:
        python_model = model.unwrap_python_model()
    except MlflowException:  # a flavour's pyfunc (sklearn, ...), no Python model of ours
        python_model = None
    if not isinstance(python_model, SessionModel) or python_model.encoder is None or python_model.calibration is None:
        raise ValueError(f"{uri} is not a session model")
    return model


def base_model_of(model: mlflow.pyfunc.PyFuncModel) -> str:
    """The name of the encoder the session model was fine-tuned from."""
    return (model.metadata.metadata or {}).get("base_model", "minilm-local")


def p_same(model: mlflow.pyfunc.PyFuncModel, a: list[str], b: list[str]) -> np.ndarray:
    """The loaded session model's calibrated p(same session) of each pair (a[i], b[i]): (n,) float64."""
    out = model.predict(pd.DataFrame({"query_a": a, "query_b": b}))
    return out["p_same"].to_numpy(dtype=np.float64, copy=True)


def p_same_at(model: mlflow.pyfunc.PyFuncModel, score: float) -> float:
    """The loaded session model's calibrated p(same session) of a dot product `score`
    (at 0.0: no evidence either way, what training's validation scores a pair with a
    query the model cannot read, `models.session.pair_scores`)."""
    return float(model.unwrap_python_model().calibration(np.float64(score)))


ONNX_ARTIFACTS = "onnx"  # in the run of a session model: its encoder exported, `onnx_export_location`
CALIBRATION_FILE = "calibration.json"  # beside the export: the model's calibration
EXPORT_COMPLETE = "complete.json"  # logged after the rest of the export, and copied last: the export is whole


def onnx_export_location(uri: str) -> tuple[str, str]:
    """Where the ONNX export of the session model at `uri` is logged: (the model's run id,
    the artifact path in that run), `onnx/<model uuid>` (the `model_uuid` of its MLmodel
    file). One run may log several models (a notebook's, a sweep's), and each has an
    export of its own: keyed by the run alone, a second model of the run was scored with
    the first one's export, its weights and calibration, without a word. ValueError in one
    line when the store has no model at `uri` (`store.run_of`)."""
    from mlflow.models import get_model_info

    from workflows.tracking.store import run_of

    run_id = run_of(uri)
    return run_id, f"{ONNX_ARTIFACTS}/{get_model_info(uri).model_uuid}"


def onnx_encoder_dir(uri: str) -> str:
    """A local directory with the session model at `uri` exported to ONNX, float and int8
    (`models.onnx_encoder.export`): the copy logged beside the model in its run
    (`onnx_export_location`), exported and logged there by the first caller, downloaded
    once per model into `<temp dir>/sessionflow-onnx/<model uuid>` (every later caller on
    the machine, each actor of a job too, reuses that copy; nothing removes it). ValueError
    in one line when `uri` is no session model.

    Neither an artifact store nor a download is atomic, so an export counts only with its
    `EXPORT_COMPLETE`, logged after the rest: one that a stopped job logged in part is
    exported and logged again, and a local copy without it (a download cut short) is
    replaced.
    """
    import shutil
    import tempfile

    from models.onnx_encoder import export
    from workflows.tracking.store import use_store

    run_id, logged = onnx_export_location(uri)
    client = use_store(existing=True)
    if EXPORT_COMPLETE not in {Path(a.path).name for a in client.list_artifacts(run_id, logged)}:
        with tempfile.TemporaryDirectory() as tmp:
            files = Path(tmp) / ONNX_ARTIFACTS
            scorer = SessionScorer(uri)
            export(scorer.encoder, files, int8=True)
            (files / CALIBRATION_FILE).write_text(json.dumps(scorer.calibration.to_dict()))
            client.log_artifacts(run_id, str(files), logged)
            marker = Path(tmp) / EXPORT_COMPLETE
            marker.write_text(json.dumps({"files": sorted(p.name for p in files.iterdir())}))
            client.log_artifact(run_id, str(marker), logged)
    key = Path(logged).name
    local = Path(tempfile.gettempdir()) / "sessionflow-onnx" / key
    if not (local / EXPORT_COMPLETE).is_file():  # the copy appears whole: renamed into place below
        local.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=local.parent, prefix=f".{key}-"))
        try:
            downloaded = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=logged,
                                                             dst_path=str(staging))  # fmt: skip
            if local.exists() and not (local / EXPORT_COMPLETE).is_file():  # an incomplete copy: never used
                shutil.rmtree(local, ignore_errors=True)
            try:
                Path(downloaded).rename(local)  # atomic: another process's copy may have won meanwhile
            except OSError:
                if not (local / EXPORT_COMPLETE).is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return str(local)


def load_onnx_session(uri: str, backend: str, threads: int) -> tuple[OnnxTextEncoder, dict]:
    """The session model at `uri` exported to ONNX (`onnx_encoder_dir`) and loaded for
    `backend` (`models.onnx_encoder.OnnxTextEncoder`, with `threads` intra-op threads),
    and its calibration (`onnx_calibration`). ValueError in one line when the export is
    damaged, naming both copies: the local one and the store's, where the damage may be
    (a local copy is downloaded again from it)."""
    from models.onnx_encoder import OnnxTextEncoder
    from workflows.tracking.store import use_store

    directory = onnx_encoder_dir(uri)
    try:
        return OnnxTextEncoder(directory, backend, threads), onnx_calibration(directory)
    except ValueError as err:
        run_id, logged = onnx_export_location(uri)
        stored = f"{use_store(existing=True).get_run(run_id).info.artifact_uri}/{logged}"
        raise ValueError(f"{err} (the store's copy, of run {run_id}: {stored})") from None


def onnx_calibration(directory: str | Path) -> dict:
    """The calibration beside an ONNX export (`onnx_encoder_dir`), as `Calibration.to_dict`
    wrote it; ValueError in one line naming the file where it is missing or damaged
    (not a `Calibration`'s: its slope or intercept no finite number)."""
    from models.onnx_encoder import REMAKE_DAMAGED

    path = Path(directory) / CALIBRATION_FILE
    try:
        return Calibration(**json.loads(path.read_text())).to_dict()
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(
            f"{path}: the export's calibration cannot be read ({first_line(err)}); {REMAKE_DAMAGED}"
        ) from None


class SessionScorer:
    """A logged session model as segmentation and mission linking use it: a
    `sessions.segment.PairScorer` (p_same of query pairs) and a
    `sessions.missions.Embedder` (vectors, and p_same of their dot products)."""

    def __init__(self, uri: str, loaded: mlflow.pyfunc.PyFuncModel | None = None) -> None:
        """Load the session model at `uri` (or take it as `loaded` already); ValueError
        in one line when there is none, or the model there is of another kind."""
        self.uri = uri
        model = load(uri, loaded).unwrap_python_model()
        self.encoder, self.calibration = model.encoder, model.calibration

    def __call__(self, a: pl.Series, b: pl.Series) -> np.ndarray:
        """p_same of each pair; NaN where the model cannot read a query (`unread_texts`)."""
        return self.calibration(pair_scores(self.encoder, a.to_list(), b.to_list(), unread=np.nan))

    def embed(self, texts: pl.Series) -> np.ndarray:
        """`sessions.missions.Embedder.embed`: (n,) texts -> (n, H) float32 unit vectors."""
        return self.encoder.encode(texts.to_list())

    def p_same(self, scores: np.ndarray) -> np.ndarray:
        """`sessions.missions.Embedder.p_same`: the calibration of (k,) dot products, (k,) float64."""
        return self.calibration(scores)
