"""Headlines in languages without a verb lexicon, through the real classifier (sentences written
by the team): one with neither a figure nor a source gives way to the body's claims, and stays the
claim when the body has none; English headlines keep their own rule."""

from __future__ import annotations

import pytest

from pipeline.claims.candidates import article_claims

BODY_PL = ("Korea Północna wysłała do Rosji kolejne 3000 żołnierzy, podał w poniedziałek wywiad "
           "Korei Południowej. Żołnierze mają walczyć w obwodzie kurskim.")
NOTHING_PL = "Więcej informacji wkrótce."


@pytest.fixture(scope="module")
def classifier():
    from pipeline.classify import get_classifier

    return get_classifier()


def _claims(classifier, title: str, text: str, language: str) -> list[tuple[str, str]]:
    article = {"id": "t", "title": title, "text": text, "language": language, "source_name": "Gazeta"}
    return [(c.origin, c.text) for c in article_claims(article, classifier)]


def test_a_label_headline_gives_way_to_the_body_claim(classifier):
    found = _claims(classifier, "Ciężkie dni armii Kima. Porażka pod Kurskiem", BODY_PL, "pl")
    assert [origin for origin, _ in found] == ["body"]
    assert "3000" in found[0][1]


def test_a_headline_is_the_claim_when_the_body_has_none(classifier):
    title = "Seul: Korea Północna wysłała kolejnych żołnierzy do Rosji"
    found = _claims(classifier, title, NOTHING_PL, "pl")
    assert [origin for origin, _ in found] == ["headline"]


def test_english_headlines_keep_their_rule(classifier):
    body = "North Korea has sent 3,000 more troops to Russia, South Korea's spy agency said on Monday."
    found = _claims(classifier, "North Korean troops suffer heavy losses near Kursk", body, "en")
    assert sorted(origin for origin, _ in found) == ["body", "headline"]
