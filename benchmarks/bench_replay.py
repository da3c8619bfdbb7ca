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

The replay itself is ``tests/replay_run.py`` (the integration test
``tests/integration/test_replay_real_items.py`` runs it too and holds it to the bounds pinned in
eval/baseline.json; ``--write-baseline`` pins them from this run).

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
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NEWSWATCH_ES_URL", "http://127.0.0.1:9250")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.es.client import build_client  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402
from tests.replay_run import STAGES, replay, write_replay_baseline  # noqa: E402
from tests.replay_support import (  # noqa: E402
    ITEMS_FILE,
    PAIRS_FILE,
    SHARED,
    CorpusError,
    load_items,
    load_pairs,
)

TARGET_ON, TARGET_OFF = 0.90, 0.02


def short(text: str, width: int = 88) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round", choices=["month", "week", "day"], default="month",
                        help="how much of the timeline each round releases (default: a month)")
    parser.add_argument("--keep", action="store_true", help="keep the indices (prefix printed) for a look")
    parser.add_argument("--write-baseline", action="store_true",
                        help="pin this run's figures as the 'replay' bounds in eval/baseline.json "
                             "(monthly rounds only: the bounds are for the test's replay)")
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

    result = replay(items, pairs, base, es, unit=args.round, keep=args.keep,
                    log=lambda line: print(line, flush=True))
    if args.keep:
        print(f"indices kept under prefix {result.prefix}")
    traces, rounds, emails, wall = result.traces, result.rounds, result.emails, result.wall
    timings = result.timings
    on, off, on_hit, off_hit = result.on, result.off, result.on_hit, result.off_hit
    on_rate = len(on_hit) / len(on) if on else 0.0
    off_rate = len(off_hit) / len(off) if off else 0.0
    pairs_out, lost, covered = result.pairs, result.lost, result.covered

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
    if args.write_baseline:
        if args.round != "month":
            print("bench_replay: --write-baseline pins monthly rounds only", file=sys.stderr)
            return 2
        write_replay_baseline(result)
        print("pinned the 'replay' bounds in eval/baseline.json", file=sys.stderr)
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
