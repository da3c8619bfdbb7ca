"""The gate's multilingual features: topic similarity measured with multilingual-e5.

The same two similarities as the English ``embedding`` variant (title, and the body sentence
closest to the topic, against the English topic anchors), computed with e5 so they mean the same
in Polish, Korean or Vietnamese. ``pipeline.classify.gate_eval`` adds them for every item (the
``multilingual`` variant learns from English items as much as from the others) and reports the
setting where it learns from English items only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.classify.gate import embedding_features, embeds_title


def similarity_rows(prepared: Sequence[tuple[str, list[str]]], embedder: Any,
                    anchors: Sequence[str]) -> np.ndarray:
    """``(n, 2)`` title and best-sentence similarities of each ``(title, sentences)``, measured
    with ``embedder``; NaN rows where nothing was embedded. Titles and sentences are embedded in
    two calls, as the classifier does."""
    sentence_texts = [s for _, sentences in prepared for s in sentences]
    title_texts = [t for t, _ in prepared if embeds_title(t)]
    sentence_vectors = (embedder.embed(sentence_texts) if sentence_texts
                        else np.zeros((0, embedder.dims), np.float32))
    title_vectors = (embedder.embed(title_texts) if title_texts
                     else np.zeros((0, embedder.dims), np.float32))
    topic = embedder.embed(list(anchors))
    out = np.full((len(prepared), 2), np.nan)
    offset = title_at = 0
    for row, (title, sentences) in enumerate(prepared):
        body = sentence_vectors[offset:offset + len(sentences)]
        offset += len(sentences)
        title_vector = None
        if embeds_title(title):
            title_vector, title_at = title_vectors[title_at], title_at + 1
        if title_vector is not None or len(body):
            out[row] = embedding_features(title_vector, body, topic)
    return out


def english_only_scores(f: Any, tested: np.ndarray) -> np.ndarray:
    """Scores of the ``tested`` rows by a multilingual variant fitted on English items only (real
    and sample), the threshold chosen by the same inner outlet-grouped CV: how the gate does on
    languages it never saw labelled."""
    from pipeline.classify.gate_model import EMBEDDING_FEATURES, KEYWORD_FEATURES, fit_gate

    english = np.array([i.language == "en" for i in f.items]) & ~np.isnan(f.multilingual).any(axis=1)
    model = fit_gate(f.multilingual[english], f.gold[english], f.groups[english],
                     KEYWORD_FEATURES + EMBEDDING_FEATURES)
    rows = tested & ~np.isnan(f.multilingual).any(axis=1)
    scores = np.zeros(int(tested.sum()))
    scores[rows[tested]] = model.score(f.multilingual[rows])
    return scores
