"""Language identification for article text (py3langid, offline, no model download).

The rules that decide a language from py3langid's guess, the text's length and script, and the
declared language of the feed or page. The identifier itself (a faster walk of py3langid's model,
same guesses) is in ``pipeline.language_identifier``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.language_identifier import identifier, prepare_unpacked_model

# prepare_unpacked_model is re-exported for `newswatch model build`
__all__ = ["LanguageGuess", "detect_language", "detect_languages", "is_english", "prepare_unpacked_model"]


def is_english(language: str | None) -> bool:
    """Is text in ``language`` (an ISO 639-1 code, maybe with a region) English? No language
    recorded counts as English: the feeds' and MiniLM's language, as everywhere before languages
    were recorded."""
    return (language or "en").startswith("en")


@dataclass(frozen=True)
class LanguageGuess:
    code: str          # ISO 639-1, or "und" when undetermined: the language decided on
    confidence: float  # 0..1: py3langid's confidence in its own guess (0 when none was made)
    declared: str | None = None
    guessed: str | None = None  # py3langid's guess, when ``code`` was decided otherwise (short text)


# Short texts. py3langid scores byte n-grams, and a sentence of a few words carries too few of
# them to tell close Latin-script languages apart: "Kim Jong Un met Putin." (17 letters) comes out
# Dutch at 0.05, "Putin visited Pyongyang in June." Tagalog at 0.46, while genuinely foreign short
# sentences come out at 0.96-0.99 ("Ich bin hier und du bist dort.", "Polska wysyła pomoc.").
# Below SHORT_LETTERS letters (about eight English words: past it the team's and the corpus's
# sentences were all guessed right), a guess therefore counts only as strong evidence: a
# confidence of STRONG, or of WEAK with letters outside ASCII (diacritics English does not use).
# Without strong evidence a short text keeps its declared language, or, undeclared and in Latin
# script, is English (the feeds' and the classifier's language); other scripts keep the guess,
# which is reliable there. A declared language is overridden only with a STRONG guess, at any
# length. Undeclared texts of SHORT_LETTERS letters or more get py3langid's guess unchanged.
MIN_CHARS = 20  # below this nothing is guessed at all: declared language or "und", never a silent "en"
SHORT_LETTERS = 40
SHORT_SCAN = 10 * SHORT_LETTERS  # a longer sample is never "short": no letter count needed
STRONG = 0.9
WEAK = 0.5


def _is_latin(ch: str) -> bool:
    code = ord(ch)
    return code < 0x250 or 0x1E00 <= code <= 0x1EFF  # Basic Latin to IPA; Latin Extended Additional


def _short_profile(sample: str) -> tuple[int, bool, bool] | None:
    """(letters, Latin script, any non-ASCII letter) of a sample under SHORT_LETTERS letters (0
    letters when under MIN_CHARS characters), else None (long enough for the guess to stand)."""
    if len(sample) >= SHORT_SCAN:
        return None
    if len(sample) < MIN_CHARS:
        return 0, False, False  # too short to guess from
    letters = [ch for ch in sample if ch.isalpha()]
    if len(letters) >= SHORT_LETTERS:
        return None
    latin = sum(map(_is_latin, letters))
    return len(letters), latin * 5 >= len(letters) * 4, any(ord(ch) > 127 for ch in letters)


def _decide(code: str, prob: float, declared: str | None, short: tuple[int, bool, bool] | None) -> str:
    if short is None:
        return declared if declared and code != declared and prob < STRONG else code
    _, latin, accented = short
    strong = prob >= STRONG or (accented and prob >= WEAK)
    if strong:
        return code
    if declared:
        return declared
    return "en" if latin else code


def detect_languages(items: list[tuple[str, str | None]]) -> list[LanguageGuess]:
    """``detect_language`` of many (text, declared) pairs: the same guesses, with the automaton
    walked over all the texts at once when the vectorised identifier is in use."""
    # " ".join(split()) is the same as collapsing \s+ and stripping (both use str.isspace), faster
    samples = [" ".join((text or "").split())[:5000] for text, _ in items]
    shorts = [_short_profile(s) for s in samples]
    ident = identifier()
    guessable = [s for s, short in zip(samples, shorts, strict=True) if short is None or short[0]]
    many = getattr(ident, "classify_many", None)
    guesses = iter(many(guessable) if many is not None else [ident.classify(s) for s in guessable])
    out = []
    for (_, declared), short in zip(items, shorts, strict=True):
        declared_code = (declared or "").split("-")[0].split("_")[0].lower() or None
        if short is not None and not short[0]:  # too short, or no letters: nothing to tell it by
            out.append(LanguageGuess(declared_code or "und", 0.0, declared_code))
            continue
        code, prob = next(guesses)
        chosen = _decide(str(code), float(prob), declared_code, short)
        out.append(LanguageGuess(chosen, float(prob), declared_code, None if chosen == code else str(code)))
    return out


def detect_language(text: str, declared: str | None = None) -> LanguageGuess:
    """Guess the language of ``text``; the declared language (feed, page) wins over any guess
    that is not strong (see ``SHORT_LETTERS``).

    A text under ``MIN_CHARS`` characters or without letters returns the declared language, or
    ``und``; a short undeclared text in Latin script without strong evidence of another language
    is English.
    """
    return detect_languages([(text, declared)])[0]
