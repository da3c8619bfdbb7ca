"""The on-topic gate: is this item about North Korea's troops or weapons for Russia's war?

Decided first and separately from motives. The same model judges a headline with a one-sentence
summary and a 3,000-word analysis, so title and body are both evidence:

- keyword features from the taxonomy's multilingual ``topic`` terms and the ``gate_terms`` of
  ``config/topic.yaml`` (Korean, Russian, Ukrainian, Japanese, Chinese): North Korea (actor), Russia
  or its war (partner) and deployment words, in the title, in the body and across both; the
  co-occurrence density of the body (sentences where actor and partner meet, or one of them
  meets a deployment word with the other close by); the share of sentences naming the actor;
  the length of the text;
- the similarity of the title and of the best body sentence to a short description of the topic
  (``gate_model.TOPIC_ANCHORS``): with MiniLM for English, with multilingual-e5 for every other
  language (the English description compared across languages).

A logistic regression over these (``pipeline.classify.gate_model``, weights in
``data/gate.json``) gives the score; its threshold was chosen by outlet-grouped cross-validation
(``pipeline.classify.gate_eval``). Near-topic negatives fail on the co-occurrence features:
Kursk news with no North Korea has no actor, a North Korean missile test with no Russian link
has no partner.

Terms are lower-case phrases matched on word boundaries; a ``*`` stands for any word
continuation, so inflected languages (Polish, German) need one stem instead of every case form.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.gate_model import GateModel, load_gate_model
from pipeline.taxonomy import TopicTerms

# Today's hand-set density score, kept as one feature of the model (and as the evaluation's
# "hand-tuned gate" baseline): raw = DENSITY_WEIGHT * density + title bonuses.
DENSITY_WEIGHT = 6.0
TITLE_BONUS = 0.9        # title names North Korea with Russia/troops and the body has the partner
TITLE_BOTH_BONUS = 0.4   # title names North Korea and Russia/Ukraine together
HAND_THRESHOLD = 0.5     # the hand-tuned gate's cut-off: the taxonomy's default on-topic threshold
LEAD = 3  # body sentences that count as the lead, with the title
NEAR = 2  # sentences either side in which a partner mention links an actor + deployment sentence


def _term_regex(term: str) -> str:
    return r"\w*".join(re.escape(part) for part in term.lower().split("*"))


@lru_cache(maxsize=32)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted({t.lower() for t in terms}, key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(_term_regex(t) for t in alternatives) + r")(?![\w])")


def _terms(groups: dict[str, tuple[str, ...]], extra: dict[str, tuple[str, ...]] | None = None,
           ) -> tuple[str, ...]:
    # All languages at once: a mis-detected language must not blind the gate.
    return tuple(sorted({t for words in (*groups.values(), *(extra or {}).values()) for t in words}))


GROUPS = ("actor", "partner", "deployment")


def _topic_file() -> Path:
    from pipeline.settings import REPO_ROOT, load_settings

    configured = load_settings().topic_file
    return configured if configured.is_file() else REPO_ROOT / "config" / "topic.yaml"


def extra_gate_terms(path: Path | None = None) -> dict[str, dict[str, tuple[str, ...]]]:
    """``gate_terms`` of ``config/topic.yaml``: keywords per group and language for languages the
    taxonomy's topic terms leave out (Korean, Russian, ...). Empty when the file has none."""
    path = path or _topic_file()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _extra_cached(str(path), mtime)


@lru_cache(maxsize=4)
def _extra_cached(path: str, _mtime: int) -> dict[str, dict[str, tuple[str, ...]]]:
    import yaml

    from pipeline.errors import ConfigError

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the gate terms: {exc}", path=path) from exc
    raw = data.get("gate_terms") if isinstance(data, dict) else None
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - set(GROUPS):
        raise ConfigError(f"must be a mapping with the groups {', '.join(GROUPS)}", path=path,
                          field="gate_terms")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for group, languages in raw.items():
        if not isinstance(languages, dict):
            raise ConfigError("must map language codes to lists of terms", path=path,
                              field=f"gate_terms.{group}")
        for language, terms in languages.items():
            if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
                raise ConfigError("must be a list of non-empty strings", path=path,
                                  field=f"gate_terms.{group}.{language}")
            out.setdefault(group, {})[str(language)] = tuple(t.strip().lower() for t in terms)
    return out


def _normalise(text: str) -> str:
    return text.lower().replace("’", "'").replace("‘", "'")


@dataclass(frozen=True)
class KeywordEvidence:
    """What the topic terms find in one item."""

    title: tuple[bool, bool, bool]                  # actor, partner, deployment in the title
    flags: tuple[tuple[bool, bool, bool], ...]      # the same per body sentence
    cooccurring: int
    words: int

    @property
    def sentences(self) -> int:
        return len(self.flags)

    @property
    def body(self) -> tuple[bool, bool, bool]:
        return tuple(any(f[k] for f in self.flags) for k in range(3))  # type: ignore[return-value]

    @property
    def density(self) -> float:
        return self.cooccurring / max(self.sentences, 1)

    @property
    def title_hit(self) -> bool:
        ta, tp, td = self.title
        return ta and (tp or td) and self.body[1]

    @property
    def hand_score(self) -> float:
        """Today's hand-set score in [0, 1] (the gate before it was learned)."""
        raw = DENSITY_WEIGHT * self.density
        if self.title_hit:
            raw += TITLE_BONUS
        if self.title[0] and self.title[1]:
            raw += TITLE_BOTH_BONUS
        return round(1.0 - math.exp(-raw), 4)

    @property
    def keyword_rule(self) -> bool:
        """The plain rule: North Korea AND (Russia/its war OR a deployment word) in title + body."""
        a, p, d = (self.title[k] or self.body[k] for k in range(3))
        return a and (p or d)

    def features(self) -> np.ndarray:
        """The keyword features, in the order of ``gate_model.KEYWORD_FEATURES``.

        Co-occurrence across title and body is counted over the title and the lead (the first
        ``LEAD`` sentences), where a news item states its subject: a feed summary is all lead,
        and a long piece that names North Korea once deep inside has no lead evidence, only a
        low density."""
        ta, tp, td = self.title
        la, lp, ld = (any(f[k] for f in self.flags[:LEAD]) for k in range(3))
        a, p, d = ta or la, tp or lp, td or ld
        actor_share = sum(f[0] for f in self.flags) / max(self.sentences, 1)
        return np.array([ta, tp, td, ta and tp, ta and td, la, lp, ld, math.log1p(self.cooccurring),
                         self.density, a and p, a and d, a and p and d, actor_share, self.hand_score,
                         math.log1p(self.words)], dtype=np.float64)


def keyword_evidence(title: str, sentences: Sequence[str], terms: TopicTerms) -> KeywordEvidence:
    extra = extra_gate_terms()
    actor, partner, deploy = (_pattern(_terms(g, extra.get(name)))
                              for name, g in zip(GROUPS, (terms.actor, terms.partner, terms.deployment),
                                                 strict=True))
    flags = []
    for sentence in sentences:
        low = _normalise(sentence)
        flags.append((bool(actor.search(low)), bool(partner.search(low)), bool(deploy.search(low))))
    co = 0
    for i, (a, p, d) in enumerate(flags):
        near = flags[max(0, i - NEAR):i + NEAR + 1]
        if a and p:
            co += 1
        elif a and d and any(n[1] for n in near):
            co += 1
        elif p and d and any(n[0] for n in near):
            co += 1
    low_title = _normalise(title or "")
    title_flags = tuple(bool(x.search(low_title)) for x in (actor, partner, deploy))
    words = len((title or "").split()) + sum(len(s.split()) for s in sentences)
    return KeywordEvidence(title_flags, tuple(flags), co, words)  # type: ignore[arg-type]


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 1e-12, norms, 1.0)


MIN_TITLE_WORDS = 3  # shorter titles ("Live", "Update") say nothing of the topic: the body speaks


def embeds_title(title: str) -> bool:
    """Whether the gate compares this title with the topic (a headline of a few words at least).
    The model was trained on real headlines; a one-word label would be an input it never saw."""
    return len((title or "").split()) >= MIN_TITLE_WORDS


def embedding_features(title_vector: np.ndarray | None, sentence_vectors: np.ndarray | None,
                       topic: np.ndarray) -> np.ndarray:
    """Cosine similarity of the title, and of the body sentence closest to the topic, to the
    nearest topic anchor. A missing title or body borrows the other's value (a title-only
    feed item is its own best sentence)."""
    anchors = _unit(topic)
    title_sim = (float(np.max(_unit(title_vector) @ anchors.T))
                 if title_vector is not None and np.size(title_vector) else None)
    body_sim = (float(np.max(_unit(sentence_vectors) @ anchors.T))
                if sentence_vectors is not None and np.size(sentence_vectors) else None)
    title_sim = body_sim if title_sim is None else title_sim
    body_sim = title_sim if body_sim is None else body_sim
    return np.array([title_sim or 0.0, body_sim or 0.0], dtype=np.float64)


@dataclass(frozen=True)
class GateResult:
    on_topic: bool
    score: float
    cooccurring: int      # body sentences that count as co-mentions
    sentences: int
    title_hit: bool
    variant: str = "keyword"          # which model decided: "keyword", "embedding", "multilingual"
    extra: dict[str, float] = field(default_factory=dict)


def topic_gate(title: str, sentences: list[str], terms: TopicTerms, *,
               title_vector: np.ndarray | None = None, sentence_vectors: np.ndarray | None = None,
               topic_vectors: np.ndarray | None = None, model: GateModel | None = None,
               multilingual: bool = False) -> GateResult:
    """Score the item in [0, 1]; on topic when the score reaches ``terms.threshold`` (0.5 is the
    cross-validated decision point of the learned model).

    With ``topic_vectors`` (see ``topic_vectors()``) and the item's title and/or sentence
    embeddings, the embedding variant decides (the multilingual one when the vectors are
    multilingual-e5's and the gate file has it); otherwise the keyword variant does."""
    evidence = keyword_evidence(title, sentences, terms)
    if not (title or "").strip() and not any(s.strip() for s in sentences):
        return GateResult(False, 0.0, 0, evidence.sentences, False)
    model = model or load_gate_model()
    x = evidence.features()
    # e5 similarities mean nothing to a variant fitted on MiniLM's: without a multilingual
    # variant, multilingual vectors are not used at all.
    has_vectors = (not multilingual or model.multilingual is not None) and topic_vectors is not None and (
        (title_vector is not None and np.size(title_vector) > 0)
        or (sentence_vectors is not None and np.size(sentence_vectors) > 0))
    extra: dict[str, float] = {}
    if has_vectors:
        sims = embedding_features(title_vector, sentence_vectors, topic_vectors)  # type: ignore[arg-type]
        x = np.concatenate([x, sims])
        extra = {"title_similarity": round(float(sims[0]), 4),
                 "best_sentence_similarity": round(float(sims[1]), 4)}
    linear = model.variant(has_vectors, multilingual)
    score = round(float(linear.score(x)[0]), 4)
    variant = "keyword" if not has_vectors else (
        "multilingual" if linear is model.multilingual else "embedding")
    return GateResult(score >= terms.threshold, score, evidence.cooccurring, evidence.sentences,
                      evidence.title_hit, variant, extra)


_topic_lock = threading.Lock()
_topic_cache: dict[tuple[int, str, tuple[str, ...]], np.ndarray] = {}


def topic_vectors(embedder: Any, model: GateModel | None = None) -> np.ndarray:
    """The embedded topic anchors for ``embedder`` (computed once per embedder and anchor set)."""
    anchors = (model or load_gate_model()).anchors
    key = (id(embedder), str(getattr(embedder, "identity", None) or getattr(embedder, "name", "")),
           anchors)
    with _topic_lock:
        found = _topic_cache.get(key)
    if found is None:
        found = np.asarray(embedder.embed(list(anchors)), dtype=np.float64)
        with _topic_lock:
            if len(_topic_cache) > 8:
                _topic_cache.clear()
            _topic_cache[key] = found
    return found
