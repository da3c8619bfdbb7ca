"""Imported once by the forkserver of the parse-worker pool (``workers.parse_pool``).

Everything loaded here is loaded once and shared by every worker forked from the server, instead
of once per worker: the feed parser and the language-identification model (about 0.6 CPU-s each
time it is loaded).

The workers also collect garbage less often. Parsing a feed allocates tens of thousands of small
containers that reference counting frees anyway; with the default thresholds the cyclic collector
ran every 700 of them, and its full passes walked every module object loaded here. Those are
frozen out of the walks, and the thresholds are the main process's for big runs
(``workers.RELAXED_GC_THRESHOLDS``): 7% fewer instructions per parsed entry. What a parse leaves in a
cycle (feedparser's parser and its handlers) is still collected, every few feeds.
"""

import gc

from pipeline.ingest import poll  # noqa: F401 - the workers' entry point and its imports
from pipeline.ingest.workers import RELAXED_GC_THRESHOLDS
from pipeline.language import detect_language

detect_language("Sample text that loads the language model before any worker starts.", None)
gc.collect()
gc.freeze()
gc.set_threshold(*RELAXED_GC_THRESHOLDS)
