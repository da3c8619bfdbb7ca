"""Importance and cluster status (pure functions). Sentences are written for these tests."""

from __future__ import annotations

from pipeline.alerts.importance import conditional_or_question, importance
from pipeline.alerts.status import add_dispute, is_denial, status_of, with_status

NAMED = {"text": "South Korea's spy agency said 1,500 more troops arrived in the Far East.",
         "attribution": {"kind": "intelligence", "organisation": "South Korea's spy agency"},
         "figures": [{"kind": "troops", "value": 1500, "text": "1,500 more troops"}],
         "motives": ["combat_experience"], "hedged": False, "hedges": []}
OWN_CONDITIONAL = {"text": "If the deployment reaches 12,000 troops, that would come to about $24 million "
                           "a month.",
                   "attribution": {"kind": "none"},
                   "figures": [{"kind": "usd", "value": 24_000_000, "text": "$24 million a month"}],
                   "motives": ["hard_currency"], "hedged": False, "hedges": []}


def test_a_named_source_with_a_figure_outranks_the_outlets_own_conditional_estimate():
    named = importance(NAMED, "new")
    conditional = importance(OWN_CONDITIONAL, "new")
    assert named.score > 0.6 > 0.3 > conditional.score
    assert named.why.startswith("source: South Korea's spy agency (intelligence)")
    assert "figure: 1,500 more troops" in named.why and "new claim" in named.why
    assert "conditional, not a statement of fact" in conditional.why
    assert "no named source" in conditional.why


def test_news_corroboration_and_hedging_move_the_score_the_right_way():
    new, update, repeat = (importance(NAMED, e).score for e in ("new", "update", "repeat"))
    assert new > update > repeat
    assert importance(NAMED, "new", independent_outlets=3).score > importance(NAMED, "new").score
    hedged = {**NAMED, "hedged": True, "hedges": ["reportedly"]}
    low = importance(hedged, "new")
    assert low.score < new and "hedged: reportedly" in low.why
    assert 0.0 <= importance({"text": "x"}, "repeat").score <= 1.0


def test_questions_and_conditionals_are_told_apart_from_reports():
    assert conditional_or_question("Could Pyongyang send more troops?") == "question"
    assert conditional_or_question("Why is Kim sending soldiers to Kursk?") == "question"
    assert conditional_or_question("If the war ends, the workers could return home.") == "conditional"
    assert conditional_or_question(
        "Analysts say that, if casualties mount, the cost would rise sharply.") == "conditional"
    # a condition attached to a plain report is still a report
    assert conditional_or_question("Russia will send air defence systems if needed, officials said.") is None
    assert conditional_or_question(NAMED["text"]) is None


def test_cluster_status_moves_to_corroborated_and_disputed_and_stays_disputed():
    c = with_status({"id": "cl-1", "independent_outlets": 1}, "2026-03-01T00:00:00.000Z", "first report")
    assert c["status"] == "single_source" and len(c["status_history"]) == 1
    c = with_status({**c, "independent_outlets": 2}, "2026-03-02T00:00:00.000Z", "second outlet")
    assert c["status"] == "corroborated" and [h["status"] for h in c["status_history"]] == [
        "single_source", "corroborated"]
    d = add_dispute(c, "claim-9", "denied by the Kremlin", "2026-03-03T00:00:00.000Z")
    assert d["status"] == "disputed" and d["dispute_reasons"] == ["denied by the Kremlin"]
    assert add_dispute(d, "claim-9", "denied by the Kremlin", "2026-03-04T00:00:00.000Z") == d
    more = with_status({**d, "independent_outlets": 5}, "2026-03-05T00:00:00.000Z", "more outlets")
    assert status_of(more) == "disputed" and len(more["status_history"]) == 3


def test_denials_are_recognised_and_plain_reports_are_not():
    assert is_denial("The Kremlin denied that North Korean troops were fighting in Kursk.")
    assert is_denial("Moscow dismissed the reports as fabricated.")
    assert is_denial("Pyongyang called the claims baseless.")
    assert not is_denial(NAMED["text"])
    assert not is_denial("The ministry said troops were rotated out of the region.")
