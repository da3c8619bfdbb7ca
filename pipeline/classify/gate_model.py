"""The learned part of the on-topic gate: small logistic regressions kept as numbers.

``data/gate.json`` holds, for each variant, the feature names, the standardisation (mean, scale),
the coefficients, the intercept and the decision threshold chosen by outlet-grouped
cross-validation. Scoring is a dot product in numpy, so a classifying process never imports
scikit-learn; only fitting (``fit_gate``, used by ``pipeline.classify.gate_eval``) does.

Three variants over the same features: ``embedding`` adds the similarity of the title and of the
best body sentence to the topic, measured with the English MiniLM, and judges English items;
``multilingual`` adds the same two similarities measured with multilingual-e5 (the English topic
anchors compared across languages) and judges every other language; ``keyword`` uses the keyword
features alone and serves items without vectors (no multilingual build, empty text). A gate file
without a ``multilingual`` variant leaves non-English items to ``keyword``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ClassifierError

GATE_FILE = Path(__file__).with_name("data") / "gate.json"

KEYWORD_FEATURES = (
    "title_actor", "title_partner", "title_deployment", "title_actor_partner", "title_actor_deployment",
    "lead_actor", "lead_partner", "lead_deployment", "body_cooccurring", "body_density",
    "head_actor_partner", "head_actor_deployment", "head_actor_partner_deployment",
    "actor_share", "hand_score", "log_words",
)
EMBEDDING_FEATURES = ("title_similarity", "best_sentence_similarity")
VARIANTS = {"keyword": KEYWORD_FEATURES, "embedding": KEYWORD_FEATURES + EMBEDDING_FEATURES,
            "multilingual": KEYWORD_FEATURES + EMBEDDING_FEATURES}

# What the topic is, in the team's own words: the embedding features are the cosine similarity
# to the closest of these. They describe the subject, not any item of the corpus.
TOPIC_ANCHORS = (
    "North Korea has sent thousands of its soldiers to Russia to fight in the war against Ukraine.",
    "North Korean troops are fighting alongside Russian forces in the Kursk region.",
    "Pyongyang supplies Russia with artillery shells and ballistic missiles for its war in Ukraine.",
    "Russia and North Korea signed a mutual defence treaty and pledged military assistance to "
    "each other.",
    "North Korean soldiers have been killed, wounded or captured by Ukraine.",
    "Kim Jong Un and Vladimir Putin deepen military and economic ties between Moscow and Pyongyang.",
    "Russia may give North Korea military technology, money, food or oil in return for its help "
    "in the war.",
)

C_REGULARISATION = 1.0       # L2 strength of the logistic regressions (fixed, not tuned per fold)
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 3)


def _sigmoid(z: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


@dataclass(frozen=True)
class LinearGate:
    """A standardised logistic regression with a decision threshold on its probability."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((np.atleast_2d(x) - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(_sigmoid(z), dtype=np.float64)

    def score(self, x: np.ndarray) -> np.ndarray:
        """The probability shifted so that the chosen threshold sits at 0.5: ``score >= 0.5``
        is the cross-validated decision, and the taxonomy's ``topic.threshold`` (0.5 by default)
        stays a meaningful knob (raise it to be stricter)."""
        p = np.clip(self.probability(x), 1e-12, 1 - 1e-12)
        t = min(max(self.threshold, 1e-6), 1 - 1e-6)
        return np.asarray(_sigmoid(np.log(p / (1 - p)) - math.log(t / (1 - t))), dtype=np.float64)

    def as_json(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": _floats(self.mean),
                "scale": _floats(self.scale), "coef": _floats(self.coef),
                "intercept": round(float(self.intercept), 6), "threshold": round(float(self.threshold), 4)}


def _floats(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


@dataclass(frozen=True)
class GateModel:
    keyword: LinearGate
    embedding: LinearGate
    anchors: tuple[str, ...]
    path: Path | None = None
    multilingual: LinearGate | None = None

    def variant(self, with_embeddings: bool, multilingual: bool = False) -> LinearGate:
        if with_embeddings and multilingual:
            if self.multilingual is None:
                raise ClassifierError(f"{self.path}: no multilingual variant; retrain the gate")
            return self.multilingual
        return self.embedding if with_embeddings else self.keyword


def _linear_from_json(raw: Any, path: Path, name: str) -> LinearGate:
    where = f"variants.{name}"
    if not isinstance(raw, dict):
        raise ClassifierError(f"{path}: {where} must be a mapping (retrain with the gate training command)")
    expected = VARIANTS[name]
    if tuple(raw.get("features") or ()) != expected:
        raise ClassifierError(f"{path}: {where}.features does not match this version's features "
                              f"{list(expected)}; retrain the gate")
    arrays = {}
    for key in ("mean", "scale", "coef"):
        value = raw.get(key)
        if not isinstance(value, list) or len(value) != len(expected) or not all(
                isinstance(v, int | float) and math.isfinite(v) for v in value):
            raise ClassifierError(f"{path}: {where}.{key} must be {len(expected)} finite numbers")
        arrays[key] = np.asarray(value, dtype=np.float64)
    if np.any(arrays["scale"] <= 0):
        raise ClassifierError(f"{path}: {where}.scale must be positive")
    intercept, threshold = raw.get("intercept"), raw.get("threshold")
    if not isinstance(intercept, int | float) or not math.isfinite(intercept):
        raise ClassifierError(f"{path}: {where}.intercept must be a finite number")
    if not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise ClassifierError(f"{path}: {where}.threshold must be a number between 0 and 1")
    return LinearGate(expected, arrays["mean"], arrays["scale"], arrays["coef"], float(intercept),
                      float(threshold))


def parse_gate_model(data: Any, path: Path) -> GateModel:
    """Validate the content of a gate file; errors name the file and the field."""
    if not isinstance(data, dict) or not isinstance(data.get("variants"), dict):
        raise ClassifierError(f"{path}: expected a mapping with 'variants' (keyword, embedding)")
    anchors = data.get("topic_anchors")
    if not isinstance(anchors, list) or not anchors or not all(isinstance(a, str) and a.strip()
                                                               for a in anchors):
        raise ClassifierError(f"{path}: topic_anchors must be a non-empty list of sentences")
    variants = data["variants"]
    return GateModel(keyword=_linear_from_json(variants.get("keyword"), path, "keyword"),
                     embedding=_linear_from_json(variants.get("embedding"), path, "embedding"),
                     multilingual=(_linear_from_json(variants["multilingual"], path, "multilingual")
                                   if variants.get("multilingual") is not None else None),
                     anchors=tuple(anchors), path=path)


def load_gate_model(path: str | Path | None = None) -> GateModel:
    """The gate model in ``path`` (default ``data/gate.json``), cached until the file changes."""
    resolved = Path(path) if path else GATE_FILE
    try:
        mtime = resolved.stat().st_mtime_ns
    except OSError as exc:
        raise ClassifierError(f"{resolved}: the gate model file is missing ({exc.strerror}); "
                              "train it with pipeline.classify.gate_eval.train_gate") from exc
    return _load_cached(str(resolved), mtime)


@lru_cache(maxsize=4)
def _load_cached(path: str, _mtime: int) -> GateModel:
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClassifierError(f"{file}: not a readable JSON gate model ({exc})") from exc
    return parse_gate_model(data, file)


# ---- fitting (scikit-learn, imported only here) ------------------------------------------------

def choose_threshold(probabilities: np.ndarray, gold: np.ndarray) -> float:
    """The threshold maximising accuracy + on-topic recall on out-of-fold probabilities.

    Recall counts as much as accuracy because a monitoring tool that misses a deployment headline
    fails its users; the median of the tied best grid points keeps the choice away from an edge."""
    gold = gold.astype(bool)
    best, best_points = -1.0, []
    for t in THRESHOLD_GRID:
        pred = probabilities >= t
        accuracy = float(np.mean(pred == gold))
        recall = float(np.mean(pred[gold])) if gold.any() else 0.0
        value = round(accuracy + recall, 9)
        if value > best:
            best, best_points = value, [float(t)]
        elif value == best:
            best_points.append(float(t))
    return float(np.median(best_points))


def _fit_lr(x: np.ndarray, y: np.ndarray, features: Sequence[str]) -> LinearGate:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    model = LogisticRegression(C=C_REGULARISATION, class_weight="balanced", max_iter=5000)
    model.fit((x - mean) / scale, y)
    return LinearGate(tuple(features), mean, scale, model.coef_[0].astype(np.float64),
                      float(model.intercept_[0]), 0.5)


def inner_folds(groups: np.ndarray, k: int = 5) -> list[np.ndarray]:
    """Deterministic group folds: whole outlets, the largest first into the emptiest fold."""
    names, counts = np.unique(groups, return_counts=True)
    order = sorted(range(len(names)), key=lambda i: (-counts[i], str(names[i])))
    k = max(2, min(k, len(names)))
    sizes, members = [0] * k, [[] for _ in range(k)]
    for i in order:
        f = int(np.argmin(sizes))
        sizes[f] += int(counts[i])
        members[f].append(names[i])
    return [np.isin(groups, m) for m in members]


def fit_gate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, features: Sequence[str],
             k: int = 5) -> LinearGate:
    """Fit on all rows; the threshold comes from out-of-fold probabilities of an outlet-grouped
    k-fold inside these rows, so it is never chosen on the rows it will be judged on."""
    y = y.astype(int)
    oof = np.full(len(y), np.nan)
    for held in inner_folds(groups, k):
        train = ~held
        if held.any() and len(set(y[train])) == 2:
            oof[held] = _fit_lr(x[train], y[train], features).probability(x[held])
    usable = ~np.isnan(oof)
    threshold = choose_threshold(oof[usable], y[usable]) if usable.any() else 0.5
    full = _fit_lr(x, y, features)
    return LinearGate(full.features, full.mean, full.scale, full.coef, full.intercept, threshold)
