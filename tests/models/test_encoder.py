"""Encoders: mean pooling under the mask, length-sorted batches, names, save and load,
pair scores, calibration; the real MiniLM weights where the test is about meaning."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import models.encoder as encoder_module
from models.calibration import Calibration, best_threshold, calibrated_metrics, pair_metrics
from models.encoder import check_encoder, forward_by_length, load_encoder
from models.session import distinct, pair_scores


@pytest.fixture(scope="module")
def tiny():
    return load_encoder("tiny", seed=3)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def minilm():
    return load_encoder("minilm-local")


def test_padding_does_not_change_a_vector(tiny):
    alone = tiny.encode(["cats"])
    padded = tiny.encode(["cats", "a much longer query about the care of siamese cats"], batch_size=2)
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)


def test_mean_pooling_ignores_masked_tokens(tiny):
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, -100.0]]])
    tiny.normalize = False
    try:
        pooled = tiny.pool(hidden, torch.tensor([[1, 1, 0]]))
    finally:
        tiny.normalize = True
    assert pooled.tolist() == [[2.0, 2.0]]


def test_length_sorted_batches_keep_the_order_given(tiny):
    texts = ["a b c d e f g", "x", "new york hotels", "cats", "y z"]
    one_by_one = np.stack([tiny.encode([t])[0] for t in texts])
    np.testing.assert_allclose(tiny.encode(texts, batch_size=2), one_by_one, atol=1e-5)
    assert np.allclose(np.linalg.norm(one_by_one, axis=1), 1.0, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    texts=st.lists(st.text(alphabet="abc xyz", min_size=0, max_size=40), min_size=1, max_size=30),
    per_pass=st.integers(1, 8),
)
def test_training_passes_by_length_give_one_padded_pass_in_order(tiny, monkeypatch_module, texts, per_pass):
    monkeypatch_module.setattr(encoder_module, "TRAIN_TEXTS_PER_PASS", per_pass)
    tiny.eval()  # no dropout: the two must agree
    tokens = tiny.tokenize(texts)
    one_pass = tiny(tokens["input_ids"], tokens["attention_mask"])  # (n, H)
    by_length = forward_by_length(tiny, tiny, texts, torch.device("cpu"))  # (n, H)
    torch.testing.assert_close(by_length, one_pass, atol=1e-5, rtol=1e-4)
    weights = torch.randn(one_pass.shape, generator=torch.Generator().manual_seed(len(texts)))  # (n, H)
    gradients = []
    for vectors in (one_pass, by_length):  # the same gradients: each row's reaches its own text
        tiny.zero_grad(set_to_none=True)
        (vectors * weights).sum().backward()
        gradients.append([p.grad.clone() for p in tiny.parameters() if p.requires_grad])
    for a, b in zip(*gradients, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-3)
    tiny.zero_grad(set_to_none=True)


def test_every_batch_encoded_is_reported_inside_encoding_progress_only(tiny):
    texts = ["a b c", "a", "a b", "a b c d", "b"]
    seen: list[int] = []
    with encoder_module.encoding_progress(seen.append):
        tiny.encode(texts, batch_size=2)
    tiny.encode(texts, batch_size=2)  # outside the block: not reported
    assert seen == [2, 2, 1]


def test_tiny_is_seeded_and_saves_and_loads(tiny, tmp_path):
    again = load_encoder("tiny", seed=3)
    other = load_encoder("tiny", seed=4)
    x = tiny.encode(["cute cats"])
    np.testing.assert_allclose(again.encode(["cute cats"]), x)
    assert not np.allclose(other.encode(["cute cats"]), x)
    tiny.save(tmp_path / "enc")
    loaded = load_encoder(str(tmp_path / "enc"))
    assert loaded.name == "tiny" and loaded.max_length == tiny.max_length
    np.testing.assert_allclose(loaded.encode(["cute cats"]), x, atol=1e-6)
    # settings given win over the saved ones (the code review's find: a saved model's overrode them, so a
    # session model as `train hierarchy --head hit`'s base gave unit vectors, and --max-length changed nothing)
    given = load_encoder(str(tmp_path / "enc"), max_length=8, normalize=False)
    assert (given.max_length, given.normalize, tiny.normalize) == (8, False, True)
    assert not np.allclose(np.linalg.norm(given.encode(["cute cats"]), axis=1), 1.0)
    # ... and `train session` gives none unless asked: a model saved at another length trains at its own (the
    # change breaker's find: the option's default of 32 then cut a model saved at 64 to 32)
    from workflows.jobs.train_session import SessionTrainConfig

    long = load_encoder("tiny", max_length=64)
    long.save(tmp_path / "enc64")
    assert SessionTrainConfig(model=str(tmp_path / "enc64")).resolved().max_length == 64
    assert SessionTrainConfig(model=str(tmp_path / "enc64"), max_length=8).resolved().max_length == 8
    assert SessionTrainConfig(model="tiny").resolved().max_length == 32


@pytest.mark.parametrize("name", ["tiny", "minilm-local"])
@pytest.mark.parametrize("normalize", [True, False])
def test_a_saved_encoder_is_the_same_model_to_sentence_transformers(name, normalize, tmp_path):
    """A researcher loads a session model's encoder with `SentenceTransformer(directory)`
    and gets our vectors: mean pooling, unit length or not, cut at our max_length."""
    from sentence_transformers import SentenceTransformer

    encoder = load_encoder(name, max_length=16, normalize=normalize)
    texts = ["cute cats", "new york pizza near me", "Ünïcode café", " ".join(["hyperbolic embeddings"] * 40)]
    theirs = SentenceTransformer(str(encoder.save(tmp_path / "enc")), device="cpu").encode(texts)
    np.testing.assert_allclose(theirs, encoder.encode(texts), atol=2e-5)
    assert np.allclose(np.linalg.norm(theirs, axis=1), 1.0) == normalize
    # and it still loads as ours, with its own settings
    again = load_encoder(str(tmp_path / "enc"))
    assert (again.max_length, again.normalize) == (16, normalize)


def test_an_encoders_width_is_read_from_its_configuration_alone(tiny, minilm):
    """What a job records as a `--head hit` model's dimensions, before any weights load."""
    assert check_encoder("tiny") == tiny.dim == 32
    assert check_encoder("minilm-local") == minilm.dim == 384
    with pytest.raises(ValueError, match="no such encoder"):
        check_encoder("/no/such/model")


def test_threads_encoding_with_one_encoder_get_what_one_thread_gets():
    """`segment --model` encodes from several threads with one encoder. A fresh
    encoder is in training mode (dropout on); two threads each switching it to eval
    and back let one thread's batches run with the other's dropout (the local engine's
    missions then differed run to run)."""
    encoder = load_encoder("tiny", seed=3)
    encoder.transformer.config.dropout = 0.5  # dropout that shows
    for module in encoder.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.5
    encoder.train()
    texts = [f"query number {i} about {'cats' if i % 2 else 'new york hotels'}" for i in range(64)]
    expected = encoder.encode(texts, batch_size=2)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: encoder.encode(texts, batch_size=2), range(16)))
    for got in results:
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert encoder.training  # and it is left in the mode it was in


def test_distinct_texts_are_encoded_once():
    texts, positions = distinct(["b", "a", "b", "c", "a"])
    assert texts == ["b", "a", "c"] and positions.tolist() == [0, 1, 0, 2, 1]


def test_pretrained_minilm_puts_a_typo_near_and_a_new_topic_far(minilm):
    scores = pair_scores(minilm, ["cute catd", "cute cats"], ["cute cats", "new york"])
    assert scores[0] > 0.6 > 0.3 > scores[1]  # 0.20 for the second pair


def test_calibration_is_monotone_and_centred_between_the_classes():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0.7, 0.15, 500), rng.normal(0.3, 0.15, 500)])
    labels = np.repeat([1, 0], 500)
    cal = Calibration.fit(scores, labels)
    p = cal(np.array([0.0, 0.5, 1.0]))
    assert p[0] < 0.05 and abs(p[1] - 0.5) < 0.1 and p[2] > 0.95
    m = pair_metrics(cal(scores), labels)
    assert m.auc > 0.95 and m.accuracy > 0.88 and m.positives == 500
    assert 0.4 < best_threshold(scores, labels) < 0.6
    with pytest.raises(ValueError, match="positive and negative"):
        Calibration.fit(scores[:10], labels[:10])


def test_a_model_that_ranks_pairs_backwards_reports_its_own_auc_not_its_calibrations():
    """The code reader's find: `train session` logged the AUC of the calibrated p_same,
    and a Platt slope fitted negative turned a model's AUC of 0.23 into 0.77 (which could
    take the champion alias). The AUC is that of the scores, and the calibration may not
    turn a model around: a higher similarity never means a smaller p_same, so such a
    model's p_same is the positives' share, no evidence either way."""
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0.3, 0.15, 300), rng.normal(0.7, 0.15, 700)])  # positives score low
    labels = np.repeat([1, 0], [300, 700])
    calibration, m = calibrated_metrics(scores, labels)
    assert calibration.slope == 0 and calibration(np.array([0.0, 1.0])) == pytest.approx([0.3, 0.3])
    assert m.auc == pair_metrics(scores, labels).auc < 0.1 and m.accuracy == pytest.approx(0.7)  # all "different"
    forwards, right = calibrated_metrics(-scores, labels)
    assert forwards.slope > 0 and right.auc == pytest.approx(pair_metrics(forwards(-scores), labels).auc)


@pytest.mark.parametrize("name", ["tiny", "minilm-local"])
def test_every_trainable_parameter_gets_a_gradient(name, tiny, minilm):
    """DDP waits for a gradient of every trainable parameter; BERT's unused pooler is frozen."""
    encoder = tiny if name == "tiny" else minilm
    encoder.train()
    encoder.embed(["cute cats", "new york"]).sum().backward()
    missing = [n for n, p in encoder.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert sum(p.requires_grad for p in encoder.parameters()) >= len(list(encoder.parameters())) - 2
    encoder.zero_grad(set_to_none=True)
    encoder.eval()


def test_a_text_the_tokenizer_reads_as_unknown_tokens_alone_has_no_vector(tiny, minilm):
    """MiniLM's WordPiece vocabulary has no emoji, and reads a "word" past 100 characters
    as `[UNK]`: `😀🔥💯` and `🐱` were the one input `[CLS] [UNK] [SEP]`, the one vector,
    and two unrelated such queries looked the same to the model. Such a text has no
    vector (zeros: a dot product of 0 with any); one with a word the model reads has one."""
    from models.encoder import unread_texts

    texts = ["😀🔥💯", "🐱", "🍕 🎉", "y" * 200, "🐱 cats", "cats", "北京 天气", "привет мир", "\u200b", "dog\u200dcat"]
    for encoder in (minilm, tiny):  # tiny shares MiniLM's tokenizer
        unread = unread_texts(encoder.tokenizer, texts, encoder.max_length)
        assert unread.tolist() == [True, True, True, True, False, False, False, False, True, False]
        vectors = encoder.encode(texts)
        assert not vectors[unread].any() and np.allclose(np.linalg.norm(vectors[~unread], axis=1), 1, atol=1e-5)
    # what the model reads of a text is its first max_length tokens
    long = "🐱 " * 40 + "cats"
    assert unread_texts(minilm.tokenizer, [long], 32).tolist() == [True]
    assert unread_texts(minilm.tokenizer, [long], 64).tolist() == [False]
    assert pair_scores(minilm, ["😀🔥💯"], ["🐱"]).tolist() == [0.0]


_MIXED = [*"ab1 .-_$é", "🐱", "😀", "北", "\u200b", "\u0301", "ﷺ", "\t"]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.one_of(
    st.text(alphabet=st.sampled_from(_MIXED), max_size=12),
    st.builds(lambda c, n, pre, post: pre + c * n + post, st.sampled_from(["y", "7", "é"]), st.integers(95, 105),
              st.sampled_from(["", " ", "🐱", "-", "a "]), st.sampled_from(["", " ", "🐱", ".", " b"])),
), min_size=1, max_size=8))  # fmt: skip
def test_unread_texts_is_the_tokenizers_own_rule_whatever_the_text(minilm, texts):
    """`unread_texts` tokenizes only the texts without a plain ASCII word; the rest must
    be what the tokenizer itself says: every token unknown, in what the model reads."""
    from models.encoder import unread_texts

    for max_length in (4, 32):
        ids = minilm.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_length - 2)
        exact = [all(t == minilm.tokenizer.unk_token_id for t in row) for row in ids["input_ids"]]
        assert unread_texts(minilm.tokenizer, texts, max_length).tolist() == exact
