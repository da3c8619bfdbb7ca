"""The novelty evaluation gate on labelled pairs: the real pairs of ``../shared/corpus`` (headline plus
summary, with publication dates) and the team's pairs of ``eval/claim_pairs.yaml``, reported apart.

Floors sit a little under the figures measured when the event and time checks were introduced
(item-grouped 5-fold cross-validation, thresholds chosen on the training folds):

* real: same-claim recall 0.667, different-claim merge rate 0.167, 3-way accuracy 0.725
  (before the checks, with the old shipped thresholds: 0.148 / 0.042 / 0.529);
* team: 0.810 / 0.105 / 0.825.

Cross-language pairs compared by multilingual-e5 cosine plus a shared event (when the e5 build is
there): real 0.630 [0.44, 0.80] / 0.167 [0.04, 0.33] / 0.706 cross-validated, one same-language
pair fewer than before because the folds no longer choose the low same-day event bar that used
to catch translations; the shipped defaults (in-sample) 0.889 / 0.083 / 0.843, from 0.778 / 0.083.

Searching only the similarity bar and the time window (the other settings fixed, see
``Thresholds``): real 0.630 [0.44, 0.80] / 0.083 [0.00, 0.21] / 0.745 for the first fold
assignment, and over five assignments recall 0.733 (0.63-0.78), merged 0.092 (0.08-0.12).

The issue's target (recall >= 0.9 with <= 10% merged) is not reached for recall; see the errors.
"""

from __future__ import annotations

from pipeline.alerts.novelty_eval import evaluate_pairs, format_report
from pipeline.classify.e5_runtime import get_multilingual_embedder

# (cross-validated) recall floor, merge-rate ceiling, 3-way accuracy floor
FLOORS = {"real": (0.55, 0.15, 0.68), "team": (0.70, 0.20, 0.72)}
# the mean over the fold assignments: recall floor, merge-rate ceiling
FLOORS_REPEATED = {"real": (0.65, 0.15), "team": (0.72, 0.18)}
# The shipped defaults on the real pairs (in-sample: they were chosen on all pairs). Without the
# e5 build the cross-language pairs fall back to MiniLM, which misses them (measured 0.778).
FLOOR_REAL_FIXED_RECALL = 0.85 if get_multilingual_embedder() is not None else 0.70
CEILING_REAL_FIXED_MERGE = 0.15


def test_novelty_stays_above_the_floors_on_real_and_team_pairs(shared_dir):
    result = evaluate_pairs(shared=shared_dir)
    report = format_report(result)
    assert set(result["sets"]) == {"real", "team"}, report
    assert result["sets"]["real"]["pairs"] >= 50 and result["sets"]["team"]["pairs"] >= 40, report
    for name, (recall, merge, accuracy) in FLOORS.items():
        cv = result["sets"][name]["cv"]["metrics"]
        assert cv["recall"] >= recall, f"{name}\n{report}"
        assert cv["merge_rate"] <= merge, f"{name}\n{report}"
        assert cv["accuracy"] >= accuracy, f"{name}\n{report}"
        low, high = result["sets"][name]["cv"]["ci"]["recall"]
        assert low <= cv["recall"] <= high, report
        runs = result["sets"][name]["cv_repeats"]
        assert len(runs) == 5 and runs[0] == cv, report
        mean_recall = sum(r["recall"] for r in runs) / len(runs)
        mean_merge = sum(r["merge_rate"] for r in runs) / len(runs)
        assert mean_recall >= FLOORS_REPEATED[name][0] and mean_merge <= FLOORS_REPEATED[name][1], report
    real = result["sets"]["real"]
    assert real["fixed"]["metrics"]["recall"] >= FLOOR_REAL_FIXED_RECALL, report
    assert real["fixed"]["metrics"]["merge_rate"] <= CEILING_REAL_FIXED_MERGE, report
    # The event and time checks must keep beating the similarity-only rule on real pairs.
    assert real["cv"]["metrics"]["accuracy"] > real["before"]["metrics"]["accuracy"], report
    assert "cross-validated" in report and "[real]" in report and "[team]" in report
