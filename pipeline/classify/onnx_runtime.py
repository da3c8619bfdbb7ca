"""The ONNX Runtime backend at run time: find a build, check it, embed with it.

``newswatch model build`` (``pipeline.classify.onnx_build``) writes two graphs and a manifest under
``<cache>/models/minilm-l6-v2-onnx/``: ``model-fp32.onnx`` and ``model-int8.onnx``. This module only
reads them: it imports ``onnxruntime``, ``tokenizers`` and numpy, and nothing of the build (no
``onnx``, no quantizer, no evaluation data, nothing from ``../shared``).

A build made for another model package, another onnxruntime version or another manifest format
is refused (``Build.problem``); int8 is used for classification only when the build's agreement
check passed for today's labelling inputs (``Build.int8_enabled``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.embedder import (
    MODEL_PACKAGE,
    BaseEmbedder,
    default_threads,
    encode_batch,
    load_tokenizer,
    mean_pool,
    model_dir,
)
from pipeline.errors import ClassifierError
from pipeline.settings import cache_dir

# Bumped whenever the files of a build change shape, so a build made by another release is rebuilt
# rather than misread; 2 = the graph written from the weights with onnx.helper.
FORMAT = 2
BUILD_NAME = "minilm-l6-v2-onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def build_dir() -> Path:
    """``$NEWSWATCH_CACHE_DIR/models/minilm-l6-v2-onnx`` (default ``.cache/`` in the checkout)."""
    return cache_dir() / "models" / BUILD_NAME


def package_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def source_identity() -> dict[str, Any]:
    """What a build is made from: the model package's version and weights file size."""
    weights = model_dir() / "model.safetensors"
    return {"package": MODEL_PACKAGE, "version": package_version(MODEL_PACKAGE),
            "weights_bytes": weights.stat().st_size if weights.exists() else None}


@dataclass
class Build:
    """A build folder and its manifest; ``problem`` says why it cannot be used (None: usable)."""

    directory: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    def path(self, precision: str) -> Path:
        return self.directory / self.manifest["files"][precision]["name"]

    def sha256(self, precision: str) -> str:
        return str(self.manifest.get("files", {}).get(precision, {}).get("sha256", ""))

    @property
    def int8_enabled(self) -> bool:
        """int8 passed the agreement check, and the check was made for today's labelling inputs."""
        return bool(self.manifest.get("agreement", {}).get("int8_enabled")) and not self.int8_stale

    @property
    def int8_stale(self) -> bool:
        """True when the taxonomy, training sentences or thresholds changed since the check."""
        recorded = self.manifest.get("agreement", {}).get("labelling_digest")
        return recorded != current_labelling_digest()


def current_labelling_digest() -> str | None:
    from pipeline.classify.head import labelling_digest
    from pipeline.taxonomy import load_taxonomy

    try:
        return labelling_digest(load_taxonomy())
    except Exception:  # noqa: BLE001 - an unreadable taxonomy fails later, with its own error
        return None


def load_build(directory: Path | None = None) -> Build | None:
    """The build in ``directory`` (default ``build_dir()``), or None when nothing was built."""
    directory = directory or build_dir()
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return Build(directory, {}, f"unreadable manifest {manifest_path}: {exc}")
    build = Build(directory, manifest)
    if manifest.get("format") != FORMAT:
        build.problem = f"manifest format {manifest.get('format')!r}, expected {FORMAT}"
    elif manifest.get("source") != source_identity():
        build.problem = "built from another version of the model package"
    elif manifest.get("onnxruntime") != package_version("onnxruntime"):
        build.problem = (f"built with onnxruntime {manifest.get('onnxruntime')}, installed "
                         f"{package_version('onnxruntime')}")
    else:
        for precision, entry in manifest.get("files", {}).items():
            file = directory / entry["name"]
            if not file.is_file() or file.stat().st_size != entry["bytes"]:
                build.problem = f"the {precision} graph {file} is missing or truncated"
                break
    return build


class OnnxEmbedder(BaseEmbedder):
    """MiniLM on ONNX Runtime with the model package's fast tokenizer."""

    backend = "onnx"

    def __init__(self, graph: Path, *, precision: str = "fp32", batch_size: int = 32,
                 threads: int | None = None, cache_size: int = 50_000, digest: str = "") -> None:
        super().__init__(batch_size=batch_size, cache_size=cache_size)
        import onnxruntime as ort

        self.precision = precision
        self.graph = graph
        self._digest = digest
        self.tokenizer = load_tokenizer()
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

    def _batch(self, texts: list[str]) -> np.ndarray:
        ids, mask = encode_batch(self.tokenizer, texts)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        return mean_pool(hidden, mask)


def open_build(build: Build, precision: str, **options: Any) -> OnnxEmbedder:
    """An embedder over one graph of a usable build."""
    return OnnxEmbedder(build.path(precision), precision=precision, digest=build.sha256(precision),
                        **options)
