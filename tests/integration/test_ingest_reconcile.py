"""Copies of one story indexed by concurrent polls are reconciled after the run."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.es.bulk import bulk_write
from pipeline.es.schema import ensure_indices
from pipeline.ingest.dedup import fingerprint
from pipeline.ingest.reconcile import reconcile_near_duplicates

# Sample text written for this test.
STORY = ("Sample wire copy. The coastal ferry service between the two harbour towns resumed on "
         "Monday after a three week pause for hull repairs, the operator said in a statement. "
         "Timetables return to four crossings a day, with an extra evening sailing on Fridays "
         "during the summer season. Ticket prices are unchanged, and passengers holding bookings "
         "for cancelled sailings can claim a refund at either terminal until the end of the month. "
         "The operator thanked residents for their patience and said the repaired vessel passed "
         "its inspection without remarks.")


def _doc(aid: str, outlet: str, fetched: str, text: str) -> dict:
    fp = fingerprint(text)
    assert fp is not None
    return {"id": aid, "outlet": outlet, "outlets": [outlet], "fetched": fetched, "text": text,
            "title": "Ferry resumes", "minhash_bands": fp.bands, "status": "extracted",
            "canonical_url": f"http://example.test/{aid}"}


def test_later_copy_becomes_duplicate_and_outlet_joins_original(es, settings):
    ensure_indices(es, settings)
    index = settings.index("articles")
    copy_text = STORY.replace("Sample wire copy.", "Sample wire copy, as carried by a second outlet.")
    docs = [
        _doc("b-copy", "second-outlet", "2026-11-25T10:00:00+00:00", copy_text),
        _doc("a-original", "wire", "2026-11-25T10:00:00+00:00", STORY),
        _doc("c-other", "third", "2026-11-25T09:00:00+00:00",
             "Sample text about an unrelated topic: " + " ".join(f"word{i}" for i in range(80))),
    ]
    report = bulk_write(es, index, docs, refresh=True)
    assert report.failed == 0
    now = datetime(2026, 11, 25, 11, tzinfo=UTC)

    first = reconcile_near_duplicates(settings, es, article_ids=["a-original", "b-copy", "c-other"],
                                      now=now)
    assert first["marked"] == [("b-copy", "a-original")]
    copy = es.get(index=index, id="b-copy")["_source"]
    original = es.get(index=index, id="a-original")["_source"]
    other = es.get(index=index, id="c-other")["_source"]
    assert copy["duplicate_of"] == "a-original"
    assert "duplicate_of" not in original and "duplicate_of" not in other
    assert original["outlets"] == ["wire", "second-outlet"]

    again = reconcile_near_duplicates(settings, es, article_ids=["a-original", "b-copy", "c-other"],
                                      now=now)
    assert again["marked"] == []
    assert es.get(index=index, id="a-original")["_source"]["outlets"] == ["wire", "second-outlet"]
