"""Feedback tokens and links: pure functions, no services."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from pipeline.errors import ConfigError
from pipeline.feedback import (
    KINDS,
    ExpiredToken,
    FeedbackToken,
    InvalidToken,
    feedback_document,
    feedback_links,
    sign_token,
    verify_token,
)
from pipeline.settings import FeedbackSettings, Settings, feedback_settings

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
KEY = "k" * 32
OLD_KEY = "o" * 32


def _token(**changes: object) -> FeedbackToken:
    base = FeedbackToken(alert_id="a1b2c3", claim_id="claim-1", cluster_id="cluster-9",
                         subscription_id="analysts", kind="useful", expires=NOW + timedelta(days=14))
    return replace(base, **changes)


def _settings(keys: tuple[str, ...] = (KEY,), url: str | None = "http://127.0.0.1:8080/newswatch/feedback",
              days: float = 14.0) -> Settings:
    return Settings(feedback=FeedbackSettings(keys=keys, base_url=url, link_days=days))


def test_round_trip_gives_back_every_field_and_the_key_that_signed():
    token = _token(kind="wrong_motive")
    got, key_index = verify_token(sign_token(token, [KEY]), [KEY], now=NOW)
    assert got == token and key_index == 0
    assert got.feedback_id == token.feedback_id


def test_a_token_signed_with_another_key_is_forged():
    text = sign_token(_token(), ["x" * 32])
    with pytest.raises(InvalidToken, match="signature") as info:
        verify_token(text, [KEY], now=NOW)
    assert not isinstance(info.value, ExpiredToken)


@pytest.mark.parametrize(("field", "value"), [
    ("t", "not_on_topic"), ("c", "claim-2"), ("a", "other-alert"), ("s", "other-sub"), ("k", "cluster-0"),
    ("e", 4102444800),  # a later expiry
])
def test_changing_any_field_of_a_genuine_token_breaks_it(field, value):
    payload, mac = sign_token(_token(), [KEY]).split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body[field] = value
    forged = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="signature"):
        verify_token(f"{forged}.{mac}", [KEY], now=NOW)


@pytest.mark.parametrize("text", ["", "abc", "a.b.c", "x" * 2000 + ".y", "eyJ9.!!!!", "abc.", ".abc",
                                  "eyJhIjoxfQ.AAAA", "eyJhIjoxfQ.AAAA%20"])
def test_malformed_tokens_are_refused_as_invalid(text):
    with pytest.raises(InvalidToken):
        verify_token(text, [KEY], now=NOW)


def test_extra_characters_do_not_make_a_second_valid_spelling():
    text = sign_token(_token(), [KEY])
    for variant in (text + "=", text.replace(".", ".\n"), " " + text):
        with pytest.raises(InvalidToken):
            verify_token(variant, [KEY], now=NOW)


def test_expired_only_at_or_after_the_expiry_and_only_for_genuine_tokens():
    token = _token(expires=NOW + timedelta(seconds=10))
    text = sign_token(token, [KEY])
    assert verify_token(text, [KEY], now=NOW + timedelta(seconds=9))[0] == token
    with pytest.raises(ExpiredToken):
        verify_token(text, [KEY], now=NOW + timedelta(seconds=10))
    # a forged token past its date is forged, not expired: the MAC is checked first
    with pytest.raises(InvalidToken) as info:
        verify_token(sign_token(token, ["z" * 32]), [KEY], now=NOW + timedelta(days=1))
    assert not isinstance(info.value, ExpiredToken)


def test_key_rotation_new_key_signs_old_key_still_verifies_until_dropped():
    old_link = sign_token(_token(), [OLD_KEY])
    assert verify_token(old_link, [KEY, OLD_KEY], now=NOW)[1] == 1
    new_link = sign_token(_token(), [KEY, OLD_KEY])
    assert verify_token(new_link, [KEY], now=NOW)[1] == 0
    with pytest.raises(InvalidToken):
        verify_token(old_link, [KEY], now=NOW)  # the old key retired


def test_no_keys_verify_nothing_and_sign_nothing():
    with pytest.raises(InvalidToken):
        verify_token(sign_token(_token(), [KEY]), [], now=NOW)
    with pytest.raises(ValueError, match="no feedback key"):
        sign_token(_token(), [])


def test_tokens_refuse_bad_content_before_signing():
    with pytest.raises(ValueError, match="unknown feedback kind"):
        _token(kind="spam")
    with pytest.raises(ValueError, match="claim_id"):
        _token(claim_id="")
    with pytest.raises(ValueError, match="timezone"):
        _token(expires=datetime(2026, 1, 1))


def test_feedback_id_is_the_verdict_not_the_expiry():
    a, b = _token(), _token(expires=NOW + timedelta(days=30))
    assert a.feedback_id == b.feedback_id
    assert _token(kind="not_new").feedback_id != a.feedback_id
    assert _token(alert_id="other").feedback_id != a.feedback_id


def test_links_one_per_kind_under_the_base_url_and_verifiable():
    links = feedback_links(_settings(days=2), alert_id="a1", claim_id="c1", cluster_id="k1",
                           subscription_id="s1", now=NOW)
    assert list(links) == list(KINDS)
    for kind, url in links.items():
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("http", "127.0.0.1:8080")
        assert parts.path.startswith("/newswatch/feedback/") and not parts.query
        token, _ = verify_token(parts.path.rsplit("/", 1)[1], [KEY], now=NOW)
        assert (token.kind, token.claim_id, token.alert_id) == (kind, "c1", "a1")
        assert token.expires == NOW + timedelta(days=2)
    # the same run renders the same links (a re-sent alert carries the same URLs)
    assert links == feedback_links(_settings(days=2), alert_id="a1", claim_id="c1", cluster_id="k1",
                                   subscription_id="s1", now=NOW)


@pytest.mark.parametrize("settings", [_settings(keys=()), _settings(url=None), Settings()])
def test_no_key_or_no_url_means_no_links(settings):
    assert feedback_links(settings, alert_id="a", claim_id="c", cluster_id="k", subscription_id="s",
                          now=NOW) == {}


def test_settings_parse_keys_url_and_days_and_name_the_field():
    cfg = feedback_settings(f"{KEY}, {OLD_KEY}", "https://x.example/newswatch/feedback/", "7")
    assert cfg.keys == (KEY, OLD_KEY) and cfg.base_url == "https://x.example/newswatch/feedback"
    assert cfg.link_days == 7 and cfg.enabled
    assert KEY not in repr(cfg)  # secrets stay out of logs
    for args, field in [(("short", None, None), "NEWSWATCH_FEEDBACK_KEY"),
                        ((KEY, "ftp://x/", None), "NEWSWATCH_FEEDBACK_URL"),
                        ((KEY, "http://x/?a=1", None), "NEWSWATCH_FEEDBACK_URL"),
                        ((KEY, None, "soon"), "NEWSWATCH_FEEDBACK_DAYS"),
                        ((KEY, None, "0"), "NEWSWATCH_FEEDBACK_DAYS")]:
        with pytest.raises(ConfigError) as info:
            feedback_settings(*args)
        assert info.value.field == field
        assert "short" not in str(info.value)  # the key itself is never echoed


def test_load_settings_reads_the_environment(monkeypatch):
    from pipeline.settings import load_settings

    monkeypatch.setenv("NEWSWATCH_FEEDBACK_KEY", f"{KEY},{OLD_KEY}")
    monkeypatch.setenv("NEWSWATCH_FEEDBACK_URL", "http://127.0.0.1:9/newswatch/feedback")
    monkeypatch.setenv("NEWSWATCH_FEEDBACK_DAYS", "3.5")
    cfg = load_settings().feedback
    assert (cfg.keys, cfg.base_url, cfg.link_days) == ((KEY, OLD_KEY), "http://127.0.0.1:9/newswatch/feedback",
                                                       3.5)


def test_feedback_document_copies_the_claim_for_the_report():
    claim = {"text": "Officials say 1,000 troops arrived.", "article_id": "art1",
             "motives": ["hard_currency"], "on_topic": True, "novelty": "new", "outlet": "wire-a",
             "source_id": "wire-a",
             "source_name": "Wire A", "attribution": {"speaker": "officials", "organisation": "Ministry",
                                                      "kind": "official", "text": "Officials say"}}
    doc = feedback_document(_token(kind="not_new"), claim, now=NOW, key_index=1)
    assert doc["id"] == _token(kind="not_new").feedback_id and doc["kind"] == "not_new"
    assert (doc["outlet"], doc["motives"], doc["attribution_source"]) == \
        ("wire-a", ["hard_currency"], "Ministry")
    assert doc["attribution"] == {"speaker": "officials", "organisation": "Ministry", "kind": "official"}
    assert doc["recorded_at"] == "2026-03-02T12:00:00.000Z" and doc["key_index"] == 1 and doc["claim_found"]
    missing = feedback_document(_token(), None, now=NOW)
    assert missing["claim_found"] is False and missing["motives"] == []
    assert missing["attribution_source"] is None
