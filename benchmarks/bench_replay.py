"""End to end on the real development items: replayed as feeds with the feed text only.

The labelled items of ``../shared/corpus/news_items.jsonl`` (read at run time) are served from a
loopback HTTP server as RSS feeds, one per outlet, and released in date order in rounds (a month
each by default). Sources say ``fetch_articles: false``: the pipeline sees what a feed carries,
title and summary, as when a page fetch fails or hits a paywall. After each round the functions
the DAG tasks call run in this process, in the DAGs' order, with the round's end as the run time:

    ingest      ingest_once per batch of sources (2 batches, as the mapped poll tasks), then
                reconcile_near_duplicates (the announce task)
    classify    classify_pending, then extract_pending_claims
    alerts      process_new_claims, then bundle_and_send

against the harness's Elasticsearch (a private index prefix, dropped at the end), a private state
folder, a real SMTP server in this process, and one subscription that alerts immediately on every
motive. Each alert is traced back to its item (alert -> claim -> article -> item by URL).

Targets (issue 13): >= 90% of on-topic items alert, <= 2% of off-topic items alert, and no pair of
claim_pairs.jsonl labelled repeat or update yields two "new" alerts.

Run (the harness's Elasticsearch must be up, e.g. `make bench` or `newswatch stack up`):
    NEWSWATCH_ES_URL=http://127.0.0.1:9250 .venv/bin/python benchmarks/bench_replay.py [--round week]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NEWSWATCH_ES_URL", "http://127.0.0.1:9250")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.es.client import build_client  # noqa: E402
from pipeline.es.schema import drop_prefix  # noqa: E402
from pipeline.settings import Settings, load_settings  # noqa: E402
from pipeline.stack.ports import free_port  # noqa: E402
from pipeline.stack.smtp import MailCatcher  # noqa: E402
from tests.replay_support import (  # noqa: E402
    ITEMS_FILE,
    PAIRS_FILE,
    SHARED,
    ClaimPair,
    CorpusError,
    ReplayFeeds,
    ReplayItem,
    load_items,
    load_pairs,
)

TARGET_ON, TARGET_OFF = 0.90, 0.02
STAGES = ("gate", "no claim", "novelty merged", "other")
SUBSCRIBER = "desk@example.org"


def round_end(when: datetime, unit: str) -> datetime:
    """The first instant after ``when``'s round (UTC month, ISO week or day)."""
    day = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day + timedelta(days=1)
    if unit == "week":
        return day + timedelta(days=7 - day.weekday())
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


@dataclass
class Timings:
    stages: Counter[str] = field(default_factory=Counter)

    def run(self, stage: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            self.stages[stage] += time.monotonic() - start


def run_round(settings: Settings, es: Any, now: datetime, timings: Timings) -> dict[str, Any]:
    """One pass of the three DAGs, in the order their assets chain them."""
    from pipeline.alerts import bundle_and_send, configured_subscriptions, process_new_claims
    from pipeline.claims import extract_pending_claims
    from pipeline.classify import classify_pending
    from pipeline.ingest import ingest_once, load_sources, reconcile_near_duplicates

    ids = [s.id for s in load_sources(settings.sources_file)]
    batches = [ids[i::2] for i in range(min(2, len(ids)))]
    reports = [timings.run("ingest", ingest_once, settings, es, source_ids=batch, now=now,
                           ignore_schedule=True).as_dict() for batch in batches]
    article_ids = [a for r in reports for a in r.get("article_ids", [])]
    timings.run("ingest", reconcile_near_duplicates, settings, es, article_ids=article_ids, now=now)
    classified = timings.run("classify", classify_pending, settings, es, now=now)
    claims = timings.run("claims", extract_pending_claims, settings, es, now=now)
    subs = configured_subscriptions(settings)
    processed = timings.run("alerts", process_new_claims, settings, es, subs, now=now)
    sent = timings.run("alerts", bundle_and_send, settings, es, subs, now=now)
    return {"entries": sum(int(r.get("entries", 0)) for r in reports),
            "new_articles": sum(int(r.get("new_articles", 0)) for r in reports),
            "failed_sources": sum(int(r.get("sources_failed", 0)) for r in reports),
            "on_topic": classified.get("on_topic", 0), "claims": claims.get("claims", 0),
            "claim_failures": len(claims.get("failed") or []), "new": processed.get("new", 0),
            "repeat": processed.get("repeat", 0), "update": processed.get("update", 0),
            "alerts": processed.get("events_created", 0),
            "novelty_errors": len(processed.get("errors") or []),
            "sent": int((processed.get("delivery") or {}).get("sent", 0)) + int(sent.get("sent", 0))}


def all_docs(es: Any, settings: Settings, kind: str) -> list[dict[str, Any]]:
    from elasticsearch import helpers

    alias = settings.index(kind)
    if not es.indices.exists_alias(name=alias):
        return []
    es.indices.refresh(index=alias)
    return [h["_source"] | {"_id": h["_id"]} for h in helpers.scan(
        es, index=alias, query={"query": {"match_all": {}}},
        _source_excludes=["embedding", "payload", "minhash_bands"])]


@dataclass
class Trace:
    """What became of one item at each stage."""

    item: ReplayItem
    article: dict[str, Any] | None = None
    claims: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def alerted(self) -> bool:
        return bool(self.alerts)

    @property
    def new_alert(self) -> bool:
        return any(a.get("event") == "new" for a in self.alerts)

    @property
    def clusters(self) -> set[str]:
        return {c["cluster_id"] for c in self.claims if c.get("cluster_id")}

    def lost_at(self, origin_of: dict[str, str]) -> tuple[str, str]:
        """(stage, why) for an item that gave no alert; ``origin_of``: cluster id -> the item whose
        claim opened it (so a reader can judge whether the merge was right)."""
        art = self.article
        if art is None:
            return "other", "never indexed (feed entry lost at ingest)"
        if art.get("duplicate_of"):
            return "other", f"near-duplicate of article {art['duplicate_of'][:12]}"
        if art.get("status") != "classified":
            return "other", f"article status {art.get('status')!r}"
        if not art.get("on_topic"):
            return "gate", f"topic score {float(art.get('topic_score') or 0):.2f}"
        if art.get("language_supported") is False:
            return "other", f"language {art.get('language')!r} not supported for claims"
        if not self.claims:
            return "no claim", "no claim candidate in title or summary"
        events = Counter(c.get("novelty") or "unchecked" for c in self.claims)
        if events.get("repeat") and not events.get("new") and not events.get("update"):
            into = sorted({origin_of.get(c.get("cluster_id") or "", "?") for c in self.claims})
            return "novelty merged", f"{events['repeat']} claim(s) judged repeats of {', '.join(into)}"
        return "other", f"claims {dict(events)}, yet no alert (subscription filter?)"


def trace_items(items: list[ReplayItem], es: Any, settings: Settings) -> dict[str, Trace]:
    from pipeline.ingest.canonical import safe_canonicalize_url

    traces = {i.id: Trace(i) for i in items}
    by_url: dict[str, str] = {}
    for item in items:
        by_url[item.url] = item.id
        by_url.setdefault(safe_canonicalize_url(item.url), item.id)
    item_of_article: dict[str, str] = {}
    for art in all_docs(es, settings, "articles"):
        for url in (art.get("url"), art.get("canonical_url"), *(art.get("links") or [])):
            if url and url in by_url:
                item_of_article[art["_id"]] = by_url[url]
                traces[by_url[url]].article = art
                break
    claim_item: dict[str, str] = {}
    for claim in all_docs(es, settings, "claims"):
        if (iid := item_of_article.get(claim.get("article_id", ""))) is not None:
            traces[iid].claims.append(claim)
            claim_item[claim["_id"]] = iid
    for alert in all_docs(es, settings, "alerts"):
        if alert.get("kind") != "event":
            continue
        iid = claim_item.get(alert.get("claim_id", "")) or item_of_article.get(alert.get("article_id", ""))
        if iid is not None:
            traces[iid].alerts.append(alert)
    return traces


def pair_outcomes(pairs: list[ClaimPair], traces: dict[str, Trace]) -> dict[str, Any]:
    same = [p for p in pairs if p.relation in {"repeat", "update"} and p.a in traces and p.b in traces]
    different = [p for p in pairs if p.relation == "different" and p.a in traces and p.b in traces]
    two_new = [p for p in same if traces[p.a].new_alert and traces[p.b].new_alert]
    joined = [p for p in same if traces[p.a].clusters & traces[p.b].clusters]
    wrongly_joined = [p for p in different if traces[p.a].clusters & traces[p.b].clusters]
    return {"same": same, "different": different, "two_new": two_new, "joined": joined,
            "wrongly_joined": wrongly_joined}


def short(text: str, width: int = 88) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round", choices=["month", "week", "day"], default="month",
                        help="how much of the timeline each round releases (default: a month)")
    parser.add_argument("--keep", action="store_true", help="keep the indices (prefix printed) for a look")
    args = parser.parse_args()
    if not SHARED.is_dir() or not ITEMS_FILE.is_file():
        print(f"bench_replay: {ITEMS_FILE} is absent: this benchmark needs ../shared/corpus next to the "
              "checkout (news_items.jsonl, claim_pairs.jsonl)", file=sys.stderr)
        return 2
    try:
        items = load_items()
        pairs = load_pairs() if PAIRS_FILE.is_file() else []
    except CorpusError as exc:
        print(f"bench_replay: bad corpus: {exc}", file=sys.stderr)
        return 2

    base = load_settings()
    es = build_client(base)
    try:
        es.cluster.health(wait_for_status="yellow", timeout="30s")
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to the user
        print(f"bench_replay: Elasticsearch at {base.elasticsearch.url} is not reachable ({exc}); start the "
              "harness's node (make bench / newswatch stack up) or set NEWSWATCH_ES_URL", file=sys.stderr)
        return 2

    prefix = f"bench-replay-{uuid.uuid4().hex[:8]}"
    timings = Timings()
    rounds: list[tuple[str, int, dict[str, Any]]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="newswatch-bench-replay-") as tmp_name:
        tmp = Path(tmp_name)
        feeds = ReplayFeeds(items).start()
        mail = MailCatcher(tmp / "mail", free_port()).start()
        try:
            (tmp / "sources.yaml").write_text(feeds.sources_yaml(), encoding="utf-8")
            (tmp / "subscriptions.yaml").write_text(
                "subscriptions:\n  - id: replay\n    name: every motive, as it happens\n"
                f"    recipients: [{SUBSCRIBER}]\n    mode: immediate\n    min_score: 0\n", encoding="utf-8")
            settings = replace(base, index_prefix=prefix, state_dir=tmp / "state", allow_private_hosts=True,
                               smtp=replace(base.smtp, host="127.0.0.1", port=mail.port),
                               sources_path=tmp / "sources.yaml",
                               subscriptions_path=tmp / "subscriptions.yaml")
            print(f"replaying {len(items)} items from {len(feeds.outlets)} outlet feeds by {args.round} "
                  f"(feed text only; index prefix {prefix})", flush=True)
            cursor = 0
            while cursor < len(items):
                end = round_end(items[cursor].published, args.round)
                released = feeds.release_until(end)
                cursor += len(released)
                now = min(end, datetime.now(UTC))
                counts = run_round(settings, es, now, timings)
                label = end - timedelta(seconds=1)
                name = label.strftime("%Y-%m") if args.round == "month" else label.strftime("%Y-%m-%d")
                rounds.append((name, len(released), counts))
                print(f"  round {name:<10} released {len(released):3d}  indexed {counts['new_articles']:3d}  "
                      f"on-topic {counts['on_topic']:3d}  claims {counts['claims']:3d}  "
                      f"new/update/repeat {counts['new']}/{counts['update']}/{counts['repeat']}  "
                      f"alerts {counts['alerts']:3d}  sent {counts['sent']:3d}"
                      + (f"  FAILED SOURCES {counts['failed_sources']}" if counts["failed_sources"] else ""),
                      flush=True)
            traces = trace_items(items, es, settings)
            emails = len(mail.messages())
        finally:
            mail.stop()
            feeds.stop()
            if args.keep:
                print(f"indices kept under prefix {prefix}")
            else:
                drop_prefix(es, prefix)
    wall = time.monotonic() - started

    on = [t for t in traces.values() if t.item.on_topic]
    off = [t for t in traces.values() if not t.item.on_topic]
    on_hit = [t for t in on if t.alerted]
    off_hit = [t for t in off if t.alerted]
    on_rate = len(on_hit) / len(on) if on else 0.0
    off_rate = len(off_hit) / len(off) if off else 0.0
    pairs_out = pair_outcomes(pairs, traces)
    # The item whose "new" alert opened each cluster: an item merged into such a cluster was not
    # alerted itself, but its claim reached the subscriber (rightly so when it is a true repeat).
    origin_of: dict[str, str] = {}
    for t in sorted(traces.values(), key=lambda x: (x.item.published, x.item.id)):
        for alert in t.alerts:
            if alert.get("event") == "new":
                origin_of.setdefault(alert.get("cluster_id") or "", t.item.id)
    lost: dict[str, list[tuple[Trace, str]]] = defaultdict(list)
    for t in on:
        if not t.alerted:
            stage, why = t.lost_at(origin_of)
            lost[stage].append((t, why))
    covered = [t for t in on if t.alerted or t.clusters & set(origin_of)]

    def verdict(ok: bool) -> str:
        return "OK" if ok else "MISSED"

    ok_on, ok_off, ok_pairs = on_rate >= TARGET_ON, off_rate <= TARGET_OFF, not pairs_out["two_new"]
    print(f"\nnewswatch end-to-end replay: {len(items)} items, {len(rounds)} rounds by {args.round}, "
          f"feed text only, wall {wall:.1f} s")

    def row(label: str, value: str, target: str = "", ok: bool | None = None) -> None:
        print(f"{label:<46} {value:>18}  {target:>8}  {'' if ok is None else verdict(ok)}".rstrip())

    same_n, diff_n = len(pairs_out["same"]), len(pairs_out["different"])
    total_alerts = sum(len(t.alerts) for t in traces.values())
    row("measure", "value", "target", None)
    row("on-topic items with >= 1 alert", f"{len(on_hit)}/{len(on)} = {on_rate:.1%}",
        f">= {TARGET_ON:.0%}", ok_on)
    row("off-topic items with >= 1 alert", f"{len(off_hit)}/{len(off)} = {off_rate:.1%}",
        f"<= {TARGET_OFF:.0%}", ok_off)
    row("on-topic items alerted or merged into an alerted cluster", f"{len(covered)}/{len(on)}")
    row("repeat/update pairs with two new alerts", f"{len(pairs_out['two_new'])}/{same_n}", "0", ok_pairs)
    row("repeat/update pairs sharing a claim cluster", f"{len(pairs_out['joined'])}/{same_n}")
    row("different pairs sharing a claim cluster", f"{len(pairs_out['wrongly_joined'])}/{diff_n}")
    row("immediate alerts created", str(total_alerts))
    row("alert emails sent (SMTP catcher)", str(emails))
    row("wall time", f"{wall:.1f} s")
    stage_times = "  ".join(f"{k} {v:.1f} s" for k, v in timings.stages.items())
    print(f"  time by stage: {stage_times}")
    print("\non-topic items lost, by stage: " + ", ".join(f"{s} {len(lost.get(s, []))}" for s in STAGES))
    for stage in STAGES:
        if lost.get(stage):
            print(f"\n  lost at {stage}:")
            for t, why in sorted(lost[stage], key=lambda x: x[0].item.id):
                print(f"    {t.item.id}  {short(t.item.title)}  [{why}]")
    if off_hit:
        print("\n  off-topic items that alerted:")
        for t in sorted(off_hit, key=lambda x: x.item.id):
            claim = short(t.alerts[0].get("claim_text", ""), 60)
            print(f"    {t.item.id}  {short(t.item.title)}  [claim: {claim}]")
    if pairs_out["two_new"]:
        print("\n  repeat/update pairs with two new alerts:")
        for p in pairs_out["two_new"]:
            shared = "; one claim shared a cluster" if traces[p.a].clusters & traces[p.b].clusters else ""
            print(f"    {p.a}+{p.b} ({p.relation}{shared})  {short(traces[p.a].item.title, 50)} | "
                  f"{short(traces[p.b].item.title, 50)}")
    if pairs_out["wrongly_joined"]:
        print("\n  different pairs merged into one cluster:")
        for p in pairs_out["wrongly_joined"]:
            print(f"    {p.a}+{p.b}  {short(traces[p.a].item.title, 50)} | "
                  f"{short(traces[p.b].item.title, 50)}")

    summary = {
        "bench": "replay", "items": len(items), "rounds": len(rounds), "round": args.round,
        "on_topic": len(on), "on_topic_alerted": len(on_hit), "on_topic_alert_rate": round(on_rate, 4),
        "on_topic_covered": len(covered),
        "off_topic": len(off), "off_topic_alerted": len(off_hit), "off_topic_alert_rate": round(off_rate, 4),
        "same_claim_pairs": same_n, "same_claim_pairs_two_new": len(pairs_out["two_new"]),
        "same_claim_pairs_joined": len(pairs_out["joined"]),
        "different_pairs": diff_n,
        "different_pairs_joined": len(pairs_out["wrongly_joined"]),
        "lost": {s: sorted(t.item.id for t, _ in lost.get(s, [])) for s in STAGES},
        "off_topic_alerted_ids": sorted(t.item.id for t in off_hit),
        "two_new_pairs": [f"{p.a}+{p.b}" for p in pairs_out["two_new"]],
        "alerts": total_alerts, "emails": emails, "wall_s": round(wall, 1),
        "stage_s": {k: round(v, 1) for k, v in timings.stages.items()},
        "targets": {"on_topic_alert_rate": f">= {TARGET_ON}", "off_topic_alert_rate": f"<= {TARGET_OFF}",
                    "same_claim_pairs_two_new": 0},
        "met": ok_on and ok_off and ok_pairs,
    }
    print("\n" + json.dumps(summary, ensure_ascii=False, sort_keys=True))
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
