"""Evaluation and training of the on-topic gate on the real labelled data.

Data (read from ``../shared/corpus`` at run time, never copied into the repo):
``news_items.jsonl`` (feed items: headline plus the publisher's short summary) and
``articles.jsonl`` (full articles), both with ``on_topic`` and ``source`` (the outlet). The team's
sample items (``pipeline.demo``, invented) are training data only: they are never reported.

Two honest estimates of quality on unseen data, for three methods side by side:

- **outlet-grouped cross-validation**: each fold holds out whole outlets; the model is refitted
  and its threshold re-chosen (by an inner outlet-grouped CV) inside the training part only;
- **time split**: for each kind (headline items, full articles) the newest ~20% are the test set,
  and the model learns only from items published before the first of them.

Methods: ``hand_tuned`` (the density score the gate used before it was learned, threshold 0.5),
``keyword_rule`` (North Korea AND (Russia/its war OR a deployment word) anywhere in title + body)
and ``learned`` (this gate). Accuracy and on-topic recall get percentile-bootstrap 95% intervals
(items resampled), reported for headline items, full articles and non-English items separately.

``train_gate()`` fits the model on all labelled data and writes ``data/gate.json``; the lead wires
it to a CLI command. ``run_gate_eval()`` returns the report, ``format_gate_report()`` prints it.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.embedder import repair_text
from pipeline.classify.evaluate import BASELINE_FILE, interval95  # noqa: F401 - the CLI names the file
from pipeline.classify.gate import embedding_features, embeds_title, keyword_evidence
from pipeline.classify.gate_data import (  # noqa: F401 - re-exported for motive_eval and tests
    GateItem,
    load_gate_items,
    outlet_group,
    parse_published,
    sample_gate_items,
)
from pipeline.classify.gate_model import (
    C_REGULARISATION,
    EMBEDDING_FEATURES,
    GATE_FILE,
    KEYWORD_FEATURES,
    TOPIC_ANCHORS,
    GateModel,
    LinearGate,
    fit_gate,
    inner_folds,
    load_gate_model,
)
from pipeline.classify.gate_report import (  # noqa: F401 - the CLI and tests use them from here
    METHODS,
    SUBSETS,
    TIME_TEST_SHARE,
    format_gate_report,
    gate_floors,
    write_gate_baseline,
)
from pipeline.classify.sentences import split_sentences
from pipeline.language import detect_language
from pipeline.taxonomy import Taxonomy, load_taxonomy

OUTER_FOLDS = 5
BOOTSTRAP = 2000
SEED = 13
SUPPORTED_LANGUAGES = frozenset({"en"})  # the embedder's languages (as in pipeline.classify.classifier)

@dataclass
class Featured:
    """Feature rows of a list of items, in the item order."""

    items: list[GateItem]
    keyword: np.ndarray        # (n, len(KEYWORD_FEATURES))
    embedding: np.ndarray      # (n, len(KEYWORD_FEATURES) + 2); NaN rows where not English
    supported: np.ndarray      # bool: the embedder judges this item (detected English)
    hand_score: np.ndarray
    keyword_rule: np.ndarray
    multilingual: np.ndarray   # keyword + e5 similarity features of every item; NaN rows: none

    @property
    def gold(self) -> np.ndarray:
        return np.array([i.on_topic for i in self.items], dtype=bool)

    @property
    def groups(self) -> np.ndarray:
        return np.array([i.outlet for i in self.items], dtype=object)


def prepare(title: str, text: str) -> tuple[str, list[str]]:
    """Title and sentences exactly as ``Classifier.classify_articles`` prepares them."""
    clean_title = " ".join(html.unescape(html.unescape(repair_text(title or ""))).split())
    return clean_title, split_sentences(repair_text(text or ""))


def featurise(items: Sequence[GateItem], taxonomy: Taxonomy | None = None, embedder: Any = None,
              anchors: Sequence[str] = TOPIC_ANCHORS, multilingual_embedder: Any = None) -> Featured:
    """Keyword features for every item; embedding features for detected-English items;
    multilingual features (e5) for every item when the multilingual build is there."""
    from pipeline.classify.backends import get_embedder
    from pipeline.classify.e5_runtime import get_multilingual_embedder
    from pipeline.classify.gate_multilingual import similarity_rows

    taxonomy = taxonomy or load_taxonomy()
    embedder = embedder or get_embedder()
    multilingual_embedder = multilingual_embedder or get_multilingual_embedder()
    prepared = []
    for item in items:
        title, sentences = prepare(item.title, item.text)
        guess = detect_language(f"{title}\n{repair_text(item.text)}", item.language)
        prepared.append((title, sentences, guess.code in SUPPORTED_LANGUAGES))
    # Three calls, as the classifier makes them: sentences, then titles, then the anchors.
    sentence_texts = [s for _, sentences, supported in prepared if supported for s in sentences]
    title_texts = [t for t, _, supported in prepared if supported and embeds_title(t)]
    sentence_vectors = (embedder.embed(sentence_texts) if sentence_texts
                        else np.zeros((0, embedder.dims), np.float32))
    title_vectors = (embedder.embed(title_texts) if title_texts
                     else np.zeros((0, embedder.dims), np.float32))
    topic = embedder.embed(list(anchors))
    offset = title_at = 0
    kw_rows, emb_rows, hand, rule = [], [], [], []
    for title, sentences, supported in prepared:
        evidence = keyword_evidence(title, sentences, taxonomy.topic)
        kw = evidence.features()
        kw_rows.append(kw)
        hand.append(evidence.hand_score)
        rule.append(evidence.keyword_rule)
        if not supported:
            emb_rows.append(np.full(len(kw) + len(EMBEDDING_FEATURES), np.nan))
            continue
        body = sentence_vectors[offset:offset + len(sentences)]
        offset += len(sentences)
        title_vector = None
        if embeds_title(title):
            title_vector, title_at = title_vectors[title_at], title_at + 1
        if title_vector is None and not len(body):  # nothing embedded: the keyword variant decides
            emb_rows.append(np.full(len(kw) + len(EMBEDDING_FEATURES), np.nan))
            continue
        emb_rows.append(np.concatenate([kw, embedding_features(title_vector, body, topic)]))
    keyword = np.array(kw_rows)
    sims = (similarity_rows([(t, s) for t, s, _ in prepared], multilingual_embedder, anchors)
            if multilingual_embedder is not None else np.full((len(prepared), 2), np.nan))
    return Featured(list(items), keyword, np.array(emb_rows),
                    np.array([s for _, _, s in prepared], dtype=bool), np.array(hand),
                    np.array(rule, dtype=bool), np.concatenate([keyword, sims], axis=1))


def _usable_embedding(f: Featured) -> np.ndarray:
    return f.supported & ~np.isnan(f.embedding).any(axis=1)


@dataclass(frozen=True)
class FittedGate:
    keyword: LinearGate
    embedding: LinearGate
    multilingual: LinearGate | None = None

    def scores(self, f: Featured, rows: np.ndarray) -> np.ndarray:
        """Scores (0.5 = decision point) of ``rows``, each by the variant production would use."""
        out = np.zeros(int(rows.sum()) if rows.dtype == bool else len(rows))
        idx = np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows)
        emb = _usable_embedding(f)[idx]
        if emb.any():
            out[emb] = self.embedding.score(f.embedding[idx[emb]])
        multi = ~emb & ~np.isnan(f.multilingual[idx]).any(axis=1) & ~f.supported[idx]
        if self.multilingual is None:
            multi[:] = False
        if multi.any():
            out[multi] = self.multilingual.score(f.multilingual[idx[multi]])  # type: ignore[union-attr]
        rest = ~emb & ~multi
        if rest.any():
            out[rest] = self.keyword.score(f.keyword[idx[rest]])
        empty = np.array([not f.items[i].title.strip() and not f.items[i].text.strip() for i in idx])
        out[empty] = 0.0
        return out


def fit_both(f: Featured, rows: np.ndarray) -> FittedGate:
    """Both variants on ``rows`` (boolean mask): keyword on all of them, embedding on English."""
    gold, groups = f.gold, f.groups
    keyword = fit_gate(f.keyword[rows], gold[rows], groups[rows], KEYWORD_FEATURES)
    emb_rows = rows & _usable_embedding(f)
    embedding = fit_gate(f.embedding[emb_rows], gold[emb_rows], groups[emb_rows],
                         KEYWORD_FEATURES + EMBEDDING_FEATURES)
    multi_rows = rows & ~np.isnan(f.multilingual).any(axis=1)
    multilingual = (fit_gate(f.multilingual[multi_rows], gold[multi_rows], groups[multi_rows],
                             KEYWORD_FEATURES + EMBEDDING_FEATURES) if multi_rows.any() else None)
    return FittedGate(keyword, embedding, multilingual)


# ---- metrics --------------------------------------------------------------------------------

def summarise(gold: np.ndarray, pred: np.ndarray, ids: Sequence[str], scores: np.ndarray | None,
              rng: np.random.Generator, bootstrap: int = BOOTSTRAP) -> dict[str, Any]:
    """Accuracy and on-topic recall with percentile-bootstrap 95% intervals, and the errors."""
    n = len(gold)
    if n == 0:
        return {"items": 0}
    correct = gold == pred
    positives = int(gold.sum())
    accs, recalls = [], []
    for _ in range(bootstrap):
        idx = rng.integers(0, n, n)
        accs.append(float(correct[idx].mean()))
        pos = gold[idx]
        if pos.any():
            recalls.append(float(correct[idx][pos].mean()))
    errors = [{"id": ids[i], "gold": bool(gold[i]), "predicted": bool(pred[i]),
               **({"score": round(float(scores[i]), 4)} if scores is not None else {})}
              for i in np.flatnonzero(~correct)]
    return {
        "items": n, "on_topic": positives,
        "accuracy": round(float(correct.mean()), 4), "accuracy_ci95": interval95(accs),
        "recall": round(float(correct[gold].mean()), 4) if positives else None,
        "recall_ci95": interval95(recalls) if positives else None,
        "missed": int((gold & ~pred).sum()), "false_alarms": int((~gold & pred).sum()),
        "errors": errors,
    }


def _subsets(f: Featured, rows: np.ndarray) -> dict[str, np.ndarray]:
    kinds = np.array([i.kind for i in f.items])
    foreign = np.array([i.language != "en" for i in f.items])
    return {"headline": rows & (kinds == "headline"), "article": rows & (kinds == "article"),
            "non_english": rows & foreign}


def _report_scheme(f: Featured, tested: np.ndarray, learned_scores: np.ndarray,
                   bootstrap: int) -> dict[str, Any]:
    """Every method on the same tested rows, per subset."""
    gold = f.gold
    ids = [i.id for i in f.items]
    preds = {"hand_tuned": (f.hand_score >= 0.5, f.hand_score),
             "keyword_rule": (f.keyword_rule, None),
             "learned": (learned_scores >= 0.5, learned_scores)}
    out: dict[str, Any] = {}
    for method, (pred, scores) in preds.items():
        out[method] = {}
        for subset, rows in _subsets(f, tested).items():
            idx = np.flatnonzero(rows)
            rng = np.random.default_rng(SEED)
            out[method][subset] = summarise(gold[idx], pred[idx], [ids[i] for i in idx],
                                            None if scores is None else scores[idx], rng, bootstrap)
    return out


def grouped_cv_scores(f: Featured, k: int = OUTER_FOLDS) -> np.ndarray:
    """Out-of-fold scores of the real items: each fold holds out whole outlets; samples are
    always in training. NaN for rows never tested (the samples)."""
    real = np.array([i.kind != "sample" for i in f.items])
    scores = np.full(len(f.items), np.nan)
    groups = f.groups
    for held_real in inner_folds(groups[real], k):
        held = np.zeros(len(f.items), dtype=bool)
        held[np.flatnonzero(real)[held_real]] = True
        model = fit_both(f, ~held)
        scores[held] = model.scores(f, held)
    return scores


def time_split(f: Featured, share: float = TIME_TEST_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Test rows (the newest ``share`` of each real kind) and their scores from models trained on
    everything published before the first test item of that kind."""
    tested = np.zeros(len(f.items), dtype=bool)
    scores = np.full(len(f.items), np.nan)
    published = np.array([i.published.timestamp() for i in f.items])
    kinds = np.array([i.kind for i in f.items])
    for kind in ("headline", "article"):
        rows = np.flatnonzero(kinds == kind)
        order = rows[np.argsort(published[rows], kind="stable")]
        test = order[len(order) - max(1, math.ceil(share * len(order))):]
        cutoff = published[test].min()
        train = published < cutoff
        held = np.zeros(len(f.items), dtype=bool)
        held[test] = True
        scores[held] = fit_both(f, train).scores(f, held)
        tested |= held
    return tested, scores


def gate_dataset(shared_dir: Path | None = None, taxonomy: Taxonomy | None = None,
                 embedder: Any = None) -> Featured:
    """The real labelled items followed by the team's samples, with their features."""
    return featurise(load_gate_items(shared_dir) + sample_gate_items(), taxonomy, embedder)


def evaluate_featured(f: Featured, bootstrap: int = BOOTSTRAP) -> dict[str, Any]:
    """Outlet-grouped CV and the time split of every method on a featurised dataset."""
    items = f.items
    is_real = np.array([i.kind != "sample" for i in items])
    real = [i for i in items if i.kind != "sample"]
    cv = grouped_cv_scores(f)
    tested, time_scores = time_split(f)
    published = [i.published for i, t in zip(items, tested, strict=True) if t]
    kinds = [i.kind for i in real]
    return {
        "data": {"headline_items": kinds.count("headline"), "articles": kinds.count("article"),
                 "non_english": sum(i.language != "en" for i in real),
                 "on_topic": sum(i.on_topic for i in real),
                 "outlets": len({i.outlet for i in real}),
                 "sample_items_for_training": int((~is_real).sum())},
        "protocol": {"outer_folds": OUTER_FOLDS, "grouping": "outlet (source, aliases merged)",
                     "threshold": "chosen inside each training part by an inner outlet-grouped CV",
                     "time_test_share": TIME_TEST_SHARE, "bootstrap": bootstrap,
                     "time_test_from": min(published).date().isoformat() if published else None},
        "grouped_cv": _report_scheme(f, is_real, np.nan_to_num(cv, nan=0.0), bootstrap),
        "time_split": _report_scheme(f, tested, np.nan_to_num(time_scores, nan=0.0), bootstrap),
        "english_only": english_only_report(f, bootstrap),
    }


def english_only_report(f: Featured, bootstrap: int = BOOTSTRAP) -> dict[str, Any]:
    """Non-English items judged by a multilingual gate that learned from English items only."""
    from pipeline.classify.gate_multilingual import english_only_scores

    tested = np.array([i.kind != "sample" and i.language != "en" for i in f.items])
    if not tested.any() or np.isnan(f.multilingual).any(axis=1).all():
        return {"non_english": {"items": 0}, "note": "no multilingual build or no non-English items"}
    scores = english_only_scores(f, tested)
    idx = np.flatnonzero(tested)
    return {"non_english": summarise(f.gold[idx], scores >= 0.5, [f.items[i].id for i in idx], scores,
                                     np.random.default_rng(SEED), bootstrap)}


def run_gate_eval(shared_dir: Path | None = None, taxonomy: Taxonomy | None = None,
                  embedder: Any = None, bootstrap: int = BOOTSTRAP) -> dict[str, Any]:
    """The full gate evaluation (see the module docstring) as a JSON-able report."""
    return evaluate_featured(gate_dataset(shared_dir, taxonomy, embedder), bootstrap)


# ---- training and floors --------------------------------------------------------------------

def train_gate(shared_dir: Path | None = None, out: Path | None = None, taxonomy: Taxonomy | None = None,
               embedder: Any = None) -> dict[str, Any]:
    """Fit the gate on all labelled data (real items and the team's samples) and write
    ``data/gate.json`` (or ``out``). Returns what was written. The entry point for a CLI command."""
    from pipeline.classify.backends import get_embedder

    embedder = embedder or get_embedder()
    f = gate_dataset(shared_dir, taxonomy, embedder)
    items = f.items
    fitted = fit_both(f, np.ones(len(items), dtype=bool))
    kinds = [i.kind for i in items]
    data = {
        "about": "Learned on-topic gate (pipeline.classify.gate). Written by "
                 "pipeline.classify.gate_eval.train_gate; do not edit by hand.",
        "how_made": {
            "trained_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "data": {"news_items.jsonl": kinds.count("headline"), "articles.jsonl": kinds.count("article"),
                     "team sample items (feed + page versions)": kinds.count("sample"),
                     "on_topic": int(f.gold.sum())},
            "model": "logistic regression on standardised features, class_weight=balanced, "
                     f"L2 C={C_REGULARISATION}",
            "threshold": "probability cut-off maximising accuracy + on-topic recall on out-of-fold "
                         "predictions of a 5-fold outlet-grouped cross-validation",
            "embedder": str(getattr(embedder, "identity", None) or getattr(embedder, "name", "")),
            "variants": "embedding: detected-English items (keywords + MiniLM topic similarity); "
                        "multilingual: other languages (keywords + e5 topic similarity, fitted on "
                        "every item); keyword: items without vectors",
        },
        "topic_anchors": list(TOPIC_ANCHORS),
        "variants": {"keyword": fitted.keyword.as_json(), "embedding": fitted.embedding.as_json(),
                     **({"multilingual": fitted.multilingual.as_json()} if fitted.multilingual else {})},
    }
    target = Path(out) if out else GATE_FILE
    target.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return data


def deployed_predictions(f: Featured, model: GateModel | None = None) -> np.ndarray:
    """Scores of every row by the model in data/gate.json (what the classifier decides)."""
    model = model or load_gate_model()
    return FittedGate(model.keyword, model.embedding, model.multilingual).scores(
        f, np.ones(len(f.items), dtype=bool))
