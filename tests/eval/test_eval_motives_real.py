"""Motives on real news (issue 13): the evaluation, its floors, and the learned head's mechanics.

Data is read from ../shared at run time; floors live in eval/baseline.json under ``motives_real``
(``newswatch eval --motives-real --write-baseline``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.classify import motive_eval
from pipeline.classify.head import MotiveHead, labels_from_row, load_learned_head
from pipeline.taxonomy import load_taxonomy

BASELINE = json.loads(motive_eval.BASELINE_FILE.read_text(encoding="utf-8"))
BOOTSTRAP = 300  # intervals are reported, not asserted: fewer resamples keep this fast


@pytest.fixture(scope="module")
def data(shared_dir):
    return motive_eval.motive_dataset(shared_dir)


@pytest.fixture(scope="module")
def report(data):
    return motive_eval.evaluate_prepared(data, bootstrap=BOOTSTRAP)


def _floor_cases():
    for method, schemes in BASELINE["motives_real"]["floors"].items():
        for scheme, subsets in schemes.items():
            for subset in subsets:
                yield method, scheme, subset


@pytest.mark.parametrize(("method", "scheme", "subset"), list(_floor_cases()))
def test_motives_on_real_data_are_at_or_above_their_floors(report, method, scheme, subset):
    floors = BASELINE["motives_real"]["floors"][method][scheme][subset]
    s = report[scheme][method][subset]
    for key, floor in floors.items():
        value = s["micro"]["f1"] if key == "micro_f1" else s["per_motive"][key[3:]]["f1"]
        assert value >= floor, (method, scheme, subset, key, value, floor, s["errors"])


def test_the_data_is_on_topic_english_with_both_kinds(data, shared_dir):
    kinds = [i.kind for i in data.items]
    assert kinds.count("headline") == 64 and kinds.count("article") == 7
    rows = [json.loads(line) for line in (shared_dir / "corpus" / "news_items.jsonl").open(encoding="utf-8")]
    on_en = {f"news_items:{r['id']}" for r in rows if r["on_topic"] and r["language"] == "en"}
    assert {i.id for i in data.items if i.kind == "headline"} == on_en
    # a feed item's title is its first unit: headline-only items still have something to score
    assert all(i.units and i.units[0] == i.title for i in data.items if i.title)


def test_the_report_compares_all_methods_with_intervals(report):
    for scheme in ("grouped_cv", "time_split"):
        for method in motive_eval.METHODS:
            micro = report[scheme][method]["all"]["micro"]
            low, high = micro["f1_ci95"]
            assert low <= micro["f1"] <= high
            assert set(report[scheme][method]["all"]["per_motive"]) == set(load_taxonomy().top_level)
    # scored on the same items: every method sees the same gold support
    supports = {report["grouped_cv"][m]["all"]["micro"]["support"] for m in motive_eval.METHODS}
    assert len(supports) == 1 and supports.pop() >= 40


def test_every_fold_holds_out_whole_outlets(data, monkeypatch):
    seen = []
    real_fit = motive_eval.fit_learned
    monkeypatch.setattr(motive_eval, "fit_learned",
                        lambda p, rows, **kw: seen.append(rows.copy()) or real_fit(p, rows, **kw))
    preds = motive_eval.grouped_cv(data)
    groups = data.groups
    assert len(seen) == motive_eval.OUTER_FOLDS
    tested = np.zeros(len(groups), dtype=bool)
    for train in seen:
        assert not set(groups[~train]) & set(groups[train])
        tested |= ~train
    assert tested.all() and preds["learned"].shape == (len(groups), 8)


def test_time_split_trains_only_on_older_items(data):
    train, test = motive_eval.time_split_rows(data)
    published = np.array([i.published.timestamp() for i in data.items])
    assert test.sum() >= 0.15 * len(test) and train.sum() > 40
    assert not (train & test).any() and published[train].max() < published[test].min()


def test_optional_motives_are_neither_rewarded_nor_penalised():
    ids = ["a", "b"]
    gold = np.array([[True, False], [False, False]])
    optional = np.array([[False, True], [False, False]])
    with_optional = motive_eval.summarise(ids, ["x", "y"], gold, np.array([[True, True], [False, False]]),
                                          optional, bootstrap=10)
    without = motive_eval.summarise(ids, ["x", "y"], gold, np.array([[True, False], [False, False]]),
                                    optional, bootstrap=10)
    assert with_optional["micro"] == without["micro"] and with_optional["micro"]["f1"] == 1.0
    false_alarm = motive_eval.summarise(ids, ["x", "y"], gold, np.array([[True, False], [False, True]]),
                                        optional, bootstrap=10)
    assert false_alarm["micro"]["precision"] == 0.5 and false_alarm["errors"] == [
        {"id": "y", "missed": [], "false": ["b"]}]


def test_children_imply_parents_and_only_refine_a_learned_parent():
    taxonomy = load_taxonomy()
    ids = taxonomy.ids
    row = np.zeros(len(ids))
    row[ids.index("costs_and_risks.casualties")] = 0.9
    thresholds = {m: 0.5 for m in ids}
    assert labels_from_row(taxonomy, ids, row, thresholds) == ["costs_and_risks",
                                                               "costs_and_risks.casualties"]
    # the learned head decided the parent: a child alone does not bring it back
    assert labels_from_row(taxonomy, ids, row, thresholds, learned=("costs_and_risks",)) == []
    row[ids.index("costs_and_risks")] = 0.7
    assert "costs_and_risks.casualties" in labels_from_row(taxonomy, ids, row, thresholds,
                                                           learned=("costs_and_risks",))


def test_trained_head_holds_numbers_only_and_the_classifier_head_loads_it(data, shared_dir, tmp_path):
    out = tmp_path / "motive_head.json"
    written = motive_eval.train_motive_head(shared_dir, out)
    text = out.read_text(encoding="utf-8")
    # no corpus text in the repo: no title of any item is in the file
    assert not [i.title for i in data.items if i.title and i.title in text]
    assert written["ids"] == load_taxonomy().top_level
    assert all(0.2 <= t <= 0.9 for t in written["thresholds"].values())
    taxonomy = load_taxonomy()
    learned = load_learned_head(taxonomy, out)
    assert learned is not None and learned.coef.shape == (8, 392)
    from pipeline.classify.backends import get_embedder

    embedder = get_embedder()
    sentences = ["Seoul says 300 North Korean soldiers were killed and 2,700 wounded in Kursk.",
                 "The weather in the capital was mild on Tuesday."]
    vectors = embedder.embed(sentences)
    scores = learned.score(vectors, np.zeros((2, 8)))
    k = learned.ids.index("costs_and_risks")
    assert scores[0, k] > learned.thresholds["costs_and_risks"] > scores[1, k]
    # the classifier's head uses the learned scores for the top-level ids only when asked to
    head = MotiveHead(taxonomy, embedder.embed, learned=False,
                      model_id=getattr(embedder, "identity", embedder.name))
    assert head.learned is None


def test_a_broken_learned_head_file_is_a_clear_error(tmp_path):
    from pipeline.errors import ClassifierError

    bad = tmp_path / "motive_head.json"
    bad.write_text('{"ids": ["hard_currency"]', encoding="utf-8")
    with pytest.raises(ClassifierError, match="motive_head.json"):
        load_learned_head(load_taxonomy(), bad)
