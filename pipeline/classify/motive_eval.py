"""Motives learned from real sentences: the evaluation on real data, its report and floors.

The data and its units are in ``pipeline.classify.motive_data``; the learned head and its
thresholds in ``pipeline.classify.motive_fit``. This module is what ``newswatch eval
--motives-real`` calls, and re-exports the names of both that callers use.

Methods compared on the same held-out items:

- ``today``: the shipped team-trained head (``pipeline.classify.head.MotiveHead`` with the
  team-sentence fit and ``data/thresholds.json``) on the body sentences only;
- ``today_title``: the same head with the title scored as one more unit, which is what the
  classifier does (a feed item's motive is often only in its headline);
- ``keyword_rule``: a motive (or one of its children) has a taxonomy keyword in title or text;
- ``learned``: the head of ``motive_fit`` (per-motive logistic regressions on MiniLM embeddings
  plus a keyword feature, the team's sentences as a prior), with thresholds from an inner
  outlet-grouped cross-validation inside the training part only.

Schemes: outlet-grouped k-fold CV (a fold holds out whole outlets) and a time split (the newest
20% of the items are the test set, the model learns only from items published before them).
Per-motive and micro P/R/F1 with percentile-bootstrap 95% intervals (items resampled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.evaluate import BASELINE_FILE, interval95, pin_baseline
from pipeline.classify.gate_eval import BOOTSTRAP, OUTER_FOLDS, SEED, TIME_TEST_SHARE
from pipeline.classify.gate_model import inner_folds
from pipeline.classify.head import LEARNED_FILE
from pipeline.classify.motive_data import (
    MotiveItem,
    Prepared,
    _read_jsonl,
    _top,
    load_motive_items,
    motive_dataset,
    prepare_items,
)
from pipeline.classify.motive_fit import (
    LearnedFit,
    choose_thresholds,
    fit_learned,
    item_max,
    learned_predictions,
    train_motive_head,
)
from pipeline.taxonomy import Taxonomy, load_taxonomy

# re-exported: the CLI, the multilingual head and the tests reach these through this module
__all__ = [
    "BASELINE_FILE", "BOOTSTRAP", "LEARNED_FILE", "METHODS", "OUTER_FOLDS", "LearnedFit", "MotiveItem",
    "Prepared", "_read_jsonl", "_top", "choose_thresholds", "evaluate_prepared", "fit_learned",
    "format_motive_report", "grouped_cv", "item_max", "learned_predictions", "load_motive_items",
    "motive_dataset", "motive_floors", "prepare_items", "run_motive_eval", "summarise",
    "time_split_rows", "today_predictions", "train_motive_head", "write_motive_baseline",
]

METHODS = ("today", "today_title", "keyword_rule", "learned")
MIN_SUPPORT = 10  # the per-motive target applies to motives with at least this many positives


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


def run_motive_eval(shared_dir: Path | None = None, taxonomy: Taxonomy | None = None,
                    embedder: Any = None, bootstrap: int = BOOTSTRAP) -> dict[str, Any]:
    """The motive evaluation on real data (see the module docstring) as a JSON-able report."""
    return evaluate_prepared(motive_dataset(shared_dir, taxonomy, embedder), bootstrap)


# ---- floors, printing -------------------------------------------------------------------------

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
                    "'today' is the shipped head on body sentences only, 'today_title' the same "
                    "head with the title scored too (as the classifier runs it), 'learned' the "
                    "head trained on real sentences (evaluated, not deployed)",
            "deployed": "today_title", "margin": margin, "measured": measured, "floors": floors}


def write_motive_baseline(report: dict[str, Any], path: Path | None = None) -> None:
    """Pin the ``motives_real`` floors in eval/baseline.json, keeping every other key."""
    pin_baseline({"motives_real": motive_floors(report)}, path)


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
