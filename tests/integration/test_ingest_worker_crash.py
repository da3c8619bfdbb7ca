"""A parse worker that dies fails only the feeds it had, never the run: real worker processes
(forkserver, as in production) and a real loopback feed."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from pipeline.ingest.fetch import Fetcher
from pipeline.ingest.poll import poll_source
from pipeline.ingest.state import FeedState
from pipeline.ingest.workers import RELAXED_GC_THRESHOLDS, RespawningPool
from tests.ingest_support import NOW, rss, sample_items, source


def _pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))


def _die() -> None:
    os._exit(3)  # what the OOM killer or a crashing C extension does to a worker


def _die_soon() -> None:
    time.sleep(1.0)  # long enough for the feed under test to be queued behind this task
    os._exit(3)


def test_a_feed_caught_in_another_feeds_crash_parses_on_the_retry(base_settings, http_server):
    src = source("bystander", http_server.route("/bystander.xml", rss(sample_items("bystander"))))
    with RespawningPool(_pool) as pool, Fetcher(user_agent="newswatch-test") as fetcher:
        killer = pool.submit(_die_soon)  # the one worker of the pool takes this first
        poll = poll_source(fetcher, src, FeedState(source_id=src.id), settings=base_settings,
                           now=NOW, processes=pool)
        with pytest.raises(BrokenProcessPool):
            killer.result(timeout=60)
    assert pool.respawns == 1  # the feed was in the pool that died, and went again in the new one
    assert (poll.result.status, poll.result.entries, poll.result.error_kind) == ("ok", 3, None)


def test_a_dead_worker_fails_its_task_and_the_next_task_gets_a_fresh_pool():
    with RespawningPool(_pool) as pool:
        with pytest.raises(BrokenProcessPool):
            pool.submit(_die).result(timeout=60)
        assert pool.submit(pow, 2, 5).result(timeout=60) == 32
        assert pool.respawns == 1
        assert pool.submit(pow, 3, 3).result(timeout=60) == 27 and pool.respawns == 1


def test_a_feed_caught_in_a_dead_pool_is_a_per_feed_error(base_settings, http_server):
    broken = _pool()
    with pytest.raises(BrokenProcessPool):
        broken.submit(_die).result(timeout=60)
    src = source("crash", http_server.route("/crash.xml", rss(sample_items("crash"))))
    with Fetcher(user_agent="newswatch-test") as fetcher:
        poll = poll_source(fetcher, src, FeedState(source_id=src.id), settings=base_settings,
                           now=NOW, processes=broken)
        assert (poll.result.status, poll.result.error_kind) == ("error", "parser_crashed")
        assert "retried at the next poll" in poll.result.error
        # the same feed through a respawning pool that was broken the same way parses fine
        with RespawningPool(_pool) as pool:
            with pytest.raises(BrokenProcessPool):
                pool.submit(_die).result(timeout=60)
            again = poll_source(fetcher, src, FeedState(source_id=src.id), settings=base_settings,
                                now=NOW, processes=pool)
        assert again.result.status == "ok" and again.result.entries == 3
    broken.shutdown(wait=False)


def test_parse_workers_start_with_the_preloaded_modules_frozen_and_relaxed_gc(tmp_path):
    """The pool of a big run (a fresh process, so its forkserver is the one ``_process_pool``
    configures): each worker has the preloaded objects frozen out of the collector's walks and
    the thresholds of big runs, not the default ones."""
    script = tmp_path / "workers.py"
    script.write_text(
        "import gc, json, sys\n"
        "from pipeline.ingest.workers import parse_pool as _process_pool\n"
        "if __name__ == '__main__':\n"
        "    pool = _process_pool(2, due=100)\n"
        "    out = [pool.submit(gc.get_threshold).result(60), pool.submit(gc.get_freeze_count).result(60),\n"
        "           list(gc.get_threshold())]\n"
        "    pool.shutdown()\n"
        "    json.dump(out, sys.stdout)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # the repository
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    worker_thresholds, frozen, parent_thresholds = json.loads(done.stdout)
    assert tuple(worker_thresholds) == RELAXED_GC_THRESHOLDS != tuple(parent_thresholds)
    assert frozen > 10_000  # feedparser, numpy and the language model's objects
