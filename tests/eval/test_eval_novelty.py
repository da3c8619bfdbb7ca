"""Claim novelty on labelled pairs may not fall outside the bounds pinned in eval/baseline.json.

The pairs are the real ones of ``../shared/corpus`` (headline plus summary, with publication dates;
read at run time) and the team's of ``eval/claim_pairs.yaml``, reported apart. The bounds come from
``newswatch eval-claims --write-baseline``: each measured figure less (recall, accuracy) or plus
(merge rate) the larger of a margin and one pair's share. Schemes: item-grouped 5-fold CV, its
mean over five fold assignments, a time split (tuned on the team's and the older real pairs, judged
on the newest real ones), and the shipped thresholds (in-sample for the real pairs).

The issue's target (recall >= 0.9 with <= 10% merged) is met for the merge rate, not for recall;
the report lists the errors.
"""

from __future__ import annotations

import json

import pytest

from pipeline.alerts.claim_pairs import Pair
from pipeline.alerts.novelty_eval import Features, evaluate_pairs, time_split
from pipeline.alerts.novelty_report import BASELINE_FILE, format_report, novelty_floors
from pipeline.classify.e5_runtime import get_multilingual_embedder

BASELINE = json.loads(BASELINE_FILE.read_text(encoding="utf-8"))["novelty"]


@pytest.fixture(scope="module")
def result(shared_dir):
    return evaluate_pairs(shared=shared_dir)


def _scheme(entry: dict, scheme: str) -> dict:
    if scheme == "cv_mean":
        runs = entry["cv_repeats"]
        return {key: sum(float(r[key]) for r in runs) / len(runs)
                for key in ("recall", "merge_rate", "accuracy")}
    return entry[scheme]["metrics"]


CASES = [(name, scheme) for name, schemes in BASELINE["bounds"].items() for scheme in schemes]


@pytest.mark.parametrize(("name", "scheme"), CASES)
def test_novelty_stays_within_its_pinned_bounds(result, name, scheme):
    if name == "real" and get_multilingual_embedder() is None:
        pytest.skip("the real-pair bounds were measured with the multilingual-e5 build, absent here "
                    "(`newswatch model build` makes it): cross-language pairs fall back to MiniLM")
    bounds = BASELINE["bounds"][name][scheme]
    got = _scheme(result["sets"][name], scheme)
    report = format_report(result)
    assert got["recall"] >= bounds["recall_min"], f"{name}/{scheme}\n{report}"
    assert got["merge_rate"] <= bounds["merge_rate_max"], f"{name}/{scheme}\n{report}"
    assert got["accuracy"] >= bounds["accuracy_min"], f"{name}/{scheme}\n{report}"


def test_the_report_carries_intervals_repeats_and_the_time_split(result):
    report = format_report(result)
    assert set(result["sets"]) == {"real", "team"}, report
    assert result["sets"]["real"]["pairs"] >= 50 and result["sets"]["team"]["pairs"] >= 40, report
    for name in ("real", "team"):
        cv = result["sets"][name]["cv"]
        low, high = cv["ci"]["recall"]
        assert low <= cv["metrics"]["recall"] <= high, report
        runs = result["sets"][name]["cv_repeats"]
        assert len(runs) == 5 and runs[0] == cv["metrics"], report
    ts = result["sets"]["real"]["time_split"]
    # the newest ~30% of the real pairs, tested on both kinds
    n_real = result["sets"]["real"]["pairs"]
    assert 0.25 * n_real <= ts["metrics"]["n"] <= 0.45 * n_real, report
    assert ts["metrics"]["same"] and ts["metrics"]["different"], report
    assert "time_split" not in result["sets"]["team"], "the team's pairs have no dates"
    # The event and time checks must keep beating the similarity-only rule on real pairs.
    real = result["sets"]["real"]
    assert real["cv"]["metrics"]["accuracy"] > real["before"]["metrics"]["accuracy"], report
    assert "time split" in report and "[real]" in report and "[team]" in report


def _pair(ids: tuple[str, str], when: tuple[str, str] | None, relation: str = "repeat") -> Pair:
    dates = when or (None, None)
    return Pair("a", "b", relation, group="real" if when else "team", a_date=dates[0], b_date=dates[1],
                ids=ids)


def _features(cosine: float) -> Features:
    return Features(cosine=cosine, lexical=0.5, relation="none", conflict=None, compatible=True,
                    has_figures=False, gap=0.0, match=True)


def test_time_split_tests_the_newest_stories_whole_and_tunes_only_on_older_ones():
    # x1-x2-x3 is one story (linked by items) whose newest item is the newest of all: it must be
    # held out whole, however old its first pair; the pair dated on the cutoff day is not trained on.
    pairs = [
        _pair(("x1", "x2"), ("2024-01-01", "2024-01-02")),
        _pair(("x2", "x3"), ("2024-01-02", "2024-06-01")),
        _pair(("y1", "y2"), ("2024-05-30", "2024-06-01T00:00:00+00:00")),
        _pair(("z1", "z2"), ("2024-02-01", "2024-02-02"), "different"),
        _pair(("w1", "w2"), ("2024-03-01", "2024-03-02")),
        _pair(("t1", "t2"), None),
    ]
    split = time_split(pairs, [_features(0.9)] * len(pairs), share=0.3)
    assert set(split["predictions"]) == {0, 1}
    assert split["test_from"] == "2024-06-01"
    # trained on: z, w (older real) and t (team); y ties with the cutoff and is left out
    assert split["train"] == 3
    assert set(split["predictions"].values()) <= {"repeat", "update", "different"}
    assert split["chosen"] is not None


def test_bounds_take_the_larger_of_the_margin_and_one_pairs_share_and_skip_empty_metrics():
    def m(recall, merge, accuracy, same, different):
        return {"recall": recall, "merge_rate": merge, "accuracy": accuracy, "same": same,
                "different": different, "n": same + different}

    entry = {"cv": {"metrics": m(0.8, 0.1, 0.8, 40, 40)}, "fixed": {"metrics": m(0.9, None, 0.9, 5, 0)},
             "cv_repeats": [m(0.8, 0.1, 0.8, 40, 40), m(0.6, 0.2, 0.7, 40, 40)]}
    out = novelty_floors({"sets": {"x": entry}})
    cv = out["bounds"]["x"]["cv"]
    assert cv == {"recall_min": 0.75, "merge_rate_max": 0.15, "accuracy_min": 0.75}  # margin 0.05
    fixed = out["bounds"]["x"]["fixed"]
    assert fixed == {"recall_min": 0.7, "accuracy_min": 0.7}  # one pair of five: 0.2; no merge bound
    assert out["measured"]["x"]["cv_mean"] == {"recall": 0.7, "merge_rate": 0.15, "accuracy": 0.75}
