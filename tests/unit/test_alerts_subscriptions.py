"""Subscriptions as data: parsing, validation errors that point at the line, motive matching."""

from __future__ import annotations

import pytest

from pipeline.alerts.subscriptions import Subscription, load_subscriptions, parse_subscriptions
from pipeline.errors import ConfigError
from pipeline.settings import DEFAULT_CONFIG_DIR

MOTIVES = ["hard_currency", "military_technology", "military_technology.space", "costs_and_risks"]


def test_the_shipped_subscriptions_file_is_valid_against_the_taxonomy():
    from pipeline.taxonomy import load_taxonomy

    subs = load_subscriptions(DEFAULT_CONFIG_DIR / "subscriptions.yaml",
                              load_taxonomy(DEFAULT_CONFIG_DIR / "taxonomy.yaml").ids)
    assert subs and all(s.recipients for s in subs)
    # the example shows every way of bundling: as it happens, every N minutes, and daily
    assert any(s.immediate for s in subs) and any(s.batched for s in subs) and any(s.digest for s in subs)


def test_defaults_and_single_values():
    (sub,) = parse_subscriptions("subscriptions:\n  - id: desk\n    recipients: desk@example.org\n")
    assert sub == Subscription(id="desk", recipients=("desk@example.org",))
    assert sub.immediate and not sub.digest and sub.events == ("new", "update")


@pytest.mark.parametrize(("item", "field", "line"), [
    ("  - id: ok\n    recipients: [a@example.org]\n  - id: bad\n    recipients: [not-an-address]\n",
     "recipients", 4),
    ("  - id: ok\n    recipients: [a@example.org]\n    motives: [hard_cash]\n", "motives", 2),
    ("  - id: ok\n    recipients: [a@example.org]\n    mode: hourly\n", "mode", 2),
    ("  - id: ok\n    recipients: [a@example.org]\n    min_score: 2\n", "min_score", 2),
    ("  - id: ok\n    recipients: [a@example.org]\n    colour: blue\n", "colour", 2),
    ("  - id: ok\n    recipients: [a@example.org]\n  - id: ok\n    recipients: [b@example.org]\n", "id", 4),
    ("  - id: ok\n    recipients: []\n", "recipients", 2),
])
def test_errors_name_the_file_item_field_and_line(item, field, line):
    with pytest.raises(ConfigError) as info:
        parse_subscriptions("subscriptions:\n" + item, "subs.yaml", MOTIVES)
    err = info.value
    assert (err.path, err.field, err.line) == ("subs.yaml", field, line)
    assert f"subs.yaml:{line}" in str(err)


def test_broken_yaml_and_a_missing_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_subscriptions("subscriptions: [\n", "s.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_subscriptions(tmp_path / "nope.yaml")


def test_motive_filter_includes_children_and_respects_score_topic_and_events():
    tech = Subscription(id="t", recipients=("t@example.org",), motives=("military_technology",),
                        min_score=0.5, events=("new",))
    claim = {"motives": ["military_technology", "military_technology.space"], "score": 0.7, "on_topic": True}
    assert tech.matches(claim, "new")
    assert tech.matches({**claim, "motives": ["military_technology.space"]}, "new")  # child alone
    assert not tech.matches(claim, "update")
    assert not tech.matches({**claim, "score": 0.4}, "new")
    assert not tech.matches({**claim, "motives": ["hard_currency"]}, "new")
    assert not tech.matches({**claim, "motives": ["military_technology_extra"]}, "new")
    assert not tech.matches({**claim, "on_topic": False}, "new")
    everything = Subscription(id="e", recipients=("e@example.org",))
    assert everything.matches({"motives": [], "score": 0.1}, "new")


def test_bundling_fields_parse_with_their_defaults():
    (batched, capped) = parse_subscriptions(
        "subscriptions:\n"
        "  - id: batch\n    recipients: [a@example.org]\n    mode: batched\n    every_minutes: 30\n"
        "    min_importance: 0.4\n    events: [new, disputed]\n"
        "  - id: capped\n    recipients: [b@example.org]\n    max_per_hour: 4\n", known_motives=MOTIVES)
    assert batched.batched and batched.queues and not batched.immediate and not batched.digest
    assert (batched.every_minutes, batched.min_importance, batched.events) == (30, 0.4, ("new", "disputed"))
    assert batched.max_per_hour is None
    assert capped.immediate and capped.max_per_hour == 4 and capped.every_minutes == 60
    assert capped.min_importance == 0.0


@pytest.mark.parametrize(("body", "field"), [
    ("    mode: hourly\n", "mode"),
    ("    events: [new, retracted]\n", "events"),
    ("    motives: [cash]\n", "motives"),
    ("    mode: batched\n    every_minutes: 0\n", "every_minutes"),
    ("    every_minutes: 15\n", "every_minutes"),  # only for batched
    ("    max_per_hour: -1\n", "max_per_hour"),
    ("    max_per_hour: 2.5\n", "max_per_hour"),
    ("    min_importance: 1.5\n", "min_importance"),
    ("    min_importance: high\n", "min_importance"),
])
def test_a_bad_bundling_field_names_the_file_the_subscription_and_the_field(body, field):
    text = "subscriptions:\n  - id: ok\n    recipients: [a@example.org]\n" \
           "  - id: watch\n    recipients: [b@example.org]\n" + body
    with pytest.raises(ConfigError) as err:
        parse_subscriptions(text, "subs.yaml", known_motives=MOTIVES)
    message = str(err.value)
    assert message.startswith("subs.yaml:4, item 'watch', field '" + field + "'")
