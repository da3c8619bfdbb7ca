"""Ingestion throughput against bare feedparser, measured in one run.

    .venv/bin/python benchmarks/bench_ingest.py [--feeds 1000] [--items 50]

Generates N local RSS feeds of M items (sample text made of random words, ~2 KB of HTML per item,
so ~100 KB per feed), serves them from a separate process on 127.0.0.1 (half of the feeds honour
ETag, half ignore it, like real servers), and measures in this process:

0. Elasticsearch warm-up (``--warm-es``): sample documents bulk-indexed into a throwaway index, so
   a just-started node's JIT warm-up is not counted as the pipeline's time;
1. first poll: ``ingest_once`` over all feeds into a throwaway index prefix of the Elasticsearch in
   ``NEWSWATCH_ES_URL``, article-page fetching OFF (the feeds' links point nowhere; page fetching
   is network-bound and measured by nobody's parser) -> feeds/s;
2. second poll, nothing changed -> share of feeds answered without parsing (304 or same body
   hash) and speed-up over the first poll;
3. bare ``feedparser.parse`` (default options) over the same bytes in this process, timed just
   before and just after the first poll -> feeds/s (their mean), and the ratio first-poll / bare
   (target >= 0.8);
4. peak RSS of this process after both polls (target < 500 MB);
5. the Elasticsearch floor: the first poll's articles, read back, written again with plain
   ``elasticsearch.helpers.bulk`` (500 per request) into a fresh index with the same mapping, so
   readers see how much of the first poll Elasticsearch alone needs on this machine;
6. CPU seconds spent during the first poll by this process, by Elasticsearch, and by the rest of
   the machine (parse worker processes, the feed server, and anyone else's work), from
   ``/proc/stat`` and the node's stats: on two cores shared with Elasticsearch, CPU is the limit;
7. the share the pipeline's own code controls: CPU seconds per entry of its processes (this one,
   the parse workers and their forkserver), Elasticsearch excluded, against bare feedparser's CPU
   seconds per entry (target <= 1.6x).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def generate(directory: Path, feeds: int, items: int, seed: int = 7) -> None:
    """Write feed files: sample data, random words, nothing copied from anywhere."""
    rng = random.Random(seed)
    vocab = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(5000)
    ]
    for f in range(feeds):
        parts = [
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
            f"<title>Sample feed {f}</title><link>http://127.0.0.1/sample/{f}/</link>",
            "<description>benchmark sample data</description>",
        ]
        for i in range(items):
            paras = "".join("<p>" + " ".join(rng.choices(vocab, k=55)) + ".</p>" for _ in range(5))
            date = format_datetime(NOW - timedelta(minutes=f * items + i))
            parts.append(
                f"<item><title>Sample {f}-{i} {' '.join(rng.choices(vocab, k=6))}</title>"
                f"<link>http://127.0.0.1:9/sample/{f}/{i}?utm_source=rss</link>"
                f'<guid isPermaLink="false">sample-{f}-{i}</guid><pubDate>{date}</pubDate>'
                f"<description><![CDATA[{paras}]]></description></item>"
            )
        parts.append("</channel></rss>")
        (directory / f"feed{f}.xml").write_text("".join(parts), encoding="utf-8")


def serve(directory: Path, port_file: Path) -> None:
    """The feed server (a separate process, so its memory is not counted as ours)."""
    bodies = {f"/{p.name}": p.read_bytes() for p in directory.glob("*.xml")}
    etags = {k: '"' + hashlib.sha1(v).hexdigest()[:16] + '"' for k, v in bodies.items()}  # noqa: S324

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            body = bodies.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            honours = int(self.path[5:-4]) % 2 == 0
            if honours and self.headers.get("If-None-Match") == etags[self.path]:
                self.send_response(304)
                self.send_header("ETag", etags[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            if honours:
                self.send_header("ETag", etags[self.path])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port_file.write_text(str(httpd.server_address[1]))
    httpd.serve_forever()


def bare_feedparser(directory: Path, feeds: int) -> tuple[float, float, int]:
    """(seconds, CPU seconds, entries) of stock ``feedparser.parse`` (default options) over every
    feed file, in this process."""
    import feedparser

    from pipeline.ingest.library_patches import remove_feedparser_speedups

    # The baseline is stock feedparser: without the speed-ups the pipeline gives feedparser in the
    # processes that parse (should this process have parsed a feed itself).
    remove_feedparser_speedups()
    cpu0, t0 = self_cpu_s(), time.perf_counter()
    entries = 0
    for f in range(feeds):
        entries += len(feedparser.parse((directory / f"feed{f}.xml").read_bytes()).entries)
    return time.perf_counter() - t0, self_cpu_s() - cpu0, entries


def machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine so far (every core; idle and iowait excluded)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def es_cpu_s(es: object) -> float:
    """CPU seconds of the Elasticsearch node's process so far."""
    stats = es.nodes.stats(metric="process")  # type: ignore[attr-defined]
    return sum(n["process"]["cpu"]["total_in_millis"] for n in stats["nodes"].values()) / 1000


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def es_floor(es: object, settings: object, source_index: str) -> tuple[float, float, int]:
    """(seconds, Elasticsearch CPU seconds, documents) to bulk the first poll's articles again with
    plain ``helpers.bulk`` into a fresh index of the same mapping (refreshed at the end)."""
    from elasticsearch import helpers

    from pipeline.es.schema import drop_prefix, ensure_indices

    docs = [(h["_id"], h["_source"]) for h in helpers.scan(es, index=source_index, size=2000)]
    floor = replace(settings, index_prefix=f"bench-{uuid.uuid4().hex[:8]}")  # type: ignore[type-var]
    try:
        ensure_indices(es, floor, ["articles"])
        index = floor.index("articles")
        actions = ({"_op_type": "create", "_index": index, "_id": i, "_source": d} for i, d in docs)
        cpu0, t0 = es_cpu_s(es), time.perf_counter()
        ok, _ = helpers.bulk(es, actions, chunk_size=500, max_chunk_bytes=10 * 1024 * 1024)
        es.indices.refresh(index=index)  # type: ignore[attr-defined]
        return time.perf_counter() - t0, es_cpu_s(es) - cpu0, ok
    finally:
        drop_prefix(es, floor.index_prefix)


def warm_elasticsearch(es: object, settings: object, docs: int) -> tuple[float, float]:
    """Bulk ``docs`` sample articles (random words, the articles mapping) into a throwaway index
    and drop it: a freshly started node indexes far slower until its JIT has compiled the
    indexing path, which is the server's start-up cost, not the pipeline's. Uses no pipeline code
    beyond the mapping, so the pipeline itself starts cold (its forkserver, its caches).
    Returns (seconds, Elasticsearch CPU seconds)."""
    from elasticsearch import helpers

    from pipeline.es.schema import drop_prefix, ensure_indices

    rng = random.Random(11)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    warm = replace(settings, index_prefix=f"bench-warm-{uuid.uuid4().hex[:8]}")  # type: ignore[type-var]
    try:
        ensure_indices(es, warm, ["articles"])
        index = warm.index("articles")
        actions = (
            {
                "_op_type": "create", "_index": index, "_id": f"w{i}",
                "_source": {
                    "id": f"w{i}", "url": f"http://127.0.0.1:9/warm/{i}",
                    "links": [f"http://127.0.0.1:9/warm/{i}"],
                    "title": " ".join(rng.choices(vocab, k=8)), "text": " ".join(rng.choices(vocab, k=275)),
                    "outlets": ["Warm-up"], "published": "2026-03-02T12:00:00Z", "language": "en",
                    "minhash_bands": [f"{b}:{rng.getrandbits(48):012x}" for b in range(16)],
                    "status": "extracted",
                },
            }
            for i in range(docs)
        )
        cpu0, t0 = es_cpu_s(es), time.perf_counter()
        helpers.bulk(es, actions, chunk_size=500, max_chunk_bytes=10 * 1024 * 1024)
        return time.perf_counter() - t0, es_cpu_s(es) - cpu0
    finally:
        drop_prefix(es, warm.index_prefix)


def workers_cpu_s() -> tuple[float, float]:
    """CPU seconds of (the parse worker processes that have ended so far, their forkserver itself).
    The workers are children of the multiprocessing forkserver (a child of this process), which
    reaps them, so their time adds up in its cutime/cstime; its own utime/stime is mostly the
    preload (the language model). (0, 0) when no forkserver was started."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)  # noqa: SLF001 - no public accessor
    if not pid:
        return 0.0, 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    fields = [int(x) for x in stat.rsplit(")", 1)[1].split()[11:15]]  # utime, stime, cutime, cstime
    tick = os.sysconf("SC_CLK_TCK")
    return (fields[2] + fields[3]) / tick, (fields[0] + fields[1]) / tick


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--warm-es", type=int, default=30_000, metavar="DOCS",
                        help="sample documents to index before the first poll (0: none)")
    parser.add_argument("--serve", nargs=2, metavar=("DIR", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), Path(args.serve[1]))
        return 0

    from pipeline.es.client import build_client
    from pipeline.es.schema import drop_prefix
    from pipeline.ingest import ingest_once
    from pipeline.ingest.sources import Source
    from pipeline.settings import load_settings

    settings = load_settings()
    settings = replace(settings, index_prefix=f"bench-{uuid.uuid4().hex[:8]}", allow_private_hosts=True)
    es = build_client(settings)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        directory = Path(tmp)
        t0 = time.perf_counter()
        generate(directory, args.feeds, args.items)
        size = sum(p.stat().st_size for p in directory.glob("*.xml"))
        print(
            f"generated {args.feeds} feeds x {args.items} items, {size / args.feeds / 1024:.0f} KiB per feed "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        port_file = directory / "port"
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(directory), str(port_file)])
        try:
            for _ in range(200):
                if port_file.exists() and port_file.read_text():
                    break
                time.sleep(0.05)
            port = int(port_file.read_text())
            sources = [
                Source(
                    id=f"bench-{f}",
                    name=f"Sample {f}",
                    url=f"http://127.0.0.1:{port}/feed{f}.xml",
                    allow_private=True,
                    fetch_articles=False,
                    timeout=60,
                )
                for f in range(args.feeds)
            ]
            if args.warm_es:
                t_warm, cpu_warm = warm_elasticsearch(es, settings, args.warm_es)
                print(f"Elasticsearch warmed with {args.warm_es} sample documents first ({t_warm:.1f} s, "
                      f"{cpu_warm:.1f} CPU-s): a just-started node is slower until its JIT warms up")
            print("article-page fetching: OFF (feed text only)")
            # The baseline is timed just before and just after the first poll, and the ratio uses
            # their mean: this machine's speed drifts over a minute, and a baseline taken only at
            # one end of the run would carry that drift into the ratio.
            t_bare_before, cpu_bare_before, bare_entries = bare_feedparser(directory, args.feeds)
            cpu_self0, cpu_es0 = self_cpu_s(), es_cpu_s(es)
            cpu_all0, (cpu_w0, cpu_fs0) = machine_cpu_s(), workers_cpu_s()
            t0 = time.perf_counter()
            first = ingest_once(
                settings,
                es,
                sources=sources,
                now=NOW,
                fetch_articles=False,
                workers=args.workers,
                processes=None,  # auto: one worker process per core for this many feeds
            )
            t_first = time.perf_counter() - t0
            cpu_self, cpu_es = self_cpu_s() - cpu_self0, es_cpu_s(es) - cpu_es0
            cpu_all = machine_cpu_s() - cpu_all0
            time.sleep(0.5)  # the forkserver reaps the workers the run just shut down
            cpu_w1, cpu_fs1 = workers_cpu_s()
            cpu_workers, cpu_forkserver = cpu_w1 - cpu_w0, cpu_fs1 - cpu_fs0
            t_bare_after, cpu_bare_after, _ = bare_feedparser(directory, args.feeds)
            t_bare = (t_bare_before + t_bare_after) / 2
            cpu_bare = (cpu_bare_before + cpu_bare_after) / 2
            t0 = time.perf_counter()
            second = ingest_once(
                settings,
                es,
                sources=sources,
                now=NOW + timedelta(hours=1),
                ignore_schedule=True,
                fetch_articles=False,
                workers=args.workers,
                processes=None,
            )
            t_second = time.perf_counter() - t0
            rss_after = peak_rss_mb()
            rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            t_floor, cpu_floor, floor_docs = es_floor(es, settings, settings.index("articles"))
        finally:
            server.terminate()
            server.wait(10)
            drop_prefix(es, settings.index_prefix)

    failed = first.sources_failed + second.sources_failed
    skipped = sum(1 for r in second.feeds if r.status in ("not_modified", "unchanged"))
    fps_first, fps_second, fps_bare = args.feeds / t_first, args.feeds / t_second, args.feeds / t_bare
    print(
        f"first poll : {t_first:7.1f} s  {fps_first:7.1f} feeds/s  entries {first.entries}, "
        f"new articles {first.new_articles}, failed sources {first.sources_failed}"
    )
    print(
        f"             of which main thread deciding {first.timings.get('decide_s', 0):.1f} s, writer thread "
        f"in Elasticsearch bulk/merges/states {first.timings.get('write_s', 0):.1f} s (they overlap)"
    )
    pipeline_cpu = cpu_self + cpu_workers + cpu_forkserver
    ours = pipeline_cpu + cpu_es
    print(
        f"             CPU seconds meanwhile: this process {cpu_self:.1f}, parse workers {cpu_workers:.1f}, "
        f"their forkserver {cpu_forkserver:.1f}, Elasticsearch {cpu_es:.1f} = {ours:.1f} "
        f"(/{os.cpu_count()} cores = "
        f"{ours / (os.cpu_count() or 1):.1f} s); rest of the machine (feed server, other users) "
        f"{cpu_all - ours:.1f}; busy {cpu_all / t_first:.2f} cores"
    )
    print(
        f"Elasticsearch floor (same {floor_docs} articles, plain helpers.bulk): {t_floor:7.1f} s, "
        f"Elasticsearch CPU {cpu_floor:.1f} s = {100 * t_floor / t_first:.0f}% of the first poll"
    )
    print(
        f"second poll: {t_second:7.1f} s  {fps_second:7.1f} feeds/s  answered without parsing "
        f"{skipped}/{args.feeds} = {100 * skipped / args.feeds:.1f}% "
        f"(304: {sum(r.status == 'not_modified' for r in second.feeds)}, "
        f"same body hash: {sum(r.status == 'unchanged' for r in second.feeds)}), new {second.new_articles}"
    )
    print(
        f"bare feedparser.parse: {t_bare:7.1f} s  {fps_bare:7.1f} feeds/s  entries {bare_entries} "
        f"(mean of {t_bare_before:.1f} s just before the first poll and {t_bare_after:.1f} s just after)"
    )
    per_entry = pipeline_cpu / max(first.entries, 1)
    bare_per_entry = cpu_bare / max(bare_entries, 1)
    print(
        f"pipeline CPU per entry (Elasticsearch excluded): {1e3 * per_entry:.2f} ms; bare feedparser "
        f"{1e3 * bare_per_entry:.2f} ms (CPU, mean of before and after)"
    )
    print(f"ratio first poll / bare feedparser : {fps_first / fps_bare:.2f}   "
          "(wall clock, Elasticsearch included; target >= 0.8)")
    print(f"ratio pipeline CPU / bare CPU      : {per_entry / bare_per_entry:.2f}x  "
          "(per entry, Elasticsearch excluded; target <= 1.6x)")
    print(f"second poll speed-up over first    : {t_first / t_second:.1f}x  (target >= 10x)")
    print(
        f"peak RSS after both polls          : {rss_after:.0f} MB   (target < 500 MB); largest waited-for "
        f"child: {rss_children:.0f} MB (parse workers are children of the forkserver, not counted here)"
    )
    print(f"cpu count {os.cpu_count()}, workers {args.workers}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
