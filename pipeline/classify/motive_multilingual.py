"""Motives across languages: the learned motive head on multilingual-e5 embeddings.

The same head as ``pipeline.classify.motive_eval`` (per-motive logistic regressions on the
sentence embedding plus a keyword hit, the team's sentences as a prior, thresholds by an inner
outlet-grouped CV), fitted on e5 vectors so that a Polish or Vietnamese sentence lands where its
English restatement does. Data, read at run time: the on-topic items of ``news_items.jsonl`` in
every language (feed items: headline plus summary) and the on-topic English articles with the
team's labels. The non-English articles of ``articles.jsonl`` have no motive labels, so they
are not used.

Reported, on the same non-English items: the head trained on English items only, and the head
under outlet-grouped cross-validation over all items, next to the English figure of the same run.
``train_multilingual_head()`` writes ``data/motive_head_e5.json``, which the classifier uses for
items that are not English.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.gate_data import outlet_group, parse_published
from pipeline.classify.gate_eval import prepare
from pipeline.classify.gate_model import inner_folds
from pipeline.classify.head import LEARNED_C, LEARNED_E5_FILE, PRIOR_WEIGHT
from pipeline.classify.motive_eval import (
    BOOTSTRAP,
    OUTER_FOLDS,
    MotiveItem,
    Prepared,
    _read_jsonl,
    _top,
    fit_learned,
    learned_predictions,
    load_motive_items,
    prepare_items,
    summarise,
    today_predictions,
)
from pipeline.errors import ConfigError
from pipeline.taxonomy import Taxonomy, load_taxonomy


def load_non_english_items(shared_dir: Path | None = None,
                           taxonomy: Taxonomy | None = None) -> list[MotiveItem]:
    """On-topic feed items not in English, with their top-level gold motives."""
    from pipeline.classify.evaluate import SHARED_DIR

    taxonomy = taxonomy or load_taxonomy()
    path = Path(shared_dir or SHARED_DIR) / "corpus" / "news_items.jsonl"
    items = []
    for raw in _read_jsonl(path):
        item_id = str(raw.get("id"))
        if raw.get("on_topic") is not True or str(raw.get("language") or "en").lower() == "en":
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
    return items


def multilingual_dataset(shared_dir: Path | None = None, taxonomy: Taxonomy | None = None,
                         embedder: Any = None) -> tuple[Prepared, np.ndarray]:
    """English and non-English items embedded with e5; the mask marks the non-English ones."""
    from pipeline.classify.e5_runtime import get_multilingual_embedder
    from pipeline.errors import ClassifierError

    taxonomy = taxonomy or load_taxonomy()
    embedder = embedder or get_multilingual_embedder()
    if embedder is None:
        raise ClassifierError("no multilingual build: run `newswatch model build` first")
    english = load_motive_items(shared_dir, taxonomy)
    other = load_non_english_items(shared_dir, taxonomy)
    p = prepare_items(english + other, taxonomy, embedder)
    return p, np.array([False] * len(english) + [True] * len(other))


def _subset(p: Prepared, pred: np.ndarray, rows: np.ndarray, bootstrap: int) -> dict[str, Any]:
    gold, optional = p.gold()
    idx = np.flatnonzero(rows)
    return summarise(p.ids, [p.items[i].id for i in idx], gold[idx], pred[idx], optional[idx], bootstrap)


def evaluate_multilingual(p: Prepared, foreign: np.ndarray, bootstrap: int = BOOTSTRAP) -> dict[str, Any]:
    """Micro and per-motive P/R/F1 of the e5 head for English and non-English items, two settings."""
    english = ~foreign
    fit = fit_learned(p, english)
    english_only = np.zeros((len(p.items), len(p.ids)), dtype=bool)
    english_only[foreign] = learned_predictions(p, fit, foreign)
    team = today_predictions(p, np.ones(len(p.items), dtype=bool), with_title=True)
    cv = np.zeros((len(p.items), len(p.ids)), dtype=bool)
    for held in inner_folds(p.groups, OUTER_FOLDS):
        cv[held] = learned_predictions(p, fit_learned(p, ~held), held)
    return {
        "data": {"english_items": int(english.sum()), "non_english_items": int(foreign.sum()),
                 "languages": sorted({i.id.split(":")[0] for i in p.items})},
        "protocol": {"outer_folds": OUTER_FOLDS, "grouping": "outlet (source, aliases merged)",
                     "embedder": "multilingual-e5-small (e5-onnx)", "bootstrap": bootstrap},
        "english_only": {"non_english": _subset(p, english_only, foreign, bootstrap)},
        "grouped_cv": {"english": _subset(p, cv, english, bootstrap),
                       "non_english": _subset(p, cv, foreign, bootstrap)},
        # the team head (English team sentences only, titles scored) on e5 vectors: no real item
        # in its training, so it is out of sample for every item
        "team_head": {"english": _subset(p, team, english, bootstrap),
                      "non_english": _subset(p, team, foreign, bootstrap)},
    }


def run_multilingual_motive_eval(shared_dir: Path | None = None,
                                 bootstrap: int = BOOTSTRAP) -> dict[str, Any]:
    return evaluate_multilingual(*multilingual_dataset(shared_dir), bootstrap=bootstrap)


def train_multilingual_head(shared_dir: Path | None = None, out: Path | None = None) -> dict[str, Any]:
    """Fit the e5 head on every item (both languages) and write ``data/motive_head_e5.json``:
    numbers only, in the format of ``motive_head.json``."""
    p, foreign = multilingual_dataset(shared_dir)
    fit = fit_learned(p, np.ones(len(p.items), dtype=bool))
    data = {
        "about": "Learned top-level motive head on multilingual-e5 embeddings (pipeline.classify.head), "
                 "for items not in English. Written by pipeline.classify.motive_multilingual."
                 "train_multilingual_head; do not edit by hand.",
        "how_made": {
            "trained_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "data": {"on-topic English items and articles": int((~foreign).sum()),
                     "on-topic non-English feed items": int(foreign.sum()),
                     "units (titles + sentences)": int(p.offsets[-1])},
            "model": f"as motive_head.json (C={LEARNED_C}, team rows weighted {PRIOR_WEIGHT}), on e5 "
                     "passage embeddings",
        },
        "ids": p.ids,
        "features": "embedding (384) then one keyword-hit column",
        "coef": [[round(float(v), 6) for v in row] for row in fit.coef],
        "intercept": [round(float(v), 6) for v in fit.intercept],
        "thresholds": {m: round(float(t), 4) for m, t in zip(p.ids, fit.thresholds, strict=True)},
    }
    target = Path(out) if out else LEARNED_E5_FILE
    target.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return data


def format_multilingual_report(report: dict[str, Any]) -> str:
    lines = [f"motives with multilingual-e5: {report['data']['english_items']} English items, "
             f"{report['data']['non_english_items']} non-English on-topic items"]
    rows = (("trained on English only", "non_english", report["english_only"]["non_english"]),
            ("outlet-grouped CV", "english", report["grouped_cv"]["english"]),
            ("outlet-grouped CV", "non_english", report["grouped_cv"]["non_english"]),
            ("team head (English prior)", "english", report["team_head"]["english"]),
            ("team head (English prior)", "non_english", report["team_head"]["non_english"]))
    for setting, subset, s in rows:
        if not s.get("items"):
            continue
        m = s["micro"]
        low, high = m["f1_ci95"]
        lines.append(f"{setting:<27}{subset:<13}{s['items']:>5}  micro P {m['precision']:.3f} "
                     f"R {m['recall']:.3f} F1 {m['f1']:.3f} [{low:.2f}-{high:.2f}] (support {m['support']})")
    return "\n".join(lines)
