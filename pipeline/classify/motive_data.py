"""Motives on real data: the labelled items and their units, read from ``../shared/corpus`` at run time.

Data (never copied into the repo): the on-topic English feed items of ``news_items.jsonl``
(headline plus the publisher's one- or two-sentence summary; ``motives`` required,
``motives_optional`` neither rewarded nor penalised) and the on-topic English full articles of
``articles.jsonl`` with our labels in ``eval/labels.yaml`` (article motives, and sentence motives by
index + hash). Items are chosen by their gold ``on_topic`` so the gate's errors do not mix into the
motive figures. Scored at the eight top-level motives (a child implies its parent).

Units: an item is its title plus the sentences of its summary or body, each scored on its own; an
item's motives are the union over its units (the classifier's roll-up, with the title added so a
headline-only item gets motives from its headline). ``Prepared`` holds what every method needs of
them: embeddings, keyword hits, the shipped head's scores and the team's prior rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.evaluate import SHARED_DIR
from pipeline.classify.gate_eval import outlet_group, parse_published, prepare
from pipeline.classify.head import KeywordMatcher, learned_features, load_training
from pipeline.errors import ConfigError
from pipeline.taxonomy import Taxonomy, load_taxonomy


@dataclass(frozen=True)
class MotiveItem:
    id: str
    kind: str                        # "headline" (feed item) or "article"
    outlet: str
    published: datetime
    title: str
    units: tuple[str, ...]           # title first (if any), then the sentences
    gold: frozenset[str]             # top-level motives
    optional: frozenset[str]         # top-level motives neither rewarded nor penalised
    # sentence labels (articles; None = unlabelled unit); None for feed items
    unit_gold: tuple[frozenset[str] | None, ...] | None = None


def _top(taxonomy: Taxonomy, ids: Sequence[str], *, path: str, item: str, fld: str) -> frozenset[str]:
    out = set()
    for motive_id in ids or []:
        if motive_id not in taxonomy.motives:
            raise ConfigError(f"unknown motive id {motive_id!r}", path=path, item=item, field=fld)
        out.add(taxonomy.parent_chain(motive_id)[-1] if taxonomy.motives[motive_id].parent else motive_id)
    return frozenset(out)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror})", path=str(path)) from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise ConfigError(f"line {number} is not JSON ({exc})", path=str(path)) from exc
    return rows


def load_motive_items(shared_dir: Path | None = None, taxonomy: Taxonomy | None = None,
                      labels_path: Path | None = None) -> list[MotiveItem]:
    """On-topic English feed items and full articles with their top-level gold motives."""
    from pipeline.classify.evaluate import LABELS_FILE, _locate, load_labels

    taxonomy = taxonomy or load_taxonomy()
    corpus = Path(shared_dir or SHARED_DIR) / "corpus"
    items: list[MotiveItem] = []
    path = corpus / "news_items.jsonl"
    for raw in _read_jsonl(path):
        item_id = str(raw.get("id"))
        if raw.get("on_topic") is not True or str(raw.get("language") or "").lower() != "en":
            continue
        for fld in ("motives", "motives_optional"):
            if not isinstance(raw.get(fld, []), list):
                raise ConfigError("must be a list of motive ids", path=str(path), item=item_id, field=fld)
        title, sentences = prepare(raw.get("title") or "", raw.get("text") or "")
        gold = _top(taxonomy, raw.get("motives") or [], path=str(path), item=item_id, fld="motives")
        optional = _top(taxonomy, raw.get("motives_optional") or [], path=str(path), item=item_id,
                        fld="motives_optional") - gold
        items.append(MotiveItem(f"news_items:{item_id}", "headline", outlet_group(str(raw.get("source"))),
                                parse_published(raw.get("published"), path=str(path), item=item_id),
                                title, tuple([title] if title else []) + tuple(sentences), gold, optional))
    labels = load_labels(labels_path or LABELS_FILE)
    path = corpus / "articles.jsonl"
    for raw in _read_jsonl(path):
        item_id = str(raw.get("id"))
        if raw.get("on_topic") is not True or str(raw.get("language") or "").lower() != "en":
            continue
        entry = labels.get(item_id)
        if entry is None:
            raise ConfigError("on-topic English article has no motive labels", path=str(labels_path
                              or LABELS_FILE), item=item_id)
        title, sentences = prepare(raw.get("title") or "", raw.get("text") or "")
        unit_gold: list[frozenset[str] | None] = [frozenset()] * len(sentences)
        for fld, value in (("ignore", None), ("sentences", True)):
            for ref in entry.get(fld) or []:
                pos = _locate(sentences, ref["i"], ref["hash"])
                if pos is None:  # the splitter moved: skip the label, evaluate.py reports it as stale
                    continue
                unit_gold[pos] = None if value is None else _top(
                    taxonomy, ref.get("motives") or [], path="eval/labels.yaml", item=item_id, fld=fld)
        head = [title] if title else []
        items.append(MotiveItem(
            f"articles:{item_id}", "article", outlet_group(str(raw.get("source"))),
            parse_published(raw.get("published"), path=str(path), item=item_id), title,
            tuple(head) + tuple(sentences),
            _top(taxonomy, entry.get("motives") or [], path="eval/labels.yaml", item=item_id, fld="motives"),
            frozenset(), tuple([None] * len(head) + unit_gold)))
    return items


# ---- features ---------------------------------------------------------------------------------

@dataclass
class Prepared:
    items: list[MotiveItem]
    ids: list[str]                    # top-level motive ids
    vectors: np.ndarray               # all units, item after item
    offsets: np.ndarray               # start of each item's units (len(items) + 1)
    title_unit: np.ndarray            # bool per unit: the item's title
    keywords: np.ndarray              # units x motives keyword hits (0/1)
    today_scores: np.ndarray          # units x taxonomy ids: the shipped head's scores
    today_ids: list[str]
    today_thresholds: dict[str, float]
    prior_x: np.ndarray               # team sentences and exemplars (features)
    prior_y: np.ndarray               # their top-level labels
    item_keyword_rule: np.ndarray     # items x motives: keyword anywhere in title or text

    def unit_slice(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    @property
    def groups(self) -> np.ndarray:
        return np.array([i.outlet for i in self.items], dtype=object)

    def gold(self) -> tuple[np.ndarray, np.ndarray]:
        g = np.array([[m in i.gold for m in self.ids] for i in self.items], dtype=bool)
        o = np.array([[m in i.optional for m in self.ids] for i in self.items], dtype=bool)
        return g, o


def prepare_items(items: list[MotiveItem], taxonomy: Taxonomy | None = None,
                  embedder: Any = None) -> Prepared:
    from pipeline.classify.backends import get_embedder
    from pipeline.classify.head import MotiveHead, load_thresholds
    from pipeline.classify.sentences import is_heading

    taxonomy = taxonomy or load_taxonomy()
    embedder = embedder or get_embedder()
    ids = list(taxonomy.top_level)
    units = [u for item in items for u in item.units]
    offsets = np.cumsum([0] + [len(i.units) for i in items])
    title_unit = np.zeros(len(units), dtype=bool)
    for i, item in enumerate(items):
        if item.title:
            title_unit[offsets[i]] = True
    vectors = np.asarray(embedder.embed(units), dtype=np.float32) if units else np.zeros((0, 384), np.float32)
    matcher = KeywordMatcher(taxonomy, ids)
    keywords = matcher.hits(units)
    today = MotiveHead(taxonomy, embedder.embed, thresholds=load_thresholds(),
                       model_id=getattr(embedder, "identity", embedder.name), learned=False)
    today_scores = today.score(units, vectors)
    for k, text in enumerate(units):
        if is_heading(text) and not title_unit[k]:  # as the classifier zeroes headings
            today_scores[k] = 0.0
    training = load_training(taxonomy)
    prior_vectors = np.asarray(embedder.embed(training.texts), dtype=np.float32)
    prior_x = learned_features(prior_vectors, matcher.hits(training.texts))
    prior_y = np.array([[m in lab for m in ids] for lab in training.labels], dtype=bool)
    rule = matcher.hits([f"{i.title}\n" + " ".join(i.units[1 if i.title else 0:]) for i in items])
    return Prepared(items, ids, vectors, offsets, title_unit, keywords, today_scores, today.ids,
                    dict(today.thresholds), prior_x, prior_y, rule.astype(bool))



def motive_dataset(shared_dir: Path | None = None, taxonomy: Taxonomy | None = None,
                   embedder: Any = None) -> Prepared:
    taxonomy = taxonomy or load_taxonomy()
    return prepare_items(load_motive_items(shared_dir, taxonomy), taxonomy, embedder)
