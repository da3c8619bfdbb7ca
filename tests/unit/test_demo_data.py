"""The sample news items: coverage the demo promises, validation, and no copied text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.demo import DEFAULT_PATH, load_sample
from pipeline.errors import ConfigError

# The contract ids of ../shared/docs/taxonomy.md and the children the sample data must exercise.
TOP_LEVEL = {"hard_currency", "military_technology", "combat_experience", "security_guarantees",
             "diplomatic_cover", "prestige", "economic_aid", "costs_and_risks"}
CHILDREN = {"military_technology.nuclear", "military_technology.missiles", "military_technology.space",
            "military_technology.naval", "military_technology.conventional",
            "costs_and_risks.casualties", "costs_and_risks.defection", "costs_and_risks.escalation"}


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def test_size_and_every_motive_covered(sample):
    assert 14 <= len(sample.items) <= 20
    labelled = {m for item in sample.items for m in item.expect.motives}
    assert TOP_LEVEL <= labelled
    assert CHILDREN <= labelled
    assert labelled <= TOP_LEVEL | CHILDREN, "unknown motive id in expect.motives"
    for item in sample.items:  # a child implies its parent
        for motive in item.expect.motives:
            if "." in motive:
                assert motive.split(".")[0] in item.expect.motives, item.id


def test_syndicated_copies_share_text_but_not_url_or_outlet(sample):
    copies = [i for i in sample.items if i.copy_of]
    assert len(copies) >= 2
    for copy in copies:
        original = sample.by_id(copy.copy_of)
        assert copy.body == original.body
        assert copy.outlet != original.outlet
        assert copy.path != original.path
        assert sample.items.index(copy) > sample.items.index(original)


def test_updates_corroboration_and_off_topic_items(sample):
    updates = [i for i in sample.items if i.expect.updates]
    assert len(updates) >= 2
    for item in updates:
        for earlier_id in item.expect.updates:
            earlier = sample.by_id(earlier_id)
            assert earlier.published < item.published
            # a revision states a figure the earlier item did not
            new_figures = set(re.findall(r"\d[\d,]*\d|\d", item.body)) - \
                set(re.findall(r"\d[\d,]*\d|\d", earlier.body))
            assert new_figures, item.id
    corroborating = [i for i in sample.items if i.expect.corroborates]
    assert corroborating
    for item in corroborating:
        for other in item.expect.corroborates:
            assert sample.by_id(other).outlet != item.outlet
            assert sample.by_id(other).body != item.body  # different words
    off_topic = [i for i in sample.items if not i.expect.on_topic]
    assert 2 <= len(off_topic) <= 3
    assert all(not i.expect.motives for i in off_topic)


def test_release_order_is_chronological_and_outlets_are_known(sample):
    times = [i.published for i in sample.items]
    assert times == sorted(times)
    assert set(sample.outlets) == {"northwire", "capital-herald", "eastern-observer"}
    assert {i.outlet for i in sample.items} == set(sample.outlets)
    assert "sample data" in sample.notice.lower() and "not real news" in sample.notice.lower()


def test_file_is_marked_as_sample_data_in_its_header():
    head = DEFAULT_PATH.read_text(encoding="utf-8").splitlines()[0]
    assert "SAMPLE DATA" in head


def test_sample_body_never_mentions_that_it_is_sample_data(sample):
    """The marking belongs in header, feed and footer; the body text feeds claims and alerts."""
    for item in sample.items:
        assert "sample" not in item.body.lower(), item.id


def _shingles(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_no_sentence_copied_from_the_seeds_or_the_corpus(sample, shared_dir: Path):
    """No run of eight words in the sample items occurs in ../shared (seeds and corpus)."""
    ours = set()
    for item in sample.items:
        ours |= _shingles(" ".join([item.title, item.summary, item.body]))
    theirs = set()
    for path in (shared_dir / "seeds").glob("*.txt"):
        theirs |= _shingles(path.read_text(encoding="utf-8", errors="replace"))
    for line in (shared_dir / "corpus" / "articles.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            doc = json.loads(line)
            theirs |= _shingles(f"{doc.get('title', '')} {doc.get('text', '')}")
    assert len(theirs) > 1000  # the reference text was really read
    overlap = ours & theirs
    assert not overlap, [" ".join(s) for s in sorted(overlap)[:5]]


GOOD_ITEM = """
  - id: a
    outlet: wire
    slug: a
    title: A
    author: Staff
    published: "2024-10-18T07:40:00Z"
    summary: S
    body: |
      First paragraph.

      Second paragraph.
    expect: {on_topic: true, motives: []}
"""
HEADER = """sample_data: true
notice: Sample data.
outlets:
  wire: {name: Wire, kind: wire, description: D}
items:
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sample.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loader_reads_a_minimal_file(tmp_path):
    loaded = load_sample(_write(tmp_path, HEADER + GOOD_ITEM))
    assert loaded.items[0].paragraphs == ("First paragraph.", "Second paragraph.")


@pytest.mark.parametrize(("text", "item", "field"), [
    (HEADER + GOOD_ITEM.replace("    title: A\n", ""), "a", "title"),
    (HEADER + GOOD_ITEM.replace("outlet: wire", "outlet: nope"), "a", "outlet"),
    (HEADER + GOOD_ITEM.replace('"2024-10-18T07:40:00Z"', "yesterday"), "a", "published"),
    (HEADER + GOOD_ITEM + GOOD_ITEM.replace("id: a", "id: b").replace("body: |", "copy_of: zz\n    x: |"),
     "b", "copy_of"),
    (HEADER + GOOD_ITEM + GOOD_ITEM.replace("id: a", "id: b"), "b", "slug"),
    (HEADER.replace("sample_data: true", "sample_data: false") + GOOD_ITEM, None, "sample_data"),
])
def test_loader_names_item_and_field_of_a_bad_entry(tmp_path, text, item, field):
    with pytest.raises(ConfigError) as info:
        load_sample(_write(tmp_path, text))
    assert info.value.item == item
    assert info.value.field == field
    assert str(tmp_path) in str(info.value)


def test_loader_reports_the_line_of_broken_yaml(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_sample(_write(tmp_path, HEADER + GOOD_ITEM + "  - id: [unclosed\n"))
    assert info.value.line is not None and info.value.line > 10
