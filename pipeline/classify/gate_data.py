"""The labelled items the on-topic gate is trained and evaluated on, read at run time.

``news_items.jsonl`` (feed items: headline plus the publisher's short summary) and
``articles.jsonl`` (full articles) from ``../shared/corpus``, never copied into the repo, and the
team's invented sample items (training only). Items keep their outlet, merged over the spellings
the two files use, since evaluation holds out whole outlets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from pipeline.classify.evaluate import SHARED_DIR
from pipeline.errors import ConfigError

# Spellings of one outlet in the two files: grouping must hold out the outlet, not a spelling.
_OUTLET_ALIASES = {
    "tuoitre.vn": "Tuổi Trẻ", "dantri.com.vn": "Dân trí", "zeit.de": "Die Zeit",
    "코리아헤럴드": "Korea Herald", "연합뉴스": "Yonhap", "epa연합뉴스": "Yonhap", "kbs": "KBS",
}


def outlet_group(source: str) -> str:
    """The outlet an item is held out with: aliases merged, "X via Naver News" is X, and the
    two think-tank commentaries republished in one place count as one outlet."""
    name = " ".join((source or "").split())
    if "republished in agorahub" in name:
        return "agorahub/pen0 republished commentary"
    name = name.removesuffix(" via Naver News").split(" (")[0]
    return _OUTLET_ALIASES.get(name.lower(), _OUTLET_ALIASES.get(name, name))


@dataclass(frozen=True)
class GateItem:
    id: str
    kind: str            # "headline", "article" or "sample" (team-written, training only)
    title: str
    text: str
    outlet: str
    published: datetime
    language: str
    on_topic: bool


def parse_published(value: Any, *, path: str, item: str) -> datetime:
    """The corpus's date shapes: ISO 8601, RFC 822, "2025-12-31 00:00", "Apr 26, 2025 10:00"."""
    text = str(value or "").strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            for shape in ("%b %d, %Y %H:%M", "%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M"):
                try:
                    parsed = datetime.strptime(text, shape)
                    break
                except ValueError:
                    continue
    if parsed is None:
        raise ConfigError(f"unreadable date {text!r}", path=path, item=item, field="published")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _read_jsonl(path: Path, kind: str) -> list[GateItem]:
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror})", path=str(path)) from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"line {number} is not JSON ({exc})", path=str(path)) from exc
        item_id = str(raw.get("id") or f"line {number}")
        for fld in ("title", "source"):
            if not isinstance(raw.get(fld), str) or not raw[fld].strip():
                raise ConfigError("must be a non-empty string", path=str(path), item=item_id, field=fld)
        if not isinstance(raw.get("on_topic"), bool):
            raise ConfigError("must be true or false", path=str(path), item=item_id, field="on_topic")
        text = raw.get("text")
        if text is not None and not isinstance(text, str):
            raise ConfigError("must be a string", path=str(path), item=item_id, field="text")
        items.append(GateItem(
            # ids repeat across the two files: the file name keeps them apart
            id=f"{path.stem}:{item_id}", kind=kind, title=raw["title"], text=text or "",
            outlet=outlet_group(raw["source"]),
            published=parse_published(raw.get("published"), path=str(path), item=item_id),
            language=str(raw.get("language") or "und").lower(), on_topic=raw["on_topic"]))
    return items


def load_gate_items(shared_dir: Path | None = None) -> list[GateItem]:
    """The real labelled items: feed items (``headline``) and full articles (``article``)."""
    corpus = Path(shared_dir or SHARED_DIR) / "corpus"
    return (_read_jsonl(corpus / "news_items.jsonl", "headline")
            + _read_jsonl(corpus / "articles.jsonl", "article"))


def sample_gate_items() -> list[GateItem]:
    """The team's invented demo items, twice each: as a feed item (headline + summary) and as
    the fetched article (headline + body). Training data only."""
    from pipeline.demo import load_sample

    out = []
    for item in load_sample().items:
        common = dict(kind="sample", title=item.title, outlet=f"sample:{item.outlet}",
                      published=item.published, language="en", on_topic=item.expect.on_topic)
        out.append(GateItem(id=f"{item.id}#feed", text=item.summary, **common))  # type: ignore[arg-type]
        out.append(GateItem(id=f"{item.id}#page", text=item.body, **common))  # type: ignore[arg-type]
    return out
