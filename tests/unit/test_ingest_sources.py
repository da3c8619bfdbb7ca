"""Sources and topic files: valid files load; every invalid one names file, source, field, line."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.ingest.sources import expand_vars, load_sources, load_topic
from pipeline.settings import DEFAULT_CONFIG_DIR


def write(tmp_path, text, name="sources.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_files_are_valid():
    real = load_sources(DEFAULT_CONFIG_DIR / "sources.yaml")
    assert len(real) >= 8 and all(s.url.startswith("https://") and not s.allow_private for s in real)
    assert {"wire", "newspaper", "state_media", "think_tank", "government"} <= {s.source_type for s in real}
    search = [s for s in real if s.kind == "search"]
    assert search and "North+Korea" in search[0].url and "{query}" not in search[0].url
    local = load_sources(DEFAULT_CONFIG_DIR / "sources.local.yaml", env={"NEWSWATCH_FEED_PORT": "8999"})
    assert [s.id for s in local] == ["northwire", "capital-herald", "eastern-observer"]
    assert local[0].url == "http://127.0.0.1:8999/feeds/northwire.xml" and all(s.allow_private for s in local)
    assert load_sources(DEFAULT_CONFIG_DIR / "sources.local.yaml", env={})[1].url.startswith(
        "http://127.0.0.1:8765/"
    )
    assert load_topic(DEFAULT_CONFIG_DIR / "topic.yaml").query_terms


def test_defaults_and_types(tmp_path):
    path = write(
        tmp_path,
        """
defaults: {poll_minutes: 5, language: de}
sources:
  - id: a
    url: https://example.org/a.xml
    source_type: think tank
  - {id: b, name: B, url: "https://example.org/b.xml", poll_minutes: 60, enabled: false, outlet: bee}
""",
    )
    a, b = load_sources(path)
    assert (a.poll_minutes, a.language, a.source_type, a.outlet, a.name) == (
        5.0,
        "de",
        "think_tank",
        "a",
        "a",
    )
    assert (b.poll_minutes, b.enabled, b.outlet) == (60.0, False, "bee")


@pytest.mark.parametrize(
    ("body", "item", "field", "line"),
    [
        ("  - {id: ok, url: 'https://x.org/'}\n  - {id: bad, url: 'file:///etc/passwd'}\n", "bad", "url", 3),
        ("  - {id: ok, url: 'https://x.org/'}\n  - {id: ok, url: 'https://y.org/'}\n", "ok", "id", 3),
        ("  - {id: Bad Id, url: 'https://x.org/'}\n", "Bad Id", "id", 2),
        ("  - {id: a, url: 'https://x.org/', kind: html}\n", "a", "kind", 2),
        ("  - {id: a, url: 'https://x.org/', poll_minutes: -1}\n", "a", "poll_minutes", 2),
        ("  - {id: a, url: 'https://x.org/', enabled: 'yes please'}\n", "a", "enabled", 2),
        ("  - {id: a, url: 'https://x.org/', colour: red}\n", "a", "colour", 2),
        ("  - {id: a, url: 'https://x.org/', source_type: blogger}\n", "a", "source_type", 2),
        ("  - {id: a, url: 'http://${NOPE_NOT_SET}/x'}\n", "a", "url", 2),
        ("  - {id: a}\n", "a", "url", 2),
        ("  - just a string\n", "#1", None, 2),
    ],
)
def test_invalid_config_names_file_item_field_and_line(tmp_path, body, item, field, line):
    path = write(tmp_path, "sources:\n" + body)
    with pytest.raises(ConfigError) as info:
        load_sources(path, env={})
    err = info.value
    assert (err.path, err.item, err.field, err.line) == (str(path), item, field, line)
    assert str(path) in str(err)


def test_broken_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        load_sources(write(tmp_path, "sources:\n  - id: a\n   url: [\n"))
    assert info.value.line is not None
    with pytest.raises(ConfigError, match="not found"):
        load_sources(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="sources"):
        load_sources(write(tmp_path, "just: a mapping\n"))


def test_search_source_needs_a_valid_template_and_topic(tmp_path):
    write(tmp_path, "id: t\nname: T\nquery_terms: [alpha beta, gamma]\nlanguages: [fr]\n", "topic.yaml")
    path = write(
        tmp_path, "sources:\n  - {id: s, kind: search, url: 'https://news.example/rss?q={query}&hl={lang}'}\n"
    )
    (s,) = load_sources(path)
    assert s.url == "https://news.example/rss?q=%22alpha+beta%22+OR+gamma&hl=fr"
    bad = write(
        tmp_path, "sources:\n  - {id: s, kind: search, url: 'https://n.example/?q={qurey}'}\n", "b.yaml"
    )
    with pytest.raises(ConfigError) as info:
        load_sources(bad)
    assert info.value.field == "url" and "placeholder" in str(info.value)
    write(tmp_path, "id: t\nname: T\nquery_terms: []\n", "topic.yaml")
    with pytest.raises(ConfigError) as info:
        load_sources(path)
    assert info.value.field == "query_terms" and info.value.path.endswith("topic.yaml")


def test_expand_vars():
    env = {"A": "1", "EMPTY": ""}
    assert expand_vars("x${A}y${B:-2}z${EMPTY:-3}", env) == "x1y2z3"
    with pytest.raises(KeyError):
        expand_vars("${B}", env)
