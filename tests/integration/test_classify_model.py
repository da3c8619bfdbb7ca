"""The classifier with the real model (loaded once per session, offline).

Sample sentences are SAMPLE DATA written for these tests; the seeds are read from ../shared.
"""

from __future__ import annotations

import pytest

from pipeline.classify import get_classifier, split_sentences
from pipeline.classify.backends import get_embedder


@pytest.fixture(scope="module")
def clf():
    return get_classifier()


def test_get_classifier_is_process_wide(clf):
    assert get_classifier() is clf and clf.embedder is get_embedder()


@pytest.mark.parametrize(("sentence", "motive"), [
    ("Moscow pays the North Korean state roughly two thousand dollars a month for each soldier.",
     "hard_currency"),
    ("Russian engineers may help Pyongyang build a reactor for its ballistic missile submarine.",
     "military_technology.naval"),
    ("The North Korean soldiers are learning how to fight under constant drone attack.",
     "combat_experience"),
    ("Russia's veto protects Pyongyang from new UN sanctions after its missile tests.",
     "diplomatic_cover"),
    ("Two captured North Korean soldiers have asked to defect to South Korea.",
     "costs_and_risks.defection"),
])
def test_sentences_get_their_motive_and_children_imply_parents(clf, sentence, motive):
    (result,) = clf.classify_sentences([sentence])
    assert motive in result.motives, result.scores
    parent = clf.taxonomy.motives[motive].parent
    if parent:
        assert parent in result.motives
        assert result.scores[parent] >= result.scores[motive]
    assert set(result.scores) == set(clf.taxonomy.ids)
    assert all(0.0 <= v <= 1.0 for v in result.scores.values())


def test_plain_deployment_news_states_no_motive(clf):
    results = clf.classify_sentences([
        "The Pentagon said the troops had moved west by train.",
        "The weather in Seoul was cold on Tuesday.",
    ])
    assert [r.motives for r in results] == [[], []]


def test_seed_article_gets_several_motives_with_evidence(clf, shared_dir):
    text = (shared_dir / "seeds" / "002_3a4d68c2236e3f11.txt").read_text(encoding="utf-8")
    result = clf.classify_article("What does Kim get from Russia?", text)
    assert result.on_topic and result.language == "en" and result.language_supported
    assert {"hard_currency", "military_technology", "combat_experience"} <= set(result.motives)
    evidence = result.evidence()
    assert {e["motive"] for e in evidence} == set(result.motives)
    sentences = split_sentences(text)
    for item in evidence:
        assert sentences[item["position"]] == item["text"]
        assert item["score"] >= clf.thresholds[item["motive"]]


def test_non_english_is_never_labelled_as_english(clf):
    from pipeline.classify.e5_runtime import get_multilingual_embedder

    vi = clf.classify_article("Binh sĩ Triều Tiên", "Triều Tiên đã gửi hàng nghìn binh sĩ đến Nga để "
                              "hỗ trợ Matxcơva. Các binh sĩ có thể tham chiến tại Kursk.")
    multilingual = get_multilingual_embedder() is not None
    # read by multilingual-e5 when its build exists (never by the English head), else keywords only
    assert vi.language == "vi" and vi.language_supported is multilingual and vi.on_topic
    if multilingual:
        assert vi.extra.get("embedder", "").startswith("e5")
    else:
        assert vi.motives == [] and all(s.motives == [] for s in vi.sentences)
    short = clf.classify_article("", "Kim.")
    # too short to tell: never called English; the multilingual model (when built) reads it
    assert short.language == "und" and short.language_supported is multilingual and short.motives == []


def test_repeated_sentences_are_embedded_once(clf):
    from pipeline.classify.gate import topic_vectors

    topic_vectors(clf.embedder)  # the gate's topic anchors, embedded once per process
    text = "Sample: a sentence written only for the cache test, number 4711."
    before = clf.embedder.forward_passes
    clf.classify_sentences([text, text])
    assert clf.embedder.forward_passes == before + 1
    # the headline is a motive unit too: the same text as title costs nothing either
    result = clf.classify_article(text, text + " " + text, language="en")
    assert clf.embedder.forward_passes == before + 1
    assert result.title is not None and result.title.position == -1
    clf.classify_article("Sample headline for the cache test", text + " " + text, language="en")
    assert clf.embedder.forward_passes == before + 2  # only the new headline


def test_importing_the_package_loads_no_heavy_library():
    """DAG files import pipeline.classify at parse time: torch must wait for the first call."""
    import subprocess
    import sys

    code = ("import sys, pipeline.classify, pipeline.cli.classify; "
            "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'elasticsearch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lone_surrogates_are_repaired_not_fatal():
    """A lone surrogate (a JSON ``\\ud800`` escape) reaches the classifier as valid text."""
    clf = get_classifier()
    result = clf.classify_article("North Korean\ud800 troops in Kursk",
                                  "North Korea sent troops\udfff to fight for Russia. They were paid.", "en")
    assert all("\ud800" not in s.text and "\udfff" not in s.text for s in result.sentences)
    assert any("\ufffd" in s.text for s in result.sentences)
    sentences = clf.classify_sentences(["Paid in hard currency\ud800."])
    assert sentences[0].text == "Paid in hard currency\ufffd."
