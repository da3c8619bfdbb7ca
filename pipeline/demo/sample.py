"""The sample items: their records, and loading and validating ``articles.yaml``.

A bad file raises ``ConfigError`` naming the file, the item and the field, because the file is
edited by hand and the demo feed, the tests and the end-to-end check all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

__all__ = ["DEFAULT_PATH", "ExpectedLabels", "Outlet", "SampleItem", "SampleSet", "load_sample"]

DEFAULT_PATH = Path(__file__).with_name("articles.yaml")
OUTLET_KINDS = {"wire", "newspaper", "think_tank", "broadcaster", "blog"}


@dataclass(frozen=True)
class Outlet:
    id: str
    name: str
    kind: str
    description: str


@dataclass(frozen=True)
class ExpectedLabels:
    """What a correct pipeline decides for an item; used by tests and the end-to-end check."""

    on_topic: bool
    motives: tuple[str, ...] = ()
    updates: tuple[str, ...] = ()  # earlier items whose figure this item revises
    corroborates: tuple[str, ...] = ()  # earlier items whose claim this one repeats in other words


@dataclass(frozen=True)
class SampleItem:
    id: str
    outlet: str
    slug: str
    title: str
    author: str
    published: datetime
    summary: str
    paragraphs: tuple[str, ...]
    expect: ExpectedLabels
    copy_of: str | None = None

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)

    @property
    def path(self) -> str:
        """The article page's path on the feed server."""
        return f"/articles/{self.slug}.html"


@dataclass(frozen=True)
class SampleSet:
    notice: str
    outlets: dict[str, Outlet]
    items: tuple[SampleItem, ...]
    path: Path = field(default=DEFAULT_PATH)

    def by_id(self, item_id: str) -> SampleItem:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def by_slug(self, slug: str) -> SampleItem | None:
        return next((i for i in self.items if i.slug == slug), None)

    def for_outlet(self, outlet: str) -> list[SampleItem]:
        return [i for i in self.items if i.outlet == outlet]


def _require(raw: dict[str, Any], key: str, path: Path, item: str | None, kind: type = str) -> Any:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError("is missing or empty", path=str(path), item=item, field=key)
    if not isinstance(value, kind):
        raise ConfigError(f"must be a {kind.__name__}, got {type(value).__name__}",
                          path=str(path), item=item, field=key)
    return value


def _parse_time(value: object, path: Path, item: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"not an ISO 8601 time: {value!r}", path=str(path), item=item,
                          field="published") from exc
    if parsed.tzinfo is None:
        raise ConfigError("needs a time zone (e.g. a trailing Z)", path=str(path), item=item,
                          field="published")
    return parsed.astimezone(UTC)


def _paragraphs(text: str) -> tuple[str, ...]:
    return tuple(" ".join(p.split()) for p in text.split("\n\n") if p.strip())


def _parse_outlets(raw: object, path: Path) -> dict[str, Outlet]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("needs at least one outlet", path=str(path), field="outlets")
    outlets = {}
    for oid, spec in raw.items():
        if not isinstance(spec, dict):
            raise ConfigError("must be a mapping", path=str(path), item=str(oid))
        kind = _require(spec, "kind", path, str(oid))
        if kind not in OUTLET_KINDS:
            raise ConfigError(f"unknown kind {kind!r}; use one of {sorted(OUTLET_KINDS)}",
                              path=str(path), item=str(oid), field="kind")
        outlets[str(oid)] = Outlet(str(oid), _require(spec, "name", path, str(oid)), kind,
                                   _require(spec, "description", path, str(oid)))
    return outlets


def _parse_item(raw: object, path: Path, outlets: dict[str, Outlet],
                earlier: dict[str, SampleItem]) -> SampleItem:
    if not isinstance(raw, dict):
        raise ConfigError("each item must be a mapping", path=str(path), field="items")
    iid = _require(raw, "id", path, None)
    outlet = _require(raw, "outlet", path, iid)
    if outlet not in outlets:
        raise ConfigError(f"unknown outlet {outlet!r}", path=str(path), item=iid, field="outlet")
    copy_of = raw.get("copy_of")
    if copy_of is not None:
        if copy_of not in earlier:
            raise ConfigError(f"copy_of {copy_of!r} must name an earlier item", path=str(path),
                              item=iid, field="copy_of")
        if "body" in raw:
            raise ConfigError("a syndicated copy takes its body from the original; remove 'body'",
                              path=str(path), item=iid, field="body")
        paragraphs = earlier[copy_of].paragraphs
    else:
        paragraphs = _paragraphs(_require(raw, "body", path, iid))
    expect = _require(raw, "expect", path, iid, dict)
    motives = expect.get("motives") or []
    if not isinstance(expect.get("on_topic"), bool) or not isinstance(motives, list):
        raise ConfigError("needs on_topic (true/false) and a motives list", path=str(path),
                          item=iid, field="expect")
    relations = {}
    for key in ("updates", "corroborates"):
        ids = expect.get(key) or []
        unknown = [i for i in ids if i not in earlier] if isinstance(ids, list) else [ids]
        if unknown:
            raise ConfigError(f"must list earlier item ids; unknown: {unknown}", path=str(path),
                              item=iid, field=f"expect.{key}")
        relations[key] = tuple(ids)
    return SampleItem(
        id=iid, outlet=outlet, slug=_require(raw, "slug", path, iid),
        title=_require(raw, "title", path, iid), author=_require(raw, "author", path, iid),
        published=_parse_time(_require(raw, "published", path, iid), path, iid),
        summary=" ".join(_require(raw, "summary", path, iid).split()), paragraphs=paragraphs,
        expect=ExpectedLabels(expect["on_topic"], tuple(str(m) for m in motives), **relations),
        copy_of=copy_of,
    )


def load_sample(path: Path | str | None = None) -> SampleSet:
    """Load and validate the sample items; a bad file raises ConfigError naming item and field."""
    path = Path(path) if path else DEFAULT_PATH
    return _load_cached(path.resolve(), path.stat().st_mtime_ns if path.exists() else 0)


@lru_cache(maxsize=4)
def _load_cached(path: Path, _mtime: int) -> SampleSet:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("sample file not found", path=str(path)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {exc}", path=str(path),
                          line=mark.line + 1 if mark else None) from exc
    if not isinstance(raw, dict) or raw.get("sample_data") is not True:
        raise ConfigError("must be a mapping with 'sample_data: true' (it marks the items as "
                          "invented)", path=str(path), field="sample_data")
    outlets = _parse_outlets(raw.get("outlets"), path)
    items: dict[str, SampleItem] = {}
    slugs: set[str] = set()
    for entry in raw.get("items") or []:
        item = _parse_item(entry, path, outlets, items)
        if item.id in items:
            raise ConfigError("duplicate id", path=str(path), item=item.id, field="id")
        if item.slug in slugs:
            raise ConfigError("duplicate slug (URLs must differ)", path=str(path), item=item.id,
                              field="slug")
        items[item.id] = item
        slugs.add(item.slug)
    if not items:
        raise ConfigError("needs at least one item", path=str(path), field="items")
    return SampleSet(notice=" ".join(_require(raw, "notice", path, None).split()),
                     outlets=outlets, items=tuple(items.values()), path=path)
