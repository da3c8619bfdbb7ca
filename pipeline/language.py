"""Language identification for article text (py3langid, offline, no model download)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_WS = re.compile(r"\s+")
MIN_CHARS = 20


@dataclass(frozen=True)
class LanguageGuess:
    code: str          # ISO 639-1, or "und" when undetermined
    confidence: float  # 0..1
    declared: str | None = None


@lru_cache(maxsize=1)
def _identifier():  # noqa: ANN202 - third-party type
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str, declared: str | None = None) -> LanguageGuess:
    """Guess the language of ``text``; the declared language (feed, page) breaks weak guesses.

    Short or empty text returns the declared language, or ``und``: never a silent "en".
    """
    sample = _WS.sub(" ", text or "").strip()[:5000]
    declared_code = (declared or "").split("-")[0].split("_")[0].lower() or None
    if len(sample) < MIN_CHARS:
        return LanguageGuess(declared_code or "und", 0.0, declared_code)
    code, prob = _identifier().classify(sample)
    if prob < 0.5 and declared_code:
        return LanguageGuess(declared_code, float(prob), declared_code)
    return LanguageGuess(str(code), float(prob), declared_code)
