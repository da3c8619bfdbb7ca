"""Motives on real data: the learned head, its fit and its per-motive thresholds.

Per-motive logistic regressions on MiniLM embeddings plus a keyword feature, trained on the real
units (item labels on the item's units, sentence labels for articles) with the team's training
sentences and exemplars as down-weighted prior rows; per-motive thresholds chosen by an inner
outlet-grouped cross-validation inside the training part only. ``train_motive_head()`` fits on all
data and writes ``data/motive_head.json`` (numbers only: the coefficients, intercepts and
thresholds, and how they were made).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.gate_eval import OUTER_FOLDS
from pipeline.classify.gate_model import inner_folds
from pipeline.classify.head import LEARNED_C, LEARNED_FILE, PRIOR_WEIGHT, learned_features
from pipeline.classify.motive_data import Prepared, motive_dataset
from pipeline.taxonomy import Taxonomy

THRESHOLD_GRID = np.round(np.arange(0.2, 0.91, 0.025), 3)
SHRINK = 3.0  # pseudo-positives pulling a cross-validated threshold towards 0.5 when evidence is thin


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
