"""Signed, expiring feedback tokens: one per (alert, claim, kind) link in an email.

A token is ``<payload>.<mac>``, both base64url without padding: the payload is compact JSON
(alert, claim, cluster and subscription ids, the kind and the expiry in Unix seconds) and the mac
is HMAC-SHA256 over the encoded payload with a domain prefix, so a MAC made for another purpose
with the same key never verifies here. The MAC is checked (constant time, against every
configured key) before the payload is parsed, and expiry only after the MAC, so a forged token
is always "forged", never "expired".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.errors import NewswatchError

KINDS: tuple[str, ...] = ("useful", "not_new", "wrong_motive", "not_on_topic")
KIND_LABELS: dict[str, str] = {"useful": "Useful", "not_new": "Not new",
                               "wrong_motive": "Wrong motive", "not_on_topic": "Not on topic"}
_DOMAIN = b"newswatch-feedback-v1\x00"
_VERSION = 1
# Ids are short hashes; anything longer than this is not ours and is refused before decoding.
MAX_TOKEN_LENGTH = 1024
_MAX_ID_LENGTH = 200
_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class InvalidToken(NewswatchError):  # noqa: N818 - reads as a verdict on the link
    """The token is malformed or its MAC matches none of the keys (forged or tampered)."""


class ExpiredToken(InvalidToken):
    """The token is genuine but past its expiry."""


@dataclass(frozen=True, kw_only=True)
class FeedbackToken:
    """What one feedback link says: this reader's verdict ``kind`` on one claim of one alert."""

    alert_id: str
    claim_id: str
    cluster_id: str
    subscription_id: str
    kind: str
    expires: datetime

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown feedback kind {self.kind!r}; known: {', '.join(KINDS)}")
        for name in ("alert_id", "claim_id", "cluster_id", "subscription_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > _MAX_ID_LENGTH:
                raise ValueError(f"{name} must be a non-empty string of at most {_MAX_ID_LENGTH} "
                                 f"characters, got {value!r}")
        if self.expires.tzinfo is None:
            raise ValueError("expires must be timezone-aware")

    @property
    def feedback_id(self) -> str:
        """The id of the feedback document this link records. The expiry is left out, so the
        same verdict from a re-sent copy of the email is still one document."""
        key = "|".join((self.alert_id, self.claim_id, self.cluster_id, self.subscription_id, self.kind))
        return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, payload: str) -> bytes:
    return hmac.new(key.encode("utf-8"), _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()


def sign_token(token: FeedbackToken, keys: Sequence[str]) -> str:
    """The URL-safe token for ``token``, signed with the first key."""
    if not keys:
        raise ValueError("no feedback key to sign with")
    body = {"v": _VERSION, "a": token.alert_id, "c": token.claim_id, "k": token.cluster_id,
            "s": token.subscription_id, "t": token.kind, "e": int(token.expires.timestamp())}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{payload}.{_b64(_mac(keys[0], payload))}"


def _matching_key(payload: str, mac: bytes, keys: Sequence[str]) -> int | None:
    found = None
    for index, key in enumerate(keys):
        # every key is tried, so the time taken does not say which one matched
        if hmac.compare_digest(_mac(key, payload), mac) and found is None:
            found = index
    return found


def verify_token(text: str, keys: Sequence[str], *, now: datetime) -> tuple[FeedbackToken, int]:
    """The token's content and the index of the key that signed it.

    Raises ``InvalidToken`` for anything not signed by one of ``keys`` and ``ExpiredToken`` for a
    genuine token at or after its expiry.
    """
    if not keys:
        raise InvalidToken("no feedback key is configured")
    # one spelling per token: base64 decoding alone would skip stray characters
    if not isinstance(text, str) or len(text) > MAX_TOKEN_LENGTH or not _SHAPE.fullmatch(text):
        raise InvalidToken("malformed token")
    payload, _, mac_text = text.partition(".")
    try:
        mac = _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed token") from None
    if (key_index := _matching_key(payload, mac, keys)) is None:
        raise InvalidToken("the token's signature does not match")
    try:
        body = json.loads(_unb64(payload))
        if body.get("v") != _VERSION:
            raise InvalidToken(f"unknown token version {body.get('v')!r}")
        expires_at = body["e"]
        if not isinstance(expires_at, int) or isinstance(expires_at, bool):
            raise InvalidToken("the expiry is not a number of seconds")
        token = FeedbackToken(alert_id=body["a"], claim_id=body["c"], cluster_id=body["k"],
                              subscription_id=body["s"], kind=body["t"],
                              expires=datetime.fromtimestamp(expires_at, UTC))
    except InvalidToken:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, OSError) as exc:
        # signed by us yet unreadable: a key shared with something else, or a bug; never accepted
        raise InvalidToken(f"the token's content is not valid: {exc}") from None
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if now >= token.expires:
        raise ExpiredToken(f"the link expired at {token.expires.isoformat()}")
    return token, key_index
