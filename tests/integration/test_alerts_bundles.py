"""Bundles, the hourly cap, importance and cluster status against the real Elasticsearch node and a
real SMTP server. Sentences are written for these tests."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from pipeline.alerts import bundle_and_send, process_new_claims
from pipeline.alerts.bundles import bundle_id, make_bundles
from pipeline.alerts.clustering import cluster_new_claims
from pipeline.alerts.ledger import LEASE
from pipeline.alerts.subscriptions import Subscription
from pipeline.timefmt import iso_utc
from tests.claims_support import (
    DEPLOYED_1500,
    DEPLOYED_1500_REWORDED,
    NOW,
    SATELLITES,
    claim_doc,
    cluster,
    ledger,
    store_claims,
)

CONDITIONAL = ("If the deployment reaches 12,000 troops, the payments would come to about $24 million "
               "a month for the regime.")
WORKERS = ("North Korea has sent about 2,000 construction workers to Russia this year, a labour ministry "
           "official in Seoul said.")
DRONES = ("Russia has begun supplying North Korea with drone technology, a Ukrainian military intelligence "
          "spokesman said.")
DENIAL = ("The Kremlin denied that North Korea has sent special forces troops to Russia's Far East, "
          "calling the reports fabricated.")
PENTAGON_5000 = ("The Pentagon said on Tuesday that North Korea has sent about 5,000 special forces troops "
                 "to Russia's Far East for training.")


def _text(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def _events(es, settings) -> list[dict]:
    return ledger(es, settings, "event")


def _bundles(es, settings) -> list[dict]:
    return [d for d in ledger(es, settings) if d["kind"] == "bundle"]


def test_immediate_sends_one_email_per_article_most_important_claim_first(es, mail_settings, smtp_server):
    store_claims(es, mail_settings, [
        claim_doc(CONDITIONAL, article_id="a1", outlet="northwire", motives=["hard_currency"]),
        claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire", motives=["combat_experience"]),
        claim_doc(SATELLITES, article_id="a1", outlet="northwire", motives=["military_technology"]),
        claim_doc(WORKERS, article_id="a2", outlet="eastern-observer", motives=["hard_currency"]),
    ])
    desk = Subscription(id="desk", recipients=("desk@example.org",))
    report = process_new_claims(mail_settings, es, [desk], now=NOW)
    assert report["new"] == 4 and report["events_created"] == 4
    assert report["bundles"]["bundles"] == 2 and report["delivery"]["sent"] == 2
    by_count = sorted(smtp_server.messages(), key=lambda m: -_text(m).count("Why it is here:"))
    first, second = (_text(m) for m in by_count)
    assert first.count("Why it is here:") == 3 and second.count("Why it is here:") == 1
    # ordered by importance: the intelligence service's figure first, the outlet's own "if" last
    assert first.index("1,500") < first.index("satellites") < first.index("12,000")
    assert "conditional, not a statement of fact" in first
    assert "source: South Korea's spy agency (intelligence)" in first
    assert by_count[0]["Subject"].startswith("[newswatch] 3 new claims: ")
    bundles = _bundles(es, mail_settings)
    assert sorted(len(b["items"]) for b in bundles) == [1, 3]
    assert all(e["status"] == "bundled" for e in _events(es, mail_settings))


def test_min_importance_leaves_out_the_unattributed_conditional(es, mail_settings, smtp_server):
    store_claims(es, mail_settings, [
        claim_doc(CONDITIONAL, article_id="a1", outlet="northwire", motives=["hard_currency"]),
        claim_doc(DEPLOYED_1500, article_id="a2", outlet="northwire", motives=["combat_experience"]),
    ])
    picky = Subscription(id="picky", recipients=("picky@example.org",), min_importance=0.4)
    report = process_new_claims(mail_settings, es, [picky], now=NOW)
    assert report["new"] == 2 and report["events_created"] == 1
    (msg,) = smtp_server.messages()
    assert "1,500" in _text(msg) and "12,000" not in _text(msg)
    claims = {c["text"]: c for c in es.search(index=mail_settings.index("claims"), size=10)["hits"]["hits"]
              for c in [c["_source"]]}
    assert claims[CONDITIONAL]["importance"] < 0.4 <= claims[DEPLOYED_1500]["importance"]


def test_batched_sends_everything_queued_once_per_period_grouped_by_motive(es, mail_settings, smtp_server):
    batch = Subscription(id="batch", recipients=("batch@example.org",), mode="batched", every_minutes=30)
    store_claims(es, mail_settings, [claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire",
                                               motives=["combat_experience"])])
    first = process_new_claims(mail_settings, es, [batch], now=NOW)
    assert first["delivery"]["sent"] == 1  # nothing sent before: the first batch goes at once

    store_claims(es, mail_settings, [
        claim_doc(SATELLITES, article_id="a2", outlet="eastern-observer", motives=["military_technology"],
                  when=NOW + timedelta(minutes=5)),
        claim_doc(DRONES, article_id="a3", outlet="capital-herald", motives=["military_technology"],
                  when=NOW + timedelta(minutes=6)),
        claim_doc(WORKERS, article_id="a4", outlet="capital-herald", motives=["hard_currency"],
                  when=NOW + timedelta(minutes=6)),
    ])
    early = process_new_claims(mail_settings, es, [batch], now=NOW + timedelta(minutes=10))
    assert early["events_created"] == 3 and early["bundles"]["waiting"] == 3
    assert early["delivery"]["sent"] == 0 and len(smtp_server.messages()) == 1

    due = bundle_and_send(mail_settings, es, [batch], now=NOW + timedelta(minutes=31))
    assert due["bundles"]["bundles"] == 1 and due["sent"] == 1
    text = _text(smtp_server.messages()[-1])
    assert "3 claim event(s) since the last email" in text
    assert "== military_technology (2) ==" in text and "== hard_currency (1) ==" in text
    assert bundle_and_send(mail_settings, es, [batch], now=NOW + timedelta(minutes=70))["sent"] == 0


def test_the_hourly_cap_carries_the_overflow_into_the_next_email_and_drops_nothing(
        es, mail_settings, smtp_server):
    capped = Subscription(id="capped", recipients=("capped@example.org",), max_per_hour=2)
    store_claims(es, mail_settings, [
        claim_doc(text, article_id=f"a{n}", outlet=outlet, motives=["combat_experience"])
        for n, (text, outlet) in enumerate([(DEPLOYED_1500, "northwire"), (SATELLITES, "eastern-observer"),
                                            (DRONES, "capital-herald"), (WORKERS, "metro-daily")])])
    report = process_new_claims(mail_settings, es, [capped], now=NOW)
    assert report["events_created"] == 4 and report["bundles"]["bundles"] == 2
    sizes = sorted(b["item_count"] for b in _bundles(es, mail_settings))
    assert sizes == [1, 3]  # the second email of the hour carries the three articles left
    assert any("reached its limit of 2 emails an hour" in _text(m) for m in smtp_server.messages())

    store_claims(es, mail_settings, [claim_doc(CONDITIONAL, article_id="a9", outlet="northwire",
                                               when=NOW + timedelta(minutes=20))])
    held = process_new_claims(mail_settings, es, [capped], now=NOW + timedelta(minutes=20))
    assert held["bundles"]["held_by_cap"] == 1 and held["delivery"]["sent"] == 0
    assert [e["status"] for e in _events(es, mail_settings) if e["claim_text"] == CONDITIONAL] == ["queued"]

    later = bundle_and_send(mail_settings, es, [capped], now=NOW + timedelta(minutes=61))
    assert later["sent"] == 1 and len(smtp_server.messages()) == 3
    assert all(e["status"] == "bundled" for e in _events(es, mail_settings))
    carried = [i for b in _bundles(es, mail_settings) for i in b["items"]]
    assert sorted(carried) == sorted(e["id"] for e in _events(es, mail_settings))


def test_corroboration_and_a_denial_are_status_events_threaded_under_the_claim(
        es, mail_settings, smtp_server):
    watch = Subscription(id="watch", recipients=("watch@example.org",),
                         events=("new", "update", "corroborated", "disputed"))
    store_claims(es, mail_settings, [claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire")])
    first = process_new_claims(mail_settings, es, [watch], now=NOW)
    cid = first["cluster_ids"][0]
    assert cluster(es, mail_settings, cid)["status"] == "single_source"

    store_claims(es, mail_settings, [claim_doc(DEPLOYED_1500_REWORDED, article_id="a2",
                                               outlet="capital-herald", when=NOW + timedelta(hours=2))])
    second = process_new_claims(mail_settings, es, [watch], now=NOW + timedelta(hours=2))
    assert (second["repeat"], second["corroborated"], second["delivery"]["sent"]) == (1, 1, 1)
    root, corroborated = smtp_server.messages()
    assert corroborated["Subject"].startswith("[newswatch] Corroborated: ")
    assert corroborated["In-Reply-To"] == root["Message-ID"]
    assert "NOW CORROBORATED: 2 independent outlets" in _text(corroborated)

    store_claims(es, mail_settings, [claim_doc(DENIAL, article_id="a3", outlet="metro-daily",
                                               when=NOW + timedelta(hours=4))])
    third = process_new_claims(mail_settings, es, [watch], now=NOW + timedelta(hours=4))
    assert third["disputed"] == 1
    c = cluster(es, mail_settings, cid)
    assert c["status"] == "disputed" and c["dispute_reasons"][0].startswith("denied by")
    assert [h["status"] for h in c["status_history"]] == ["single_source", "corroborated", "disputed"]
    disputed = smtp_server.messages()[-1]
    assert disputed["Subject"].startswith("[newswatch] Disputed: ") or "disputed" in _text(disputed).lower()
    assert "NOW DISPUTED: denied by" in _text(disputed)
    # a status is entered once: the same denial from another outlet adds no event
    store_claims(es, mail_settings, [claim_doc(DENIAL, article_id="a4", outlet="valley-news",
                                               when=NOW + timedelta(hours=5))])
    assert process_new_claims(mail_settings, es, [watch], now=NOW + timedelta(hours=5))["disputed"] == 0


def test_a_conflicting_figure_from_another_source_disputes_the_claim(es, mail_settings, smtp_server):
    store_claims(es, mail_settings, [claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire")])
    first = process_new_claims(mail_settings, es, [], now=NOW)
    store_claims(es, mail_settings, [claim_doc(PENTAGON_5000, article_id="a2", outlet="capital-herald",
                                               when=NOW + timedelta(days=1))])
    second = process_new_claims(mail_settings, es, [], now=NOW + timedelta(days=1))
    assert second["new"] == 1 and second["disputed"] == 1  # two claims, and they conflict
    c = cluster(es, mail_settings, first["cluster_ids"][0])
    assert c["status"] == "disputed" and "conflicting figure" in c["dispute_reasons"][0]


def test_a_crash_between_claiming_events_and_writing_their_bundle_is_repaired_once(
        es, mail_settings, smtp_server):
    desk = Subscription(id="desk", recipients=("desk@example.org",))
    store_claims(es, mail_settings, [
        claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire"),
        claim_doc(SATELLITES, article_id="a1", outlet="northwire"),
    ])
    cluster_new_claims(mail_settings, es, [desk], now=NOW)
    events = _events(es, mail_settings)
    bid = bundle_id("desk", [e["id"] for e in events])
    wall = datetime.now(UTC)
    for e in events:  # what a bundler that died before creating its bundle leaves behind
        es.update(index=mail_settings.index("alerts"), id=e["id"],
                  doc={"status": "bundled", "bundle_id": bid, "bundled_at": iso_utc(wall)})
    es.indices.refresh(index=mail_settings.index("alerts"))

    soon = make_bundles(mail_settings, es, [desk], now=NOW, clock=lambda: wall + timedelta(seconds=30))
    assert soon["repaired"] == 0 and _bundles(es, mail_settings) == []  # its lease may still run
    later = lambda: wall + LEASE + timedelta(seconds=5)  # noqa: E731
    assert make_bundles(mail_settings, es, [desk], now=NOW, clock=later)["repaired"] == 1
    assert make_bundles(mail_settings, es, [desk], now=NOW, clock=later)["repaired"] == 0
    (bundle,) = _bundles(es, mail_settings)
    assert bundle["id"] == bid and sorted(bundle["items"]) == sorted(e["id"] for e in events)
    assert bundle_and_send(mail_settings, es, [desk], now=NOW, clock=later)["sent"] == 1
    assert len(smtp_server.messages()) == 1


def test_two_bundlers_at_once_put_each_event_in_exactly_one_email(es, mail_settings, smtp_server):
    desk = Subscription(id="desk", recipients=("desk@example.org",))
    store_claims(es, mail_settings, [
        claim_doc(text, article_id=f"a{n % 3}", outlet=f"outlet-{n % 3}")
        for n, text in enumerate([DEPLOYED_1500, SATELLITES, DRONES, WORKERS, CONDITIONAL, PENTAGON_5000])])
    queued = cluster_new_claims(mail_settings, es, [desk], now=NOW)["events_created"]
    results, errors = [], []

    def run() -> None:
        try:
            results.append(bundle_and_send(mail_settings, es, [desk], now=NOW))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    carried = [i for b in _bundles(es, mail_settings) for i in b["items"]]
    assert len(carried) == len(set(carried)) == queued
    assert sum(r["sent"] for r in results) == len(_bundles(es, mail_settings)) == len(smtp_server.messages())
