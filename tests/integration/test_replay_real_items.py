"""End to end on the labelled real news items (issue 13): served as loopback RSS feeds by month,
feed text only, through the functions the DAG tasks call in the DAGs' order, against the real
Elasticsearch node and a real SMTP server. The figures must stay within the bounds pinned in
eval/baseline.json (``replay``; ``benchmarks/bench_replay.py --write-baseline`` pins them and prints
the same run item by item).

The corpus is read from ../shared at run time; the test skips with the reason where it is absent.
"""

from __future__ import annotations

import json

import pytest

from pipeline.classify.evaluate import BASELINE_FILE
from tests.replay_run import replay
from tests.replay_support import ITEMS_FILE, PAIRS_FILE, load_items, load_pairs

pytestmark = pytest.mark.slow

BOUNDS = json.loads(BASELINE_FILE.read_text(encoding="utf-8"))["replay"]["bounds"]
OFF_TOPIC_TARGET = 0.02  # the ceiling on off-topic items alerting


@pytest.fixture(scope="module")
def result(shared_dir, base_settings, es):
    if not ITEMS_FILE.is_file() or not PAIRS_FILE.is_file():
        pytest.skip(f"{ITEMS_FILE} or {PAIRS_FILE} is absent: the replay needs the real corpus")
    return replay(load_items(), load_pairs(), base_settings, es)


def test_every_item_reaches_the_index_and_every_stage_runs_clean(result):
    assert len(result.rounds) >= 12  # the corpus spans more than a year of months
    for name, released, counts in result.rounds:
        assert counts["failed_sources"] == 0, name
        assert counts["claim_failures"] == 0 and counts["novelty_errors"] == 0, name
        assert counts["new_articles"] <= released, name
    assert not [t.item.id for t in result.traces.values() if t.article is None]
    assert not result.lost.get("other"), result.lost.get("other")


def test_the_replay_stays_within_its_pinned_bounds(result):
    m = result.measures()
    items = result.items
    assert m["on_topic"] == sum(i.on_topic for i in items)
    assert m["off_topic"] == sum(not i.on_topic for i in items)
    assert m["on_topic_alerted"] >= BOUNDS["on_topic_alerted_min"], m
    assert m["on_topic_covered"] >= BOUNDS["on_topic_covered_min"], m
    assert m["off_topic_alerted"] <= BOUNDS["off_topic_alerted_max"], m
    assert m["off_topic_alerted"] <= OFF_TOPIC_TARGET * m["off_topic"], m
    assert m["same_claim_pairs_two_new"] <= BOUNDS["same_claim_pairs_two_new_max"], m
    assert m["same_claim_pairs_joined"] >= BOUNDS["same_claim_pairs_joined_min"], m
    assert m["different_pairs_joined"] <= BOUNDS["different_pairs_joined_max"], m


def test_alerts_trace_back_to_their_items_and_reach_the_subscriber(result):
    # Every alert event was traced to an item, and each alerted item's alert names a claim of it.
    for trace in result.traces.values():
        claim_ids = {c["_id"] for c in trace.claims}
        for alert in trace.alerts:
            assert alert.get("claim_id") in claim_ids or alert.get("article_id") == trace.article["_id"]
    assert result.alerts >= len(result.on_hit) + len(result.off_hit)
    assert 0 < result.emails <= result.alerts
