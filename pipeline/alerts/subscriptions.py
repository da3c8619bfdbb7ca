"""Subscriptions as data: who gets which alerts, and how they are bundled into emails.

Modes: ``immediate`` (one email per article, or per cluster for a status change, holding all its
new claims and updates), ``batched`` (one email every ``every_minutes`` with everything queued,
grouped by motive), ``digest`` (daily) and ``both`` (immediate and digest). ``max_per_hour`` caps
the emails of a subscription; what does not fit is carried into its next email, never dropped.
``min_importance`` leaves out claim events below that score (``pipeline.alerts.importance``).

Operators edit ``config/subscriptions.yaml`` (or the file named by
``NEWSWATCH_SUBSCRIPTIONS_FILE``), never code. A bad entry is a ConfigError that names the file,
the line, the subscription and the field, so one typo is found in seconds, not by a missing email;
every problem in the file is reported at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, raise_config_problems
from pipeline.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["Subscription", "load_subscriptions", "parse_subscriptions", "configured_subscriptions"]

MODES = ("immediate", "batched", "digest", "both")
EVENTS = ("new", "update", "corroborated", "disputed")
DEFAULT_EVENTS = ("new", "update")
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Subscription:
    """One subscriber's filter. ``motives`` empty means every motive (and claims with none)."""

    id: str
    recipients: tuple[str, ...]
    motives: tuple[str, ...] = ()
    mode: str = "immediate"
    min_score: float = 0.0
    on_topic_only: bool = True
    events: tuple[str, ...] = DEFAULT_EVENTS
    name: str | None = None
    min_importance: float = 0.0
    every_minutes: int = 60
    max_per_hour: int | None = None

    @property
    def immediate(self) -> bool:
        return self.mode in {"immediate", "both"}

    @property
    def batched(self) -> bool:
        return self.mode == "batched"

    @property
    def queues(self) -> bool:
        """Does this subscription receive claim events as they happen (immediate or batched)?"""
        return self.immediate or self.batched

    @property
    def digest(self) -> bool:
        return self.mode in {"digest", "both"}

    def wants_motives(self, motives: Iterable[str]) -> bool:
        """A child (``military_technology.nuclear``) matches its parent's subscription."""
        if not self.motives:
            return True
        return any(m == s or m.startswith(s + ".") for m in motives for s in self.motives)

    def matches(self, claim: dict[str, Any], event: str | None = None) -> bool:
        if event is not None and event not in self.events:
            return False
        if self.on_topic_only and claim.get("on_topic") is False:
            return False
        if float(claim.get("score") or 0.0) < self.min_score:
            return False
        return self.wants_motives(claim.get("motives") or [])


@dataclass
class _Ctx:
    path: str
    known_motives: set[str] | None = None
    seen: set[str] = field(default_factory=set)


def _line_numbers(text: str) -> list[int]:
    """The 1-based line of each item under ``subscriptions:`` (for error messages)."""
    import yaml

    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return []
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if getattr(key, "value", None) == "subscriptions" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _parse_one(raw: Any, index: int, line: int | None, ctx: _Ctx,
               problems: list[ConfigError]) -> Subscription | None:
    """One subscription; every problem found is appended to ``problems`` (the fields are checked
    independently, so one typo does not hide the next)."""
    item = str(raw.get("id")) if isinstance(raw, dict) and raw.get("id") else f"#{index + 1}"
    before = len(problems)

    def fail(message: str, fld: str | None = None) -> None:
        problems.append(ConfigError(message, path=ctx.path, item=item, field=fld, line=line))

    if not isinstance(raw, dict):
        fail("each subscription must be a mapping")
        return None
    unknown = set(raw) - {"id", "name", "recipients", "motives", "mode", "min_score", "on_topic_only",
                          "events", "min_importance", "every_minutes", "max_per_hour"}
    for name in sorted(unknown):
        fail(f"unknown field {name!r}", name)
    sid = raw.get("id")
    if not isinstance(sid, str) or not _ID.match(sid):
        fail("id must be lower-case letters, digits, '.', '_' or '-'", "id")
    elif sid in ctx.seen:
        fail("duplicate id", "id")
    else:
        ctx.seen.add(sid)
    recipients = raw.get("recipients")
    if isinstance(recipients, str):
        recipients = [recipients]
    if not recipients or not isinstance(recipients, list):
        fail("at least one recipient address is required", "recipients")
        recipients = []
    for address in recipients:
        if not isinstance(address, str) or not _EMAIL.match(address.strip()):
            fail(f"not an email address: {address!r}", "recipients")
    motives = raw.get("motives") or []
    if isinstance(motives, str):
        motives = [motives]
    if not isinstance(motives, list) or not all(isinstance(m, str) for m in motives):
        fail("motives must be a list of motive ids", "motives")
    elif ctx.known_motives is not None:
        bad = [m for m in motives if m not in ctx.known_motives]
        if bad:
            fail(f"unknown motive id(s) {bad}; see config/taxonomy.yaml", "motives")
    mode = raw.get("mode", "immediate")
    if mode not in MODES:
        fail(f"mode must be one of {', '.join(MODES)}", "mode")
    min_score = _fraction(raw, "min_score", fail)
    min_importance = _fraction(raw, "min_importance", fail)
    every = _count(raw, "every_minutes", 60, fail, maximum=24 * 60)
    if "every_minutes" in raw and mode != "batched":
        fail("every_minutes applies to mode: batched only", "every_minutes")
    cap = _count(raw, "max_per_hour", None, fail, maximum=3600)
    on_topic_only = raw.get("on_topic_only", True)
    if not isinstance(on_topic_only, bool):
        fail("on_topic_only must be true or false", "on_topic_only")
    events = raw.get("events", list(DEFAULT_EVENTS))
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
        fail(f"events must be a non-empty list from {', '.join(EVENTS)}", "events")
    if len(problems) > before:
        return None
    return Subscription(id=sid, recipients=tuple(a.strip() for a in recipients), motives=tuple(motives),
                        mode=mode, min_score=min_score, on_topic_only=on_topic_only,
                        events=tuple(events), name=raw.get("name"), min_importance=min_importance,
                        every_minutes=every or 60, max_per_hour=cap)


def _fraction(raw: dict[str, Any], name: str, fail: Any) -> float:
    value = raw.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        fail(f"{name} must be a number between 0 and 1", name)
        return 0.0
    return float(value)


def _count(raw: dict[str, Any], name: str, default: int | None, fail: Any, *, maximum: int) -> int | None:
    value = raw.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        fail(f"{name} must be a whole number from 1 to {maximum}", name)
        return default
    return value


def parse_subscriptions(text: str, path: str = "<subscriptions>",
                        known_motives: Iterable[str] | None = None) -> list[Subscription]:
    """Parse and validate subscriptions YAML (``subscriptions: [...]``).

    Raises ``ConfigError`` for one problem, ``ConfigErrors`` listing every problem for several."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=path,
                          line=mark.line + 1 if mark else None) from exc
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("subscriptions", []), list):
        raise ConfigError("expected a mapping with a 'subscriptions' list", path=path)
    lines = _line_numbers(text)
    ctx = _Ctx(path, set(known_motives) if known_motives is not None else None)
    problems: list[ConfigError] = []
    parsed = [_parse_one(raw, i, lines[i] if i < len(lines) else None, ctx, problems)
              for i, raw in enumerate(data.get("subscriptions") or [])]
    raise_config_problems(problems)
    return [s for s in parsed if s is not None]


def load_subscriptions(path: str | Path, known_motives: Iterable[str] | None = None) -> list[Subscription]:
    """Load the subscriptions file. A missing file is an error: alerts without recipients
    would silently go nowhere."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError("subscriptions file not found (set NEWSWATCH_SUBSCRIPTIONS_FILE)", path=str(file))
    return parse_subscriptions(file.read_text(encoding="utf-8"), str(file), known_motives)


def configured_subscriptions(settings: Settings) -> list[Subscription]:
    """The configured subscriptions file, its motive ids checked against the taxonomy."""
    from pipeline.taxonomy import load_taxonomy

    known = None
    try:
        known = load_taxonomy(settings.taxonomy_file).ids
    except (ConfigError, FileNotFoundError) as exc:
        log.warning("subscriptions: motive ids not checked against the taxonomy (%s)", exc)
    return load_subscriptions(settings.subscriptions_file, known)
