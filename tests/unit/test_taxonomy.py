"""The taxonomy file and its validation (errors name the file, the item and the line)."""

from __future__ import annotations

import re

import pytest

from pipeline.errors import ConfigError
from pipeline.taxonomy import REQUIRED_IDS, load_taxonomy, parse_taxonomy

TOPIC = """
topic:
  actor: {en: [north korea]}
  partner: {en: [russia]}
  deployment: {en: [troops]}
"""


def _motive(motive_id: str, extra: str = "") -> str:
    return f"  - id: {motive_id}\n    name: N {motive_id}\n    description: D {motive_id}\n{extra}"


def _doc(*motives: str, topic: str = TOPIC) -> str:
    return "motives:\n" + "".join(motives) + topic


REQUIRED = [_motive(m) for m in REQUIRED_IDS]


def test_repo_taxonomy_has_the_contract_ids_and_children():
    tax = load_taxonomy()
    assert set(REQUIRED_IDS) <= set(tax.ids)
    assert tax.top_level == list(REQUIRED_IDS)
    for child in ("nuclear", "missiles", "space", "naval", "conventional"):
        assert f"military_technology.{child}" in tax.children("military_technology")
    for child in ("casualties", "defection", "escalation"):
        assert f"costs_and_risks.{child}" in tax.children("costs_and_risks")
    for motive in tax.motives.values():
        assert motive.description and motive.keywords, motive.id
        assert motive.exemplars, motive.id
        for exemplar in motive.exemplars:
            assert exemplar.seed in {"000_fd0447f87cd5aaab.txt", "002_3a4d68c2236e3f11.txt"}
    assert {"en", "de", "vi"} <= set(tax.topic.actor) and {"en", "de", "vi"} <= set(tax.topic.partner)


def test_exemplars_are_not_copied_from_the_seeds(shared_dir):
    """Team's own words: no exemplar shares a run of 8 words with a seed document."""
    def grams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.lower())
        return {tuple(words[i:i + 8]) for i in range(len(words) - 7)}

    seed_grams = set().union(*(grams(p.read_text(encoding="utf-8"))
                               for p in (shared_dir / "seeds").glob("*.txt")))
    for motive in load_taxonomy().motives.values():
        for exemplar in motive.exemplars:
            assert not grams(exemplar.text) & seed_grams, (motive.id, exemplar.text)


def test_expand_adds_parents_in_taxonomy_order():
    tax = load_taxonomy()
    assert tax.expand(["costs_and_risks.defection", "prestige"]) == [
        "prestige", "costs_and_risks", "costs_and_risks.defection"]
    with pytest.raises(KeyError):
        tax.expand(["no_such_motive"])


def test_a_new_motive_needs_no_code_change():
    text = _doc(*REQUIRED, _motive("hard_currency.wages", "    parent: hard_currency\n"))
    tax = parse_taxonomy(text)
    assert "hard_currency.wages" in tax.children("hard_currency")
    assert tax.expand(["hard_currency.wages"]) == ["hard_currency", "hard_currency.wages"]


def test_dotted_child_infers_its_parent_and_nested_children_work():
    nested = _motive("prestige", "    children:\n      - id: prestige.nuclear_status\n"
                                 "        name: Nuclear status\n        description: Recognition.\n")
    tax = parse_taxonomy(_doc(*[m for m in REQUIRED if "id: prestige" not in m], nested))
    assert tax.motives["prestige.nuclear_status"].parent == "prestige"


def test_duplicate_id_points_at_its_line():
    text = _doc(*REQUIRED, _motive("prestige"))
    with pytest.raises(ConfigError) as err:
        parse_taxonomy(text, "tax.yaml")
    assert err.value.item == "prestige" and "duplicate" in str(err.value)
    lines = text.splitlines()
    second = max(i for i, line in enumerate(lines) if line == "  - id: prestige")
    assert err.value.line == second + 1
    assert "first defined at line" in str(err.value)


def test_unknown_parent_is_an_error_with_line():
    text = _doc(*REQUIRED, _motive("orphan", "    parent: nowhere\n"))
    with pytest.raises(ConfigError) as err:
        parse_taxonomy(text, "tax.yaml")
    assert err.value.field == "parent" and err.value.item == "orphan"
    assert err.value.line == text.splitlines().index("  - id: orphan") + 1
    assert f"tax.yaml:{err.value.line}" in str(err.value)


def test_empty_description_is_an_error():
    text = _doc(*REQUIRED[:-1], "  - id: costs_and_risks\n    name: Costs\n    description: ''\n")
    with pytest.raises(ConfigError) as err:
        parse_taxonomy(text, "tax.yaml")
    assert err.value.field == "description" and err.value.item == "costs_and_risks"


def test_missing_required_ids_are_named():
    with pytest.raises(ConfigError, match="prestige"):
        parse_taxonomy(_doc(*[m for m in REQUIRED if "id: prestige" not in m]))


def test_required_id_may_not_be_a_child():
    moved = _motive("prestige", "    parent: hard_currency\n")
    with pytest.raises(ConfigError, match="top-level"):
        parse_taxonomy(_doc(*[m for m in REQUIRED if "id: prestige" not in m], moved))


def test_missing_topic_section_and_bad_yaml():
    with pytest.raises(ConfigError, match="topic"):
        parse_taxonomy(_doc(*REQUIRED, topic=""))
    with pytest.raises(ConfigError) as err:
        parse_taxonomy("motives:\n  - id: [unclosed\n", "bad.yaml")
    assert err.value.line is not None


def test_duplicate_mapping_key_is_reported():
    text = _doc(*REQUIRED[:-1], "  - id: costs_and_risks\n    name: A\n    name: B\n    description: d\n")
    with pytest.raises(ConfigError, match="duplicate key 'name'"):
        parse_taxonomy(text)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_load_taxonomy_rereads_an_edited_file(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(_doc(*REQUIRED), encoding="utf-8")
    assert "extra" not in load_taxonomy(path).ids
    path.write_text(_doc(*REQUIRED, _motive("extra")), encoding="utf-8")
    import os
    os.utime(path, ns=(1, 10**18))
    assert "extra" in load_taxonomy(path).ids


def test_default_path_follows_the_configured_folder(tmp_path, monkeypatch):
    (tmp_path / "taxonomy.yaml").write_text(_doc(*REQUIRED, _motive("from_config_dir")),
                                            encoding="utf-8")
    monkeypatch.setenv("NEWSWATCH_CONFIG_DIR", str(tmp_path))
    assert "from_config_dir" in load_taxonomy().ids
    monkeypatch.setenv("NEWSWATCH_CONFIG_DIR", str(tmp_path / "empty"))
    assert "from_config_dir" not in load_taxonomy().ids  # falls back to the repo's file
