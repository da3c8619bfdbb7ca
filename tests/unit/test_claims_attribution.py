"""Attribution and hedges (SAMPLE sentences written for these tests)."""

from __future__ import annotations

import pytest

from pipeline.claims import claim_id, select_claims
from pipeline.claims.attribution import find_attribution, find_hedges


@pytest.mark.parametrize(("text", "kind", "speaker", "organisation"), [
    ("South Korea's spy agency said on Monday that more troops had left.", "intelligence", None,
     "South Korea's spy agency"),
    ("KCNA reported that Kim Jong Un inspected the returning units.", "state_media", None, "KCNA"),
    ("Losses have exceeded 4,000, Ukraine's General Staff added.", "military", None,
     "Ukraine's General Staff"),
    ("The troops are poorly equipped, said Mina Park, a research fellow at the Asan Institute.", "analyst",
     "Mina Park", "Asan Institute"),
    ("NATO Secretary General Mark Rutte said the troops are in Kursk.", "official", "Mark Rutte", "NATO"),
    ("U.S. officials say Pyongyang has provided shells.", "official", None, None),
    ("More units are on their way, a source familiar with the matter said.", "anonymous", None, None),
    ("The figure comes from a report by the Ministry of Unification.", "none", None, None),
    ("The wages are paid in cash, according to a report by South Korea's Unification Ministry.", "official",
     None, "Unification Ministry"),
])
def test_attribution(text, kind, speaker, organisation):
    att = find_attribution(text)
    assert att.kind == kind
    assert att.speaker == speaker
    if organisation:
        assert organisation in (att.organisation or "")


def test_a_statement_without_a_source_has_kind_none():
    assert find_attribution("North Korea sent troops to Russia.").kind == "none"


@pytest.mark.parametrize(("text", "hedges"), [
    ("North Korea reportedly sent 3,000 more troops in May.", ["reportedly"]),
    ("The soldiers are believed to be in Kursk and may move west.", ["are believed to", "may"]),
    ("Moscow allegedly pays in oil, which could help the regime.", ["allegedly", "could"]),
    ("North Korea sent 3,000 troops in May.", []),
])
def test_hedges(text, hedges):
    assert find_hedges(text) == hedges


class _Result:
    def __init__(self, motives=(), scores=None):
        self.motives = list(motives)
        self.scores = scores or {m: 0.9 for m in motives}


def test_claim_selection_keeps_checkable_topic_sentences_only():
    sentences = [
        "North Korea has sent about 1,500 troops to Russia, the spy agency said.",   # figure + source
        "Kim Jong Un wants the world to take him seriously as a nuclear power.",     # motive + actor
        "The decision is not without risks for anyone involved in it.",             # motive, no actor
        "Prices of rice in the capital rose by 10 percent this spring, traders said.",  # off topic
        "Will North Korea send more troops to Russia next year?",                   # a question
        "North Korea sends troops",                                                  # a headline
    ]
    results = [_Result(), _Result(["prestige"]), _Result(["costs_and_risks"])] + [_Result()] * 3
    picked = select_claims(sentences, results)
    assert [c.position for c in picked] == [0, 1]
    assert picked[0].figures[0].value == 1500 and picked[0].attribution.kind == "intelligence"
    assert picked[1].motives == ["prestige"]


def test_claim_ids_are_deterministic_and_whitespace_insensitive():
    assert claim_id("a1", "North  Korea sent troops.") == claim_id("a1", "north korea sent troops.")
    assert claim_id("a1", "North Korea sent troops.") != claim_id("a2", "North Korea sent troops.")


def test_a_real_corpus_sentence_is_read_at_run_time(shared_dir):
    """A casualty claim from the shared corpus (read at run time, never copied): its figure is an
    open lower bound of casualties and its source is a military staff."""
    import json

    from pipeline.classify.sentences import split_sentences

    lines = (shared_dir / "corpus" / "articles.jsonl").read_text().splitlines()
    articles = [json.loads(line) for line in lines if line.strip()]
    text = next(a["text"] for a in articles if a["id"] == "d011")
    sentence = next(s for s in split_sentences(text) if "4,500" in s)
    (candidate,) = select_claims([sentence])
    (fig,) = candidate.figures
    assert (fig.kind, fig.value, fig.qualifier, fig.high) == ("casualties", 4500, "more_than", float("inf"))
    assert candidate.attribution.kind == "military"
    assert "General Staff" in (candidate.attribution.organisation or "")
