"""The "same claim" evaluation gate: labelled pairs (some referencing ../shared at run time) must
keep precision and recall above pinned floors. Floors sit a little under the figures measured when
the thresholds were chosen (all pairs: P 0.889, R 0.762), so a regression fails CI."""

from __future__ import annotations

from pipeline.alerts.evaluate import evaluate_pairs, format_report

FLOOR_PRECISION = 0.80
FLOOR_RECALL = 0.70
FLOOR_EVENT_ACCURACY = 0.90


def test_same_claim_precision_and_recall_stay_above_the_floors(shared_dir):
    result = evaluate_pairs(shared=shared_dir)
    report = format_report(result)
    overall = result["scores"]["all"]
    assert result["pairs"] >= 40, report
    assert overall.precision >= FLOOR_PRECISION, report
    assert overall.recall >= FLOOR_RECALL, report
    assert overall.event_ok / overall.event_total >= FLOOR_EVENT_ACCURACY, report
    assert "precision" in report and "test" in report
