"""Feedback documents in the real Elasticsearch: recorded once, with the claim's fields; the report
and the evaluation labels read them back."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import ServiceUnavailable
from pipeline.es.client import build_client
from pipeline.es.schema import ensure_indices
from pipeline.feedback import (
    FeedbackToken,
    ensure_feedback_index,
    feedback_labels,
    feedback_recorded,
    feedback_report,
    format_report,
    record_feedback,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

CLAIMS = [
    {"id": "c-official", "text": "The ministry says 1,000 troops arrived in Kursk.", "article_id": "art-1",
     "motives": ["combat_experience"], "on_topic": True, "novelty": "new", "outlet": "wire-a",
     "source_id": "wire-a", "source_name": "Wire A",
     "attribution": {"speaker": "a spokesman", "organisation": "Ministry of Defence", "kind": "official"}},
    {"id": "c-outlet", "text": "The deal could bring hard currency.", "article_id": "art-2",
     "motives": ["hard_currency", "economic_aid"], "on_topic": True, "novelty": "update", "outlet": "paper-b",
     "source_id": "paper-b", "source_name": "Paper B", "attribution": {}},
]


def _token(claim_id: str, kind: str, alert: str = "alert-1", sub: str = "analysts") -> FeedbackToken:
    return FeedbackToken(alert_id=alert, claim_id=claim_id, cluster_id=f"cluster-{claim_id}",
                         subscription_id=sub, kind=kind, expires=NOW + timedelta(days=14))


@pytest.fixture
def indexed(es, settings):
    ensure_indices(es, settings, ["claims"])
    ensure_feedback_index(es, settings)
    for claim in CLAIMS:
        es.index(index=settings.index("claims"), id=claim["id"], document=claim, refresh=True)
    return settings


def _docs(es, settings) -> list[dict]:
    es.indices.refresh(index=settings.index("feedback"))
    hits = es.search(index=settings.index("feedback"), size=100, sort=[{"id": "asc"}])["hits"]["hits"]
    return [h["_source"] for h in hits]


def test_a_verdict_is_recorded_once_with_the_claims_fields(es, indexed):
    token = _token("c-official", "useful")
    assert feedback_recorded(es, indexed, token) is False
    first = record_feedback(es, indexed, token, now=NOW, key_index=1)
    assert first.created is True and first.id == token.feedback_id
    assert feedback_recorded(es, indexed, token) is True  # real-time get, before any refresh
    replay = record_feedback(es, indexed, token, now=NOW + timedelta(hours=1))
    assert replay.created is False
    docs = _docs(es, indexed)
    assert len(docs) == 1
    doc = docs[0]
    assert doc["recorded_at"] == "2026-03-02T12:00:00.000Z"  # the replay changed nothing
    assert (doc["kind"], doc["claim_id"], doc["alert_id"], doc["subscription_id"]) == \
        ("useful", "c-official", "alert-1", "analysts")
    assert (doc["outlet"], doc["source_name"], doc["motives"]) == ("wire-a", "Wire A", ["combat_experience"])
    assert doc["attribution_source"] == "Ministry of Defence" and doc["attribution"]["kind"] == "official"
    assert doc["claim_text"].startswith("The ministry says") and doc["key_index"] == 1
    assert doc["link_expires"] == "2026-03-16T12:00:00.000Z" and doc["claim_found"] is True


def test_an_unknown_claim_is_still_recorded_without_its_fields(es, indexed):
    result = record_feedback(es, indexed, _token("gone", "not_on_topic"), now=NOW)
    assert result.created and result.document["claim_found"] is False
    assert _docs(es, indexed)[0]["motives"] == []


def test_elasticsearch_down_records_nothing_and_says_unavailable(es, indexed):
    dead = replace(indexed, elasticsearch=replace(indexed.elasticsearch, url=f"http://127.0.0.1:{_closed_port()}",
                                                  request_timeout=2.0))
    with pytest.raises(ServiceUnavailable):
        record_feedback(build_client(dead), dead, _token("c-official", "useful"), now=NOW)
    assert _docs(es, indexed) == []


def _record_sample(es, settings) -> None:
    for claim, kind, alert, sub in [("c-official", "useful", "a1", "analysts"),
                                    ("c-official", "useful", "a2", "desk"),
                                    ("c-official", "not_new", "a3", "desk"),
                                    ("c-outlet", "wrong_motive", "a4", "analysts"),
                                    ("c-outlet", "not_on_topic", "a4", "analysts"),
                                    ("c-outlet", "useful", "a5", "desk")]:
        record_feedback(es, settings, _token(claim, kind, alert, sub), now=NOW)
    record_feedback(es, settings, _token("c-official", "useful", "a1", "analysts"), now=NOW)  # replay
    es.indices.refresh(index=settings.index("feedback"))


def test_report_counts_per_motive_outlet_and_attribution_source(es, indexed):
    _record_sample(es, indexed)
    report = feedback_report(es, indexed)
    assert report["overall"]["total"] == 6
    assert report["overall"]["counts"] == {"useful": 3, "not_new": 1, "wrong_motive": 1, "not_on_topic": 1}
    assert report["overall"]["useful_share"] == 0.5
    outlets = {r["key"]: r for r in report["by_outlet"]}
    assert outlets["wire-a"]["counts"]["useful"] == 2 and outlets["wire-a"]["useful_share"] == round(2 / 3, 3)
    assert outlets["paper-b"]["total"] == 3 and outlets["paper-b"]["useful_share"] == round(1 / 3, 3)
    motives = {r["key"]: r for r in report["by_motive"]}
    assert set(motives) == {"combat_experience", "hard_currency", "economic_aid"}
    assert motives["hard_currency"]["counts"]["wrong_motive"] == 1
    # only the attributed claim has a source besides its outlet
    assert [(r["key"], r["total"]) for r in report["by_attribution"]] == [("Ministry of Defence", 3)]
    text = format_report(report)
    assert "per motive:" in text and "wire-a" in text and "0.67" in text


def test_report_on_an_empty_installation_is_zero_not_an_error(es, settings):
    report = feedback_report(es, settings)  # the feedback index does not even exist yet
    assert report["overall"]["total"] == 0 and report["by_motive"] == []
    assert "(no feedback)" in format_report(report)


def test_labels_one_row_per_claim_and_verdict(es, indexed):
    _record_sample(es, indexed)
    rows = feedback_labels(es, indexed)
    by_key = {(r["claim_id"], r["kind"]): r for r in rows}
    assert len(rows) == 5
    useful = by_key[("c-official", "useful")]
    assert useful["votes"] == 2 and sorted(useful["subscriptions"]) == ["analysts", "desk"]
    assert useful["on_topic"] is True and useful["novel"] is None
    assert by_key[("c-official", "not_new")]["novel"] is False
    assert by_key[("c-outlet", "not_on_topic")]["on_topic"] is False
    assert by_key[("c-outlet", "wrong_motive")]["motives_wrong"] == ["economic_aid", "hard_currency"]
    assert by_key[("c-outlet", "useful")]["motives_wrong"] == []


def test_cli_report_json_and_labels_export(es, indexed, monkeypatch, tmp_path: Path, capsys):
    _record_sample(es, indexed)
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", indexed.index_prefix)
    assert main(["feedback", "report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overall"]["counts"]["useful"] == 3
    out = tmp_path / "labels.jsonl"
    assert main(["feedback", "labels", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5 and {"claim_id", "kind", "motives", "on_topic"} <= set(lines[0])
    assert main(["feedback", "labels", "--out", str(tmp_path / "missing" / "x.jsonl")]) == 2
    assert "missing/x.jsonl" in capsys.readouterr().err
