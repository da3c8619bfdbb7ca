"""End to end with the real scheduler: items appear on the feed, and with no manual trigger the
articles get classified, claims clustered and one email per article carries its new claims; a
feedback link in it works against the stack's own Airflow API server; the same story syndicated by
another outlet later produces no email. Everything is stopped afterwards."""

from __future__ import annotations

import re
import time
import urllib.request
from dataclasses import replace

import pytest

from pipeline.demo import load_sample
from pipeline.stack import airflow as airflow_stack
from pipeline.stack.processes import pid_alive
from tests.e2e.support import SUBSCRIBER, LocalStack, local_stack, settled, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

# Released first: a wire report and a think-tank analysis (both on topic, with claims).
FIRST = ("nw-first-contingent", "eo-the-price-of-a-brigade")
# Released later: the wire report syndicated by a newspaper, i.e. the same claims from another outlet.
COPY = "ch-first-contingent"


def _one_click_feedback_is_recorded_once(stack: LocalStack, message) -> None:
    """The stack signs each claim's links and its API server records a click, once."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    links = dict(re.findall(r"^  (useful|not new|wrong motive|not on topic): (http\S+)\r?$", text, re.M))
    assert set(links) == {"useful", "not new", "wrong motive", "not on topic"}, text[-800:]
    with urllib.request.urlopen(links["useful"], timeout=30) as page:  # a mail scanner's GET
        assert page.status == 200 and b"<form" in page.read()
    for expected in (201, 200):  # the click, then the same link again
        request = urllib.request.Request(links["useful"], data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert resp.status == expected
    recorded = stack.docs("feedback")
    assert [f["kind"] for f in recorded] == ["useful"]


def test_scheduled_pipeline_alerts_once_per_new_claim(base_settings, es, tmp_path):
    sample = load_sample()
    subset = replace(sample, items=tuple(sample.by_id(i) for i in (*FIRST, COPY)))
    with local_stack(base_settings, es, tmp_path, subset) as stack:
        wait_until(lambda: airflow_stack.status(stack.settings).running, 60, "Airflow to report healthy")
        started = time.monotonic()
        stack.release(len(FIRST))
        wait_until(lambda: settled(stack, len(FIRST)), 420, "the first items to be classified and alerted")
        first_wave = time.monotonic() - started

        articles = stack.docs("articles")
        assert len(articles) == len(FIRST)
        assert all("motives" in a and isinstance(a["motives"], list) for a in articles)
        assert any(a["motives"] for a in articles), "no article got a motive"
        claims = stack.docs("claims")
        assert all(c.get("cluster_id") for c in claims), "a claim was not clustered"
        assert stack.docs("clusters")
        new = {c["_id"] for c in claims if c.get("novelty") in {"new", "update"}}
        events = stack.docs("alerts", {"term": {"kind": "event"}})
        bundles = stack.docs("alerts", {"term": {"kind": "bundle"}})
        messages = stack.alert_messages()
        # every new claim is an event carried by exactly one email; an immediate subscription gets
        # one email per article (its new claims together), each a different message
        assert {e["claim_id"] for e in events} == new
        carried = [i for b in bundles for i in b["items"]]
        assert sorted(carried) == sorted(e["_id"] for e in events)
        assert 0 < len(messages) == len(bundles) <= len(articles)
        assert sorted(str(m["Message-ID"]) for m in messages) == sorted(b["message_id"] for b in bundles)
        assert len({str(m["Message-ID"]) for m in messages}) == len(messages)
        assert all(m["To"] == SUBSCRIBER for m in messages)
        _one_click_feedback_is_recorded_once(stack, messages[0])

        # the same story from another outlet, later: a duplicate, no new claim, no email
        stack.release(1)
        original = next(a for a in articles if a["source_id"] == "northwire")
        copy = wait_until(lambda: [a for a in stack.docs("articles") if a["source_id"] == "capital-herald"],
                          180, "the syndicated copy to be ingested")[0]
        assert copy.get("duplicate_of") == original["_id"]
        by_id = {"ids": {"values": [original["_id"]]}}
        wait_until(lambda: "capital-herald" in stack.docs("articles", by_id)[0].get("outlets", []), 60,
                   "the original to list the copy's outlet")
        time.sleep(75)  # a full ingest cycle more, and any run it might wake
        assert not [c for c in stack.docs("claims") if c["article_id"] == copy["_id"]]
        assert len(stack.alert_messages()) == len(messages)
        assert stack.operator_messages() == [], "a task failed for good"
        pid = int(airflow_stack.pid_file(stack.settings).read_text())
        print(f"first wave settled in {first_wave:.0f}s; {len(messages)} alert emails")
    assert not pid_alive(pid)
    assert airflow_stack.processes(stack.settings) == [], "Airflow processes were left running"
    assert not airflow_stack.pid_file(stack.settings).exists()
