"""The ONNX export of a text encoder (`models.onnx_encoder`): the float graph computes
what the torch module computes; the int8 graph stays close to it."""

from __future__ import annotations

import numpy as np
import pytest

from models.encoder import load_encoder
from models.onnx_encoder import OnnxTextEncoder, export

TEXTS = ["cute cats", "cute cat toys", "new york", "", "a much longer query about the weather in new york city",
         "ünïcödé querý", "cats"] * 5  # fmt: skip


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    encoder = load_encoder("tiny", seed=5)
    return encoder, export(encoder, tmp_path_factory.mktemp("onnx"), int8=True)


def test_the_float_graph_gives_the_torch_encoders_vectors_for_any_batch_and_length(exported):
    encoder, directory = exported
    onnx = OnnxTextEncoder(directory, "onnx", threads=1)
    assert onnx.dim == encoder.dim and onnx.max_length == encoder.max_length
    for batch_size in (1, 3, 256):  # batches of other sizes and lengths than the export's example
        np.testing.assert_allclose(onnx.encode(TEXTS, batch_size), encoder.encode(TEXTS, batch_size), atol=1e-5)
    assert encoder.training  # the export leaves the module in the mode it found it


def test_the_int8_graph_is_close_to_the_float_one(exported):
    encoder, directory = exported
    int8 = OnnxTextEncoder(directory, "onnx-int8", threads=1).encode(TEXTS)
    reference = encoder.encode(TEXTS)
    read = np.array([t != "" for t in TEXTS])  # the empty text has no token to read: no vector (zeros)
    cosines = (int8 * reference).sum(1)[read]
    assert int8.shape == reference.shape and int8.dtype == np.float32 and not int8[~read].any()
    assert np.allclose(np.linalg.norm(int8[read], axis=1), 1.0, atol=1e-4)  # the normalisation is in the graph
    assert cosines.min() > 0.9 and not np.allclose(int8, reference, atol=1e-6)  # close, and really quantized


def test_an_unknown_backend_is_refused(exported):
    _, directory = exported
    with pytest.raises(ValueError, match="onnx or onnx-int8"):
        OnnxTextEncoder(directory, "torch")


def test_exporting_int8_logs_no_advice_and_leaves_the_root_logger_as_it_was(tmp_path, caplog):
    """ONNX Runtime's quantizer warns on the root logger to pre-process the model first:
    noise in every first `score --backend onnx-int8` (these graphs are measured as exported)."""
    import logging

    filters = list(logging.getLogger().filters)
    with caplog.at_level(logging.WARNING):
        export(load_encoder("tiny", seed=5), tmp_path, int8=True)
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
    assert logging.getLogger().filters == filters


def test_an_export_warns_of_nothing_it_has_checked_and_refuses_a_graph_that_is_not_the_encoder(tmp_path):
    """The tracer warns that its trace might not generalise, and that negative indices
    would give wrong results: a new user read that as a failure. Each export is now
    checked against torch on batches unlike the traced example instead, and one that
    differs is refused."""
    import warnings

    import torch

    from models.onnx_encoder import MODEL_FILES, _check_export

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export(load_encoder("tiny", seed=5), tmp_path / "a", int8=False)
    said = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning | UserWarning)]
    assert not said, [str(w.message) for w in said]
    with pytest.raises(RuntimeError, match=r"differs from torch by .* --backend torch"):
        _check_export(load_encoder("tiny", seed=6), tmp_path / "a" / MODEL_FILES["onnx"])  # another model's graph


def test_a_text_read_as_unknown_tokens_alone_has_no_vector_in_onnx_too(exported):
    _, directory = exported
    texts = ["😀🔥💯", "cats", "🐱"]
    for backend in ("onnx", "onnx-int8"):
        vectors = OnnxTextEncoder(directory, backend, threads=1).encode(texts)
        assert not vectors[[0, 2]].any() and vectors[1].any(), backend
