"""Labelled claim pairs for the novelty evaluation: the team's (``eval/claim_pairs.yaml``) and the
real ones (``../shared/corpus/claim_pairs.jsonl``), read at run time, never copied into the repo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.language import is_english
from pipeline.settings import REPO_ROOT

__all__ = ["Pair", "load_pairs", "load_real_pairs", "item_text", "DEFAULT_PAIRS", "SHARED", "RELATIONS"]

DEFAULT_PAIRS = REPO_ROOT / "eval" / "claim_pairs.yaml"
SHARED = REPO_ROOT.parent / "shared"
RELATIONS = ("repeat", "update", "different")


@dataclass
class Pair:
    a: str
    b: str
    relation: str
    split: str = "tune"
    group: str = "team"  # team | real
    a_date: str | None = None
    b_date: str | None = None
    ids: tuple[str, str] = ("", "")
    # ISO 639-1 of each side when known (real items carry it); None: the team's English sentences
    languages: tuple[str | None, str | None] = (None, None)

    @property
    def cross_language(self) -> bool:
        a, b = self.languages
        return bool(a and b and a != b)

    @property
    def by_e5(self) -> bool:
        """Judged as novelty judges it by multilingual-e5: the two sides are in different
        languages, or in one language MiniLM cannot read (it was trained on English)."""
        a, b = self.languages
        return self.cross_language or not is_english(a)


class _Resolver:
    def __init__(self, shared: Path) -> None:
        self.shared = shared
        self._cache: dict[str, list[str]] = {}

    def sentences(self, source: str) -> list[str]:
        from pipeline.classify.sentences import split_sentences

        if source not in self._cache:
            kind, _, name = source.partition("/")
            if kind == "seeds":
                text = (self.shared / "seeds" / name).read_text(encoding="utf-8")
            elif kind == "corpus":
                lines = (self.shared / "corpus" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
                docs = {d.get("id"): d for d in map(json.loads, filter(None, lines))}
                if name not in docs:
                    raise KeyError(f"no article {name!r} in the corpus")
                text = docs[name]["text"]
            else:
                raise KeyError(f"unknown source {source!r} (seeds/... or corpus/...)")
            self._cache[source] = split_sentences(text)
        return self._cache[source]

    def text(self, side: Any, path: str, index: int) -> str:
        if isinstance(side, dict) and isinstance(side.get("text"), str):
            return side["text"]
        if isinstance(side, dict) and isinstance(side.get("ref"), str) and "#" in side["ref"]:
            source, _, n = side["ref"].rpartition("#")
            sentences = self.sentences(source)
            if not n.isdigit() or int(n) >= len(sentences):
                raise ConfigError(f"sentence {n} does not exist in {source} ({len(sentences)} sentences)",
                                  path=path, item=f"pair {index + 1}")
            return sentences[int(n)]
        raise ConfigError("each side needs `text:` or `ref: <source>#<n>`", path=path,
                          item=f"pair {index + 1}")


def load_pairs(path: Path | None = None, shared: Path = SHARED) -> list[Pair]:
    """The team's pairs (``eval/claim_pairs.yaml``)."""
    import yaml

    file = Path(path or DEFAULT_PAIRS)
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    resolver = _Resolver(shared)
    out = []
    for i, raw in enumerate(data.get("pairs") or []):
        relation = raw.get("relation")
        if relation not in RELATIONS:
            raise ConfigError(f"relation must be one of {RELATIONS}", path=str(file), item=f"pair {i + 1}",
                              field="relation")
        out.append(Pair(resolver.text(raw.get("a"), str(file), i), resolver.text(raw.get("b"), str(file), i),
                        relation, raw.get("split", "tune"), "team", ids=(f"team{i + 1}a", f"team{i + 1}b")))
    return out


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"not JSON: {err.msg}", path=str(path), item=f"line {n}") from err
        if not isinstance(doc, dict):
            raise ConfigError("each line must be a JSON object", path=str(path), item=f"line {n}")
        out.append((n, doc))
    return out


def item_text(item: dict[str, Any]) -> str:
    """A feed item as one claim: its headline and the publisher's summary."""
    title = str(item.get("title") or "").strip()
    text = str(item.get("text") or "").strip()
    if title and text:
        return f"{title.rstrip('.')}. {text}"
    return title or text


def load_real_pairs(shared: Path = SHARED) -> list[Pair]:
    """Real pairs from ``corpus/claim_pairs.jsonl``; [] when the corpus has none."""
    corpus = shared / "corpus"
    pairs_file, items_file = corpus / "claim_pairs.jsonl", corpus / "news_items.jsonl"
    if not pairs_file.is_file():
        return []
    items = {}
    for n, doc in _read_jsonl(items_file):
        if not isinstance(doc.get("id"), str):
            raise ConfigError("item has no string `id`", path=str(items_file), item=f"line {n}", field="id")
        items[doc["id"]] = doc
    out = []
    for n, raw in _read_jsonl(pairs_file):
        if raw.get("relation") not in RELATIONS:
            raise ConfigError(f"relation must be one of {RELATIONS}", path=str(pairs_file), item=f"line {n}",
                              field="relation")
        for side in ("a", "b"):
            if raw.get(side) not in items:
                raise ConfigError(f"item {raw.get(side)!r} is not in {items_file.name}", path=str(pairs_file),
                                  item=f"line {n}", field=side)
        a, b = items[raw["a"]], items[raw["b"]]
        out.append(Pair(item_text(a), item_text(b), raw["relation"], "real", "real",
                        a.get("published"), b.get("published"), (raw["a"], raw["b"]),
                        (a.get("language"), b.get("language"))))
    return out
