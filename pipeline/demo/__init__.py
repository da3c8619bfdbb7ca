"""The sample news items behind the local demo feed (sample data, not real news).

The items live in ``articles.yaml`` next to this module, written by the team in its own words.
They exist so the whole event-driven path (ingest, classify, claims, alerts) can run with no
internet, and so tests have realistic input whose right answers are known: every item carries an
``expect`` block (on topic or not, which motives). Syndicated copies are declared with ``copy_of``
and take their body from the original at load time, so the copy is byte-for-byte the same text
under a different URL, as it is when a newspaper runs a wire story.
"""

from pipeline.demo.sample import DEFAULT_PATH, ExpectedLabels, Outlet, SampleItem, SampleSet, load_sample

__all__ = ["DEFAULT_PATH", "ExpectedLabels", "Outlet", "SampleItem", "SampleSet", "load_sample"]
