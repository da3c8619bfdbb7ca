"""Pure functions of the learned on-topic gate: term matching, features, the stored model.

All texts are SAMPLE DATA written for these tests, not news.
"""

from __future__ import annotations

import json
from datetime import UTC

import numpy as np
import pytest

from pipeline.classify import gate_model
from pipeline.classify.gate import _pattern, embedding_features, keyword_evidence, topic_gate
from pipeline.classify.gate_eval import outlet_group, parse_published
from pipeline.classify.gate_model import (
    KEYWORD_FEATURES,
    LinearGate,
    choose_threshold,
    inner_folds,
    load_gate_model,
    parse_gate_model,
)
from pipeline.classify.sentences import split_sentences
from pipeline.errors import ClassifierError, ConfigError
from pipeline.taxonomy import load_taxonomy

TOPIC = load_taxonomy().topic


def features(title: str, text: str) -> dict[str, float]:
    evidence = keyword_evidence(title, split_sentences(text), TOPIC)
    return dict(zip(KEYWORD_FEATURES, evidence.features(), strict=True))


def test_a_star_matches_any_word_continuation_and_nothing_inside_a_word():
    pattern = _pattern(("północnokoreańs*", "kim dzong un*", "nk"))
    for text in ("północnokoreańscy żołnierze", "oddziały północnokoreańskie", "reżimu kim dzong una"):
        assert pattern.search(text), text
    assert not pattern.search("niepółnocnokoreański")  # a stem only starts a word
    assert not pattern.search("link")


def test_polish_inflected_forms_are_found_by_the_taxonomy_terms():
    f = features("Żołnierze Kima zniknęli z frontu",
                 "Północnokoreańscy żołnierze wycofali się z obwodu kurskiego, podaje wywiad.")
    assert f["title_actor"] == 1 and f["title_deployment"] == 1
    assert f["lead_actor"] == 1 and f["lead_partner"] == 1
    assert f["head_actor_partner_deployment"] == 1


def test_the_title_counts_even_when_the_summary_never_names_russia():
    """The issue's missed shape: the partner only in the headline, a quote below it."""
    title = "North Korean troops reach Russia's Kursk region, officials say"
    text = "The briefing was held in the capital on Tuesday."
    f = features(title, text)
    assert f["title_actor_partner"] == 1 and f["head_actor_partner_deployment"] == 1
    assert f["lead_partner"] == 0
    result = topic_gate(title, split_sentences(text), TOPIC)
    assert result.on_topic and result.variant == "keyword"


def test_a_mention_deep_inside_a_long_piece_is_not_lead_evidence():
    filler = " ".join(f"Ukraine reported new drone strikes on day {i}." for i in range(30))
    f = features("Drone strikes continue", filler + " North Korean soldiers fight for Russia.")
    assert f["lead_actor"] == 0 and f["head_actor_partner"] == 0
    assert f["body_cooccurring"] > 0 and f["body_density"] < 0.05
    assert f["log_words"] > np.log(100)


@pytest.mark.parametrize(("title", "text"), [
    ("Pyongyang tests a new missile", "Kim Jong Un watched the launch from a boat, state media said."),
    ("Kursk fighting goes on", "Russian and Ukrainian forces traded artillery fire near Kursk."),
    ("Moscow and Tehran sign a pact", "Russia and Iran agreed on closer military ties."),
])
def test_near_topic_negatives_stay_out_with_keywords_only(title, text):
    assert not topic_gate(title, split_sentences(text), TOPIC).on_topic


def test_embedding_features_borrow_the_missing_part():
    topic = np.array([[1.0, 0.0], [0.0, 1.0]])
    both = embedding_features(np.array([3.0, 4.0]), np.array([[1.0, 0.0], [1.0, 1.0]]), topic)
    assert both == pytest.approx([0.8, 1.0])
    title_only = embedding_features(np.array([0.0, 2.0]), np.zeros((0, 2)), topic)
    assert title_only == pytest.approx([1.0, 1.0])
    body_only = embedding_features(None, np.array([[1.0, 1.0]]), topic)
    assert body_only == pytest.approx([2 ** -0.5, 2 ** -0.5])


def test_vectors_switch_the_gate_to_the_embedding_variant():
    dims = 8
    topic = np.eye(dims)[:3]
    close = np.eye(dims)[0]
    title = "North Korean soldiers arrive in Russia"
    text = "Thousands of North Korean troops reached the Kursk front, Kyiv said."
    near = topic_gate(title, split_sentences(text), TOPIC, title_vector=close,
                      sentence_vectors=np.array([close]), topic_vectors=topic)
    far = topic_gate(title, split_sentences(text), TOPIC, title_vector=np.eye(dims)[7],
                     sentence_vectors=np.array([np.eye(dims)[6]]), topic_vectors=topic)
    assert near.variant == far.variant == "embedding"
    assert near.score > far.score and near.extra["title_similarity"] == pytest.approx(1.0)


def test_empty_item_scores_zero():
    result = topic_gate("", [], TOPIC)
    assert not result.on_topic and result.score == 0.0


def test_score_puts_the_chosen_threshold_at_one_half():
    linear = LinearGate(("a",), np.zeros(1), np.ones(1), np.ones(1), 0.0, threshold=0.3)
    p_at_threshold = np.log(0.3 / 0.7)  # the feature value whose probability is the threshold
    assert linear.score(np.array([p_at_threshold]))[0] == pytest.approx(0.5)
    assert linear.score(np.array([p_at_threshold + 1]))[0] > 0.5 > linear.score(np.array([-3.0]))[0]


def test_choose_threshold_separates_a_clean_split_in_the_middle_of_the_gap():
    probabilities = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    gold = np.array([0, 0, 0, 1, 1, 1])
    threshold = choose_threshold(probabilities, gold)
    assert 0.3 < threshold <= 0.7
    assert threshold == pytest.approx(0.5, abs=0.02)


def test_inner_folds_never_split_an_outlet_and_cover_every_row_once():
    groups = np.array(["a"] * 10 + ["b"] * 4 + ["c"] * 3 + ["d"] * 3 + ["e"] * 2 + ["f"])
    folds = inner_folds(groups, 3)
    assert len(folds) == 3
    assert (np.sum(folds, axis=0) == 1).all()
    for held in folds:
        assert not set(groups[held]) & set(groups[~held])
    assert [f.tolist() for f in folds] == [f.tolist() for f in inner_folds(groups, 3)]


def test_the_shipped_gate_file_loads_and_matches_the_features():
    model = load_gate_model()
    assert model.keyword.features == KEYWORD_FEATURES
    assert len(model.embedding.coef) == len(KEYWORD_FEATURES) + 2
    assert 0 < model.keyword.threshold < 1 and model.anchors


def _shipped() -> dict:
    return json.loads(gate_model.GATE_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("variants"), "variants"),
    (lambda d: d["variants"]["keyword"].update(features=["x"]), "variants.keyword.features"),
    (lambda d: d["variants"]["embedding"]["coef"].pop(), "variants.embedding.coef"),
    (lambda d: d["variants"]["keyword"].update(threshold=1.5), "variants.keyword.threshold"),
    (lambda d: d.update(topic_anchors=[]), "topic_anchors"),
])
def test_a_bad_gate_file_names_the_file_and_the_field(tmp_path, change, message):
    data = _shipped()
    change(data)
    path = tmp_path / "gate.json"
    with pytest.raises(ClassifierError, match=message) as info:
        parse_gate_model(data, path)
    assert str(path) in str(info.value)


def test_a_missing_or_broken_gate_file_is_a_clear_error(tmp_path):
    with pytest.raises(ClassifierError, match="missing"):
        load_gate_model(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ClassifierError, match="broken.json"):
        load_gate_model(broken)


def test_outlet_spellings_are_one_group():
    assert outlet_group("tuoitre.vn") == outlet_group("Tuổi Trẻ")
    assert outlet_group("연합뉴스 via Naver News") == outlet_group("EPA연합뉴스 via Naver News")
    assert outlet_group("think-tank commentary by A (republished in agorahub/pen0; x)") == \
        outlet_group("think-tank commentary by B (republished in agorahub/pen0; y)")
    assert outlet_group("NBC News") != outlet_group("BBC News")


@pytest.mark.parametrize("value", ["2024-10-18T07:40:00Z", "Fri, 27 Dec 2024 13:00:00 +0100",
                                   "2025-12-31 00:00", "Apr 26, 2025 10:00",
                                   "2024-12-04 12:00:00 +0800"])
def test_every_corpus_date_shape_parses(value):
    assert parse_published(value, path="x.jsonl", item="d1").tzinfo is not None


def test_an_unreadable_date_names_file_item_and_field():
    with pytest.raises(ConfigError) as info:
        parse_published("yesterday", path="news_items.jsonl", item="d9")
    text = str(info.value)
    assert "news_items.jsonl" in text and "d9" in text and "published" in text
    assert parse_published("2025-01-02 03:04", path="p", item="i").tzinfo == UTC
