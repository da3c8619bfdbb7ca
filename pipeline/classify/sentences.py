"""Sentence splitting for real news text, as captured from pages and feeds.

Motives are decided per sentence, so a bad split puts two claims in one "sentence" (a wrong label
with the wrong evidence) or cuts one in half. Real captures are messy: paragraphs glued together
(``Thursday.The``), photo credits run into the lead (``(Yonhap)A major``), escaped entities
(``&#x27;``), broadcast markers (``[LEAD]``), page debris (``close``, ``Link kopiert``, contact
lines). The splitter is rule-based (no model, no download) and deterministic, because evaluation
labels refer to sentences by index and hash.
"""

from __future__ import annotations

import html
import re

__all__ = ["ABBREVIATIONS", "clean_text", "split_sentences"]

# Tokens that end with a period but do not end a sentence (compared lower-case, without the dot).
ABBREVIATIONS = frozenset("""
mr mrs ms dr prof gen lt col maj sgt capt cmdr adm gov sen rep pres st mt ft jr sr rev hon
jan feb mar apr jun jul aug sep sept oct nov dec no nos vs etc approx dept est inc ltd corp co
u.s u.n u.k e.u n s a.m p.m i.e e.g fig vol art abs ca bzw usw z.b d.h u.a nr dr.-ing ph.d
""".split())

_TAG_LINE = re.compile(r"\[(?:[A-Z][A-Z ]{1,20})\]")          # [LEAD], [REPORT], [ANCHOR]
_WS = re.compile(r"[ \t\u00a0\u2009\u202f]+")
# Lines that are page furniture, not prose.
_DEBRIS_LINE = re.compile(
    r"^(?:close|link kopiert|share|advertisement|anzeige|\d+|\(end\)|source:.*|foto:.*|ảnh:.*)$",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
# Contact blocks of Korean broadcasters (a "■" or "▷" bullet and everything after it on that line).
_CONTACT = re.compile(r"[■▷].*$", re.MULTILINE)
_END_MARK = re.compile(r"\(END\)")
# Markup left in captures: tags, Markdown images/links/headings/emphasis, bullets.
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:https?://|/)[^)]*\)")
_MD_HEADING = re.compile(r"^\s*#{1,6}\s*", re.MULTILINE)
_MD_EMPHASIS = re.compile(r"(?<!\w)[_*]{1,2}|[_*]{1,2}(?!\w)")
_BULLETS = re.compile(r"[▲►•◆●]")

_UPPER = r"A-ZÀ-ÖØ-ÞĀ-ſƠƯẠ-Ỹ"  # Latin upper-case incl. Vietnamese (loosely; checked again below)
_OPEN = "\"“‘'«„("
_CLOSE = "\"”’'»)]"

# Glued boundaries: a lowercase word (2+ letters) or digit, a terminator, then a capital directly.
_GLUED_STOP = re.compile(rf"(?<=[a-zà-ÿ\d]{{2}})([.!?])([”\"’]?)(?=[{_UPPER}“‘])")
# A closing quote right after the terminator, then a capital: `end.”The`.
_GLUED_QUOTE = re.compile(rf"([.!?][”\"’])(?=[{_UPPER}“])")
# A parenthesised credit glued to the next sentence: `(Yonhap)A major`, `(Korea Herald DB)North`.
_GLUED_CREDIT = re.compile(rf"(\([^()]{{2,60}}\))(?=[{_UPPER}][a-zà-ÿ]|[{_UPPER}]\s)")

# Caption or byline glued to the next text without any punctuation: `leaderRegional`, `UniversityIt`.
_GLUED_CAMEL = re.compile(r"(?<=[a-z]{4})(?=[A-Z])")
_ONLY_CREDIT = re.compile(r"\([^()]*\)")

# A candidate boundary: terminator, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(r"([.!?…]+)([\"”’')\]]*)(\s+)")


def clean_text(text: str) -> str:
    """Unescape entities (twice: captures are often double-escaped), drop debris, keep lines."""
    text = html.unescape(html.unescape(text or ""))
    text = _CONTACT.sub("", text)
    text = _END_MARK.sub(" ", text)
    text = _MD_IMAGE.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _MD_HEADING.sub("", text)
    text = _MD_EMPHASIS.sub("", text)
    text = _BULLETS.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    text = _TAG_LINE.sub("\n", text)
    lines = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _WS.sub(" ", raw).strip()
        if not line or _DEBRIS_LINE.match(line):
            continue
        lines.append(line)
    return "\n".join(lines)


def _unglue(line: str) -> str:
    line = _GLUED_QUOTE.sub(r"\1 ", line)
    line = _GLUED_STOP.sub(r"\1\2 ", line)
    line = _GLUED_CAMEL.sub("\n", line)
    return _GLUED_CREDIT.sub("\\1\n", line)


def _is_abbreviation(before: str) -> bool:
    """True when the word that ends with this period is an abbreviation or an initial."""
    word = before.rsplit(None, 1)[-1] if before.strip() else ""
    word = word.lstrip(_OPEN).lower()
    if not word:
        return False
    if word in ABBREVIATIONS:
        return True
    # Initials and dotted acronyms: `V.` in `Oleksandr V. Danylyuk`, `U.S.`, `D.C.`
    return bool(re.fullmatch(r"(?:[^\W\d_]\.)*[^\W\d_]", word)) and len(word.replace(".", "")) <= 3 \
        and (len(word) == 1 or "." in word)


def _starts_sentence(rest: str) -> bool:
    rest = rest.lstrip(_OPEN + " ")
    if not rest:
        return False
    first = rest[0]
    return first.isupper() or first.isdigit() or not first.isalpha() and first not in ",;:"


def _split_line(line: str) -> list[str]:
    out: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(line):
        end = match.end(2)
        rest = line[match.end():]
        if not _starts_sentence(rest):
            continue
        if match.group(1) == "." and _is_abbreviation(line[start:match.start(1)]):
            continue
        out.append(line[start:end].strip())
        start = match.end()
    out.append(line[start:].strip())
    return [s for s in out if s]


def _is_prose(sentence: str) -> bool:
    letters = sum(ch.isalpha() for ch in sentence)
    return letters >= 3 and letters >= len(sentence) * 0.4


def split_sentences(text: str) -> list[str]:
    """Split article text into sentences, in order, with entities unescaped and debris removed.

    Every line break is a boundary (headlines and captions have no final period); inside a line
    the split is at a terminator followed by a capital, a digit or an opening quote, except after
    abbreviations (``U.S.``, ``Gen.``, ``Dec.``) and initials.
    """
    sentences: list[str] = []
    for line in _unglue(clean_text(text)).split("\n"):
        for sentence in _split_line(line):
            if _is_prose(sentence) and not _ONLY_CREDIT.fullmatch(sentence):
                sentences.append(sentence)
    return sentences


_TERMINAL = re.compile(r"[.!?…][\"”’'»)\]]*\s*$")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_LABEL = re.compile(r"^(?:table|figure|fig\.|chart|graph|map|photo|image|source)\s*\d*\s*[:.]", re.I)
HEADING_MAX_WORDS = 16
HEADING_CAPITALS = 0.6


def is_heading(text: str) -> bool:
    """A section heading, photo caption or table label left in the text, not a sentence.

    Such lines state no motive even when their words match one ("Impact on regional security"),
    so the classifier gives them no labels. A heading has no closing punctuation, at most
    ``HEADING_MAX_WORDS`` words, and either starts like a label (``Table 1:``), joins name and
    role with a slash (a caption), or capitalises most of its longer words (title case). A
    sentence-case line without a full stop (a feed's bullet point) is still a sentence.
    """
    line = text.strip()
    if not line or _TERMINAL.search(line):
        return False
    words = _WORD.findall(line)
    if len(words) > HEADING_MAX_WORDS:
        return False
    if _LABEL.match(line) or " / " in line:
        return True
    longer = [w for w in words if len(w) >= 4]
    if not longer:
        return len(words) <= 4
    return sum(w[0].isupper() for w in longer) / len(longer) >= HEADING_CAPITALS
