"""Hostile sources, one per fresh process: outcome, peak RSS, wall time, articles lost or duplicated.

    .venv/bin/python benchmarks/bench_hostile.py [--fetch-only] [--timeout 5]

A hostile server (``tests/hostile_server.py``) runs in this process on 127.0.0.1. For each case a
child process runs two real ingest passes (``ingest_once``, article pages on) over the hostile
source beside a healthy one, into a throwaway index prefix of the Elasticsearch in
``NEWSWATCH_ES_URL`` (the test node: ``NEWSWATCH_ES_URL=http://127.0.0.1:9250``), and reports:

- outcome: the hostile feed's status (or error kind), and its articles' page error kinds;
- peak RSS of the child (``ru_maxrss`` from ``os.wait4``: that process alone), target < 300 MB;
- wall time of the first pass (a trickling server is cut at the deadline, 3 x the timeout);
- articles lost: entries of either feed with no document after the passes (target 0);
- articles duplicated: documents beyond one per entry after the second pass (target 0).

``--fetch-only`` needs no Elasticsearch: the child only fetches the feed and its pages with the
``Fetcher`` (lost/duplicated are then not measured and shown as "-").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_RSS_MB = 300


def child(case: dict, healthy: dict, timeout: float, fetch_only: bool) -> dict:
    if fetch_only:
        return _child_fetch(case, timeout)
    import uuid
    from dataclasses import replace
    from datetime import timedelta

    from pipeline.es.client import build_client
    from pipeline.es.schema import drop_prefix
    from pipeline.ingest import ingest_once
    from pipeline.settings import load_settings
    from tests.ingest_support import NOW, source

    base = load_settings()
    prefix = f"bench-hostile-{uuid.uuid4().hex[:8]}"
    settings = replace(
        base, index_prefix=prefix, state_dir=Path(tempfile.mkdtemp()) / "state", allow_private_hosts=True
    )
    es = build_client(settings)
    sources = [
        source("healthy", healthy["url"], timeout=timeout, max_bytes=2 * 1024 * 1024),
        source("hostile", case["url"], timeout=timeout, max_bytes=2 * 1024 * 1024),
    ]
    try:
        started = time.monotonic()
        first = ingest_once(settings, es, sources=sources, now=NOW, ignore_schedule=True, fetch_articles=True)
        wall = time.monotonic() - started
        later = NOW + timedelta(hours=1)
        ingest_once(settings, es, sources=sources, now=later, ignore_schedule=True, fetch_articles=True)
        es.indices.refresh(index=settings.index("articles"))
        found = es.search(index=settings.index("articles"), query={"match_all": {}}, size=1000)
        docs = [h["_source"] for h in found["hits"]["hits"]]
    finally:
        drop_prefix(es, prefix)
    expected = {"healthy": healthy["entries"], "hostile": case["entries"]}
    count = {sid: sum(1 for d in docs if d["source_id"] == sid) for sid in expected}
    lost = sum(max(0, expected[s] - count[s]) for s in expected)
    duplicated = sum(max(0, count[s] - expected[s]) for s in expected)
    feed = next(f for f in first.feeds if f.source_id == "hostile")
    outcome = feed.status if feed.status != "error" else f"feed {feed.error_kind}"
    kinds = sorted({e["error"].split(":")[1].strip() for e in feed.article_errors if ":" in e["error"]})
    if kinds:
        outcome += f", pages {'/'.join(kinds)} x{len(feed.article_errors)}"
    return {"outcome": outcome, "wall": wall, "lost": lost, "duplicated": duplicated}


def _child_fetch(case: dict, timeout: float) -> dict:
    from pipeline.ingest.fetch import Fetcher

    with Fetcher(user_agent="newswatch-bench") as fetcher:
        started = time.monotonic()
        feed = fetcher.get(case["url"], allow_private=True, timeout=timeout, max_bytes=2 * 1024 * 1024)
        pages = [
            fetcher.get(link, allow_private=True, timeout=timeout, max_bytes=5 * 1024 * 1024)
            for link in case["links"]
        ]
        kinds = [p.error_kind or "ok" for p in pages]
        wall = time.monotonic() - started
    outcome = f"feed {feed.error_kind or 'ok'}" + (f", pages {'/'.join(sorted(set(kinds)))}" if kinds else "")
    return {"outcome": outcome, "wall": wall, "lost": "-", "duplicated": "-"}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fetch-only", action="store_true", help="no Elasticsearch: fetch the feed and pages"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="the sources' timeout (deadline = 3x)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(child(spec["case"], spec["healthy"], args.timeout, args.fetch_only)))
        return 0

    from tests.hostile_server import HostileServer, install_cases

    server = HostileServer(trickle_seconds=300).start()
    cases = install_cases(server)
    healthy = cases.pop("healthy")
    spec_of = lambda c: {"url": server.url(c.path), "entries": c.entries, "links": c.links}  # noqa: E731
    rows = []
    print(f"{'case':<22} {'outcome':<44} {'peak RSS MB':>11} {'wall s':>7} {'lost':>5} {'dup':>5}")
    for name, case in cases.items():
        spec = json.dumps({"case": spec_of(case), "healthy": spec_of(healthy)})
        cmd = [sys.executable, __file__, "--child", spec, "--timeout", str(args.timeout)]
        if args.fetch_only:
            cmd.append("--fetch-only")
        with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty child cannot block
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
            out = proc.stdout.read()  # type: ignore[union-attr]
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (Popen.wait has none)
            errors.seek(0)
            err = errors.read()
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
        if proc.returncode != 0:
            row = {"outcome": f"CRASHED (exit {proc.returncode})", "wall": 0.0}
            row |= {"lost": "?", "duplicated": "?"}
            sys.stderr.write(err.decode(errors="replace")[-3000:])
        else:
            row = json.loads(out.decode().strip().splitlines()[-1])
        rows.append((name, row, rss_mb))
        print(
            f"{name:<22} {row['outcome'][:44]:<44} {rss_mb:>11.0f} {row['wall']:>7.1f} "
            f"{row['lost']!s:>5} {row['duplicated']!s:>5}",
            flush=True,
        )
    server.stop()
    bad = [
        n for n, row, rss in rows
        if rss >= TARGET_RSS_MB or row["lost"] not in (0, "-") or row["duplicated"] not in (0, "-")
    ]
    verdict = "met" if not bad else "MISSED: " + ", ".join(bad)
    print(f"targets (RSS < {TARGET_RSS_MB} MB, 0 lost, 0 duplicated): {verdict}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
