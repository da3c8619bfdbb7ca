"""Headlines as claims: attribution by headline convention, publisher suffixes, the question/label
rule and merging with body claims (SAMPLE headlines written for these tests)."""

from __future__ import annotations

import pytest

from pipeline.claims.attribution import find_headline_attribution
from pipeline.claims.candidates import ClaimCandidate, read_sentence
from pipeline.claims.headline import (
    HEADLINE_POSITION,
    merge_headline,
    read_headline,
    same_claim,
    strip_publisher,
)


@pytest.mark.parametrize(("headline", "kind", "speaker", "organisation"), [
    ("North Korean troops reached the front line, U.S. Official Says", "official", None, None),
    ("Pyongyang lost 200 soldiers near Kursk, Seoul says", "official", None, None),
    ("More North Korean artillery shells arrived in Rostov, says Washington", "official", None, None),
    ("North Korea sent 3,000 more troops -report", "anonymous", None, None),
    ("Second battalion of North Korean troops moved west – Yonhap", "media", None, "Yonhap"),
    ("Kim's soldiers are training near Vladivostok – Seoul", "official", None, None),
    ("North Korea has shipped 2,000 more troops to Kursk: Pentagon", "official", None, "Pentagon"),
    ("NATO Chief Says North Korean Units Are Fighting in Kursk", "official", None, "NATO"),
    ("Zelensky: North Korea lost 900 soldiers in a week", "official", "Zelensky", None),
    ("‘Lies’: Kremlin denies North Korean troops are in Kursk", "official", None, "Kremlin"),
    ("Russia Could Train North Korean Pilots – British Intelligence", "intelligence", None, None),
    ("Pyongyang's envoy met Lavrov again, Ivan Petrov says", "official", "Ivan Petrov", None),
])
def test_headline_attribution(headline, kind, speaker, organisation):
    att = find_headline_attribution(headline)
    assert att.kind == kind, att
    assert att.speaker == speaker
    if organisation:
        assert organisation in (att.organisation or "")


@pytest.mark.parametrize("headline", [
    "North Korea sends 1,000 more troops to Russia",                   # a flat statement by the outlet
    "North Korea's troops in Kursk - but few answers in Seoul",       # a lowercase dash clause
    "Putin in Pjöngjang: Vertrag über Partnerschaft",                  # a German topic label, not a source
])
def test_headlines_without_a_source_have_kind_none(headline):
    assert find_headline_attribution(headline, strict=headline.startswith("Putin in")).kind == "none"


@pytest.mark.parametrize(("title", "outlet", "text", "publisher"), [
    ("North Korean troops reach Kursk | Reuters", None, "North Korean troops reach Kursk", "Reuters"),
    ("Seoul confirms second deployment - NK News", "NK News", "Seoul confirms second deployment", "NK News"),
    ("Seoul confirms second deployment - NK News", None, "Seoul confirms second deployment", "NK News"),
    # From another outlet, a dash suffix is the cited source and stays for the attribution parser.
    ("Seoul confirms second deployment – Yonhap", "The Moscow Times",
     "Seoul confirms second deployment – Yonhap", None),
])
def test_publisher_suffix(title, outlet, text, publisher):
    assert strip_publisher(title, outlet) == (text, publisher)


def test_a_publisher_suffix_is_not_the_source():
    head = read_headline("North Korea sent 2,000 more troops | Northwire Daily", outlet="Northwire Daily")
    assert head.claim and head.publisher == "Northwire Daily" and head.attribution.kind == "none"
    assert head.text == "North Korea sent 2,000 more troops" and head.figures[0].value == 2000


@pytest.mark.parametrize(("title", "language", "claim", "reason"), [
    ("Ministry says 2,000 more troops arrived", "en", True, ""),
    ("Russian lawmakers ratify the pact with Pyongyang", "en", True, ""),
    ("How will Kim use his new Russian friends?", "en", False, "question"),
    ("What North Korea gets from Moscow", "en", False, "question"),               # explainer, no "?"
    ("North Korean troops in Kursk: a timeline of the deployment", "en", False, "label (no verb)"),
    ("Live: North Korean soldiers captured near Kursk", "en", True, ""),
    ("Kim has sent troops to Russia. What does he get?", "en", True, ""),
    ("Nordkorea und Russland", "de", False, "too short"),
    ("Żołnierze Korei Północnej trafili do Rosji", "pl", True, ""),            # no verb test outside English
])
def test_which_headlines_are_claims(title, language, claim, reason):
    head = read_headline(title, language=language)
    assert (head.claim, head.reason) == (claim, reason)
    if title.startswith("Kim has"):
        assert head.text == "Kim has sent troops to Russia."


def test_a_report_suffix_is_a_hedge():
    head = read_headline("North Korea readies 5,000 more troops -report")
    assert "report" in head.hedges and head.attribution.kind == "anonymous"


def _head(text: str) -> ClaimCandidate:
    h = read_headline(text)
    return ClaimCandidate(HEADLINE_POSITION, h.text, h.figures, h.attribution, h.hedges, ["costs_and_risks"],
                          {"costs_and_risks": 0.8}, origin="headline")


def test_the_same_claim_in_headline_and_body_is_kept_once_with_merged_source_and_figures():
    head = _head("Seoul says 300 North Korean soldiers killed near Kursk")
    same = read_sentence(0, "Some 300 North Korean soldiers have been killed in fighting near Kursk, "
                            "lawmakers were told on Thursday.")
    other = read_sentence(1, "North Korea also supplied 100 artillery systems, the spy agency said.")
    merged = merge_headline(head, [same, other])
    assert len(merged) == 2
    kept = next(c for c in merged if "300" in c.text)
    assert kept.figures and kept.figures[0].value == 300
    assert kept.attribution.kind != "none" and "costs_and_risks" in kept.motives


def test_different_figures_stay_two_claims():
    assert not same_claim("Seoul says 300 North Korean soldiers killed near Kursk",
                          read_headline("Seoul says 300 North Korean soldiers killed near Kursk").figures,
                          "Some 100 North Korean soldiers have been killed near Kursk, Seoul said.",
                          read_sentence(0, "Some 100 North Korean soldiers were killed near Kursk.").figures)
    head = _head("Seoul says 300 North Korean soldiers killed near Kursk")
    body = read_sentence(0, "Some 100 North Korean soldiers have been killed near Kursk, Seoul said.")
    assert [c.origin for c in merge_headline(head, [body])] == ["headline", "body"]


def test_a_vague_headline_figure_agrees_with_the_exact_body_figure():
    head = _head("North Korea sending thousands of troops to help Russia, says Seoul")
    body = read_sentence(0, "North Korea has sent 3,000 troops to help Russia in its war, Seoul said.")
    (kept,) = merge_headline(head, [body])
    assert kept.origin == "body" and kept.figures[0].value == 3000


def test_unrelated_topic_sentences_are_not_merged():
    head = _head("Russia and North Korea resume rail service")
    body = read_sentence(0, "North Korea has sent 3,000 troops to Russia, the spy agency said.")
    assert len(merge_headline(head, [body])) == 2
