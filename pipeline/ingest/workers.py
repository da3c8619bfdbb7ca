"""The parse worker processes of a big run, and the garbage-collector settings of big runs.

Why processes: feedparser and the per-entry analysis (language, near-duplicate fingerprint) are
pure Python CPU work, so with many feeds due they run in one worker process per core
(``poll.parse_and_analyse``), while threads in the main process fetch. Why a respawning pool: a
parser crash or the OOM killer must cost only the feeds that were in the dead worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

PROCESS_POOL_MIN_FEEDS = 50  # below this, starting worker processes costs more than it saves


class RespawningPool(Executor):
    """A process pool that replaces itself when a worker dies.

    ``ProcessPoolExecutor`` is unusable once a worker dies (a parser crash, the OOM killer): every
    later ``submit`` raises ``BrokenProcessPool``. Here only the tasks that were in the dead pool
    fail (``poll_source`` reports them per feed); the next ``submit`` gets a fresh pool."""

    def __init__(self, factory: Callable[[], Executor]) -> None:
        self._factory = factory
        self._pool = factory()
        self._lock = threading.Lock()
        self.respawns = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            pool = self._pool
        try:
            return pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._factory()
                    self.respawns += 1
                pool = self._pool
            return pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def parse_pool(processes: int | None, due: int) -> RespawningPool | None:
    """A pool of ``processes`` parse workers, or None for none (parsing stays in the fetch
    threads). ``processes=None``: one per core when at least PROCESS_POOL_MIN_FEEDS feeds are due
    and this process may have children."""
    import multiprocessing
    import os

    if processes is None:
        allowed = not multiprocessing.current_process().daemon  # e.g. inside some task runners
        processes = (os.cpu_count() or 1) if allowed and due >= PROCESS_POOL_MIN_FEEDS else 0
    if processes <= 0:
        return None
    # forkserver, not fork: this process already runs threads, and forking those is unsafe
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.ingest.preload"])
    pool = RespawningPool(lambda: ProcessPoolExecutor(processes, mp_context=ctx))

    # Start the forkserver (its preload takes a few hundred ms) and fork the workers now, from a
    # thread of their own, while this thread prepares the indices and the first feeds download.
    def warm_up() -> None:
        try:
            for _ in range(processes):
                pool.submit(os.getpid)
        except RuntimeError:  # the run ended (and shut the pool down) first
            pass

    threading.Thread(target=warm_up, name="pool-warmup", daemon=True).start()
    return pool


RELAXED_GC_THRESHOLDS = (50_000, 50, 100)  # big runs, and the parse workers (preload.py)


@contextmanager
def relaxed_gc(enabled: bool) -> Iterator[None]:
    """Fewer cyclic garbage collections during a big run, restored afterwards.

    A run allocates millions of small objects that reference counting frees anyway (entries,
    band keys); with the default thresholds the collector walked them about 1.2 CPU-s per
    1,000 feeds. Objects alive before the run are frozen out of the walks."""
    if not enabled:
        yield
        return
    import gc

    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*RELAXED_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
