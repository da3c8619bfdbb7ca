"""On-topic gate and sentence-level motive classification.

Public API (other stages code against these names): ``get_classifier()`` -> ``Classifier`` with
``classify_article`` / ``classify_sentences``; ``classify_pending(settings, es)`` for the pipeline;
``split_sentences`` in ``pipeline.classify.sentences``. Importing this package is cheap: ONNX
Runtime and the model load on the first classification, not here.
"""

from pipeline.classify.classifier import (
    ArticleInput,
    ArticleResult,
    Classifier,
    SentenceResult,
    get_classifier,
)
from pipeline.classify.pending import classify_pending
from pipeline.classify.sentences import split_sentences

__all__ = [
    "ArticleInput",
    "ArticleResult",
    "Classifier",
    "SentenceResult",
    "classify_pending",
    "get_classifier",
    "split_sentences",
]
