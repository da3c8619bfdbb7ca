"""Rendering and headers of alert emails; ledger ids (pure functions, no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from pipeline.alerts.ledger import LEASE, alert_id, due, event_id, message_id, thread_root
from pipeline.alerts.messages import build_message, format_figure, kibana_cluster_url, render
from pipeline.settings import Settings

SETTINGS = Settings(kibana_url="http://127.0.0.1:5601")
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def context(text: str, **claim) -> dict:
    """A one-event bundle as the templates receive it."""
    entry = {
        "event": "new", "kibana_link": kibana_cluster_url(SETTINGS, "cl-1"), "importance": 0.5,
        "why": "figure: <b>1,500</b>", "feedback": {"useful": "javascript:alert(2)"},
        "cluster": {"id": "cl-1", "independent_outlets": 1, "independent_outlet_ids": ["wire"],
                    "syndicated_outlets": [], "previous_figures": [], "status": "single_source"},
        "claim": {"text": text, "attribution": {"kind": "none"}, "figures": [], "hedged": False, "hedges": [],
                  "motives": [], "outlet": "wire", "first_seen": None, "url": None, "title": None, **claim},
    }
    return {"subject": "s", "intro": "", "mode": "immediate", "sections": [(None, [entry])],
            "subscription": {"id": "desk", "name": None}}


def test_html_is_escaped_and_only_http_links_survive():
    ctx = context("<script>alert(1)</script> & more", url="javascript:alert(1)", title="<i>t</i>")
    html = render("bundle.html.j2", **ctx)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert 'href="#"' in html and "&lt;i&gt;t&lt;/i&gt;" in html
    assert "&lt;b&gt;1,500&lt;/b&gt;" in html and "javascript:" not in html
    text = render("bundle.txt.j2", **ctx)
    assert "<script>alert(1)</script> & more" in text  # plain text is not HTML-escaped


def test_figures_read_naturally():
    assert format_figure({"kind": "usd", "value": 2000, "qualifier": "about", "period": "month"}) == \
        "about 2,000 USD per month"
    troops = {"kind": "troops", "low": 1500, "high": 3000, "qualifier": "range"}
    assert format_figure(troops) == "1,500-3,000 troops"
    assert format_figure({"kind": "casualties", "value": None, "low": 200, "high": 900, "qualifier": "vague",
                          "text": "several hundred"}) == "several hundred (200-900) casualties"


def test_the_kibana_link_filters_discover_on_the_cluster():
    url = kibana_cluster_url(SETTINGS, "cl-abc")
    assert url.startswith("http://127.0.0.1:5601/app/discover#/")
    assert "cluster_id:\"cl-abc\"" in unquote(url) and "newswatch-claims" in url


def test_ids_are_deterministic_and_updates_reply_to_the_first_alert():
    new = alert_id(event_id("cl-1", "new", "c1"), "desk")
    assert new == alert_id(event_id("cl-1", "new", "c9"), "desk")  # a cluster is new once
    upd = alert_id(event_id("cl-1", "update", "c2"), "desk")
    assert upd != new and upd != alert_id(event_id("cl-1", "update", "c2"), "other")
    assert thread_root(SETTINGS, "cl-1", "desk") == message_id(SETTINGS, new) == f"<alert.{new}@localhost>"


def test_threading_headers_and_no_header_injection():
    msg = build_message(SETTINGS, subject="Re: hi\r\nBcc: evil@example.org", recipients=["a@example.org"],
                        text="t", html="<p>t</p>", message_id="<m2@localhost>", in_reply_to="<m1@localhost>",
                        references=["<m1@localhost>"])
    assert msg["In-Reply-To"] == "<m1@localhost>" and msg["References"] == "<m1@localhost>"
    assert msg["Bcc"] is None and "\n" not in msg["Subject"]
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_due_retries_pending_and_failed_and_stale_sending_only():
    assert due({"status": "pending", "attempts": 0}, NOW)
    assert due({"status": "failed", "attempts": 3}, NOW)
    assert not due({"status": "failed", "attempts": 8}, NOW)
    assert not due({"status": "sent", "attempts": 1}, NOW)
    fresh = (NOW - timedelta(minutes=1)).isoformat()
    stale = (NOW - LEASE - timedelta(seconds=1)).isoformat()
    assert not due({"status": "sending", "attempts": 1, "updated": fresh}, NOW)
    assert due({"status": "sending", "attempts": 1, "updated": stale}, NOW)


def test_an_alert_queued_before_bundles_existed_still_renders():
    """A pending single-claim alert written by the previous release (no status, no importance)."""
    from pipeline.alerts.messages import message_for

    ctx = context("Seoul said 1,500 troops arrived.")
    entry = ctx["sections"][0][1][0]
    cluster = {k: v for k, v in entry["cluster"].items() if k != "status"}
    doc = {"id": "a1", "kind": "immediate", "subject": "[newswatch] New claim: x",
           "recipients": ["d@example.org"],
           "message_id": "<alert.a1@localhost>", "thread_root": None, "references": [], "mode": "immediate",
           "payload": {"event": "new", "claim": entry["claim"], "cluster": cluster,
                       "kibana_link": entry["kibana_link"], "subscription": {"id": "desk", "name": None}}}
    msg = message_for(SETTINGS, doc, NOW)
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "NEW CLAIM" in text and "1,500 troops" in text and "Why it is here" not in text
    assert msg["Message-ID"] == "<alert.a1@localhost>"
