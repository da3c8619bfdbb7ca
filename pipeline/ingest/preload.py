"""Imported once by the forkserver of the parse-worker pool (``run._process_pool``).

Everything loaded here is loaded once and shared by every worker forked from the server, instead
of once per worker: the feed parser and the language-identification model (about 0.6 CPU-s each
time it is loaded).
"""

from pipeline.ingest import poll  # noqa: F401 - the workers' entry point and its imports
from pipeline.language import detect_language

detect_language("Sample text that loads the language model before any worker starts.", None)
