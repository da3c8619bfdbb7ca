"""Bulk writes: per-document errors as data, deterministic ids, retries, no refresh per request."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.errors import ServiceUnavailable
from pipeline.es.bulk import bulk_write
from pipeline.es.schema import ensure_indices


def _docs(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"d{i}", "title": f"Sample title {i}", "published": "2025-01-02T03:04:05Z",
             "motives": ["prestige"]} for i in range(start, start + n)]


def test_a_mapping_error_is_reported_with_id_and_reason_and_the_rest_is_indexed(es, settings):
    ensure_indices(es, settings, ["articles"])
    docs = _docs(5)
    docs[2]["published"] = "not a date"
    report = bulk_write(es, settings.index("articles"), docs, chunk_size=2, refresh=True)
    assert report.ok == 4 and report.created == 4
    [error] = report.errors
    assert error["id"] == "d2" and error["status"] == 400
    assert error["type"] == "document_parsing_exception"
    assert "published" in error["reason"]
    assert es.count(index=settings.index("articles"))["count"] == 4


def test_bad_input_is_reported_per_document_not_raised(es, settings):
    ensure_indices(es, settings, ["articles"])
    docs = [*_docs(2), {"title": "no id"}, {"id": "weird", "title": object()}, *_docs(1, start=9)]
    report = bulk_write(es, settings.index("articles"), docs, refresh=True)
    assert report.ok == 3
    kinds = {(e["type"], e["id"]) for e in report.errors}
    assert kinds == {("missing_id", None), ("serialization_error", "weird")}
    assert [e["position"] for e in report.errors if e["type"] == "missing_id"] == [2]
    assert report.as_dict()["failed"] == 2


def test_writes_are_idempotent_and_create_counts_conflicts(es, settings):
    ensure_indices(es, settings, ["alerts"])
    index = settings.index("alerts")
    docs = [{"id": f"al{i}", "status": "pending", "attempts": 0} for i in range(3)]
    first = bulk_write(es, index, docs, op_type="create", refresh=True)
    again = bulk_write(es, index, docs, op_type="create", refresh=True)
    assert (first.created, first.conflicts, again.created, again.conflicts) == (3, 0, 0, 3)
    assert again.errors == [] and first.conflict_ids == []
    assert sorted(again.conflict_ids) == ["al0", "al1", "al2"]  # which ones, not only how many
    update = bulk_write(es, index, [{"id": "al1", "status": "sent"}], op_type="update", refresh=True)
    assert update.updated == 1
    assert es.get(index=index, id="al1")["_source"] == {"id": "al1", "status": "sent", "attempts": 0}
    upsert = bulk_write(es, index, [{"id": "al9", "status": "pending"}], op_type="update", refresh=True)
    assert upsert.created == 1
    assert es.count(index=index)["count"] == 4


def test_no_refresh_unless_asked(es, settings):
    ensure_indices(es, settings, ["articles"])
    index = settings.index("articles")
    es.indices.put_settings(index=index, settings={"index.refresh_interval": "-1"})
    bulk_write(es, index, _docs(3))
    assert es.count(index=index)["count"] == 0  # the write did not force a refresh
    bulk_write(es, index, _docs(2, start=3), refresh=True)
    assert es.count(index=index)["count"] == 5  # one refresh at the end


def test_a_temporary_write_block_is_retried_with_backoff(es, settings):
    """A refused write (here: the block `migrate` sets) is retried until it clears, nothing lost."""
    ensure_indices(es, settings, ["articles"])
    index = settings.index("articles")
    es.indices.put_settings(index=index, settings={"index.blocks.write": True})
    timer = threading.Timer(1.0, lambda: es.indices.put_settings(
        index=index, settings={"index.blocks.write": False}))
    timer.start()
    try:
        started = time.monotonic()
        report = bulk_write(es, index, _docs(20), initial_backoff=0.2, max_retries=8, refresh=True)
    finally:
        timer.join()
    assert report.ok == 20 and report.errors == []
    assert report.retries >= 1 and time.monotonic() - started >= 0.9
    assert es.count(index=index)["count"] == 20


def test_refusal_that_outlasts_the_retries_raises_service_unavailable(es, settings):
    ensure_indices(es, settings, ["articles"])
    index = settings.index("articles")
    es.indices.put_settings(index=index, settings={"index.blocks.write": True})
    try:
        with pytest.raises(ServiceUnavailable, match="after 2 retries"):
            bulk_write(es, index, _docs(3), initial_backoff=0.05, max_retries=2)
    finally:
        es.indices.put_settings(index=index, settings={"index.blocks.write": False})


def test_node_down_is_service_unavailable(settings):
    from dataclasses import replace

    from pipeline.es.client import build_client
    from pipeline.stack.ports import free_port

    down = replace(settings.elasticsearch, url=f"http://127.0.0.1:{free_port()}", request_timeout=2)
    client = build_client(down).options(max_retries=0)
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        bulk_write(client, "whatever", _docs(1))


@pytest.fixture
def flaky_node(http_server):
    """A real HTTP server standing in for a node that refuses some bulk items (429/503) or whole
    requests (503) before accepting them; records every bulk body it receives."""
    import json

    from tests.support import Response

    handler_class = http_server._httpd.RequestHandlerClass
    handler_class.do_POST = handler_class.do_PUT = handler_class.do_GET
    script: list = []  # per request: an int status for the whole request, or {doc id: status}
    bodies: list[list[str]] = []

    def bulk(handler):
        body = handler.rfile.read(int(handler.headers.get("Content-Length", "0"))).decode()
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        ids = [next(iter(a.values()))["_id"] for a in lines[0::2]]
        bodies.append(ids)
        step = script.pop(0) if script else {}
        headers = {"X-Elastic-Product": "Elasticsearch", "Content-Type": "application/json"}
        if isinstance(step, int):
            return Response(json.dumps({"error": "busy", "status": step}).encode(), step, headers)
        items = []
        for doc_id in ids:
            status = step.get(doc_id, 201)
            item = {"_id": doc_id, "status": status}
            if status < 300:
                item["result"] = "created"
            else:
                item["error"] = {"type": "es_rejected_execution_exception" if status == 429
                                 else "unavailable_shards_exception", "reason": "busy"}
            items.append({"index": item})
        return Response(json.dumps({"errors": bool(step), "items": items}).encode(), 200, headers)

    http_server.route("/_bulk", bulk)
    return http_server, script, bodies


def _client(url):
    from pipeline.es.client import build_client
    from pipeline.settings import ElasticsearchSettings

    # transport-level retries off: the retries under test are bulk_write's own
    return build_client(ElasticsearchSettings(url=url, request_timeout=5)).options(max_retries=0)


def test_items_refused_with_429_or_503_are_resent_alone_until_accepted(flaky_node):
    server, script, bodies = flaky_node
    script += [{"d1": 429, "d3": 503}, {"d3": 429}, {}]
    report = bulk_write(_client(server.base_url), "x", _docs(5), initial_backoff=0.01)
    assert report.ok == 5 and report.errors == [] and report.retries == 2
    assert bodies == [["d0", "d1", "d2", "d3", "d4"], ["d1", "d3"], ["d3"]]


def test_whole_request_503_is_retried_then_gives_up_as_service_unavailable(flaky_node):
    server, script, bodies = flaky_node
    script += [503, 503, {}]
    report = bulk_write(_client(server.base_url), "x", _docs(2), initial_backoff=0.01)
    assert report.ok == 2 and report.retries == 2 and len(bodies) == 3
    script += [503] * 5
    with pytest.raises(ServiceUnavailable):
        bulk_write(_client(server.base_url), "x", _docs(2), initial_backoff=0.01, max_retries=2)


def test_two_requests_in_flight_write_everything_and_report_each_error(es, settings):
    ensure_indices(es, settings, ["articles"])
    docs = _docs(40)
    for i in (3, 17, 38):
        docs[i]["published"] = "not a date"
    report = bulk_write(es, settings.index("articles"), docs, chunk_size=4, concurrency=2, refresh=True)
    assert report.ok == report.created == 37
    assert sorted(e["id"] for e in report.errors) == ["d17", "d3", "d38"]
    assert {e["status"] for e in report.errors} == {400}
    assert es.count(index=settings.index("articles"))["count"] == 37


def test_documents_serialise_as_the_client_would(es, settings):
    import datetime as dt

    import numpy as np

    from pipeline.es.bulk import _fast_dumps

    serializer = es.transport.serializers.get_serializer("application/json")
    published = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    doc = {"id": "n1", "title": "Caf\u00e9 \u2028 sample", "published": published,
           "topic_score": np.float32(0.5), "sentence_count": np.int64(3), "tags": ("a", "b")}
    dumps = _fast_dumps(serializer.default)
    assert dumps is not None  # orjson is a dependency
    assert dumps(doc) == serializer.dumps(doc)
    ensure_indices(es, settings, ["articles"])
    report = bulk_write(es, settings.index("articles"), [doc], refresh=True)
    assert report.created == 1
    stored = es.get(index=settings.index("articles"), id="n1")["_source"]
    assert stored["published"] == "2025-01-02T03:04:05+00:00" and stored["topic_score"] == 0.5


def test_a_refusal_in_a_concurrent_request_is_raised_not_lost(flaky_node):
    server, script, bodies = flaky_node
    script += [503] * 20
    with pytest.raises(ServiceUnavailable):
        bulk_write(_client(server.base_url), "x", _docs(4), chunk_size=1, concurrency=2,
                   initial_backoff=0.01, max_retries=1)
    assert len(bodies) >= 2  # the requests were sent, and retried, before giving up
