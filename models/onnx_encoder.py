"""A `TextEncoder` served by ONNX Runtime: exported once, optionally int8-quantized.

`export(encoder, directory, int8=...)` writes the whole encoder (transformer, mean
pooling, unit length) as one ONNX graph with dynamic batch and token axes
(`torch.onnx.export`, the TorchScript exporter), its tokenizer and its settings;
with `int8` also `model-int8.onnx`, ONNX Runtime's dynamic quantization of it
(`onnxruntime.quantization.quantize_dynamic`): the MatMul weights stored as int8,
one scale per output channel, the activations quantized on the fly. Quantizing the
MatMuls alone and per channel is what sentence-transformers' own int8 exports do
(`export_dynamic_quantized_onnx_model`); quantizing the embedding tables too costs
far more accuracy (mean cosine to the float model 0.965 against 0.992 on AOL queries).

`OnnxTextEncoder` encodes like `TextEncoder.encode` (length-sorted batches, each
padded to its longest text; float32 rows in the order given), so the two serve the
same callers. Shapes: B texts of a batch, L tokens, H the width of the vectors.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.encoder import SETTINGS_FILE, TextEncoder, by_length, unread_as

MODEL_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}  # by backend
# what a damaged export's one-line error advises (`OnnxTextEncoder`, and the calibration beside it)
REMAKE_DAMAGED = ("a damaged export is made again once it is deleted, both here and as the model's onnx/<model uuid>/ "
                  "artifacts in its run")  # fmt: skip


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """Drop ONNX Runtime's advice to pre-process a model before quantizing it (a root
    logger warning on every export): these int8 models are measured as exported, pair
    AUC within 0.003 of torch's (docs/scoring.md), so the advice is noise to a user."""
    return not record.getMessage().startswith("Please consider to run pre-processing before quantization")


def export(encoder: TextEncoder, directory: str | Path, int8: bool = True, opset: int = 17) -> Path:
    """Write `encoder` as ONNX into `directory` (`model.onnx`, with `int8` also
    `model-int8.onnx`), with its tokenizer and settings; returns the directory.
    The graph takes `input_ids` and `attention_mask` (int64, (B, L)) and gives
    `embedding` (float32, (B, H)), as `encoder.forward` does. RuntimeError when the
    exported graph does not give torch's embeddings on batches unlike the example it
    was traced on (`_check_export`; the tracer's warnings are that question)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    example = encoder.tokenize(["a query", "another query of more words"])
    axes = {0: "batch", 1: "tokens"}
    was_training = encoder.training
    encoder.eval()
    try:
        with warnings.catch_warnings():  # the tracer's cautions, answered for these inputs by `_check_export`
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Exporting aten::index operator", category=UserWarning)
            torch.onnx.export(
                encoder, (example["input_ids"], example["attention_mask"]), str(path / MODEL_FILES["onnx"]),
                dynamo=False, opset_version=opset, input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}},
            )  # fmt: skip
        _check_export(encoder, path / MODEL_FILES["onnx"])
    finally:
        encoder.train(was_training)
    if int8:
        root = logging.getLogger()
        root.addFilter(_no_preprocessing_advice)
        try:
            quantize_dynamic(path / MODEL_FILES["onnx"], path / MODEL_FILES["onnx-int8"], per_channel=True,
                             op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)  # fmt: skip
        finally:
            root.removeFilter(_no_preprocessing_advice)
    encoder.tokenizer.save_pretrained(path)
    settings = {"max_length": encoder.max_length, "normalize": encoder.normalize, "name": encoder.name,
                "dim": encoder.dim}  # fmt: skip
    (path / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))
    return path


# Batches unlike the export's example (two short texts): one text, ones padded a lot and
# a little, one cut at max_length, and non-ASCII; a traced graph that kept a shape or a
# branch of the example as a constant differs from torch on some of them.
CHECK_BATCHES = (
    ["x"],
    ["a", "cheap flights to new york city in march", "weather"],
    ["lyrics " * 600, "café zürich 東京 ✓", "b"],
)
CHECK_TOLERANCE = 1e-4  # the largest difference of an embedding's coordinate from torch's


def _check_export(encoder: TextEncoder, model: Path) -> None:
    """RuntimeError unless the exported float graph at `model` gives torch's embeddings
    (within `CHECK_TOLERANCE`) on `CHECK_BATCHES`: the TorchScript exporter traces the
    example it is given, and warns that a trace might not generalise; this is the answer."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for texts in CHECK_BATCHES:
        batch = encoder.tokenize(texts)
        with torch.inference_mode():
            expected = encoder(**batch).numpy()
        got = session.run(None, {k: v.numpy().astype(np.int64) for k, v in batch.items()})[0]
        worst = float(np.abs(got - expected).max())
        if not worst <= CHECK_TOLERANCE:
            raise RuntimeError(
                f"the ONNX export of {encoder.name} differs from torch by {worst:.2g} on a batch of {len(texts)} "
                "text(s) (the trace does not generalise): score with --backend torch"
            )


class OnnxTextEncoder:
    """An exported encoder (`export`) on ONNX Runtime's CPU provider, `threads` threads
    within an operator (None: ONNX Runtime's default, all cores). ValueError in one line
    where the directory holds no whole export (a file missing or damaged)."""

    def __init__(self, directory: str | Path, backend: str = "onnx-int8", threads: int | None = None) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        if backend not in MODEL_FILES:
            raise ValueError(f"backend {backend!r}: an ONNX encoder is onnx or onnx-int8")
        path = Path(directory)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            settings = json.loads((path / SETTINGS_FILE).read_text())
            self.max_length, self.name, self.dim = settings["max_length"], settings["name"], settings["dim"]
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.session = ort.InferenceSession(str(path / MODEL_FILES[backend]), options,
                                                providers=["CPUExecutionProvider"])  # fmt: skip
        except Exception as err:  # ONNX Runtime's errors (NoSuchFile, InvalidProtobuf) share no other base
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ValueError(
                f"{path}: no whole ONNX export of a session model here ({reason}); {REMAKE_DAMAGED}"
            ) from None
        self.backend = backend

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of one batch of texts: float32, (B, H)."""
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="np")  # fmt: skip
        feeds = {name: batch[name].astype(np.int64) for name in ("input_ids", "attention_mask")}
        return self.session.run(None, feeds)[0]

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Vectors of many texts (float32, (n, H), in the order given), in length-sorted
        batches; zeros for a text read as unknown tokens alone, as `TextEncoder.encode`."""
        vectors = by_length(texts, batch_size, self.dim, np.float32, self.embed)
        return unread_as(vectors, self.tokenizer, texts, self.max_length, 0.0)
