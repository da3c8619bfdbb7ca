"""The sources file (YAML) and the topic file, validated into typed records.

Why strict: a typo in a source silently polls nothing for weeks. Every problem raises a
``ConfigError`` naming the file, the source id (or its position) and the field, with a line
number where YAML gives one. URLs may use ``${VAR}`` / ``${VAR:-default}`` so the same file works
on a laptop and in CI (the local sample feeds use ``NEWSWATCH_FEED_PORT``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit

from pipeline.errors import ConfigError

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


def load_sources(
    path: str | Path, *, topic_path: str | Path | None = None, env: dict[str, str] | None = None
) -> list[Source]:
    """Load and validate a sources file. Raises ``ConfigError`` on the first problem found.

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
    defaults = data.get("defaults", {}) if isinstance(data, dict) else {}
    if not isinstance(defaults, dict):
        raise ConfigError("must be a mapping", path=str(path), field="defaults")
    lines = _lines(text)
    topic: Topic | None = None
    seen: set[str] = set()
    out: list[Source] = []
    for i, raw in enumerate(items):
        line = lines.get(i)
        item = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"#{i + 1}"

        def err(
            msg: str, fld: str | None = None, *, _item: str = item, _line: int | None = line
        ) -> ConfigError:
            return ConfigError(msg, path=str(path), item=_item, field=fld, line=_line)

        if not isinstance(raw, dict):
            raise err("each source must be a mapping")
        merged = {**defaults, **raw}
        unknown = set(merged) - _FIELDS
        if unknown:
            raise err(f"unknown field (known: {', '.join(sorted(_FIELDS))})", sorted(unknown)[0])
        sid = merged.get("id")
        if not isinstance(sid, str) or not _ID.match(sid):
            raise err("required: lowercase letters, digits, '.', '_' or '-' (max 64)", "id")
        if sid in seen:
            raise err("duplicate id", "id")
        seen.add(sid)
        kind = str(merged.get("kind", "feed")).lower()
        if kind not in KINDS:
            raise err(f"must be one of {', '.join(KINDS)}", "kind")
        url = merged.get("url")
        if not isinstance(url, str) or not url.strip():
            raise err("required, a string", "url")
        try:
            url = expand_vars(url.strip(), env)
        except KeyError as exc:
            raise err(f"environment variable {exc.args[0]} is not set and has no default", "url") from exc
        language = merged.get("language")
        if language is not None and (
            not isinstance(language, str) or not re.match(r"^[a-z]{2,3}([-_][A-Za-z]+)?$", language)
        ):
            raise err("must be a language code such as 'en' or 'pt-BR'", "language")
        if kind == "search":
            if topic is None:
                topic = load_topic(Path(topic_path) if topic_path else path.parent / "topic.yaml")
            try:
                url = search_url(url, topic, language)
            except ValueError as exc:
                raise err(str(exc), "url") from exc
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise err("must be an absolute http(s) URL (file:// and other schemes are refused)", "url")
        source_type = str(merged.get("source_type", "other")).lower().replace(" ", "_").replace("-", "_")
        if source_type not in SOURCE_TYPES:
            raise err(f"must be one of {', '.join(SOURCE_TYPES)}", "source_type")
        values: dict[str, Any] = {}
        for key, typ, lo in (
            ("poll_minutes", float, 1.0),
            ("timeout", float, 0.05),
            ("max_bytes", int, 1024),
        ):
            if key in merged:
                value = merged[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or value < lo:
                    raise err(f"must be a number >= {lo}", key)
                values[key] = typ(value)
        for key in ("enabled", "allow_private", "fetch_articles"):
            if key in merged:
                if not isinstance(merged[key], bool):
                    raise err("must be true or false", key)
                values[key] = merged[key]
        name = merged.get("name", sid)
        if not isinstance(name, str) or not name.strip():
            raise err("must be a non-empty string", "name")
        outlet = merged.get("outlet", sid)
        if not isinstance(outlet, str) or not outlet.strip():
            raise err("must be a non-empty string", "outlet")
        tags = merged.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise err("must be a list of strings", "tags")
        out.append(
            Source(
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
        )
    return out


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
