"""Motives learned from real sentences: the evaluation on real data, and the training of the head.

Data (read from ``../shared/corpus`` at run time, never copied into the repo): the on-topic
English feed items of ``news_items.jsonl`` (headline plus the publisher's one- or two-sentence
summary; ``motives`` required, ``motives_optional`` neither rewarded nor penalised) and the
on-topic English full articles of ``articles.jsonl`` with our labels in ``eval/labels.yaml``
(article motives, and sentence motives by index + hash). Items are chosen by their gold
``on_topic`` so the gate's errors do not mix into the motive figures. Scored at the eight
top-level motives (a child implies its parent).

Units: an item is its title plus the sentences of its summary or body, each scored on its own; an
item's motives are the union over its units (the classifier's roll-up, with the title added so a
headline-only item gets motives from its headline).

Methods compared on the same held-out items:

- ``today``: the shipped team-trained head (``pipeline.classify.head.MotiveHead`` with the
  team-sentence fit and ``data/thresholds.json``) on the body sentences, as deployed until now;
- ``today_title``: the same head with the title scored as one more unit;
- ``keyword_rule``: a motive (or one of its children) has a taxonomy keyword in title or text;
- ``learned``: per-motive logistic regressions on MiniLM embeddings plus a keyword feature,
  trained on the real units (item labels on the item's units, sentence labels for articles) with
  the team's training sentences and exemplars as down-weighted prior rows; per-motive thresholds
  chosen by an inner outlet-grouped cross-validation inside the training part only.

Schemes: outlet-grouped k-fold CV (a fold holds out whole outlets) and a time split (the newest
20% of the items are the test set, the model learns only from items published before them).
Per-motive and micro P/R/F1 with percentile-bootstrap 95% intervals (items resampled).

``train_motive_head()`` fits on all data and writes ``data/motive_head.json`` (numbers only: the
coefficients, intercepts and thresholds, and how they were made); the lead wires it to a CLI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.evaluate import BASELINE_FILE, SHARED_DIR, interval95
from pipeline.classify.gate_eval import (
    BOOTSTRAP,
    OUTER_FOLDS,
    SEED,
    TIME_TEST_SHARE,
    outlet_group,
    parse_published,
    prepare,
)
from pipeline.classify.gate_model import inner_folds
from pipeline.classify.head import (
    LEARNED_C,
    LEARNED_FILE,
    PRIOR_WEIGHT,
    KeywordMatcher,
    learned_features,
    load_training,
)
from pipeline.errors import ConfigError
from pipeline.taxonomy import Taxonomy, load_taxonomy

METHODS = ("today", "today_title", "keyword_rule", "learned")
THRESHOLD_GRID = np.round(np.arange(0.2, 0.91, 0.025), 3)
SHRINK = 3.0  # pseudo-positives pulling a cross-validated threshold towards 0.5 when evidence is thin
MIN_SUPPORT = 10  # the per-motive target applies to motives with at least this many positives


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


# ---- the learned head -------------------------------------------------------------------------

def _training_rows(p: Prepared, item_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Units of the chosen items as training rows for motive ``k``: (unit index, label, weight).

    A feed item's label goes to each of its units (a one- or two-sentence summary states little
    besides its headline); an article's labelled sentences carry their own labels and its title
    is left out (unlabelled). Optional motives get weight 0: neither taught nor penalised."""
    motive = p.ids[k]
    idx, ys, ws = [], [], []
    for i in np.flatnonzero(item_rows):
        item = p.items[i]
        s = p.unit_slice(i)
        for j, u in enumerate(range(s.start, s.stop)):
            if item.unit_gold is not None:
                label = item.unit_gold[j]
                if label is None:
                    continue
                idx.append(u), ys.append(motive in label), ws.append(1.0)
            else:
                idx.append(u), ys.append(motive in item.gold)
                ws.append(0.0 if motive in item.optional else 1.0)
    return np.array(idx, dtype=int), np.array(ys, dtype=bool), np.array(ws)


@dataclass
class LearnedFit:
    coef: np.ndarray        # motives x features
    intercept: np.ndarray   # motives
    thresholds: np.ndarray  # motives

    def unit_scores(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(x @ self.coef.T + self.intercept)))


def _fit_lr(x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    if y.all() or not y.any():
        return np.zeros(x.shape[1]), (10.0 if y.all() else -10.0)
    # balance by weight: the positives of a motive are a few percent of the rows
    pos, neg = w[y].sum(), w[~y].sum()
    w = np.where(y, w * (pos + neg) / (2 * pos), w * (pos + neg) / (2 * neg))
    model = LogisticRegression(C=c, max_iter=3000)
    model.fit(x, y.astype(int), sample_weight=w)
    return model.coef_[0], float(model.intercept_[0])


def _fit_coefficients(p: Prepared, x: np.ndarray, item_rows: np.ndarray, c: float,
                      prior_weight: float) -> tuple[np.ndarray, np.ndarray]:
    coef = np.zeros((len(p.ids), x.shape[1]))
    intercept = np.zeros(len(p.ids))
    for k in range(len(p.ids)):
        idx, y, w = _training_rows(p, item_rows, k)
        xs = np.vstack([x[idx], p.prior_x])
        ys = np.concatenate([y, p.prior_y[:, k]])
        ws = np.concatenate([w, np.full(len(p.prior_y), prior_weight)])
        coef[k], intercept[k] = _fit_lr(xs, ys, ws, c)
    return coef, intercept


def item_max(p: Prepared, unit_scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per item, the best unit's score for each motive."""
    out = np.zeros((int(rows.sum()), unit_scores.shape[1]))
    for n, i in enumerate(np.flatnonzero(rows)):
        s = p.unit_slice(i)
        if s.stop > s.start:
            out[n] = unit_scores[s].max(axis=0)
    return out


def choose_thresholds(scores: np.ndarray, gold: np.ndarray, optional: np.ndarray) -> np.ndarray:
    """Per motive, the F1-best threshold on item-level out-of-fold scores (median of the best
    plateau), shrunk towards 0.5 with ``SHRINK`` pseudo-positives: with one or two positives the
    best point says little."""
    out = np.full(scores.shape[1], 0.5)
    for k in range(scores.shape[1]):
        y, counted = gold[:, k], ~optional[:, k]
        positives = int(y.sum())
        if positives == 0:
            continue
        f1s = []
        for t in THRESHOLD_GRID:
            pred = scores[:, k] >= t
            tp = int((pred & y).sum())
            fp = int((pred & ~y & counted).sum())
            fn = int((~pred & y).sum())
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        best = max(f1s)
        chosen = float(np.median([t for t, f in zip(THRESHOLD_GRID, f1s, strict=True) if f == best]))
        out[k] = (positives * chosen + SHRINK * 0.5) / (positives + SHRINK)
    return out


def fit_learned(p: Prepared, item_rows: np.ndarray, c: float = LEARNED_C,
                prior_weight: float = PRIOR_WEIGHT, folds: int = OUTER_FOLDS) -> LearnedFit:
    """Coefficients on ``item_rows``; thresholds from an inner outlet-grouped CV on those rows."""
    x = learned_features(p.vectors, p.keywords)
    gold, optional = p.gold()
    rows = np.flatnonzero(item_rows)
    oof = np.full((len(rows), len(p.ids)), np.nan)
    for held in inner_folds(p.groups[rows], folds):
        train = np.zeros(len(p.items), dtype=bool)
        train[rows[~held]] = True
        test = np.zeros(len(p.items), dtype=bool)
        test[rows[held]] = True
        coef, intercept = _fit_coefficients(p, x, train, c, prior_weight)
        oof[held] = item_max(p, LearnedFit(coef, intercept, np.zeros(0)).unit_scores(x), test)
    thresholds = choose_thresholds(oof, gold[rows], optional[rows])
    coef, intercept = _fit_coefficients(p, x, item_rows, c, prior_weight)
    return LearnedFit(coef, intercept, thresholds)


def learned_predictions(p: Prepared, fit: LearnedFit, rows: np.ndarray) -> np.ndarray:
    scores = item_max(p, fit.unit_scores(learned_features(p.vectors, p.keywords)), rows)
    return scores >= fit.thresholds


# ---- baselines --------------------------------------------------------------------------------

def today_predictions(p: Prepared, rows: np.ndarray, with_title: bool) -> np.ndarray:
    """The shipped head's labels (children rolled up to their parents), union over units."""
    from pipeline.classify.head import labels_from_row

    taxonomy = load_taxonomy()
    out = np.zeros((int(rows.sum()), len(p.ids)), dtype=bool)
    for n, i in enumerate(np.flatnonzero(rows)):
        s = p.unit_slice(i)
        for u in range(s.start, s.stop):
            if p.title_unit[u] and not with_title:
                continue
            for m in labels_from_row(taxonomy, p.today_ids, p.today_scores[u], p.today_thresholds,
                                     learned=()):
                if m in p.ids:
                    out[n, p.ids.index(m)] = True
    return out


# ---- metrics ----------------------------------------------------------------------------------

def _counts(gold: np.ndarray, pred: np.ndarray, optional: np.ndarray) -> np.ndarray:
    """tp, fp, fn per motive (optional cells count for nothing)."""
    counted = ~optional | gold
    tp = (gold & pred).sum(axis=0)
    fp = (pred & ~gold & counted).sum(axis=0)
    fn = (gold & ~pred).sum(axis=0)
    return np.stack([tp, fp, fn]).astype(float)


def _prf(tp: Any, fp: Any, fn: Any) -> tuple[Any, Any, Any]:
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        r = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
        f = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    return p, r, f


def summarise(ids: list[str], item_ids: list[str], gold: np.ndarray, pred: np.ndarray,
              optional: np.ndarray, bootstrap: int = BOOTSTRAP) -> dict[str, Any]:
    """Micro and per-motive P/R/F1 with percentile-bootstrap 95% intervals, and the errors."""
    n = len(gold)
    if n == 0:
        return {"items": 0}
    c = _counts(gold, pred, optional)
    p, r, f = _prf(*c)
    mp, mr, mf = _prf(*c.sum(axis=1))
    rng = np.random.default_rng(SEED)
    boot_micro = []
    boot_f = []
    for _ in range(bootstrap):
        idx = rng.integers(0, n, n)
        bc = _counts(gold[idx], pred[idx], optional[idx])
        if gold[idx].any():  # a resample with no positive has no F1 to speak of
            boot_micro.append(_prf(*bc.sum(axis=1)))
        boot_f.append(np.where(gold[idx].any(axis=0), _prf(*bc)[2], np.nan))
    bm = np.array(boot_micro).reshape(-1, 3)
    bf = np.array(boot_f)
    per = {}
    for k, m in enumerate(ids):
        col = bf[:, k][~np.isnan(bf[:, k])]
        per[m] = {"precision": round(float(p[k]), 4), "recall": round(float(r[k]), 4),
                  "f1": round(float(f[k]), 4), "f1_ci95": interval95(col), "support": int(gold[:, k].sum()),
                  "predicted": int(pred[:, k].sum()), "tp": int(c[0, k]), "fp": int(c[1, k]),
                  "fn": int(c[2, k])}
    errors = []
    for i in range(n):
        missed = [m for k, m in enumerate(ids) if gold[i, k] and not pred[i, k]]
        extra = [m for k, m in enumerate(ids) if pred[i, k] and not gold[i, k] and not optional[i, k]]
        if missed or extra:
            errors.append({"id": item_ids[i], "missed": missed, "false": extra})
    return {"items": n, "micro": {"precision": round(float(mp), 4), "recall": round(float(mr), 4),
                                  "f1": round(float(mf), 4), "f1_ci95": interval95(bm[:, 2]),
                                  "precision_ci95": interval95(bm[:, 0]), "recall_ci95": interval95(bm[:, 1]),
                                  "support": int(gold.sum())},
            "per_motive": per, "errors": errors}


# ---- schemes ----------------------------------------------------------------------------------

def _method_predictions(p: Prepared, train: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
    return {"today": today_predictions(p, test, with_title=False),
            "today_title": today_predictions(p, test, with_title=True),
            "keyword_rule": p.item_keyword_rule[test],
            "learned": learned_predictions(p, fit_learned(p, train), test)}


def grouped_cv(p: Prepared, k: int = OUTER_FOLDS) -> dict[str, np.ndarray]:
    """Out-of-fold item predictions of every method; each fold holds out whole outlets."""
    preds = {m: np.zeros((len(p.items), len(p.ids)), dtype=bool) for m in METHODS}
    for held in inner_folds(p.groups, k):
        for method, pred in _method_predictions(p, ~held, held).items():
            preds[method][held] = pred
    return preds


def time_split_rows(p: Prepared, share: float = TIME_TEST_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """(train, test): the newest ``share`` of the items are tested; training sees only items
    published before the first of them."""
    published = np.array([i.published.timestamp() for i in p.items])
    order = np.argsort(published, kind="stable")
    test = np.zeros(len(p.items), dtype=bool)
    test[order[len(order) - max(1, math.ceil(share * len(order))):]] = True
    return published < published[test].min(), test


def _report(p: Prepared, rows: np.ndarray, preds: dict[str, np.ndarray], bootstrap: int) -> dict[str, Any]:
    gold, optional = p.gold()
    kinds = np.array([i.kind for i in p.items])
    ids = [i.id for i in p.items]
    out: dict[str, Any] = {}
    for method, pred in preds.items():
        out[method] = {}
        for subset, mask in (("all", rows), ("headline", rows & (kinds == "headline")),
                             ("article", rows & (kinds == "article"))):
            idx = np.flatnonzero(mask)
            out[method][subset] = summarise(p.ids, [ids[i] for i in idx], gold[idx], pred[idx],
                                            optional[idx], bootstrap)
    return out


def evaluate_prepared(p: Prepared, bootstrap: int = BOOTSTRAP) -> dict[str, Any]:
    everything = np.ones(len(p.items), dtype=bool)
    cv = grouped_cv(p)
    train, test = time_split_rows(p)
    time_preds = _method_predictions(p, train, test)
    full_time = {m: np.zeros((len(p.items), len(p.ids)), dtype=bool) for m in METHODS}
    for m, pred in time_preds.items():
        full_time[m][test] = pred
    kinds = [i.kind for i in p.items]
    gold, optional = p.gold()
    return {
        "data": {"headline_items": kinds.count("headline"), "articles": kinds.count("article"),
                 "outlets": len(set(p.groups)),
                 "positives": {m: int(gold[:, k].sum()) for k, m in enumerate(p.ids)},
                 "optional": {m: int(optional[:, k].sum()) for k, m in enumerate(p.ids)}},
        "protocol": {"outer_folds": OUTER_FOLDS, "grouping": "outlet (source, aliases merged)",
                     "thresholds": "learned head: inner outlet-grouped CV inside each training part",
                     "time_test_share": TIME_TEST_SHARE, "bootstrap": bootstrap,
                     "time_test_from": min(i.published for i, t in zip(p.items, test, strict=True)
                                           if t).date().isoformat(),
                     "time_train_items": int(train.sum()), "time_test_items": int(test.sum())},
        "grouped_cv": _report(p, everything, cv, bootstrap),
        "time_split": _report(p, test, full_time, bootstrap),
    }


def motive_dataset(shared_dir: Path | None = None, taxonomy: Taxonomy | None = None,
                   embedder: Any = None) -> Prepared:
    taxonomy = taxonomy or load_taxonomy()
    return prepare_items(load_motive_items(shared_dir, taxonomy), taxonomy, embedder)


def run_motive_eval(shared_dir: Path | None = None, taxonomy: Taxonomy | None = None,
                    embedder: Any = None, bootstrap: int = BOOTSTRAP) -> dict[str, Any]:
    """The motive evaluation on real data (see the module docstring) as a JSON-able report."""
    return evaluate_prepared(motive_dataset(shared_dir, taxonomy, embedder), bootstrap)


# ---- training, floors, printing ---------------------------------------------------------------

def train_motive_head(shared_dir: Path | None = None, out: Path | None = None,
                      taxonomy: Taxonomy | None = None, embedder: Any = None) -> dict[str, Any]:
    """Fit the learned head on all real data (plus the team prior) and write ``data/motive_head.json``
    (or ``out``): numbers only, no corpus text. Returns what was written."""
    from pipeline.classify.backends import get_embedder

    embedder = embedder or get_embedder()
    p = motive_dataset(shared_dir, taxonomy, embedder)
    fit = fit_learned(p, np.ones(len(p.items), dtype=bool))
    kinds = [i.kind for i in p.items]
    gold, _ = p.gold()
    data = {
        "about": "Learned top-level motive head (pipeline.classify.head). Written by "
                 "pipeline.classify.motive_eval.train_motive_head; do not edit by hand.",
        "how_made": {
            "trained_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "data": {"news_items.jsonl (on topic, English)": kinds.count("headline"),
                     "articles.jsonl (on topic, English; eval/labels.yaml)": kinds.count("article"),
                     "units (titles + sentences)": int(p.offsets[-1]),
                     "team prior rows (training.yaml + taxonomy exemplars/descriptions)": len(p.prior_y),
                     "positives per motive (items)": {m: int(gold[:, k].sum()) for k, m in enumerate(p.ids)}},
            "model": f"per-motive logistic regression, L2 C={LEARNED_C}, positives and negatives "
                     "balanced by weight; features: MiniLM sentence embedding + the motive's keyword "
                     "hit (taxonomy keywords incl. children); feed items' labels on each of their "
                     "units (title, summary sentences), article sentences by their own labels; "
                     f"team rows weighted {PRIOR_WEIGHT}; optional motives weight 0",
            "thresholds": "per motive, F1-best on item-level (max over units) out-of-fold scores of a "
                          f"5-fold outlet-grouped CV, shrunk to 0.5 with {SHRINK} pseudo-positives",
            "embedder": str(getattr(embedder, "identity", None) or getattr(embedder, "name", "")),
        },
        "ids": p.ids,
        "features": "embedding (384) then one keyword-hit column",
        "coef": [[round(float(v), 6) for v in row] for row in fit.coef],
        "intercept": [round(float(v), 6) for v in fit.intercept],
        "thresholds": {m: round(float(t), 4) for m, t in zip(p.ids, fit.thresholds, strict=True)},
    }
    target = Path(out) if out else LEARNED_FILE
    target.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return data


FLOOR_METHODS = ("today", "today_title", "learned")


def motive_floors(report: dict[str, Any], methods: Sequence[str] = FLOOR_METHODS,
                  margin: float = 0.05) -> dict[str, Any]:
    """The ``motives_real`` section of eval/baseline.json: per method, scheme and subset the
    micro-F1 and the F1 of motives with >= MIN_SUPPORT positives; floors = measured -
    max(margin, one positive's share of that figure's support)."""
    measured: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    for method in methods:
        for scheme in ("grouped_cv", "time_split"):
            for subset, s in report[scheme][method].items():
                if not s.get("items") or not s["micro"]["support"]:
                    continue
                entry = {"micro_f1": (s["micro"]["f1"], s["micro"]["support"])}
                entry.update({f"f1.{m}": (v["f1"], v["support"]) for m, v in s["per_motive"].items()
                              if v["support"] >= MIN_SUPPORT})
                measured.setdefault(method, {}).setdefault(scheme, {})[subset] = {
                    k: v for k, (v, _) in entry.items()}
                floors.setdefault(method, {}).setdefault(scheme, {})[subset] = {
                    k: round(max(0.0, v - max(margin, 1.0 / n)), 4) for k, (v, n) in entry.items()}
    return {"note": "motives on real data (pipeline.classify.motive_eval): on-topic English feed "
                    "items and articles; floors = measured - max(margin, one positive's share). "
                    "'today' is the deployed head on body sentences, 'today_title' the same head "
                    "with the title scored too, 'learned' the head trained on real sentences "
                    "(evaluated, not deployed)",
            "deployed": "today", "margin": margin, "measured": measured, "floors": floors}


def write_motive_baseline(report: dict[str, Any], path: Path | None = None) -> None:
    """Pin the ``motives_real`` floors in eval/baseline.json, keeping every other key."""
    target = Path(path or BASELINE_FILE)
    data = json.loads(target.read_text(encoding="utf-8"))
    data["motives_real"] = motive_floors(report)
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def format_motive_report(report: dict[str, Any]) -> str:
    d = report["data"]
    lines = [f"motive evaluation on real data: {d['headline_items']} feed items + {d['articles']} "
             f"articles (on topic, English), {d['outlets']} outlets; positives "
             + ", ".join(f"{m} {n}" for m, n in d["positives"].items())]

    def cell(s: dict[str, Any]) -> str:
        low, high = s["f1_ci95"]
        return f"{s['f1']:.2f} [{low:.2f}-{high:.2f}]" if not math.isnan(low) else f"{s['f1']:.2f}"

    for scheme, title in (("grouped_cv", "outlet-grouped CV"),
                          ("time_split", f"time split (newest {int(TIME_TEST_SHARE * 100)}%, from "
                                         f"{report['protocol']['time_test_from']})")):
        lines.append(f"\n{title}: micro P/R/F1 [95% CI]")
        for method in METHODS:
            for subset in ("all", "headline", "article"):
                s = report[scheme][method][subset]
                if not s.get("items"):
                    continue
                mi = s["micro"]
                lines.append(f"  {method:<13}{subset:<9}n={s['items']:<4} P {mi['precision']:.2f} "
                             f"R {mi['recall']:.2f} F1 {cell(mi)}  (support {mi['support']})")
        lines.append(f"{title}: per-motive F1 [95% CI] (all items)")
        ids = list(report[scheme]["learned"]["all"]["per_motive"])
        for m in ids:
            row = [f"{m:<21}"]
            for method in METHODS:
                s = report[scheme][method]["all"]["per_motive"][m]
                row.append(f"{method}={cell(s):<18}")
            row.append(f"support {report[scheme]['learned']['all']['per_motive'][m]['support']}")
            lines.append("  " + " ".join(row))
    return "\n".join(lines)

