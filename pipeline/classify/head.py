"""The sentence motive scorer: a trained head on MiniLM embeddings, prototypes and keywords.

Why three signals: the exemplars alone are too few (a classifier that only memorises eight of them
fails on real news), so the main signal is a logistic-regression head per motive trained on the
team's labelled sentences (``data/training.yaml``) plus the taxonomy's exemplars and
descriptions. The prototype similarity (centroid of a motive's description and exemplars) keeps a
motive that a user adds to the YAML working before anyone writes training sentences for it, and the
keywords add a little precision-free recall for the explicit wording analysts search for. Scores
are in [0, 1]; thresholds per motive are calibrated on the tuning split (``eval/``) only.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.errors import ClassifierError
from pipeline.settings import EMBEDDING_DIMS
from pipeline.taxonomy import Taxonomy

log = logging.getLogger(__name__)
# Versions the labelling (head, roll-up rules): recorded on every classified article, and part of
# the digest that tells an int8 agreement check is stale. 2: headings and captions get no motive;
# 3: the headline is a motive unit too.
CLASSIFIER_VERSION = "minilm-head-3"
DATA_DIR = Path(__file__).parent / "data"
TRAINING_FILE = DATA_DIR / "training.yaml"
THRESHOLDS_FILE = DATA_DIR / "thresholds.json"
# The top-level head learned from real sentences (pipeline.classify.motive_eval.train_motive_head).
LEARNED_FILE = DATA_DIR / "motive_head.json"
# The same head on multilingual-e5 embeddings, for items not in English
# (pipeline.classify.motive_multilingual.train_multilingual_head).
LEARNED_E5_FILE = DATA_DIR / "motive_head_e5.json"
DEFAULT_THRESHOLD = 0.5
# Chosen on the outlet-grouped CV of pipeline.classify.motive_eval over C in {0.3, 1, 4, 16} and
# prior weight in {0.3, 1, 3}: the team's sentences are cleaner than item labels spread over units.
LEARNED_C = 4.0       # inverse regularisation of the learned head's logistic regressions
PRIOR_WEIGHT = 3.0    # weight of a team-written row against a real one in the learned head
KEYWORD_SCALE = 1.0   # the keyword-hit columns next to the (unit-length) embedding

# Weights of the three signals in the final score.
W_HEAD, W_PROTO, W_KEYWORD = 0.6, 0.25, 0.15
HEAD_C = 4.0  # inverse regularisation strength of each motive's logistic regression
PROTO_LOW, PROTO_HIGH = 0.2, 0.6  # cosine mapped linearly to [0, 1] between these


@dataclass(frozen=True)
class TrainingSet:
    texts: list[str]
    labels: list[frozenset[str]]   # expanded (children imply parents)


def load_training(taxonomy: Taxonomy, path: Path = TRAINING_FILE) -> TrainingSet:
    """Training sentences + exemplars + descriptions, with labels expanded to parents."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ClassifierError(f"cannot read training sentences from {path}: {exc}") from exc
    texts: list[str] = []
    labels: list[frozenset[str]] = []
    for motive_id, sentences in (data.get("sentences") or {}).items():
        if motive_id != "none" and motive_id not in taxonomy.motives:
            raise ClassifierError(f"{path}: unknown motive id {motive_id!r} in training sentences")
        expanded = frozenset() if motive_id == "none" else frozenset(taxonomy.expand([motive_id]))
        for sentence in sentences or []:
            texts.append(str(sentence))
            labels.append(expanded)
    for motive in taxonomy.motives.values():
        expanded = frozenset(taxonomy.expand([motive.id]))
        for text in [motive.description, *(e.text for e in motive.exemplars)]:
            texts.append(text)
            labels.append(expanded)
    return TrainingSet(texts, labels)


@lru_cache(maxsize=64)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    if not keywords:
        return None
    words = sorted({k.lower() for k in keywords}, key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(re.escape(w) for w in words) + r")(?![\w])")


class KeywordMatcher:
    """Keyword hits of texts for a list of motives (a motive's own keywords and its children's)."""

    def __init__(self, taxonomy: Taxonomy, ids: list[str]) -> None:
        self.patterns = []
        for motive_id in ids:
            words = list(taxonomy.motives[motive_id].keywords)
            for child in taxonomy.motives.values():
                if child.id != motive_id and motive_id in taxonomy.parent_chain(child.id):
                    words.extend(child.keywords)
            self.patterns.append(_keyword_pattern(tuple(words)))

    def hits(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.patterns)), dtype=np.float32)
        lowered = [t.lower().replace("’", "'") for t in texts]
        for k, pattern in enumerate(self.patterns):
            if pattern is not None:
                out[:, k] = [1.0 if pattern.search(t) else 0.0 for t in lowered]
        return out


def learned_features(vectors: np.ndarray, keyword_hits: np.ndarray) -> np.ndarray:
    """The learned head's input: the sentence embedding and one keyword-hit column per motive."""
    return np.hstack([np.asarray(vectors, dtype=np.float64), KEYWORD_SCALE * keyword_hits])


@dataclass(frozen=True)
class LearnedHead:
    """Top-level motive scores learned from real sentences: numbers from ``data/motive_head.json``."""

    ids: list[str]
    coef: np.ndarray
    intercept: np.ndarray
    thresholds: dict[str, float]

    def score(self, vectors: np.ndarray, keyword_hits: np.ndarray) -> np.ndarray:
        z = learned_features(vectors, keyword_hits) @ self.coef.T + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


def load_learned_head(taxonomy: Taxonomy, path: Path = LEARNED_FILE) -> LearnedHead | None:
    """The learned head, or None when no file is present; an unusable file is an error."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ids = [str(m) for m in data["ids"]]
        coef = np.asarray(data["coef"], dtype=np.float64)
        intercept = np.asarray(data["intercept"], dtype=np.float64)
        thresholds = {str(k): float(v) for k, v in data["thresholds"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClassifierError(f"cannot read the learned motive head from {path}: {exc}") from exc
    if ids != list(taxonomy.top_level):
        # a motive added to (or renamed in) the taxonomy: the team head serves until a retrain
        log.warning("%s was trained for motives %s, the taxonomy has %s: not used (retrain it)",
                    path, ids, taxonomy.top_level)
        return None
    shapes_ok = coef.shape == (len(ids), EMBEDDING_DIMS + len(ids)) and intercept.shape == (len(ids),)
    if not shapes_ok or set(thresholds) != set(ids):
        raise ClassifierError(f"{path}: coefficient shapes do not match its {len(ids)} motives")
    return LearnedHead(ids, coef, intercept, thresholds)


def labels_from_row(taxonomy: Taxonomy, ids: list[str], row: np.ndarray, thresholds: dict[str, float],
                    learned: tuple[str, ...] | frozenset[str] = ()) -> list[str]:
    """Motive ids over their thresholds, parents added for children. Under a ``learned`` parent a
    child only refines: it counts when the parent (decided by the learned head) is assigned too."""
    hits = {m for k, m in enumerate(ids) if row[k] >= thresholds[m]}
    kept = [m for m in hits if not any(p in learned and p not in hits
                                       for p in taxonomy.parent_chain(m))]
    return taxonomy.expand(kept) if kept else []


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, float]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClassifierError(f"cannot read thresholds from {path}: {exc}") from exc
    return {str(k): float(v) for k, v in data.get("thresholds", {}).items()}


def _digest(model_id: str, texts: list[str], labels: list[frozenset[str]] | None = None) -> str:
    import hashlib

    from pipeline.classify.embedder import model_dir

    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{model_dir()}|{model_id}|C={HEAD_C}".encode())
    for i, text in enumerate(texts):
        digest.update(text.encode("utf-8") + b"\0")
        if labels is not None:
            digest.update(",".join(sorted(labels[i])).encode() + b"\1")
    return digest.hexdigest()


def _cache_dir() -> Path:
    from pipeline.settings import load_settings

    return load_settings().state_dir / "classifier"


def _cache_file(texts: list[str], model_id: str = "onnx-fp32") -> Path:
    return _cache_dir() / f"training-{_digest(model_id, texts)}.npy"


def training_vectors(texts: list[str], embed: object, model_id: str = "onnx-fp32") -> np.ndarray:
    """Embeddings of the training texts, cached on disk by a digest of the texts and the model.

    Embedding ~300 training sentences costs seconds on a busy 2-core machine at every process
    start (every Airflow task); the cache makes the head's fit a matter of milliseconds.
    """
    path = _cache_file(texts, model_id)
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            cached = None
        if cached is not None and cached.shape[0] == len(texts):
            return cached
    vectors = np.asarray(embed(texts), dtype=np.float32)  # type: ignore[operator]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors, allow_pickle=False)
        tmp.replace(path)
    except OSError as exc:  # a read-only state folder only costs speed, never correctness
        log.warning("cannot cache training embeddings in %s: %s", path.parent, exc)
    return vectors


def labelling_digest(taxonomy: Taxonomy) -> str:
    """A digest of everything besides the embeddings that decides labels: the taxonomy (motives,
    keywords, topic terms), the training sentences, the thresholds, the gate model and the head's
    constants.

    The ONNX int8 agreement check records it: a check made for other labelling inputs is stale."""
    import hashlib

    from pipeline.classify.gate_model import GATE_FILE  # the learned on-topic gate decides labels too

    digest = hashlib.blake2b(digest_size=12)
    digest.update(CLASSIFIER_VERSION.encode() + repr(taxonomy).encode())
    for path in (TRAINING_FILE, THRESHOLDS_FILE, GATE_FILE):
        digest.update(path.read_bytes() if path.exists() else b"-")
    digest.update(repr((W_HEAD, W_PROTO, W_KEYWORD, PROTO_LOW, PROTO_HIGH, HEAD_C,
                        DEFAULT_THRESHOLD)).encode())
    if LEARNED_FILE.exists():  # only then does it decide labels (absent: the digest stays as it was)
        digest.update(LEARNED_FILE.read_bytes() + repr(KEYWORD_SCALE).encode())
    return digest.hexdigest()


Fit = tuple[np.ndarray, np.ndarray, np.ndarray]  # coef, intercept, prototypes (one row per motive)


def _fit(taxonomy: Taxonomy, ids: list[str], training: TrainingSet, vectors: np.ndarray) -> Fit:
    """One balanced logistic regression per motive, and the prototype centroids."""
    from sklearn.linear_model import LogisticRegression

    coef = np.zeros((len(ids), vectors.shape[1]), dtype=np.float32)
    intercept = np.zeros(len(ids), dtype=np.float32)
    prototypes = np.zeros((len(ids), vectors.shape[1]), dtype=np.float32)
    for k, motive_id in enumerate(ids):
        y = np.array([motive_id in lab for lab in training.labels], dtype=int)
        if y.sum() == 0 or y.sum() == len(y):
            raise ClassifierError(f"motive {motive_id!r} has no positive or no negative sentences")
        model = LogisticRegression(C=HEAD_C, class_weight="balanced", max_iter=2000)
        model.fit(vectors, y)
        coef[k] = model.coef_[0]
        intercept[k] = model.intercept_[0]
        motive = taxonomy.motives[motive_id]
        own = {motive.description, *(e.text for e in motive.exemplars)}
        proto_idx = [i for i, t in enumerate(training.texts) if t in own]
        centroid = vectors[proto_idx].mean(axis=0)
        prototypes[k] = centroid / max(float(np.linalg.norm(centroid)), 1e-9)
    return coef, intercept, prototypes


def _fit_file(training: TrainingSet, model_id: str) -> Path:
    return _cache_dir() / f"head-{_digest(model_id, training.texts, training.labels)}.npz"


def _load_fit(ids: list[str], training: TrainingSet, model_id: str) -> Fit | None:
    """The fitted head saved by an earlier process for exactly this training set and model.

    Saves every process start the scikit-learn import (~100 MB of RSS) and the fit."""
    path = _fit_file(training, model_id)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if [str(x) for x in data["ids"]] != ids:
                return None
            return data["coef"], data["intercept"], data["prototypes"]
    except (OSError, ValueError, KeyError):
        return None


def _save_fit(fitted: Fit, ids: list[str], training: TrainingSet, model_id: str) -> None:
    path = _fit_file(training, model_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, coef=fitted[0], intercept=fitted[1], prototypes=fitted[2],
                 ids=np.array(ids, dtype=str))
        tmp.replace(path)
    except OSError as exc:  # a read-only state folder only costs speed, never correctness
        log.warning("cannot cache the fitted head in %s: %s", path.parent, exc)


class MotiveHead:
    """Scores sentence embeddings for every motive id of the taxonomy."""

    def __init__(self, taxonomy: Taxonomy, embed: object, training: TrainingSet | None = None,
                 thresholds: dict[str, float] | None = None, model_id: str = "onnx-fp32",
                 learned: bool | None = None, learned_file: Path = LEARNED_FILE) -> None:
        self.taxonomy = taxonomy
        self.ids = taxonomy.ids
        training = training or load_training(taxonomy)
        fitted = _load_fit(self.ids, training, model_id)
        if fitted is None:
            fitted = _fit(taxonomy, self.ids, training, training_vectors(training.texts, embed, model_id))
            _save_fit(fitted, self.ids, training, model_id)
        self.coef, self.intercept, self.prototypes = fitted
        self.keyword_patterns = [_keyword_pattern(taxonomy.motives[m].keywords) for m in self.ids]
        self.thresholds = {m: DEFAULT_THRESHOLD for m in self.ids}
        self.thresholds.update({m: t for m, t in (thresholds or {}).items() if m in self.thresholds})
        # learned=None: the learned top-level head when its file is present; False: the team head
        self.learned = load_learned_head(taxonomy, learned_file) if learned is not False else None
        if learned and self.learned is None:
            raise ClassifierError(f"no usable learned motive head in {learned_file}")
        self.learned_ids: tuple[str, ...] = tuple(self.learned.ids) if self.learned else ()
        if self.learned is not None:
            self.thresholds.update(self.learned.thresholds)
            self._learned_keywords = KeywordMatcher(taxonomy, list(self.learned.ids))

    def score(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """Scores in [0, 1], shape ``(len(texts), len(ids))``; parents >= their children."""
        if len(texts) == 0:
            return np.zeros((0, len(self.ids)), dtype=np.float32)
        head = 1.0 / (1.0 + np.exp(-(vectors @ self.coef.T + self.intercept)))
        proto = np.clip((vectors @ self.prototypes.T - PROTO_LOW) / (PROTO_HIGH - PROTO_LOW), 0, 1)
        keyword = np.zeros_like(head)
        lowered = [t.lower().replace("’", "'") for t in texts]
        for k, pattern in enumerate(self.keyword_patterns):
            if pattern is not None:
                keyword[:, k] = [1.0 if pattern.search(t) else 0.0 for t in lowered]
        scores = (W_HEAD * head + W_PROTO * proto + W_KEYWORD * keyword).astype(np.float32)
        # Children imply parents: a parent scores at least as high as its best child. Deepest first.
        index = {m: k for k, m in enumerate(self.ids)}
        for motive_id in sorted(self.ids, key=lambda m: -m.count(".")):
            parent = self.taxonomy.motives[motive_id].parent
            if parent is not None and parent not in self.learned_ids:
                scores[:, index[parent]] = np.maximum(scores[:, index[parent]], scores[:, index[motive_id]])
        if self.learned is not None:
            # Top-level motives come from the head learned on real sentences; the team head's
            # children only refine a parent the learned head assigned (see ``labels``).
            learned = self.learned.score(vectors, self._learned_keywords.hits(texts))
            for k, motive_id in enumerate(self.learned.ids):
                scores[:, index[motive_id]] = learned[:, k]
        return scores

    def labels(self, row: np.ndarray) -> list[str]:
        """Motive ids over their thresholds, parents added for children (see ``labels_from_row``)."""
        return labels_from_row(self.taxonomy, self.ids, row, self.thresholds, self.learned_ids)
