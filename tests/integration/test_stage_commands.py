"""The classify and claims stages run by hand with the CLI, as an operator replays a run: the same
functions the classify DAG calls, at a given time (``--now``); and readers' feedback as labels for
``newswatch eval``."""

from __future__ import annotations

import json

from pipeline.cli import main
from pipeline.es.bulk import bulk_write
from pipeline.es.schema import ensure_indices

REPLAY = "2026-02-01T06:30:00Z"


def test_classify_pending_then_extract_claims_at_a_replayed_time(es, settings, shared_dir, monkeypatch,
                                                                  capsys):
    rows = [json.loads(line) for line in
            (shared_dir / "corpus" / "articles.jsonl").read_text(encoding="utf-8").splitlines()]
    article = next(r for r in rows if r["id"] == "d002")
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
    ensure_indices(es, settings, ["articles"])
    report = bulk_write(es, settings.index("articles"), [{
        "id": "a-1", "title": article["title"], "text": article["text"], "language": "en",
        "status": "extracted", "url": "http://127.0.0.1:9/a-1", "source_id": "wire",
        "outlets": ["wire"]}], refresh=True)
    assert report.failed == 0

    assert main(["classify", "--pending", "--now", REPLAY]) == 0
    classified = json.loads(capsys.readouterr().out)
    assert classified["classified"] == 1 and classified["on_topic_ids"] == ["a-1"]
    stored = es.get(index=settings.index("articles"), id="a-1")["_source"]
    assert stored["status"] == "classified" and stored["classified_at"] == "2026-02-01T06:30:00.000Z"

    assert main(["claims", "extract", "--now", REPLAY]) == 0
    extracted = json.loads(capsys.readouterr().out)
    assert extracted["articles"] == 1 and extracted["claims"] > 0
    es.indices.refresh(index=settings.index("claims"))
    claims = [h["_source"] for h in es.search(index=settings.index("claims"), size=50)["hits"]["hits"]]
    assert claims and {c["extracted_at"] for c in claims} == {"2026-02-01T06:30:00.000Z"}


def test_classify_needs_a_file_or_pending_not_both(capsys):
    assert main(["classify"]) == 2
    assert "--pending" in capsys.readouterr().err
    assert main(["classify", "-", "--pending"]) == 2


def test_eval_reads_readers_feedback_as_labels(tmp_path, capsys):
    labels = tmp_path / "feedback.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in [
        {"claim_id": "c1", "kind": "useful", "motives": ["hard_currency"], "votes": 1},
        {"claim_id": "c2", "kind": "wrong_motive", "motives": ["hard_currency"], "votes": 2},
        {"claim_id": "c3", "kind": "not_on_topic", "motives": [], "votes": 1},
    ]))
    assert main(["eval", "--feedback", str(labels), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["claims"] == 3
    assert (result["on_topic"]["agree"], result["motives"]["agree"], result["motives"]["n"]) == (2, 1, 2)
    (tmp_path / "bad.jsonl").write_text("not json\n")
    assert main(["eval", "--feedback", str(tmp_path / "bad.jsonl")]) == 2
    assert "bad.jsonl" in capsys.readouterr().err
