"""Readers' verdicts as labels on what was alerted (pure function)."""

from __future__ import annotations

from pipeline.feedback.agreement import format_agreement, reader_agreement, wilson


def row(claim: str, kind: str, motives: tuple[str, ...] = (), votes: int = 1) -> dict:
    return {"claim_id": claim, "kind": kind, "motives": list(motives), "votes": votes}


def test_verdicts_become_precisions_of_the_alerted_decisions():
    rows = [row("c1", "useful", ("hard_currency",)), row("c2", "wrong_motive", ("hard_currency",)),
            row("c3", "not_on_topic"), row("c4", "not_new", ("combat_experience",)),
            row("c5", "useful", ("combat_experience",), votes=2), row("c5", "wrong_motive",
                                                                     ("combat_experience",))]
    result = reader_agreement(rows)
    assert result["claims"] == 5
    assert (result["on_topic"]["agree"], result["on_topic"]["n"]) == (4, 5)
    # c4 has a motive but only a novelty verdict: it says nothing about motives
    assert (result["motives"]["agree"], result["motives"]["n"]) == (2, 3)
    assert (result["new"]["agree"], result["new"]["n"]) == (4, 5)
    assert result["per_motive"]["hard_currency"]["share"] == 0.5
    assert result["per_motive"]["combat_experience"]["agree"] == 1  # 2 useful votes beat 1
    assert "right motives 0.67" in format_agreement(result)


def test_a_tie_counts_against_the_pipeline_and_no_verdicts_is_no_figure():
    tie = reader_agreement([row("c1", "useful", ("cash",)), row("c1", "wrong_motive", ("cash",))])
    assert tie["motives"]["agree"] == 0
    empty = reader_agreement([])
    assert empty["on_topic"]["share"] is None and "no verdicts" in format_agreement(empty)


def test_wilson_intervals_are_sane_at_the_edges():
    assert wilson(0, 0) is None
    lo, hi = wilson(10, 10)
    assert hi == 1.0 and 0.6 < lo < 0.8
    lo, hi = wilson(5, 10)
    assert lo < 0.5 < hi
