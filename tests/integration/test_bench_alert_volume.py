"""``benchmarks/bench_alert_volume.py`` in a reduced form (the first sample articles), so the
benchmark cannot rot: the real stages in this process, the harness's Elasticsearch, a real SMTP
server. Its figures must add up: every email is in the ledger once, the cap and batching delay
events but never drop them, and the index prefix is gone afterwards."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_alert_volume.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_alert_volume", BENCH)
    assert spec and spec.loader, f"cannot load {BENCH}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_busiest_hour_is_a_sliding_half_open_window(bench):
    t = datetime(2025, 1, 1, 6, 0, tzinfo=UTC)
    assert bench.busiest_hour([]) == 0
    assert bench.busiest_hour([t, t + timedelta(minutes=30), t + timedelta(minutes=60)]) == 2
    assert bench.busiest_hour([t + timedelta(minutes=m) for m in (50, 0, 55, 70, 109)]) == 4


def test_subscriptions_file_of_the_configurations_is_valid(bench, tmp_path):
    from pipeline.alerts import load_subscriptions

    configs = bench.configurations(cap=2, min_importance=0.5, every_minutes=20)
    path = tmp_path / "subscriptions.yaml"
    path.write_text(bench.subscriptions_yaml(configs), encoding="utf-8")
    subs = {s.id: s for s in load_subscriptions(path)}
    assert list(subs) == [c.id for c in configs]
    assert subs["immediate-cap"].max_per_hour == 2 and subs["immediate-important"].min_importance == 0.5
    assert subs["batched"].batched and subs["batched"].every_minutes == 20 and subs["digest"].digest
    assert len({s.recipients for s in subs.values()}) == len(configs)  # counted per recipient


def test_reduced_run_adds_up(bench, base_settings, es, tmp_path, capsys):
    cap = 1  # low enough that three articles in twenty minutes overflow it
    configs = bench.configurations(cap=cap, min_importance=0.4, every_minutes=30)
    start = datetime(2025, 3, 4, 6, 0, tzinfo=UTC)
    summary = bench.measure(base_settings, es, tmp_path, items=5, gap_minutes=5, start=start,
                            configs=configs, log=lambda _line: None)
    rows = summary["configs"]
    before, immediate = rows[bench.BEFORE], rows["immediate"]

    assert summary["items"] == 5 and summary["on_topic_items"] == 4
    assert summary["left_queued"] == 0
    assert summary["emails_total"] == summary["distinct_message_ids"] > 0
    assert summary["emails_total"] == sum(r["emails"] for k, r in rows.items() if k != bench.BEFORE)
    # "before" is one email per new or updated claim
    assert before["emails"] == summary["novelty"].get("new", 0) + summary["novelty"].get("update", 0)
    assert before["emails"] == immediate["events"]
    for key, r in rows.items():
        if key == bench.BEFORE:
            continue
        assert r["emails"] == r["ledger_sent"], key
        assert r["events_delivered"] == r["events"], f"{key} dropped claim events"
        assert r["per_on_topic_article"] == round(r["emails"] / 4, 3)
        assert 0 <= r["named_first"] <= r["named_any"] <= r["emails"]
    # bundling: one email per article with claims, fewer than one per claim
    assert 0 < immediate["emails"] < before["emails"]
    assert rows["immediate-cap"]["busiest_hour"] <= cap < immediate["busiest_hour"]
    assert rows["immediate-cap"]["events"] == immediate["events"]
    assert rows["immediate-important"]["events"] <= immediate["events"]
    assert rows["batched"]["busiest_hour"] <= 2 and rows["batched"]["emails"] < immediate["emails"]
    assert rows["digest"]["emails"] == len(summary["digest_days"]) == 1
    assert not es.indices.get(index=f"{summary['index_prefix']}-*", allow_no_indices=True)

    bench.print_table(summary)
    out = capsys.readouterr().out
    for c in configs:
        assert c.label in out
    json.dumps(summary)  # the JSON line main() prints
