"""Novelty check throughput: N new claims against M stored claim clusters in Elasticsearch.

    python benchmarks/bench_novelty.py [--stored 100000] [--new 1000] [--keep]

Data is SYNTHETIC, random but structured: 2,000 "statements" are random unit vectors in 384
dimensions; each stored cluster is one statement plus noise (cosine ~0.8-0.95 to it) with a short
generated text sharing words with its statement. Half the new claims restate a stored statement
(they must join a cluster: kNN + word + figure checks), half are fresh random vectors (new
clusters). Real MiniLM embeddings are not used because embedding 100,000 sentences would take
~15 minutes here and measure the model, not the novelty check.

Printed: indexing time, then per-claim latency (p50/p95/max) and claims/s of
``NoveltyChecker.decide`` (the whole decision: kNN in Elasticsearch + lexical + figure checks),
against two baselines measured in the same run: a bare kNN query for the same vectors (the floor
the node sets) and an exact brute-force cosine scan in NumPy over all stored vectors. The target
is p95 < 50 ms per claim. Indices use a ``bench-novelty-<random>`` prefix and are deleted at the end.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.alerts.novelty import NoveltyChecker  # noqa: E402
from pipeline.es.bulk import bulk_write  # noqa: E402
from pipeline.es.client import build_client  # noqa: E402
from pipeline.es.schema import ensure_indices  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402

DIMS = 384
WORDS = ("troops soldiers shells missiles satellite drones treaty veto sanctions wages cash oil food kursk "
         "front training defection prisoners submarine reactor warhead artillery launch border pilots "
         "engineers workers factory rations convoy rail port airfield radar").split()


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def b64(vec: np.ndarray) -> str:
    """dense_vector accepts base64 of big-endian float32: a fraction of the JSON float payload."""
    return base64.b64encode(vec.astype(">f4").tobytes()).decode()


def statement_text(rng: np.random.Generator, topic: int) -> str:
    local = np.random.default_rng(topic)
    words = " ".join(local.choice(WORDS, size=6, replace=False))
    extra = " ".join(rng.choice(WORDS, size=2))
    return f"North Korea {words} {extra} statement{topic}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--topics", type=int, default=2_000)
    parser.add_argument("--keep", action="store_true", help="do not delete the benchmark indices")
    args = parser.parse_args()

    rng = np.random.default_rng(7)
    base = load_settings()
    settings = replace(base, index_prefix=f"bench-novelty-{uuid.uuid4().hex[:8]}")
    es = build_client(settings)
    alias = settings.index("clusters")
    print(f"load average {os.getloadavg()[0]:.1f} (other work on this machine skews latencies)")
    print(f"Elasticsearch at {settings.elasticsearch.url}; "
          f"index {alias}; {os.cpu_count()} cores")
    try:
        ensure_indices(es, settings, ["clusters"])
        centroids = unit(rng.normal(size=(args.topics, DIMS)))
        topics = rng.integers(0, args.topics, size=args.stored)
        noise = rng.uniform(0.35, 0.7, size=(args.stored, 1)).astype(np.float32)
        stored = unit(centroids[topics] + noise * unit(rng.normal(size=(args.stored, DIMS))) * 1.0)

        def docs():
            for i in range(args.stored):
                t = int(topics[i])
                yield {"id": f"cl-{i}", "text": statement_text(rng, t), "claim_ids": [f"c{i}"],
                       "figures": [], "figure_keys": [], "independent_outlet_ids": [f"outlet{i % 50}"],
                       "independent_outlets": 1, "claim_count": 1, "embedding": b64(stored[i])}

        t0 = time.perf_counter()
        report = bulk_write(es, alias, docs(), chunk_size=1000)
        es.indices.refresh(index=alias)
        t_index = time.perf_counter() - t0
        assert report.failed == 0, report.errors[:3]
        t0 = time.perf_counter()
        es.options(request_timeout=1800).indices.forcemerge(index=alias, max_num_segments=1)
        t_merge = time.perf_counter() - t0
        print(f"indexed {report.ok:,} clusters in {t_index:.1f} s ({report.ok / t_index:,.0f}/s); "
              f"force-merged in {t_merge:.1f} s")

        half = args.new // 2
        repeat_topics = rng.integers(0, args.topics, size=half)
        repeats = unit(centroids[repeat_topics] + 0.45 * unit(rng.normal(size=(half, DIMS))))
        fresh = unit(rng.normal(size=(args.new - half, DIMS)))
        vectors = np.vstack([repeats, fresh])
        texts = [statement_text(rng, int(t)) for t in repeat_topics] + \
                [f"Fresh claim {i} about {' '.join(rng.choice(WORDS, size=5))}." for i in range(len(fresh))]

        # Baseline 1: the bare kNN query (same k and num_candidates), no checks, no bookkeeping.
        checker = NoveltyChecker(es, alias)
        t = checker.thresholds
        knn_ms = []
        for vec in vectors:
            s = time.perf_counter()
            knn = {"field": "embedding", "query_vector": vec.tolist(), "k": t.k,
                   "num_candidates": t.num_candidates}
            es.search(index=alias, size=t.k, knn=knn, source_excludes=["embedding"])
            knn_ms.append((time.perf_counter() - s) * 1000)
        # Baseline 2: exact brute-force cosine over every stored vector, in process.
        brute_ms = []
        for vec in vectors[:200]:
            s = time.perf_counter()
            scores = stored @ vec
            np.argpartition(scores, -t.k)[-t.k:]
            brute_ms.append((time.perf_counter() - s) * 1000)

        # The novelty decision itself.
        decide_ms, events, outcome = [], {"new": 0, "repeat": 0, "update": 0}, []
        now = "2026-03-02T09:30:00.000Z"
        t0 = time.perf_counter()
        for i, (vec, text) in enumerate(zip(vectors, texts, strict=True)):
            claim = {"id": f"new{i}", "text": text, "outlet": "bench", "outlets": ["bench"], "figures": [],
                     "motives": [], "embedding": vec.tolist(), "first_seen": now, "attribution": {}}
            s = time.perf_counter()
            event = checker.decide(claim, now).event
            decide_ms.append((time.perf_counter() - s) * 1000)
            events[event] += 1
            outcome.append(event)
        total = time.perf_counter() - t0
        # Recall of the synthetic truth: restatements should join, fresh vectors should not.
        joined = sum(1 for e in outcome[:half] if e != "new")
        false_joins = sum(1 for e in outcome[half:] if e != "new")

        def p(values, q):
            return float(np.percentile(values, q))

        print(f"\n{args.new:,} new claims vs {args.stored:,} stored clusters "
              f"(k={t.k}, num_candidates={t.num_candidates})")
        print(f"{'':<34}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'claims/s':>10}")
        rows = (("novelty decision (kNN + checks)", decide_ms), ("baseline: bare kNN query", knn_ms),
                ("baseline: NumPy brute force", brute_ms))
        for name, values in rows:
            print(f"{name:<34}{p(values, 50):>9.2f}{p(values, 95):>9.2f}{max(values):>9.2f}"
                  f"{1000 / statistics.mean(values):>10.0f}")
        print(f"\nend-to-end: {args.new / total:,.0f} claims/s; decision p95 / bare kNN p95 = "
              f"{p(decide_ms, 95) / p(knn_ms, 95):.2f}x; target p95 < 50 ms: "
              f"{'MET' if p(decide_ms, 95) < 50 else 'MISSED'}")
        print(f"load average now {os.getloadavg()[0]:.1f}")
        print(f"events: {events}; restatements that joined a cluster: {joined}/{half}; "
              f"fresh claims wrongly joined: {false_joins}/{args.new - half}")
    finally:
        if not args.keep:
            es.options(ignore_status=404).indices.delete(index=f"{settings.index_prefix}-*",
                                                         expand_wildcards="all")
            es.options(ignore_status=404).indices.delete_index_template(name=alias)
            print(f"deleted {settings.index_prefix}-*")


if __name__ == "__main__":
    main()
