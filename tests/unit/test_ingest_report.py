"""The run report: small, JSON-able counts for XCom; the package's public names."""

from __future__ import annotations

import json

import pipeline.ingest as ingest
from pipeline.ingest.report import FeedResult, IngestReport


def test_as_dict_counts_and_is_json():
    report = IngestReport(
        [
            FeedResult(
                "a",
                "a",
                "u",
                status="ok",
                entries=5,
                new_articles=3,
                known=1,
                duplicates=1,
                article_ids=["x", "y", "z"],
                near_duplicates=1,
            ),
            FeedResult("b", "b", "u", status="not_modified"),
            FeedResult("c", "c", "u", status="unchanged"),
            FeedResult("d", "d", "u", status="error", error_kind="timeout", error="timed out after 5s"),
            FeedResult("e", "e", "u", status="not_due"),
            FeedResult("f", "f", "u", status="disabled", error="disabled in the sources file"),
        ]
    )
    d = json.loads(json.dumps(report.as_dict()))
    assert (d["sources_polled"], d["sources_ok"], d["sources_failed"], d["sources_not_modified"]) == (
        4,
        3,
        1,
        2,
    )
    assert d["sources_skipped"] == 2 and d["entries"] == 5 and d["new_articles"] == 3
    assert d["duplicates"] == 2 and d["near_duplicates"] == 1 and d["article_ids"] == ["x", "y", "z"]
    assert d["failed"] == {"d": "timeout: timed out after 5s"}


def test_public_names():
    for name in ingest.__all__:
        assert getattr(ingest, name) is not None
    assert {"ingest_once", "load_sources", "IngestReport", "Source", "FeedEntry"} <= set(ingest.__all__)
