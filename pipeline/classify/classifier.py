"""The classifier behind a small interface: gate, sentence motives, article roll-up, evidence.

English items are embedded with MiniLM; items in other languages (by the language detector, the
feed's declared language as a prior) with multilingual-e5 when its build is there, judged by the
gate's multilingual variant and a motive head trained on e5 vectors.

One ``Classifier`` per process (``get_classifier()``), created lazily on first use so that DAG
parsing and the CLI's ``--help`` never load the model. Articles in a batch are embedded together
(one batched forward pass for all their sentences), and the embedder's cache makes repeated
sentences (syndicated copies) free.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from pipeline.classify.embedder import repair_text
from pipeline.classify.gate import embeds_title, topic_gate, topic_vectors
from pipeline.classify.head import CLASSIFIER_VERSION
from pipeline.classify.sentences import is_heading, split_sentences
from pipeline.language import detect_language, is_english
from pipeline.taxonomy import Taxonomy, load_taxonomy

SUPPORTED_LANGUAGES = frozenset({"en"})
SCORE_DIGITS = 4


@dataclass(frozen=True)
class SentenceResult:
    text: str
    position: int
    motives: list[str]
    scores: dict[str, float]


@dataclass(frozen=True)
class ArticleResult:
    on_topic: bool
    topic_score: float
    motives: list[str]
    motive_scores: dict[str, float]
    sentences: list[SentenceResult]
    language: str
    language_supported: bool
    classifier_version: str = CLASSIFIER_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    title: SentenceResult | None = None  # the headline as a motive unit (position -1), English only

    def evidence(self, per_motive: int = 3) -> list[dict[str, Any]]:
        """The best sentences (the headline included) for each assigned motive:
        ``{motive, text, score, position}``; the headline has position -1."""
        units = [self.title, *self.sentences] if self.title is not None else self.sentences
        out = []
        for motive in self.motives:
            ranked = sorted((s for s in units if motive in s.motives),
                            key=lambda s: -s.scores.get(motive, 0.0))
            out.extend({"motive": motive, "text": s.text, "score": s.scores[motive],
                        "position": s.position} for s in ranked[:per_motive])
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ArticleInput:
    title: str
    text: str
    language: str | None = None


class Classifier:
    """On-topic gate first, then motives per sentence (English), rolled up to the article."""

    def __init__(self, taxonomy: Taxonomy | None = None, embedder: Any = None,
                 thresholds: dict[str, float] | None = None) -> None:
        from pipeline.classify.backends import get_embedder
        from pipeline.classify.head import MotiveHead, load_thresholds

        self.taxonomy = taxonomy or load_taxonomy()
        self.embedder = embedder or get_embedder()
        self.head = MotiveHead(self.taxonomy, self.embedder.embed,
                               thresholds=load_thresholds() if thresholds is None else thresholds,
                               model_id=getattr(self.embedder, "identity", self.embedder.name))
        self._multilingual: tuple[Any, Any] | None | bool = False  # False: not looked for yet
        _release_memory()

    def multilingual(self) -> tuple[Any, Any] | None:
        """``(e5 embedder, motive head on e5)``, loaded on the first non-English item; None when
        there is no multilingual build (those items then keep the keyword gate and no motives)."""
        if self._multilingual is False:
            from pipeline.classify.e5_runtime import get_multilingual_embedder
            from pipeline.classify.head import LEARNED_E5_FILE, MotiveHead, load_thresholds

            e5 = get_multilingual_embedder()
            self._multilingual = None if e5 is None else (e5, MotiveHead(
                self.taxonomy, e5.embed, thresholds=load_thresholds(), model_id=e5.identity,
                learned_file=LEARNED_E5_FILE))
        return self._multilingual  # type: ignore[return-value]

    @property
    def thresholds(self) -> dict[str, float]:
        return self.head.thresholds

    def score(self, sentences: list[str], vectors: np.ndarray) -> np.ndarray:
        """The head's scores, with headings and captions zeroed: they state no motive."""
        return self._zero_headings(sentences, self.head.score(sentences, vectors))

    @staticmethod
    def _zero_headings(sentences: list[str], scores: np.ndarray) -> np.ndarray:
        for i, text in enumerate(sentences):
            if is_heading(text):
                scores[i] = 0.0
        return scores

    def classify_sentences(self, sentences: list[str], language: str | None = None) -> list[SentenceResult]:
        """Motive scores of each sentence (no gate). ``language`` is the article's: sentences not in
        English are scored by the multilingual head when its build exists (MiniLM reads English
        only), else by the English head as before."""
        sentences = [repair_text(s) for s in sentences]
        loaded = None if is_english(language) else self.multilingual()
        if loaded is not None:
            e5, head = loaded
            vectors = e5.embed(sentences) if sentences else np.zeros((0, e5.dims), np.float32)
            scores = self._zero_headings(sentences, head.score(sentences, vectors))
            return [self._sentence(text, i, row, head)
                    for i, (text, row) in enumerate(zip(sentences, scores, strict=True))]
        vectors = (self.embedder.embed(sentences) if sentences
                   else np.zeros((0, self.embedder.dims), np.float32))
        scores = self.score(sentences, vectors)
        return [self._sentence(text, i, row) for i, (text, row) in enumerate(zip(sentences, scores,
                                                                               strict=True))]

    def _sentence(self, text: str, position: int, row: np.ndarray, head: Any = None) -> SentenceResult:
        head = head or self.head
        return SentenceResult(text=text, position=position, motives=head.labels(row),
                              scores={m: round(float(row[k]), SCORE_DIGITS)
                                      for k, m in enumerate(head.ids)})

    def classify_article(self, title: str, text: str, language: str | None = None) -> ArticleResult:
        return self.classify_articles([ArticleInput(title or "", text or "", language)])[0]

    def classify_articles(self, items: Sequence[ArticleInput]) -> list[ArticleResult]:
        """Classify a batch; all English sentences of the batch share one embedding call."""
        prepared = []
        for item in items:
            title = " ".join(html.unescape(html.unescape(repair_text(item.title or ""))).split())
            body = repair_text(item.text or "")
            sentences = split_sentences(body)
            guess = detect_language(f"{title}\n{body}", item.language)
            prepared.append((title, sentences, guess.code, guess.code in SUPPORTED_LANGUAGES))
        to_embed = [s for _, sents, _, supported in prepared if supported for s in sents]
        vectors = (self.embedder.embed(to_embed) if to_embed
                   else np.zeros((0, self.embedder.dims), np.float32))
        all_scores = self.score(to_embed, vectors)
        # English titles are embedded in a call of their own, so the sentences' batches (and so
        # their int8 vectors and motives) stay as they were. The gate compares titles of three
        # words or more with the topic; every title is a motive unit, since a feed item is often
        # its headline plus one sentence (scoring it raised motive micro-F1 on real feed items
        # from 0.61 to 0.73 under outlet-grouped cross-validation).
        titles = [t for t, _, _, supported in prepared if supported and t]
        title_vectors = (self.embedder.embed(titles) if titles
                         else np.zeros((0, self.embedder.dims), np.float32))
        title_rows = self.head.score(titles, title_vectors) if titles else np.zeros((0, len(self.head.ids)))
        topic = topic_vectors(self.embedder) if titles or to_embed else None
        foreign = [i for i, p in enumerate(prepared) if not p[3]]
        multilingual = self._classify_multilingual([prepared[i] for i in foreign]) if foreign else {}
        gates, title_units, offset, title_at = [], [], 0, 0
        for title, sentences, _, supported in prepared:
            if not supported:
                gates.append(topic_gate(title, sentences, self.taxonomy.topic))
                title_units.append(None)
                continue
            unit, title_vector = None, None
            if title:
                unit = (self._sentence(title, -1, title_rows[title_at]), title_rows[title_at])
                title_vector, title_at = title_vectors[title_at], title_at + 1
            gates.append(topic_gate(title, sentences, self.taxonomy.topic,
                                    title_vector=title_vector if embeds_title(title) else None,
                                    sentence_vectors=vectors[offset:offset + len(sentences)],
                                    topic_vectors=topic))
            title_units.append(unit)
            offset += len(sentences)
        results, offset = [], 0
        for n, ((_title, sentences, code, supported), gate, unit) in enumerate(
                zip(prepared, gates, title_units, strict=True)):
            if not supported and foreign and multilingual:
                results.append(multilingual[foreign.index(n)])
                continue
            if not supported:
                results.append(ArticleResult(
                    on_topic=gate.on_topic, topic_score=gate.score, motives=[], motive_scores={},
                    sentences=[SentenceResult(s, i, [], {}) for i, s in enumerate(sentences)],
                    language=code, language_supported=False))
                continue
            rows = all_scores[offset:offset + len(sentences)]
            offset += len(sentences)
            sentence_results = [self._sentence(s, i, row) for i, (s, row) in
                                enumerate(zip(sentences, rows, strict=True))]
            results.append(self._roll_up(sentence_results, rows, gate, code, unit))
        return results

    def _classify_multilingual(self, prepared: list[tuple[str, list[str], str, bool]],
                               ) -> list[ArticleResult]:
        """Items not in English with multilingual-e5: the gate's multilingual variant and the motive
        head on e5 (sentences, then titles, in two calls). Empty when there is no build."""
        loaded = self.multilingual()
        if loaded is None:
            return []
        e5, head = loaded
        sentences = [s for _, sents, _, _ in prepared for s in sents]
        vectors = (e5.embed(sentences) if sentences
                   else np.zeros((0, e5.dims), np.float32))
        scores = self._zero_headings(sentences, head.score(sentences, vectors))
        titles = [t for t, _, _, _ in prepared if t]
        title_vectors = (e5.embed(titles) if titles
                         else np.zeros((0, e5.dims), np.float32))
        title_rows = head.score(titles, title_vectors) if titles else np.zeros((0, len(head.ids)))
        topic = topic_vectors(e5)
        results, offset, title_at = [], 0, 0
        for title, sents, code, _ in prepared:
            rows = scores[offset:offset + len(sents)]
            unit, title_vector = None, None
            if title:
                unit = (self._sentence(title, -1, title_rows[title_at], head), title_rows[title_at])
                title_vector, title_at = title_vectors[title_at], title_at + 1
            gate = topic_gate(title, sents, self.taxonomy.topic,
                              title_vector=title_vector if embeds_title(title) else None,
                              sentence_vectors=vectors[offset:offset + len(sents)],
                              topic_vectors=topic, multilingual=True)
            offset += len(sents)
            units = [self._sentence(s, i, row, head)
                     for i, (s, row) in enumerate(zip(sents, rows, strict=True))]
            results.append(self._roll_up(units, rows, gate, code, unit, head,
                                         extra={"embedder": e5.name, "gate": gate.variant}))
        return results

    def _roll_up(self, sentences: list[SentenceResult], rows: np.ndarray, gate: Any, code: str,
                 title: tuple[SentenceResult, np.ndarray] | None = None, head: Any = None,
                 extra: dict[str, Any] | None = None) -> ArticleResult:
        ids = (head or self.head).ids
        units = [*sentences, title[0]] if title is not None else sentences
        if title is not None:
            rows = np.vstack([rows, title[1][None, :]]) if len(rows) else title[1][None, :]
        best = rows.max(axis=0) if len(rows) else np.zeros(len(ids), dtype=np.float32)
        motive_scores = {m: round(float(best[k]), SCORE_DIGITS) for k, m in enumerate(ids)}
        # Motives are about the topic: an off-topic article states none, whatever its wording.
        motives = self.taxonomy.expand({m for s in units for m in s.motives}) if gate.on_topic else []
        return ArticleResult(on_topic=gate.on_topic, topic_score=gate.score, motives=motives,
                             motive_scores=motive_scores, sentences=sentences, language=code,
                             language_supported=True, title=title[0] if title is not None else None,
                             extra=extra or {})


def _release_memory() -> None:
    """Give the loader's temporary buffers back to the OS (glibc keeps freed memory otherwise)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _build() -> Classifier:
    return Classifier()


def get_classifier() -> Classifier:
    """The process-wide classifier, built on first call (thread-safe)."""
    with _lock:
        return _build()


def iter_batches(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
