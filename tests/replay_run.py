"""One end-to-end replay of the labelled real news items, as the DAGs would run on them.

``replay`` serves the items (``tests.replay_support``) as loopback RSS feeds, releases them in
date order in rounds, and after each round calls the functions the DAG tasks call, in the DAGs'
order, against a real Elasticsearch (a private index prefix, dropped at the end) and a real SMTP
server in this process. Each alert is then traced back to its item (alert -> claim -> article ->
item by URL). ``benchmarks/bench_replay.py`` prints the result;
``tests/integration/test_replay_real_items.py`` holds it to the bounds in eval/baseline.json.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.classify.evaluate import pin_baseline
from pipeline.es.schema import drop_prefix
from pipeline.settings import Settings
from pipeline.stack.ports import free_port
from pipeline.stack.smtp import MailCatcher
from tests.replay_support import ClaimPair, ReplayFeeds, ReplayItem

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


@dataclass
class ReplayResult:
    """What one replay produced, and the measures read off it."""

    items: list[ReplayItem]
    traces: dict[str, Trace]
    pairs: dict[str, Any]
    rounds: list[tuple[str, int, dict[str, Any]]]
    emails: int
    wall: float
    timings: Timings
    prefix: str
    on: list[Trace] = field(init=False)
    off: list[Trace] = field(init=False)
    on_hit: list[Trace] = field(init=False)
    off_hit: list[Trace] = field(init=False)
    covered: list[Trace] = field(init=False)
    lost: dict[str, list[tuple[Trace, str]]] = field(init=False)

    def __post_init__(self) -> None:
        self.on = [t for t in self.traces.values() if t.item.on_topic]
        self.off = [t for t in self.traces.values() if not t.item.on_topic]
        self.on_hit = [t for t in self.on if t.alerted]
        self.off_hit = [t for t in self.off if t.alerted]
        # The item whose "new" alert opened each cluster: an item merged into such a cluster was
        # not alerted itself, but its claim reached the subscriber (rightly so for a true repeat).
        origin_of: dict[str, str] = {}
        for t in sorted(self.traces.values(), key=lambda x: (x.item.published, x.item.id)):
            for alert in t.alerts:
                if alert.get("event") == "new":
                    origin_of.setdefault(alert.get("cluster_id") or "", t.item.id)
        self.lost = defaultdict(list)
        for t in self.on:
            if not t.alerted:
                stage, why = t.lost_at(origin_of)
                self.lost[stage].append((t, why))
        self.covered = [t for t in self.on if t.alerted or t.clusters & set(origin_of)]

    @property
    def alerts(self) -> int:
        return sum(len(t.alerts) for t in self.traces.values())

    def measures(self) -> dict[str, Any]:
        """The figures pinned in eval/baseline.json (``replay``): counts and their totals."""
        return {"on_topic": len(self.on), "on_topic_alerted": len(self.on_hit),
                "on_topic_covered": len(self.covered), "off_topic": len(self.off),
                "off_topic_alerted": len(self.off_hit), "same_claim_pairs": len(self.pairs["same"]),
                "same_claim_pairs_two_new": len(self.pairs["two_new"]),
                "same_claim_pairs_joined": len(self.pairs["joined"]),
                "different_pairs": len(self.pairs["different"]),
                "different_pairs_joined": len(self.pairs["wrongly_joined"])}


def replay(items: list[ReplayItem], pairs: list[ClaimPair], base: Settings, es: Any, *,
           unit: str = "month", keep: bool = False, log: Callable[[str], None] = lambda _line: None
           ) -> ReplayResult:
    """Replay ``items`` by ``unit`` (month, week, day) against ``es``; ``log`` gets a line per
    round. The indices are dropped at the end unless ``keep``."""
    prefix = f"replay-{uuid.uuid4().hex[:8]}"
    timings = Timings()
    rounds: list[tuple[str, int, dict[str, Any]]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="newswatch-replay-") as tmp_name:
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
            log(f"replaying {len(items)} items from {len(feeds.outlets)} outlet feeds by {unit} "
                f"(feed text only; index prefix {prefix})")
            cursor = 0
            while cursor < len(items):
                end = round_end(items[cursor].published, unit)
                released = feeds.release_until(end)
                cursor += len(released)
                counts = run_round(settings, es, min(end, datetime.now(UTC)), timings)
                label = end - timedelta(seconds=1)
                name = label.strftime("%Y-%m") if unit == "month" else label.strftime("%Y-%m-%d")
                rounds.append((name, len(released), counts))
                log(f"  round {name:<10} released {len(released):3d}  indexed {counts['new_articles']:3d}  "
                    f"on-topic {counts['on_topic']:3d}  claims {counts['claims']:3d}  "
                    f"new/update/repeat {counts['new']}/{counts['update']}/{counts['repeat']}  "
                    f"alerts {counts['alerts']:3d}  sent {counts['sent']:3d}"
                    + (f"  FAILED SOURCES {counts['failed_sources']}" if counts["failed_sources"] else ""))
            traces = trace_items(items, es, settings)
            emails = len(mail.messages())
        finally:
            mail.stop()
            feeds.stop()
            if not keep:
                drop_prefix(es, prefix)
    return ReplayResult(items, traces, pair_outcomes(pairs, traces), rounds, emails,
                        time.monotonic() - started, timings, prefix)


MARGIN = 0.05  # of the on-topic items, for the counts of items alerted and covered


def replay_bounds(measured: dict[str, Any]) -> dict[str, int]:
    """Bounds a later replay must stay within: on-topic counts may fall by the larger of one item
    and ``MARGIN`` of the on-topic items; the pair counts and off-topic alerts by one."""
    slack = max(1, round(MARGIN * measured["on_topic"]))
    return {"on_topic_alerted_min": measured["on_topic_alerted"] - slack,
            "on_topic_covered_min": measured["on_topic_covered"] - slack,
            "off_topic_alerted_max": measured["off_topic_alerted"] + 1,
            "same_claim_pairs_two_new_max": measured["same_claim_pairs_two_new"] + 1,
            "same_claim_pairs_joined_min": measured["same_claim_pairs_joined"] - 1,
            "different_pairs_joined_max": measured["different_pairs_joined"] + 1}


def write_replay_baseline(result: ReplayResult, path: Path | None = None) -> None:
    """Pin the ``replay`` entry of eval/baseline.json from ``result`` (a monthly replay), keeping
    every other key."""
    measured = result.measures()
    pin_baseline({"replay": {
        "note": "the labelled real items replayed as feeds by month, feed text only "
                "(benchmarks/bench_replay.py --write-baseline); bounds: on-topic counts may fall by "
                "max(1, 5% of the on-topic items), pair counts and off-topic alerts move by one",
        "measured": measured, "bounds": replay_bounds(measured)}}, path)
