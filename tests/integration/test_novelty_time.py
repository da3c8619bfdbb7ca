"""Novelty on the real Elasticsearch node: the kNN candidate search stays, the decision on the
candidates now checks the event and the publication dates. SAMPLE sentences, written for this test."""

from __future__ import annotations

from typing import Any

from pipeline.alerts.novelty import NoveltyChecker
from pipeline.claims.figures import parse_figures

NOW = "2026-03-02T09:30:00.000Z"
SUMMONED = "The foreign ministry in Seoul summoned the Russian ambassador over the new defence pact."
SUMMONED_AGAIN = "Seoul's foreign ministry summoned Russia's ambassador to protest against the defence pact."
SIGNED = "Russia and North Korea signed a mutual defence pact at a summit."
IN_FORCE = "The mutual defence pact between Russia and North Korea entered into force."


def claim(cid: str, text: str, published: str | None, outlet: str = "wire") -> dict[str, Any]:
    from pipeline.classify.backends import get_embedder

    return {"id": cid, "text": text, "outlet": outlet, "outlets": [outlet], "article_id": f"art-{cid}",
            "motives": [], "figures": [f.as_doc() for f in parse_figures(text)], "first_seen": NOW,
            "published": published, "attribution": {"kind": "official"},
            "embedding": [float(x) for x in get_embedder("exact").embed([text])[0]]}


def store(es: Any, settings: Any, checker: NoveltyChecker, c: dict[str, Any]) -> str:
    """Decide a claim and write its cluster, as the alert task does, so the next one finds it by kNN."""
    from pipeline.es.schema import ensure_indices

    ensure_indices(es, settings, ["clusters"])
    match = checker.decide(c, NOW)
    es.index(index=settings.index("clusters"), id=match.cluster["id"], document=match.cluster, refresh=True)
    return match.event


def fresh(es: Any, settings: Any) -> NoveltyChecker:
    return NoveltyChecker(es, settings.index("clusters"))


def test_the_same_kind_of_event_months_apart_is_new_and_days_apart_a_repeat(es, settings):
    assert store(es, settings, fresh(es, settings), claim("c1", SUMMONED, "2024-06-20T09:00:00Z")) == "new"
    # A later run (so the first cluster comes from the kNN search, not from memory).
    months = fresh(es, settings).decide(claim("c2", SUMMONED_AGAIN, "2024-10-21T09:00:00Z"), NOW)
    assert months.event == "new" and months.cluster["id"] == "cl-c2"
    days = fresh(es, settings).decide(claim("c3", SUMMONED_AGAIN, "2024-06-21T15:00:00Z"), NOW)
    assert days.event == "repeat" and days.cluster["id"] == "cl-c1"
    assert days.cluster["last_seen"] == "2024-06-21T15:00:00Z"  # the publication date, not NOW


def test_a_treaty_signing_and_its_entry_into_force_are_two_events(es, settings):
    assert store(es, settings, fresh(es, settings), claim("s1", SIGNED, "2024-12-01T09:00:00Z")) == "new"
    later = fresh(es, settings).decide(claim("s2", IN_FORCE, "2024-12-04T09:00:00Z"), NOW)
    assert later.event == "new" and later.cluster["id"] == "cl-s2"


# Across languages: MiniLM vectors of two languages are unrelated, so a claim is compared with
# clusters in other languages by its multilingual vector (``embedding_xl``). The vectors here are
# made up (cosine 0.9 between the two sides) so the test pins the search and the decision, not e5.
KILLED_EN = "Ukraine's military intelligence says 200 North Korean soldiers were killed in the Kursk region."
KILLED_DE = ("Nach Angaben des ukrainischen Militärgeheimdienstes wurden in der Region Kursk 200 "
             "nordkoreanische Soldaten getötet.")
KILLED_DE_DONETSK = KILLED_DE.replace("Kursk", "Donezk")


def xl_vector(cosine: float) -> list[float]:
    """A unit vector at ``cosine`` from the first axis."""
    vec = [0.0] * 384
    vec[0], vec[1] = cosine, (1.0 - cosine * cosine) ** 0.5
    return vec


def xl_claim(cid: str, text: str, language: str, cosine: float, model: str = "e5-test") -> dict[str, Any]:
    return claim(cid, text, "2024-12-16T09:00:00Z") | {
        "language": language, "embedding_xl": xl_vector(cosine), "embedding_xl_model": model}


def test_a_translation_joins_the_cluster_of_another_language_a_different_claim_does_not(es, settings):
    assert store(es, settings, fresh(es, settings), xl_claim("x1", KILLED_EN, "en", 1.0)) == "new"
    stored = es.get(index=settings.index("clusters"), id="cl-x1")["_source"]
    assert stored["language"] == "en" and stored["embedding_xl_model"] == "e5-test"
    de = fresh(es, settings).decide(xl_claim("x2", KILLED_DE, "de", 0.9), NOW)
    assert de.event == "repeat" and de.cluster["id"] == "cl-x1"
    assert abs(de.cosine - 0.9) < 1e-3  # judged by the multilingual cosine, not MiniLM's
    # Another place, however close the vectors: a different claim.
    other = fresh(es, settings).decide(xl_claim("x3", KILLED_DE_DONETSK, "de", 0.9), NOW)
    assert other.event == "new" and other.cluster["id"] == "cl-x3"
    # Vectors of another e5 build are never compared: that cluster is left to MiniLM, as before e5.
    checker = fresh(es, settings)
    query = xl_claim("x4", KILLED_DE, "de", 0.9, model="e5-other")
    assert [c for ok, found in checker._searches(query) if ok for c in found] == []
    assert abs(checker.decide(query, NOW).cosine - 0.9) > 0.05


def test_a_translation_finds_a_cluster_made_earlier_in_the_same_run(es, settings):
    from pipeline.es.schema import ensure_indices

    ensure_indices(es, settings, ["clusters"])
    checker = fresh(es, settings)
    assert checker.decide(xl_claim("y1", KILLED_EN, "en", 1.0), NOW).event == "new"
    de = checker.decide(xl_claim("y2", KILLED_DE, "de", 0.9), NOW)
    assert de.event == "repeat" and de.cluster["id"] == "cl-y1"
    assert checker.decide(xl_claim("y3", KILLED_DE, "de", 0.5), NOW).event == "new"  # below the bar


# Two claims in one language MiniLM cannot read (it was trained on English) are compared by e5
# too: MiniLM rates any two Polish sentences alike.
SENT_PL = "Korea Północna wysłała kolejnych żołnierzy do Rosji, podał wywiad."
SENT_PL_AGAIN = "Wywiad: do Rosji trafili kolejni żołnierze wysłani przez Koreę Północną."
SUMMONED_PL = "Seul wezwał ambasadora Rosji w sprawie żołnierzy z Korei Północnej."


def test_two_claims_in_one_language_other_than_english_are_judged_by_e5(es, settings):
    assert store(es, settings, fresh(es, settings), xl_claim("p1", SENT_PL, "pl", 1.0)) == "new"
    checker = fresh(es, settings)
    query = xl_claim("p2", SENT_PL_AGAIN, "pl", 0.9)
    searches = {by_e5: [c[1]["id"] for c in found] for by_e5, found in checker._searches(query)}
    assert searches == {True: ["cl-p1"], False: []}
    again = checker.decide(query, NOW)
    assert again.event == "repeat" and again.cluster["id"] == "cl-p1" and abs(again.cosine - 0.9) < 1e-3
    # Close vectors, another event (a summons, not a deployment): a claim of its own.
    summoned = fresh(es, settings).decide(xl_claim("p3", SUMMONED_PL, "pl", 0.9), NOW)
    assert summoned.event == "new"
    # An English claim still finds English clusters by MiniLM.
    assert store(es, settings, fresh(es, settings), xl_claim("e1", KILLED_EN, "en", 1.0)) == "new"
    english = {by_e5: [c[1]["id"] for c in found]
               for by_e5, found in fresh(es, settings)._searches(xl_claim("e2", KILLED_EN, "en", 0.2))}
    assert "cl-e1" in english[False] and "cl-e1" not in english[True]
