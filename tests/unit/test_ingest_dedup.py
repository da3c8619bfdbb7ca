"""Near-duplicate detection: light edits found, unrelated texts not, signatures stable across processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.ingest.dedup import BandFilter, NearDuplicateIndex, fingerprint, similarity
from tests.ingest_support import OTHER_STORY, STORY


def test_light_edit_is_a_near_duplicate_and_other_story_is_not():
    original, other = fingerprint(STORY), fingerprint(OTHER_STORY)
    copy = fingerprint(
        "Sample Wire - " + STORY.replace("six weeks", "about six weeks") + " Reporting by Sample"
    )
    trimmed = fingerprint(STORY.rsplit(".", 2)[0] + ".")  # last sentence dropped
    index = NearDuplicateIndex()
    index.add("orig", original.bands, original.shingles)
    index.add("other", other.bands, other.shingles)
    assert index.find(copy) == "orig"
    assert index.find(trimmed) == "orig"
    assert (
        index.find(fingerprint(OTHER_STORY + " An extra closing line of sample text."), exclude="other")
        is None
    )
    assert similarity(original.shingles, other.shingles)[0] < 0.05


def test_short_texts_are_not_compared():
    assert fingerprint("Sample data. Too short to say anything about.") is None


def test_candidates_from_elsewhere_are_confirmed_on_their_text():
    original = fingerprint(STORY)
    loaded: list[list[str]] = []

    def load_text(ids):
        loaded.append(ids)
        return {"earlier": STORY}

    index = NearDuplicateIndex(load_text=load_text)
    index.add("earlier", original.bands)  # bands only, as fetched from Elasticsearch
    assert index.find(fingerprint(STORY + " Sample postscript.")) == "earlier" and loaded == [["earlier"]]


def test_band_keys_are_the_same_in_another_process():
    code = (
        "from pipeline.ingest.dedup import fingerprint; import sys; "
        "print(','.join(fingerprint(sys.argv[1]).bands))"
    )
    out = subprocess.run([sys.executable, "-c", code, STORY], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == fingerprint(STORY).bands


def test_the_in_memory_window_is_bounded():
    fp = fingerprint(STORY)
    index = NearDuplicateIndex(keep=3)
    for i in range(5):
        index.add(f"a{i}", fp.bands, fp.shingles)
    assert len(index) == 3
    assert index.find(fp) == "a2"             # the oldest two were evicted, bands and shingles
    held = [[v] if isinstance(v, str) else v for v in index._bands.values()]
    assert held and all("a0" not in ids and "a1" not in ids for ids in held)


def test_band_filter_never_misses_an_added_band_and_rarely_claims_others():
    fps = [fingerprint(f"{STORY} Sample variant number {i} with extra words {i * 7}.") for i in range(50)]
    filt = BandFilter(bits=1 << 16)
    added = {b for fp in fps[:25] for b in fp.bands}
    for band in added:
        filt.add(band)
    assert all(band in filt for band in added)
    others = {b for fp in fps[25:] for b in fp.bands} - added
    assert others and sum(b in filt for b in others) <= len(others) // 10
    assert "not-a-band" not in BandFilter()  # empty: nothing is in it
    with pytest.raises(ValueError):
        BandFilter(bits=1000)


def test_evicted_bands_are_the_ones_worth_a_lookup():
    story, other = fingerprint(STORY), fingerprint(OTHER_STORY)
    index = NearDuplicateIndex(keep=1)
    assert index.maybe_evicted(story.bands) == []  # nothing evicted yet: no lookup at all
    index.add("story", story.bands, story.shingles)
    index.add("other", other.bands, other.shingles)  # evicts "story"
    assert index.maybe_evicted(story.bands) == story.bands
    assert index.maybe_evicted(other.bands) == [b for b in other.bands if b in story.bands]
