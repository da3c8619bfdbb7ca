"""Novelty, ledger and delivery against the real Elasticsearch node and a real SMTP server."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from pipeline.alerts import process_new_claims, send_pending
from pipeline.alerts.subscriptions import Subscription
from pipeline.errors import ServiceUnavailable
from pipeline.stack.ports import free_port
from tests.claims_support import (
    DEPLOYED_1500,
    DEPLOYED_1500_REWORDED,
    DEPLOYED_3000,
    EVERYONE,
    NOW,
    SATELLITES,
    claim_doc,
    cluster,
    ledger,
    store_claims,
)


def _text(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def _html(msg) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()


def test_a_new_claim_sends_exactly_one_email_with_its_content(es, mail_settings, smtp_server):
    doc = claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire", motives=["combat_experience"],
                    url="http://127.0.0.1:9/articles/spy-agency-1500.html")
    store_claims(es, mail_settings, [doc])

    report = process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])

    assert (report["new"], report["repeat"], report["update"]) == (1, 0, 0)
    assert report["delivery"]["sent"] == 1
    (msg,) = smtp_server.messages()
    (alert,) = ledger(es, mail_settings)
    assert alert["status"] == "sent" and alert["attempts"] == 1
    assert msg["Message-ID"] == alert["message_id"]
    assert msg["To"] == "desk@example.org"
    assert msg["In-Reply-To"] is None
    text = _text(msg)
    assert "about 1,500 special forces troops" in text
    assert "about 1,500 troops" in text  # the normalised figure
    assert "[intelligence]" in text and "spy agency" in text
    assert "http://127.0.0.1:9/articles/spy-agency-1500.html" in text
    cluster_id = report["cluster_ids"][0]
    assert f"cluster_id:%22{cluster_id}%22" in text and mail_settings.kibana_url in text
    assert "combat_experience" in _html(msg)


def test_the_same_claim_from_a_second_outlet_sends_nothing_and_counts_corroboration(
        es, mail_settings, smtp_server):
    store_claims(es, mail_settings, [claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire")])
    first = process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])
    store_claims(es, mail_settings, [claim_doc(DEPLOYED_1500_REWORDED, article_id="b1",
                                               outlet="capital-herald")])

    second = process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])

    assert (second["new"], second["repeat"], second["update"]) == (0, 1, 0)
    assert second["events_created"] == 0 and second["delivery"]["sent"] == 0
    assert len(smtp_server.messages()) == 1
    c = cluster(es, mail_settings, first["cluster_ids"][0])
    assert c["independent_outlets"] == 2
    assert sorted(c["independent_outlet_ids"]) == ["capital-herald", "northwire"]
    assert c["claim_count"] == 2


def test_a_syndicated_copy_is_not_an_independent_outlet(es, mail_settings, smtp_server):
    # The wire story was carried verbatim by a second outlet (ingest found the near duplicate and
    # listed that outlet on the original), and a third outlet repeats the exact sentence.
    store_claims(es, mail_settings, [
        claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire", outlets=["northwire", "metro-daily"]),
    ])
    first = process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])
    store_claims(es, mail_settings, [claim_doc(DEPLOYED_1500, article_id="c1", outlet="valley-news")])
    process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])

    c = cluster(es, mail_settings, first["cluster_ids"][0])
    assert c["independent_outlet_ids"] == ["northwire"]
    assert sorted(c["syndicated_outlets"]) == ["metro-daily", "valley-news"]
    assert c["independent_outlets"] == 1
    assert len(smtp_server.messages()) == 1


def test_an_updated_figure_sends_an_update_threaded_under_the_first_email(es, mail_settings, smtp_server):
    store_claims(es, mail_settings, [claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire")])
    process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])
    store_claims(es, mail_settings, [claim_doc(DEPLOYED_3000, article_id="a2", outlet="northwire")])

    report = process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])

    assert (report["new"], report["update"]) == (0, 1)
    first, update = smtp_server.messages()
    assert update["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in update["References"]
    assert update["Subject"] == f"Re: {first['Subject']}"
    text = _text(update)
    assert "UPDATED FIGURE" in text
    assert "Before: about 1,500 troops" in text and "Now:    about 3,000 troops" in text
    c = cluster(es, mail_settings, report["cluster_ids"][0])
    assert c["updates"] == 1 and c["figures"][0]["value"] == 3000

    # The old figure repeated later by another outlet is corroboration, not a new update, and the
    # partially updated cluster is still found by kNN.
    store_claims(es, mail_settings, [claim_doc(DEPLOYED_1500_REWORDED, article_id="b9",
                                               outlet="capital-herald")])
    late = process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])
    assert (late["new"], late["repeat"], late["update"]) == (0, 1, 0)
    assert len(smtp_server.messages()) == 2


def test_smtp_down_keeps_alerts_pending_and_a_later_run_sends_each_once(es, mail_settings, smtp_server):
    down = replace(mail_settings, smtp=replace(mail_settings.smtp, port=free_port(), timeout=3))
    store_claims(es, mail_settings, [
        claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire"),
        claim_doc(SATELLITES, article_id="a2", outlet="eastern-observer",
                  motives=["military_technology", "military_technology.space"]),
    ])

    report = process_new_claims(down, es, now=NOW, subscriptions=[EVERYONE])
    assert report["new"] == 2 and report["delivery"]["sent"] == 0
    assert "smtp_error" in report["delivery"]
    assert [a["status"] for a in ledger(es, mail_settings)] == ["pending", "pending"]
    with pytest.raises(ServiceUnavailable):
        send_pending(down, es, now=NOW)  # the retry task fails loudly while SMTP is down
    assert smtp_server.messages() == []

    sent = send_pending(mail_settings, es, now=NOW)
    again = send_pending(mail_settings, es, now=NOW)

    assert sent["sent"] == 2 and again["sent"] == 0
    assert len(smtp_server.messages()) == 2
    assert len({m["Message-ID"] for m in smtp_server.messages()}) == 2
    assert all(a["status"] == "sent" for a in ledger(es, mail_settings))


def test_a_task_retried_after_sending_sends_nothing_more(es, mail_settings, smtp_server):
    doc = claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire")
    doc_id = doc["id"]
    store_claims(es, mail_settings, [doc])
    first = process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])
    # A retry of the whole task, even one that lost the "checked" marks (crash before step E).
    es.update(index=mail_settings.index("claims"), id=doc_id, doc={"novelty_checked": False},
              refresh="wait_for")

    retry = process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])

    assert retry["events_created"] == 0 and retry["events_existing"] == 1
    assert retry["delivery"]["sent"] == 0
    assert len(smtp_server.messages()) == 1
    assert cluster(es, mail_settings, first["cluster_ids"][0])["claim_count"] == 1


def test_html_in_an_article_arrives_escaped(es, mail_settings, smtp_server):
    nasty = ("North Korea sent 2,000 troops <script>alert('x')</script> to Kursk, "
             "<b>officials</b> said.")
    store_claims(es, mail_settings, [claim_doc(nasty, article_id="x1", outlet="northwire",
                                               title="<img src=x onerror=alert(1)>",
                                               url="javascript:alert(1)")])
    process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])

    (msg,) = smtp_server.messages()
    html = _html(msg)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>officials</b>" not in html and "&lt;b&gt;officials&lt;/b&gt;" in html
    assert "javascript:" not in html
    assert "<script>alert('x')</script>" in _text(msg)  # plain text shows the text as it was


def test_a_subscriptions_motive_filter_is_honoured_children_included(es, mail_settings, smtp_server):
    tech = Subscription(id="tech", recipients=("tech@example.org",), motives=("military_technology",))
    cash = Subscription(id="cash", recipients=("cash@example.org",), motives=("hard_currency",))
    store_claims(es, mail_settings, [claim_doc(SATELLITES, article_id="s1", outlet="eastern-observer",
                                               motives=["military_technology", "military_technology.space"])])

    report = process_new_claims(mail_settings, es, now=NOW, subscriptions=[tech, cash])

    assert report["events_created"] == 1
    (msg,) = smtp_server.messages()
    assert msg["To"] == "tech@example.org"


def test_elasticsearch_down_raises_service_unavailable(mail_settings, smtp_server):
    from pipeline.es.client import build_client
    from pipeline.settings import ElasticsearchSettings

    dead = replace(mail_settings, elasticsearch=ElasticsearchSettings(
        url=f"http://127.0.0.1:{free_port()}", request_timeout=2))
    with pytest.raises(ServiceUnavailable):
        process_new_claims(dead, build_client(dead), now=NOW, subscriptions=[EVERYONE])
    assert smtp_server.messages() == []


def test_two_senders_at_once_deliver_each_alert_exactly_once(es, mail_settings, smtp_server):
    import threading

    texts = [f"North Korea has sent about {n:,} troops to a new sector of the front, the sample agency said."
             for n in (1_000, 2_000, 3_000, 4_000)]
    subs = [EVERYONE, Subscription(id="second", recipients=("second@example.org",))]
    # One new claim and three updates of it, each for two subscriptions: eight ledger documents.
    store_claims(es, mail_settings, [claim_doc(t, article_id=f"t{i}", outlet="northwire",
                                               when=NOW + timedelta(minutes=i)) for i, t in enumerate(texts)])
    created = process_new_claims(mail_settings, es, now=NOW, subscriptions=subs, deliver=False)
    assert (created["new"], created["update"], created["events_created"]) == (1, 3, 8)
    results, errors = [], []

    def worker():
        try:
            results.append(send_pending(mail_settings, es, now=NOW))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(r["sent"] for r in results) == created["events_created"]
    ids = [m["Message-ID"] for m in smtp_server.messages()]
    assert len(ids) == len(set(ids)) == created["events_created"]


def test_a_rerun_that_lost_every_mark_on_the_claim_recovers_its_event_from_the_cluster(
        es, mail_settings, smtp_server):
    doc = claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire")
    store_claims(es, mail_settings, [doc])
    process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])
    es.update(index=mail_settings.index("claims"), id=doc["id"], refresh="wait_for",
              doc={"novelty_checked": False, "novelty": None, "cluster_id": None})

    retry = process_new_claims(mail_settings, es, now=NOW, subscriptions=[EVERYONE])

    assert (retry["new"], retry["repeat"], retry["events_existing"], retry["events_created"]) == (1, 0, 1, 0)
    assert len(smtp_server.messages()) == 1
    restored = es.get(index=mail_settings.index("claims"), id=doc["id"])["_source"]
    assert restored["novelty"] == "new" and restored["novelty_checked"] is True
