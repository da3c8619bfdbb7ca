"""Elasticsearch throughput and latency, as ratios against a baseline measured in the same run.

1. Bulk-index 20,000 SAMPLE article documents with ``pipeline.es.bulk.bulk_write`` and with raw
   ``elasticsearch.helpers.bulk`` (same documents, same mapping, same chunk size, no refresh),
   alternating the order over several rounds; print docs/s and the ratio (target >= 0.9).
2. Search latency of a motive + time-range query (``pipeline.search.search``, end to end, and the
   node's own ``took``) on 100,000 documents: p50/p95 (target p95 < 100 ms).

Uses a benchmark-only index prefix and deletes it afterwards. Run with the test stack's env:
``NEWSWATCH_ES_URL=http://127.0.0.1:9250 .venv/bin/python benchmarks/bench_es.py``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pipeline.es.bulk import bulk_write
from pipeline.es.client import build_client
from pipeline.es.schema import drop_prefix, ensure_indices
from pipeline.search import build_query, parse_since, search
from pipeline.settings import load_settings
from pipeline.taxonomy import REQUIRED_IDS

# SAMPLE vocabulary written for this benchmark; documents are random word salad, not news.
WORDS = ("troops deployment border front drones artillery treaty pact veto sanctions satellite "
         "submarine launch wages payment cash grain fuel oil shipment casualties defection "
         "prisoners ministry officials analysts report estimate battalion region training").split()
SOURCES = ["northwire", "capital-herald", "eastern-observer", "coastal-daily", "policy-review"]
END = datetime(2025, 6, 1, tzinfo=UTC)


def make_docs(n: int, seed: int, text_words: int = 220) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        motives = rng.sample(REQUIRED_IDS, rng.choice((0, 1, 1, 2, 3)))
        docs.append({
            "id": f"{seed}-{i:06d}",
            "title": " ".join(rng.choices(WORDS, k=9)).capitalize(),
            "text": " ".join(rng.choices(WORDS, k=text_words)),
            "source_id": (src := rng.choice(SOURCES)), "source_name": src, "outlets": [src],
            "canonical_url": f"https://example.test/{seed}/{i}",
            "published": (END - timedelta(minutes=rng.randrange(0, 180 * 24 * 60))).isoformat(),
            "language": "en", "status": "classified", "on_topic": bool(motives) or rng.random() < 0.5,
            "topic_score": round(rng.random(), 3), "motives": motives,
            "motive_scores": {m: round(rng.random(), 3) for m in motives},
        })
    return docs


def bench_bulk(es, base, n: int, rounds: int) -> None:
    from elasticsearch import helpers

    docs = make_docs(n, seed=1)
    ours, raw = [], []
    cpu: dict[str, list[float]] = {"ours": [], "raw": []}
    # Warm-up (not counted): the node's JIT and caches make whichever runs first look slow.
    warm = replace(base, index_prefix=f"{base.index_prefix}-warm")
    warm_index = ensure_indices(es, warm, ["articles"])[warm.index("articles")]
    helpers.bulk(es, ({"_index": warm_index, "_id": d["id"], "_source": d} for d in docs[:5000]))
    bulk_write(es, warm_index, docs[:5000])
    es.indices.delete(index=warm_index)
    for r in range(rounds):
        for which in (("raw", "ours") if r % 2 == 0 else ("ours", "raw")):
            settings = replace(base, index_prefix=f"{base.index_prefix}-{which}{r}")
            index = ensure_indices(es, settings, ["articles"])[settings.index("articles")]
            started, cpu_started = time.perf_counter(), time.process_time()
            if which == "raw":
                ok, errors = helpers.bulk(es, ({"_index": index, "_id": d["id"], "_source": d} for d in docs),
                                          chunk_size=500, refresh=False, raise_on_error=False)
                assert ok == n and not errors, errors[:1]
                raw.append(n / (time.perf_counter() - started))
            else:
                report = bulk_write(es, index, docs, chunk_size=500)
                assert report.ok == n and not report.errors, report.errors[:1]
                ours.append(n / (time.perf_counter() - started))
            cpu[which].append((time.process_time() - cpu_started) / n * 1_000_000)
            es.indices.delete(index=index)
    o, b = statistics.median(ours), statistics.median(raw)
    print(f"bulk {n:,} articles x {rounds} rounds: bulk_write {o:,.0f} docs/s, "
          f"raw helpers.bulk {b:,.0f} docs/s, ratio {o / b:.2f} (target >= 0.9)")
    print(f"  per round: bulk_write {[round(x) for x in ours]}, raw {[round(x) for x in raw]} "
          "(the node is shared: wall-clock figures are noisy)")
    co, cb = statistics.median(cpu["ours"]), statistics.median(cpu["raw"])
    print(f"  client CPU per 1,000 docs: bulk_write {co:.0f} ms, raw {cb:.0f} ms, ratio {cb / co:.2f} "
          "(>1 means bulk_write costs less CPU)")


def bench_search(es, base, n: int, queries: int) -> None:
    settings = replace(base, index_prefix=f"{base.index_prefix}-search")
    index = settings.index("articles")
    ensure_indices(es, settings, ["articles"])
    started = time.perf_counter()
    for part in range(0, n, 20_000):
        report = bulk_write(es, index, make_docs(min(20_000, n - part), seed=100 + part, text_words=80))
        assert not report.errors, report.errors[:1]
    es.indices.refresh(index=index)
    total = es.count(index=index)["count"]
    print(f"loaded {total:,} documents in {time.perf_counter() - started:.1f} s")
    rng = random.Random(5)
    wall, took, hits = [], [], []
    for q in range(queries + 20):
        motive = rng.choice(REQUIRED_IDS)
        now = END - timedelta(days=rng.randrange(0, 120))
        since = f"{rng.choice((1, 7, 30))}d"
        t0 = time.perf_counter()
        rows = search(settings, es, "", motive=motive, since=since, now=now, size=20)
        elapsed = (time.perf_counter() - t0) * 1000
        if q >= 20:  # the first queries warm caches
            wall.append(elapsed)
            hits.append(len(rows))
        if q >= 20 and q % 5 == 0:
            resp = es.search(index=index, size=20, query=build_query(
                "", kind="articles", motive=motive, since=parse_since(since, now=now)),
                sort=[{"published": "desc"}])
            took.append(resp["took"])

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    print(f"search motive + time range on {total:,} docs, {queries} queries (mean {statistics.mean(hits):.1f}"
          f" hits): p50 {pct(wall, 50):.1f} ms, p95 {pct(wall, 95):.1f} ms end to end "
          f"(target p95 < 100 ms); node took p50 {pct(took, 50):.0f} ms, p95 {pct(took, 95):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--search-docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    base = replace(load_settings(), index_prefix=f"bench-es-{uuid.uuid4().hex[:8]}")
    es = build_client(base)
    print(f"Elasticsearch at {base.elasticsearch.url}, prefix {base.index_prefix}")
    try:
        bench_bulk(es, base, args.docs, args.rounds)
        bench_search(es, base, args.search_docs, args.queries)
    finally:
        drop_prefix(es, base.index_prefix)


if __name__ == "__main__":
    main()
