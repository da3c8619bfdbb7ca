"""The sources file (YAML) and the topic file, validated into typed records.

Why strict: a typo in a source silently polls nothing for weeks. Every problem is a
``ConfigError`` naming the file, the source id (or its position) and the field, with a line
number where YAML gives one; all the problems of a file are reported at once. URLs may use
``${VAR}`` / ``${VAR:-default}`` so the same file works on a laptop and in CI (the local sample
feeds use ``NEWSWATCH_FEED_PORT``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit

from pipeline.errors import ConfigError, raise_config_problems

KINDS = ("rss", "atom", "feed", "search")
SOURCE_TYPES = (
    "wire",
    "newspaper",
    "broadcaster",
    "state_media",
    "think_tank",
    "government",
    "magazine",
    "blog",
    "aggregator",
    "other",
)
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

DEFAULT_POLL_MINUTES = 15.0
DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Topic:
    """What we watch: its query terms feed the ``search`` source kind."""

    id: str
    name: str
    query_terms: tuple[str, ...]
    languages: tuple[str, ...] = ("en",)

    def query(self) -> str:
        """Terms joined for a news-search engine: quoted phrases, OR between them."""
        return " OR ".join(f'"{t}"' if " " in t else t for t in self.query_terms)


@dataclass(frozen=True, kw_only=True)
class Source:
    """One configured feed. ``outlet`` names the publisher in articles' ``outlets`` lists."""

    id: str
    name: str
    url: str
    kind: str = "feed"
    language: str | None = None
    poll_minutes: float = DEFAULT_POLL_MINUTES
    enabled: bool = True
    source_type: str = "other"
    outlet: str = ""
    allow_private: bool = False
    fetch_articles: bool = True
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()


def expand_vars(value: str, env: dict[str, str] | None = None) -> str:
    """``${VAR}`` and ``${VAR:-default}`` like a shell; an unset ``${VAR}`` with no default is an error."""
    env = os.environ if env is None else env

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value not in (None, ""):
            return str(value)
        if default is not None:
            return default
        raise KeyError(name)

    return _VAR.sub(sub, value)


def _lines(text: str) -> dict[int, int]:
    """Line number (1-based) of each top-level list item under ``sources:``, by position."""
    try:
        import yaml

        node = yaml.compose(text)
    except Exception:  # noqa: BLE001 - yaml errors are reported by safe_load below with position
        return {}
    if node is None or not hasattr(node, "value"):
        return {}
    for key, value in getattr(node, "value", []) if isinstance(node.value, list) else []:
        if getattr(key, "value", None) == "sources" and isinstance(value.value, list):
            return {i: item.start_mark.line + 1 for i, item in enumerate(value.value)}
    return {}


def _load_yaml(path: Path) -> tuple[Any, str]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("file not found", path=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from exc
    try:
        return yaml.safe_load(text), text
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            path=str(path),
            line=mark.line + 1 if mark else None,
        ) from exc


def load_topic(path: str | Path) -> Topic:
    """Read ``config/topic.yaml``: id, name, query_terms, languages."""
    path = Path(path)
    data, _ = _load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with id, name, query_terms", path=str(path))
    where = {"path": str(path), "item": str(data.get("id") or "topic")}
    for key in ("id", "name"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError("required, a non-empty string", field=key, **where)
    terms = data.get("query_terms")
    if not isinstance(terms, list) or not terms or not all(isinstance(t, str) and t.strip() for t in terms):
        raise ConfigError("required, a non-empty list of strings", field="query_terms", **where)
    langs = data.get("languages", ["en"])
    if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
        raise ConfigError("must be a list of language codes", field="languages", **where)
    return Topic(
        id=data["id"].strip(),
        name=data["name"].strip(),
        query_terms=tuple(t.strip() for t in terms),
        languages=tuple(langs),
    )


def search_url(template: str, topic: Topic, language: str | None) -> str:
    """Fill a news-search RSS template: ``{query}`` (URL-encoded terms) and ``{lang}``."""
    lang = language or (topic.languages[0] if topic.languages else "en")
    try:
        return template.format(query=quote_plus(topic.query()), lang=quote_plus(lang))
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"bad placeholder in search template ({exc}); use {{query}} and {{lang}}") from exc


_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?$", re.I)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched as configured, or None when it can.

    Host spellings a resolver or a browser would read as another address are refused here rather
    than at fetch time: ``0177.0.0.1`` (octal), ``0x7f.1`` and ``2130706433`` are all 127.0.0.1 to
    some parsers and an invalid IPv4 literal to others, so the only IPv4 literal accepted is four
    decimal numbers 0-255 without leading zeros.
    """
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an absolute http(s) URL (file:// and other schemes are refused)"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"host {host!r} is not a valid IPv6 address"
    elif _NUMERIC_HOST.match(host):
        try:
            ipaddress.IPv4Address(host.rstrip("."))
        except ValueError:
            return (f"host {host!r} is not a valid IPv4 address (four decimal numbers 0-255 without "
                    "leading zeros; octal, hex and short forms are refused)")
    try:
        import httpx

        httpx.URL(url)  # the fetcher's own parser: what it refuses, refuse here, by name
    except ImportError:
        pass
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        return f"not a valid URL ({exc})"
    return None


def load_sources(
    path: str | Path, *, topic_path: str | Path | None = None, env: dict[str, str] | None = None
) -> list[Source]:
    """Load and validate a sources file. Raises ``ConfigError`` for a single problem and
    ``ConfigErrors`` (a ``ConfigError`` too) listing every problem when there are several.

    ``search`` sources need the topic file (default: ``topic.yaml`` beside the sources file).
    """
    path = Path(path)
    data, text = _load_yaml(path)
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict) and isinstance(data.get("sources"), list):
        items = data["sources"]
    else:
        raise ConfigError("expected a top-level 'sources:' list", path=str(path))
    problems: list[ConfigError] = []
    defaults = data.get("defaults", {}) if isinstance(data, dict) else {}
    if not isinstance(defaults, dict):
        problems.append(ConfigError("must be a mapping", path=str(path), field="defaults"))
        defaults = {}
    lines = _lines(text)
    topic: list[Topic | ConfigError] = []  # loaded once, at the first search source
    seen: set[str] = set()
    out: list[Source] = []
    for i, raw in enumerate(items):
        found: list[ConfigError] = []
        source = _check_source(raw, i, lines.get(i), path, defaults, seen, topic, topic_path, env, found)
        problems.extend(found)
        if source is not None and not found:
            out.append(source)
    raise_config_problems(problems)
    return out


def _check_source(
    raw: Any,
    i: int,
    line: int | None,
    path: Path,
    defaults: dict[str, Any],
    seen: set[str],
    topic: list[Topic | ConfigError],
    topic_path: str | Path | None,
    env: dict[str, str] | None,
    problems: list[ConfigError],
) -> Source | None:
    """One source, validated field by field: every problem is appended to ``problems`` (the
    fields are independent, so one typo does not hide the next)."""
    item = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"#{i + 1}"

    def err(msg: str, fld: str | None = None) -> None:
        problems.append(ConfigError(msg, path=str(path), item=item, field=fld, line=line))

    if not isinstance(raw, dict):
        err("each source must be a mapping")
        return None
    merged = {**defaults, **raw}
    for name in sorted(set(merged) - _FIELDS):
        err(f"unknown field (known: {', '.join(sorted(_FIELDS))})", name)
    sid = merged.get("id")
    if not isinstance(sid, str) or not _ID.match(sid):
        err("required: lowercase letters, digits, '.', '_' or '-' (max 64)", "id")
    elif sid in seen:
        err("duplicate id", "id")
    else:
        seen.add(sid)
    kind = str(merged.get("kind", "feed")).lower()
    if kind not in KINDS:
        err(f"must be one of {', '.join(KINDS)}", "kind")
    language = merged.get("language")
    if language is not None and (
        not isinstance(language, str) or not re.match(r"^[a-z]{2,3}([-_][A-Za-z]+)?$", language)
    ):
        err("must be a language code such as 'en' or 'pt-BR'", "language")
        language = None
    url = merged.get("url")
    if not isinstance(url, str) or not url.strip():
        err("required, a string", "url")
        url = None
    else:
        try:
            url = expand_vars(url.strip(), env)
        except KeyError as exc:
            err(f"environment variable {exc.args[0]} is not set and has no default", "url")
            url = None
    if url is not None and kind == "search":
        if not topic:
            try:
                topic.append(load_topic(Path(topic_path) if topic_path else path.parent / "topic.yaml"))
            except ConfigError as exc:
                topic.append(exc)
                problems.append(exc)  # reported once, at the first search source
        if isinstance(topic[0], ConfigError):
            url = None
        else:
            try:
                url = search_url(url, topic[0], language)
            except ValueError as exc:
                err(str(exc), "url")
                url = None
    if url is not None and (why := url_problem(url)):
        err(why, "url")
    source_type = str(merged.get("source_type", "other")).lower().replace(" ", "_").replace("-", "_")
    if source_type not in SOURCE_TYPES:
        err(f"must be one of {', '.join(SOURCE_TYPES)}", "source_type")
    values: dict[str, Any] = {}
    for key, typ, lo in (
        ("poll_minutes", float, 1.0),
        ("timeout", float, 0.05),
        ("max_bytes", int, 1024),
    ):
        if key in merged:
            value = merged[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < lo:
                err(f"must be a number >= {lo}", key)
            else:
                values[key] = typ(value)
    for key in ("enabled", "allow_private", "fetch_articles"):
        if key in merged:
            if not isinstance(merged[key], bool):
                err("must be true or false", key)
            else:
                values[key] = merged[key]
    name = merged.get("name", sid)
    if not isinstance(name, str) or not name.strip():
        err("must be a non-empty string", "name")
    outlet = merged.get("outlet", sid)
    if not isinstance(outlet, str) or not outlet.strip():
        err("must be a non-empty string", "outlet")
    tags = merged.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        err("must be a list of strings", "tags")
    if problems or url is None:
        return None
    return Source(
        id=sid,
        name=name.strip(),
        url=url,
        kind=kind,
        language=language,
        source_type=source_type,
        outlet=outlet.strip(),
        tags=tuple(tags),
        **values,
    )


_FIELDS = {
    "id",
    "name",
    "url",
    "kind",
    "language",
    "poll_minutes",
    "enabled",
    "source_type",
    "outlet",
    "allow_private",
    "fetch_articles",
    "timeout",
    "max_bytes",
    "tags",
}
