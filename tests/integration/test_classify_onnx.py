"""The ONNX Runtime backend: a real build (graph written from the weights, quantize, agreement
check) into a temporary cache folder, its validation, and a classifying process that imports
nothing of the build and no torch.

Sample sentences are SAMPLE DATA written for these tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.classify import onnx_build, onnx_runtime
from pipeline.classify.backends import NumpyEmbedder, create_embedder, reset_embedders
from pipeline.errors import ClassifierError

SENTENCES = [
    "Pyongyang is paid in hard currency for every brigade it sends west.",
    "Analysts expect Russian help with satellites and submarine reactors in return.",
    "Ok.",
    "The soldiers who were captured near Kursk asked to be sent to Seoul rather than home, "
    "according to officials who spoke on condition of anonymity on Thursday evening.",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_dir) -> onnx_runtime.Build:
    cache = tmp_path_factory.mktemp("cache")
    messages: list[str] = []
    build = onnx_build.build(cache / "models" / onnx_runtime.BUILD_NAME, shared_dir=shared_dir,
                             say=messages.append)
    assert any("matches the numpy reference" in m and "golden" in m for m in messages), messages
    return build


def test_build_writes_a_valid_manifest_and_both_graphs(built):
    assert built.problem is None
    manifest = built.manifest
    assert manifest["fp32_min_cosine"] >= onnx_build.FP32_MIN_COSINE
    verification = manifest["verification"]
    assert verification["golden_sentences"] == 20 and verification["reference_sentences"] > 50
    assert "torch" not in manifest
    for precision in ("fp32", "int8"):
        path = built.path(precision)
        assert path.stat().st_size == manifest["files"][precision]["bytes"]
    # quantized MatMul weights take one byte each instead of four
    assert manifest["files"]["int8"]["bytes"] < manifest["files"]["fp32"]["bytes"]
    agreement = manifest["agreement"]
    assert agreement["corpus_present"] is True
    assert agreement["articles"] >= 30 and 0 <= agreement["articles_agree"] <= agreement["articles"]
    expected = (agreement["articles_agree"] == agreement["articles"]
                and agreement["sentence_agreement"] >= onnx_build.MIN_SENTENCE_AGREEMENT)
    assert agreement["int8_enabled"] is expected == built.int8_enabled
    article_diffs = [d for d in agreement["disagreements"] if "position" not in d]
    assert len(article_diffs) == agreement["articles"] - agreement["articles_agree"]
    # plans are tried fastest first and the first that passes is kept (or, if none, the fastest)
    attempts = manifest["attempts"]
    plans = [name for name, _ in onnx_build.QUANT_PLANS]
    assert [a["plan"] for a in attempts] == plans[:len(attempts)]
    assert all(not a["passed"] for a in attempts[:-1])
    if built.int8_enabled:
        assert attempts[-1]["passed"] and agreement["plan"] == attempts[-1]["plan"]
    else:
        assert len(attempts) == len(plans) and agreement["plan"] == plans[0]
    counts = [a["quantized_nodes"] for a in attempts]
    assert counts == sorted(counts, reverse=True) and counts[0] == manifest["quantization"]["matmul_nodes"]


def test_fp32_graph_embeds_like_the_numpy_reference_and_the_golden_vectors(built):
    onnx = onnx_runtime.OnnxEmbedder(built.path("fp32"))
    reference_vectors = NumpyEmbedder().forward(SENTENCES)
    onnx_vectors = onnx.forward(SENTENCES)
    assert onnx_vectors.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)
    assert float((onnx_vectors * reference_vectors).sum(axis=1).min()) > 0.9999
    golden_sentences, golden = onnx_build.load_golden()
    assert float((onnx.forward(golden_sentences) * golden).sum(axis=1).min()) >= 0.9999
    # batch composition does not change a sentence's vector (padding is masked out)
    alone = onnx.forward(SENTENCES[:1])
    assert float(alone[0] @ onnx_vectors[0]) > 0.9999


def test_int8_graph_is_close_but_not_identical(built):
    fp32 = onnx_runtime.OnnxEmbedder(built.path("fp32")).forward(SENTENCES)
    int8 = onnx_runtime.OnnxEmbedder(built.path("int8"), precision="int8").forward(SENTENCES)
    cosine = (fp32 * int8).sum(axis=1)
    assert float(cosine.min()) > 0.9
    assert not np.allclose(fp32, int8, atol=1e-5)  # really quantized, not a copy of fp32


def test_damaged_or_foreign_builds_are_refused(built, tmp_path):
    copy = tmp_path / "build"
    copy.mkdir()
    manifest = dict(built.manifest)
    for entry in manifest["files"].values():
        (copy / entry["name"]).symlink_to(built.directory / entry["name"])
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert onnx_runtime.load_build(copy).problem is None

    (copy / "manifest.json").write_text(json.dumps({**manifest, "onnxruntime": "0.0.1"}))
    assert "onnxruntime 0.0.1" in onnx_runtime.load_build(copy).problem

    other_source = {**manifest["source"], "weights_bytes": 1}
    (copy / "manifest.json").write_text(json.dumps({**manifest, "source": other_source}))
    assert "another version" in onnx_runtime.load_build(copy).problem

    (copy / manifest["files"]["int8"]["name"]).unlink()
    (copy / manifest["files"]["int8"]["name"]).write_bytes(b"truncated")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert "missing or truncated" in onnx_runtime.load_build(copy).problem

    (copy / "manifest.json").write_text("{not json")
    assert "unreadable manifest" in onnx_runtime.load_build(copy).problem
    assert onnx_runtime.load_build(tmp_path / "nothing-here") is None


def test_backend_selection(built, monkeypatch, tmp_path):
    monkeypatch.setenv("NEWSWATCH_CACHE_DIR", str(tmp_path))  # no build here
    assert create_embedder(backend="auto").name == "numpy-fp32"  # slower, never stopped
    with pytest.raises(ClassifierError, match="newswatch model build"):
        create_embedder(backend="onnx")
    monkeypatch.setenv("NEWSWATCH_CLASSIFIER_BACKEND", "tensorflow")
    with pytest.raises(ClassifierError, match="NEWSWATCH_CLASSIFIER_BACKEND"):
        create_embedder()

    monkeypatch.setenv("NEWSWATCH_CLASSIFIER_BACKEND", "auto")
    monkeypatch.setenv("NEWSWATCH_CACHE_DIR", str(built.directory.parent.parent))
    classify = create_embedder("classify")
    assert classify.name == ("onnx-int8" if built.int8_enabled else "onnx-fp32")
    assert create_embedder("exact").name == "onnx-fp32"  # stored claim vectors stay exact
    reset_embedders()


def test_an_onnx_process_classifies_like_the_reference_and_imports_nothing_of_the_build(built, tmp_path):
    """The memory claim: a classifying process on the ONNX backend loads no torch, transformers,
    scikit-learn (the fitted head is cached), nor the build (onnx, the quantizer, the evaluation
    data), and stays under 600 MB.

    Peak RSS is VmHWM, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across exec, so a child of
    this test process would report the parent's peak."""
    from pipeline.classify.classifier import Classifier

    articles = [{"id": "a", "title": "Sample: North Korean troops and Russia's war",
                 "text": " ".join(SENTENCES) + " North Korea sent troops to fight for Russia in Kursk."}]
    expected = Classifier(embedder=NumpyEmbedder()).classify_article(articles[0]["title"],
                                                                     articles[0]["text"], "en")
    code = (
        "import json, sys\n"
        "from pipeline.classify.classifier import get_classifier\n"
        "from pipeline.procinfo import peak_rss_mb\n"
        "c = get_classifier()\n"
        f"r = c.classify_article({articles[0]['title']!r}, {articles[0]['text']!r}, 'en')\n"
        "print(json.dumps({'name': c.embedder.name, 'motives': r.motives,\n"
        "  'sentences': [s.motives for s in r.sentences],\n"
        "  'heavy': [m for m in ('torch', 'transformers', 'sklearn', 'onnx',\n"
        "    'onnxruntime.quantization', 'pipeline.classify.onnx_build', 'pipeline.classify.evaluate',\n"
        "    'pipeline.classify.minilm_graph', 'pipeline.classify.reference') if m in sys.modules],\n"
        "  'rss': peak_rss_mb()}))\n"
    )
    env = {**os.environ, "NEWSWATCH_CACHE_DIR": str(built.directory.parent.parent),
           "NEWSWATCH_CLASSIFIER_BACKEND": "onnx", "NEWSWATCH_STATE_DIR": str(tmp_path)}
    runs = []
    for _ in range(2):  # the first run fits and caches the head; the second loads it
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=False, cwd=Path(__file__).resolve().parents[2])
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert list(tmp_path.glob("classifier/head-*.npz"))
    second = runs[1]
    assert second["name"].startswith("onnx-")
    assert second["heavy"] == []
    assert second["rss"] < 600
    if second["name"] == "onnx-fp32":
        assert second["motives"] == expected.motives
        assert second["sentences"] == [s.motives for s in expected.sentences]


def test_int8_check_goes_stale_when_the_labelling_inputs_change(built, monkeypatch, tmp_path):
    """Labels depend on the taxonomy too: int8 agreement checked for another one does not count."""
    import shutil

    from pipeline.settings import DEFAULT_CONFIG_DIR

    assert built.int8_stale is False
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    taxonomy = config / "taxonomy.yaml"
    text = taxonomy.read_text(encoding="utf-8")
    taxonomy.write_text(text.replace("contingent]", "contingent, expeditionary corps]", 1),
                        encoding="utf-8")
    assert taxonomy.read_text(encoding="utf-8") != text
    monkeypatch.setenv("NEWSWATCH_CONFIG_DIR", str(config))
    assert built.int8_stale is True
    assert built.int8_enabled is False
    assert built.problem is None  # fp32 is exact whatever the taxonomy: still usable
