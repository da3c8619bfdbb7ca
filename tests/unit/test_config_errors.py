"""Config files report every problem at once, each naming file, line, item and field; source URLs
with invalid IP literals or broken IPv6 hosts are config errors, not tracebacks."""

from __future__ import annotations

import pytest

from pipeline.alerts.subscriptions import parse_subscriptions
from pipeline.errors import ConfigError, ConfigErrors
from pipeline.ingest.sources import load_sources, url_problem

MOTIVES = ["hard_currency", "military_technology"]


def _write(tmp_path, text, name="sources.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_problem_of_a_sources_file_is_reported_at_once(tmp_path):
    path = _write(tmp_path, (
        "sources:\n"
        "  - {id: good, url: 'https://example.org/a.xml'}\n"                       # line 2: valid
        "  - {id: a, url: 'http://999.1.1.1/x', poll_minutes: 0}\n"               # line 3: url, poll
        "  - {id: b, url: 'https://example.org/b', kind: html, colour: red}\n"    # line 4: kind, colour
        "  - {id: good, url: 'https://example.org/c'}\n"                          # line 5: duplicate
        "  - not a mapping\n"                                                     # line 6
    ))
    with pytest.raises(ConfigErrors) as info:
        load_sources(path, env={})
    err = info.value
    found = {(p.item, p.field, p.line) for p in err.problems}
    assert found == {("a", "url", 3), ("a", "poll_minutes", 3), ("b", "kind", 4), ("b", "colour", 4),
                     ("good", "id", 5), ("#5", None, 6)}
    assert all(p.path == str(path) for p in err.problems)
    text = str(err)
    assert text.splitlines()[0] == f"6 problems in {path}:"
    assert f"{path}:3, item 'a', field 'url'" in text and "999.1.1.1" in text
    # a ConfigErrors is a ConfigError carrying the first problem's location, so callers need no change
    assert isinstance(err, ConfigError) and (err.item, err.field, err.line) == ("a", "url", 3)


@pytest.mark.parametrize("url", [
    "http://999.1.1.1/x",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://2130706433/",
    "http://1.2.3/",
    "http://[::1/x",
    "http://[::g]/",
    "http://example.org:99999/",
    "http://exa mple.org/",
])
def test_a_bad_host_or_port_in_a_source_url_is_a_config_error(tmp_path, url):
    path = _write(tmp_path, f"sources:\n  - id: bad\n    url: '{url}'\n")
    with pytest.raises(ConfigError) as info:
        load_sources(path, env={})
    err = info.value
    assert (err.path, err.item, err.field, err.line) == (str(path), "bad", "url", 2)
    assert url_problem(url) is not None


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8765/feed.xml", "https://[::1]:8443/x", "https://news.example.org/rss?q=a+b",
    "http://10.0.0.1./x",
])
def test_good_urls_pass(url):
    assert url_problem(url) is None


def test_a_bad_topic_file_is_reported_once_beside_the_other_problems(tmp_path):
    _write(tmp_path, "id: t\nname: T\nquery_terms: []\n", "topic.yaml")
    path = _write(tmp_path, (
        "sources:\n"
        "  - {id: s1, kind: search, url: 'https://n.example/?q={query}'}\n"
        "  - {id: s2, kind: search, url: 'https://n.example/?q={query}'}\n"
        "  - {id: x, url: 'file:///etc/passwd'}\n"
    ))
    with pytest.raises(ConfigErrors) as info:
        load_sources(path, env={})
    fields = [(p.path.rsplit("/", 1)[-1], p.field) for p in info.value.problems]
    assert fields == [("topic.yaml", "query_terms"), ("sources.yaml", "url")]


def test_every_problem_of_a_subscriptions_file_is_reported_at_once():
    text = ("subscriptions:\n"
            "  - id: ok\n    recipients: [a@example.org]\n"                                  # 2
            "  - id: two\n    recipients: [nope]\n    mode: hourly\n    min_score: x\n"      # 4
            "  - id: ok\n    recipients: [b@example.org]\n    motives: [hard_cash]\n")       # 8
    with pytest.raises(ConfigErrors) as info:
        parse_subscriptions(text, "subs.yaml", MOTIVES)
    found = [(p.item, p.field, p.line) for p in info.value.problems]
    assert found == [("two", "recipients", 4), ("two", "mode", 4), ("two", "min_score", 4),
                     ("ok", "id", 8), ("ok", "motives", 8)]
    assert str(info.value).startswith("5 problems in subs.yaml:\n")


def test_a_single_problem_keeps_its_plain_message():
    with pytest.raises(ConfigError) as info:
        parse_subscriptions("subscriptions:\n  - id: a\n    recipients: []\n", "s.yaml")
    assert not isinstance(info.value, ConfigErrors)
    assert str(info.value) == ("s.yaml:2, item 'a', field 'recipients': "
                               "at least one recipient address is required")
