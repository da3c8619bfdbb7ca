"""Near-duplicate detection: light edits found, unrelated texts not, signatures stable across processes."""

from __future__ import annotations

import subprocess
import sys

from pipeline.ingest.dedup import NearDuplicateIndex, fingerprint, similarity
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
    assert all("a0" not in ids and "a1" not in ids for ids in index._bands.values())
