"""Alert volume: emails per on-topic article before bundles and after, for each subscription mode.

The team's sample articles (``pipeline/demo/articles.yaml``) are served as RSS feeds by the
project's own loopback feed server (``SampleFeedServer``, with each item's own publication date)
and released one at a time, one every ``--gap`` minutes of *simulated* time. After each release
the functions the DAG tasks call run in this process, in the DAGs' order, with the simulated time
as ``now``:

    ingest      ingest_once, then reconcile_near_duplicates
    classify    classify_pending, then extract_pending_claims
    alerts      process_new_claims, then bundle_and_send

After the last article the alerts stage keeps running every ``--gap`` minutes until nothing is
left queued (batched emails and the hourly cap's overflow go out then), and the digest DAG's task
(``send_digests``) runs at 07:00 the next morning for each simulated day. Services: the harness's
Elasticsearch (a private index prefix, dropped at the end), a private state folder and a real SMTP
server in this process (``MailCatcher``, a free port).

One subscriptions file holds one subscription per configuration, each with its own recipient, so
the emails are counted per recipient address at the SMTP server:

    immediate            one email per article (the default)
    immediate-cap        immediate, max_per_hour: 4
    immediate-important  immediate, min_importance: 0.4
    batched              batched, every_minutes: 30
    digest               digest, once a day

"before" is what the code before bundles sent: one email per claim event, i.e. the ``new`` and
``update`` events queued for the default subscription. Figures per configuration: emails, emails
per on-topic article (the sample's labels), emails in the busiest simulated hour (a sliding
60-minute window over the simulated send times), and the share of emails whose first claim, as
the email shows it, is attributed to a named source (any attribution kind but ``anonymous``).

Run (the harness's Elasticsearch must be up, e.g. `make bench` or `newswatch stack up`):
    NEWSWATCH_ES_URL=http://127.0.0.1:9250 .venv/bin/python benchmarks/bench_alert_volume.py [--items 19]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NEWSWATCH_ES_URL", "http://127.0.0.1:9250")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.alerts import Subscription, configured_subscriptions, send_digests  # noqa: E402
from pipeline.demo import SampleSet, load_sample  # noqa: E402
from pipeline.es.client import build_client  # noqa: E402
from pipeline.es.schema import drop_prefix  # noqa: E402
from pipeline.settings import Settings, load_settings  # noqa: E402
from pipeline.stack.feedserver import SampleFeedServer  # noqa: E402
from pipeline.stack.ports import free_port  # noqa: E402
from pipeline.stack.smtp import MailCatcher  # noqa: E402

BEFORE = "before"
DIGEST_HOUR = 7  # the digest DAG's default schedule: 07:00 UTC, for the day before
MAX_DRAIN_TICKS = 24 * 12  # a simulated day of 5-minute alert runs after the last article


@dataclass(frozen=True)
class Config:
    """One subscription of the benchmark: its id, what the table calls it, its YAML fields."""

    id: str
    label: str
    fields: dict[str, Any]

    @property
    def recipient(self) -> str:
        return f"{self.id}@bench.example.org"


def configurations(*, cap: int = 4, min_importance: float = 0.4, every_minutes: int = 30) -> list[Config]:
    return [
        Config("immediate", "immediate (default)", {"mode": "immediate"}),
        Config("immediate-cap", f"immediate, max_per_hour: {cap}",
               {"mode": "immediate", "max_per_hour": cap}),
        Config("immediate-important", f"immediate, min_importance: {min_importance:g}",
               {"mode": "immediate", "min_importance": min_importance}),
        Config("batched", f"batched every {every_minutes} min", {"mode": "batched",
                                                                 "every_minutes": every_minutes}),
        Config("digest", "digest (daily)", {"mode": "digest"}),
    ]


def subscriptions_yaml(configs: list[Config]) -> str:
    import yaml

    subs = [{"id": c.id, "name": c.label, "recipients": [c.recipient], "min_score": 0, **c.fields}
            for c in configs]
    return "# one subscription per measured configuration (benchmark data)\n" + yaml.safe_dump(
        {"subscriptions": subs}, sort_keys=False)


def sources_yaml(feeds: SampleFeedServer, outlets: list[str]) -> str:
    lines = ["# the sample feeds of the in-process feed server (benchmark data)", "defaults:", "  kind: rss",
             "  language: en", "  poll_minutes: 1", "  allow_private: true", "  timeout: 10", "sources:"]
    for outlet in outlets:
        lines += [f"  - id: {outlet}", f"    name: {outlet} (sample)", f"    url: {feeds.feed_url(outlet)}"]
    return "\n".join(lines) + "\n"


def run_dags(settings: Settings, es: Any, subs: list[Subscription], now: datetime, *,
             ingest: bool = True) -> dict[str, int]:
    """One pass of the DAGs' tasks at simulated time ``now`` (without ``ingest``: the alerts DAG
    alone, as its cron runs it between new claims)."""
    from pipeline.alerts import bundle_and_send, process_new_claims
    from pipeline.claims import extract_pending_claims
    from pipeline.classify import classify_pending
    from pipeline.ingest import ingest_once, reconcile_near_duplicates

    out = {"articles": 0, "claims": 0}
    if ingest:
        report = ingest_once(settings, es, now=now, ignore_schedule=True).as_dict()
        reconcile_near_duplicates(settings, es, article_ids=report.get("article_ids", []), now=now)
        classify_pending(settings, es, now=now)
        out["articles"] = int(report.get("new_articles", 0))
        out["claims"] = int(extract_pending_claims(settings, es, now=now).get("claims", 0))
    process_new_claims(settings, es, subs, now=now)
    bundle_and_send(settings, es, subs, now=now)
    return out


def all_docs(es: Any, settings: Settings, kind: str, excludes: list[str]) -> list[dict[str, Any]]:
    from elasticsearch import helpers

    alias = settings.index(kind)
    if not es.indices.exists_alias(name=alias):
        return []
    es.indices.refresh(index=alias)
    return [h["_source"] | {"_id": h["_id"]} for h in helpers.scan(
        es, index=alias, query={"query": {"match_all": {}}}, _source_excludes=excludes)]


def queued_events(es: Any, settings: Settings) -> int:
    alias = settings.index("alerts")
    if not es.indices.exists_alias(name=alias):
        return 0
    es.indices.refresh(index=alias)
    query = {"bool": {"filter": [{"term": {"kind": "event"}}, {"term": {"status": "queued"}}]}}
    return int(es.count(index=alias, query=query)["count"])


def parse_time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def busiest_hour(times: list[datetime]) -> int:
    """The most sends in any 60-minute window [t, t + 1 h) starting at a send."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - timedelta(hours=1):
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def named(claim: dict[str, Any]) -> bool:
    """Is the claim attributed to a named source (any attribution kind but ``anonymous``)?"""
    from pipeline.claims.attribution import ATTRIBUTION_KINDS

    kind = ((claim or {}).get("attribution") or {}).get("kind") or "none"
    return kind in ATTRIBUTION_KINDS and kind != "anonymous"


def first_claim(doc: dict[str, Any]) -> dict[str, Any]:
    """The claim an email shows first: bundles keep their rendered sections in the ledger; the
    digest is rendered by motive section, so its first claim is the first of the first section."""
    from pipeline.alerts.messages import _digest_sections

    payload = doc.get("payload") or {}
    if doc.get("kind") == "digest":
        sections = _digest_sections(payload.get("claims") or [], payload.get("motive_order") or [])
        return sections[0][1][0] if sections and sections[0][1] else {}
    sections = payload.get("sections") or []
    entries = sections[0][1] if sections else []
    return entries[0]["claim"] if entries else {}


def claims_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    payload = doc.get("payload") or {}
    if doc.get("kind") == "digest":
        return list(payload.get("claims") or [])
    return [e["claim"] for _, entries in payload.get("sections") or [] for e in entries]


def row(label: str, emails: int, on_topic: int, times: list[datetime], named_first: int,
        events: int) -> dict[str, Any]:
    return {"label": label, "emails": emails,
            "per_on_topic_article": round(emails / on_topic, 3) if on_topic else None,
            "busiest_hour": busiest_hour(times), "events": events,
            "named_first": named_first,
            "named_first_share": round(named_first / emails, 3) if emails else None}


def measure(base: Settings, es: Any, tmp: Path, *, items: int | None = None, gap_minutes: int = 5,
            start: datetime | None = None, configs: list[Config] | None = None, dates: str = "original",
            sample: SampleSet | None = None, keep: bool = False,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Replay the first ``items`` sample articles and measure every configuration; the indices of
    the run are dropped before it returns.

    ``dates``: ``"original"`` gives each article its own publication date (months apart, as the
    sample has them: time-aware novelty sees them so); ``"replay"`` dates them at their release on
    the wall clock, as ``make run`` does, and the simulated clock then starts now."""
    configs = configs or configurations()
    sample = sample or load_sample()
    chosen = sample.items[: items] if items else sample.items
    subset = replace(sample, items=tuple(chosen))
    if not chosen:
        raise ValueError("items must be at least 1")
    # Yesterday's morning: simulated times stay in the past (nothing waits on a future lease) and
    # the run and its digest's day are one calendar day.
    if start is None and dates == "replay":
        # Publication dates are wall-clock times: the simulated clock must not be behind them.
        start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = start or (datetime.now(UTC) - timedelta(days=1)).replace(hour=6, minute=0, second=0,
                                                                       microsecond=0)
    gap = timedelta(minutes=gap_minutes)
    prefix = f"bench-volume-{uuid.uuid4().hex[:8]}"
    feeds = SampleFeedServer(sample=subset, dates=dates).start()
    mail = MailCatcher(tmp / "mail", free_port()).start()
    wall_start = time.monotonic()
    try:
        (tmp / "sources.yaml").write_text(sources_yaml(feeds, sorted({i.outlet for i in chosen})),
                                          encoding="utf-8")
        (tmp / "subscriptions.yaml").write_text(subscriptions_yaml(configs), encoding="utf-8")
        settings = replace(base, index_prefix=prefix, state_dir=tmp / "state", allow_private_hosts=True,
                           smtp=replace(base.smtp, host="127.0.0.1", port=mail.port),
                           sources_path=tmp / "sources.yaml", subscriptions_path=tmp / "subscriptions.yaml")
        # Read once, as a DAG task reads it, and checked before anything runs.
        subs = configured_subscriptions(settings)
        log(f"releasing {len(chosen)} sample articles, one every {gap_minutes} simulated minutes from "
            f"{start:%Y-%m-%d %H:%M} UTC (index prefix {prefix})")
        now = start
        for n, item in enumerate(chosen):
            now = start + n * gap
            feeds.release(1)
            counts = run_dags(settings, es, subs, now)
            log(f"  {now:%H:%M}  {item.id:<36} articles +{counts['articles']}  claims +{counts['claims']}"
                f"  emails so far {len(mail.messages())}")
        ticks = 0
        while queued_events(es, settings) and ticks < MAX_DRAIN_TICKS:
            ticks += 1
            now += gap
            run_dags(settings, es, subs, now, ingest=False)
        left_queued = queued_events(es, settings)
        days = sorted({(start + k * gap).date() for k in range(len(chosen))} | {now.date()})
        for day in days:
            send_digests(settings, es, subs, day=day,
                         now=datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
                         + timedelta(hours=DIGEST_HOUR))
        ledger = all_docs(es, settings, "alerts", [])
        claims = all_docs(es, settings, "claims", ["embedding"])
        articles = all_docs(es, settings, "articles", ["embedding", "text", "minhash_bands"])
        messages = mail.messages()
    finally:
        mail.stop()
        feeds.stop()
        if keep:
            log(f"indices kept under prefix {prefix}")
        else:
            drop_prefix(es, prefix)
    summary = summarise(configs, chosen, ledger, claims, articles, messages, left_queued=left_queued,
                        simulated=(now - start), drain_ticks=ticks, days=days,
                        wall=time.monotonic() - wall_start)
    summary["dates"] = dates
    summary["index_prefix"] = prefix
    return summary


def summarise(configs: list[Config], chosen: Any, ledger: list[dict[str, Any]], claims: list[dict[str, Any]],
              articles: list[dict[str, Any]], messages: list[Any], *, left_queued: int,
              simulated: timedelta, drain_ticks: int, days: list[date], wall: float) -> dict[str, Any]:
    on_topic = sum(1 for i in chosen if i.expect.on_topic)
    by_recipient: Counter[str] = Counter()
    for msg in messages:
        for address in str(msg.get("X-Envelope-To") or "").split(","):
            by_recipient[address.strip()] += 1
    message_ids = [str(msg["Message-ID"]) for msg in messages]
    events = [d for d in ledger if d.get("kind") == "event"]
    sent = [d for d in ledger if d.get("kind") in {"bundle", "digest"} and d.get("status") == "sent"]
    rows: dict[str, dict[str, Any]] = {}
    default = configs[0].id
    before = [e for e in events if e["subscription_id"] == default and e.get("event") in {"new", "update"}]
    rows[BEFORE] = row("before: one email per claim event", len(before), on_topic,
                       [parse_time(e["created"]) for e in before],
                       sum(named((e.get("payload") or {}).get("claim") or {}) for e in before), len(before))
    for c in configs:
        mine = [d for d in sent if d.get("subscription_id") == c.id]
        own = [e for e in events if e["subscription_id"] == c.id]
        r = row(c.label, by_recipient.get(c.recipient, 0), on_topic,
                [parse_time(d["sent_at"]) for d in mine], sum(named(first_claim(d)) for d in mine), len(own))
        r["ledger_sent"] = len(mine)
        # Emails carrying at least one named-source claim: the most the ordering could lead with one.
        r["named_any"] = sum(any(named(c) for c in claims_of(d)) for d in mine)
        # Carried into an email that went out: the cap and batching must delay, never drop.
        r["events_delivered"] = sum(1 for e in own if e.get("bundle_id") in {d["_id"] for d in mine})
        if c.fields.get("mode") == "digest":
            # A digest lists the day's new and updated claims rather than carrying queued events.
            r["events"] = rows[BEFORE]["events"]
            r["events_delivered"] = sum(len((d.get("payload") or {}).get("claims") or []) for d in mine)
        rows[c.id] = r
    novelty = Counter(str(c.get("novelty")) for c in claims)
    scores = sorted(float(e.get("importance") or 0.0) for e in before)
    return {
        "bench": "alert_volume", "items": len(chosen), "on_topic_items": on_topic,
        "classified_on_topic": sum(1 for a in articles if a.get("on_topic") and not a.get("duplicate_of")),
        "claims": len(claims), "novelty": dict(sorted(novelty.items())),
        "claim_events_new_update": rows[BEFORE]["emails"],
        "emails_total": len(messages), "distinct_message_ids": len(set(message_ids)),
        "left_queued": left_queued, "drain_ticks": drain_ticks,
        "simulated_minutes": round(simulated.total_seconds() / 60),
        "digest_days": [d.isoformat() for d in days],
        "configs": rows, "wall_s": round(wall, 1),
        # Where ``min_importance`` would cut: the default subscription's event scores.
        "importance_quartiles": [round(scores[min(len(scores) - 1, int(q * len(scores)))], 3)
                                 for q in (0.0, 0.25, 0.5, 0.75, 1.0)] if scores else [],
    }


def print_table(summary: dict[str, Any]) -> None:
    s = summary
    print(f"\nnewswatch alert volume: {s['items']} sample articles ({s['on_topic_items']} on topic by label, "
          f"{s['classified_on_topic']} classified on topic), {s['claims']} claims {s['novelty']}, "
          f"{s['dates']} publication dates, {s['simulated_minutes']} simulated minutes, wall {s['wall_s']} s")
    head = (f"{'configuration':<36} {'emails':>6} {'per on-topic article':>21} {'busiest hour':>13} "
            f"{'first claim named':>26} {'events carried':>15}")
    print(head)
    print("-" * len(head))
    for r in summary["configs"].values():
        per = "-" if r["per_on_topic_article"] is None else f"{r['per_on_topic_article']:.2f}"
        share = "-" if r["named_first_share"] is None else f"{r['named_first']}/{r['emails']} = " \
                                                            f"{r['named_first_share']:.0%}"
        if "named_any" in r:
            share += f" (of {r['named_any']})"
        carried = f"{r.get('events_delivered', r['events'])}/{r['events']}"
        print(f"{r['label']:<36} {r['emails']:>6} {per:>21} {r['busiest_hour']:>13} {share:>26} "
              f"{carried:>15}")
    print("events carried: claim events delivered / queued for the subscription (digest: claims listed / "
          "all); before: the new and update events of the default subscription, one email each")
    print("first claim named: emails whose first claim has a named source (of: emails carrying one)")
    print(f"importance of those events (min, quartiles, max): {s['importance_quartiles']}")
    for key, r in summary["configs"].items():
        if key != BEFORE and r["emails"] != r.get("ledger_sent"):
            print(f"WARNING: {key}: {r['emails']} email(s) at the SMTP server, {r.get('ledger_sent')} "
                  "sent in the ledger")
    if summary["left_queued"]:
        print(f"WARNING: {summary['left_queued']} claim event(s) still queued after the drain")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=0, help="release only the first N sample articles "
                                                             "(default: all)")
    parser.add_argument("--gap", type=int, default=5, help="simulated minutes between articles (default 5)")
    parser.add_argument("--cap", type=int, default=4, help="max_per_hour of the capped subscription")
    parser.add_argument("--min-importance", type=float, default=0.4)
    parser.add_argument("--every", type=int, default=30, help="every_minutes of the batched subscription")
    parser.add_argument("--dates", choices=["original", "replay"], default="original",
                        help="publication dates: each article's own (default) or its release time")
    parser.add_argument("--keep", action="store_true", help="keep the indices (prefix printed) for a look")
    args = parser.parse_args()
    if args.items < 0 or args.gap < 1:
        parser.error("--items must be >= 0 and --gap >= 1")
    base = load_settings()
    es = build_client(base)
    try:
        es.cluster.health(wait_for_status="yellow", timeout="30s")
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to the user
        print(f"bench_alert_volume: Elasticsearch at {base.elasticsearch.url} is not reachable ({exc}); "
              "start the harness's node (make bench / newswatch stack up) or set NEWSWATCH_ES_URL",
              file=sys.stderr)
        return 2
    configs = configurations(cap=args.cap, min_importance=args.min_importance, every_minutes=args.every)
    with tempfile.TemporaryDirectory(prefix="newswatch-bench-volume-") as tmp_name:
        summary = measure(base, es, Path(tmp_name), items=args.items or None, gap_minutes=args.gap,
                          configs=configs, dates=args.dates, keep=args.keep)
    print_table(summary)
    print("\n" + json.dumps(summary, ensure_ascii=False, sort_keys=True))
    exactly_once = summary["emails_total"] == summary["distinct_message_ids"]
    return 0 if not summary["left_queued"] and exactly_once else 1


if __name__ == "__main__":
    raise SystemExit(main())
