"""Which embedder computes the embeddings: a small factory over the backends.

- ``onnx``: ONNX Runtime over the graphs ``newswatch model build`` wrote from the installed
  weights (``pipeline.classify.onnx_runtime``), fp32 or int8. The production backend.
- ``numpy``: the plain numpy forward pass the build is checked against
  (``pipeline.classify.reference``): exact fp32, no build needed, several times slower. ``auto``
  falls back to it, with a warning, so a missing or stale build slows classification down
  instead of stopping it.

``get_embedder()`` returns the process-wide embedder for a purpose: ``"classify"`` may use the int8
graph when its labels were verified to agree with fp32 on the evaluation set; ``"exact"`` (claim
embeddings stored in Elasticsearch, whose novelty thresholds were tuned in fp32) never does.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Literal

import numpy as np

from pipeline.classify.embedder import BaseEmbedder, encode_batch, load_tokenizer, mean_pool, model_dir
from pipeline.errors import ClassifierError

log = logging.getLogger(__name__)
BACKENDS = ("auto", "onnx", "numpy")
Purpose = Literal["classify", "exact"]


class NumpyEmbedder(BaseEmbedder):
    """The reference forward pass as a backend: fp32, no ONNX Runtime, no build."""

    backend = "numpy"

    def __init__(self, *, batch_size: int = 32, cache_size: int = 50_000) -> None:
        super().__init__(batch_size=batch_size, cache_size=cache_size)
        from pipeline.classify.reference import NumpyMiniLM

        self.tokenizer = load_tokenizer()
        self.model = NumpyMiniLM(model_dir())

    def _batch(self, texts: list[str]) -> np.ndarray:
        ids, mask = encode_batch(self.tokenizer, texts)
        return mean_pool(self.model.forward(ids, mask, np.zeros_like(ids)), mask)


def configured_backend() -> str:
    """``NEWSWATCH_CLASSIFIER_BACKEND``: ``auto`` (default), ``onnx`` or ``numpy``."""
    value = (os.environ.get("NEWSWATCH_CLASSIFIER_BACKEND") or "auto").strip().lower()
    if value not in BACKENDS:
        raise ClassifierError(f"NEWSWATCH_CLASSIFIER_BACKEND={value!r}: expected one of "
                              f"{', '.join(BACKENDS)}")
    return value


def create_embedder(purpose: Purpose = "classify", backend: str | None = None) -> BaseEmbedder:
    """A new embedder for ``purpose`` on ``backend`` (default: the configured one).

    ``auto`` takes the ONNX build when one is present and valid (int8 for ``classify`` only if
    it passed the agreement check), and the numpy reference otherwise. ``onnx`` requires the build.
    """
    from pipeline.classify import onnx_runtime

    backend = backend or configured_backend()
    if backend == "numpy":
        return NumpyEmbedder()
    build = onnx_runtime.load_build()
    if build is None or build.problem:
        reason = build.problem if build is not None else "no ONNX build found"
        if backend == "onnx":
            raise ClassifierError(f"classifier backend onnx: {reason} (run `newswatch model build`)")
        log.warning("ONNX build not used (%s); classifying with the slower numpy reference until "
                    "`newswatch model build` is run", reason)
        return NumpyEmbedder()
    precision = "int8" if purpose == "classify" and build.int8_enabled else "fp32"
    return onnx_runtime.open_build(build, precision)


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
