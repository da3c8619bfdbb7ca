"""Figures in a claim, normalised: troops, casualties, US dollars with their period, distances,
munitions counts.

Why not just "numbers": novelty needs to know that "3,000 troops" updates "1,500 troops" but that
"$2,000 a month" says nothing about troop numbers. So each figure gets a *kind*, a *unit*, a
*period* for money, and keeps how it was hedged: "about", "up to", "more than", ranges
("$50 to $150") and vague amounts ("several hundred", "thousands of") stay what they are instead
of being flattened to one number. ``value`` is the point estimate (None for vague amounts),
``low``/``high`` the interval the text allows.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Figure", "parse_figures", "figures_relation"]

MILE_KM = 1.609344

_SCALE = {"hundred": 1e2, "thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6,
          "billion": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12}
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
          "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
          "ninety": 90, "a": 1, "an": 1, "a dozen": 12, "dozen": 12}
# Vague amounts: the interval a careful reader would allow.
_VAGUE = {
    "several hundred": (200, 900), "a few hundred": (200, 500), "hundreds": (200, 999),
    "a couple hundred": (200, 300), "a couple of hundred": (200, 300),
    "several thousand": (2_000, 9_000), "a few thousand": (2_000, 5_000),
    "thousands": (2_000, 9_999), "tens of thousands": (20_000, 99_999),
    "dozens": (24, 99), "several dozen": (24, 99), "hundreds of thousands": (200_000, 999_999),
    "several million": (2e6, 9e6), "millions": (2e6, 9.99e6), "billions": (2e9, 9.99e9),
    "a couple hundred million": (2e8, 3e8), "several hundred million": (2e8, 9e8),
    "hundreds of millions": (2e8, 9.99e8), "several billion": (2e9, 9e9),
}

_NUM = r"\d{1,3}(?:[,\u202f\u00a0]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_WORD_NUM = "|".join(sorted((re.escape(w) for w in _WORDS if w not in {"a", "an"}), key=len,
                            reverse=True))
_SCALE_RE = r"(?:hundred|thousand|million|billion|trillion|mn|bn|k|m|b)\b"
_VAGUE_RE = "|".join(sorted((re.escape(v) for v in _VAGUE), key=len, reverse=True))
_CURRENCY = r"(?:US\s?\$|USD\s?|\$)"

# One quantity: optional currency, a number (digits or a word) and an optional scale, or a vague
# amount; optionally followed by a second bound ("to", "-", "and").
_QTY = re.compile(
    rf"(?P<cur>{_CURRENCY})?(?:(?P<vague>\b(?:{_VAGUE_RE})\b)|"
    rf"(?P<num>(?<![\w.,]){_NUM}|\b(?:{_WORD_NUM})\b)(?:\s?(?P<scale>{_SCALE_RE}))?)"
    rf"(?:\s*(?:-|–|—|to|and)\s*(?P<cur2>{_CURRENCY})?(?P<num2>{_NUM})(?:\s?(?P<scale2>{_SCALE_RE}))?)?"
    r"(?P<pct>\s?(?:%|percent\b|per cent\b))?",
    re.IGNORECASE,
)

_QUALIFIERS = [
    ("up_to", r"up to|as many as|as much as|a maximum of"),
    ("at_least", r"at least|no fewer than|no less than|a minimum of"),
    ("more_than", r"more than|over|exceeded|exceeding|exceeds|above|in excess of|upwards of"),
    ("less_than", r"less than|fewer than|under|below|nearly|almost|close to"),
    ("about", r"about|around|approximately|roughly|some|an estimated|estimated|nearly|circa|"
              r"approx\.?|an approximate"),
    ("range", r"between"),
]

TROOPS = r"troops?|soldiers?|servicemen|service members|personnel|forces|fighters|commandos|" \
         r"special forces|combatants|military personnel|men|units?"
CASUALTY_NOUNS = r"casualties|killed|dead|deaths|wounded|injured|losses|lives|fatalities"
CASUALTY_VERBS = r"killed|died|wounded|injured|dead|lost|casualties|killed or wounded|" \
                 r"killed or injured|captured"
MUNITIONS = r"(?:artillery |mortar |ballistic |cruise |anti-tank |)(?:shells?|rounds?|missiles?|" \
            r"rockets?|munitions|ammunition|drones?|" \
            r"containers? of (?:artillery )?(?:ammunition|munitions|shells)|" \
            r"grenades?|mines|howitzers|launchers?|rocket launchers?|tanks?)"
DISTANCE = r"miles?|mi|kilometers?|kilometres?|km"
WORKERS = r"workers?|laborers?|labourers?|lumberjacks|builders"

_NOUN_GAP = r"(?:\s+(?:(?-i:[A-Z][\w'’-]*)|more|additional|elite|regular|new|other|of|the|active|"
_NOUN_GAP += r"north|korean|russian|ukrainian|military|army|combat|soldiers'?)){0,4}\s+"
_KIND_NOUNS = [
    ("casualties", re.compile(rf"^{_NOUN_GAP}?(?:{CASUALTY_NOUNS})\b", re.I)),
    ("casualties", re.compile(r"^\s+(?:were|have been|had been|are|was|being)\s+(?:killed|wounded|injured)",
                              re.I)),
    ("troops", re.compile(rf"^{_NOUN_GAP}?(?:{TROOPS})\b", re.I)),
    ("munitions", re.compile(rf"^{_NOUN_GAP}?(?:{MUNITIONS})\b", re.I)),
    ("distance", re.compile(rf"^\s*(?:-\s*)?(?:{DISTANCE})\b", re.I)),
    ("workers", re.compile(rf"^{_NOUN_GAP}?(?:{WORKERS})\b", re.I)),
]
_CASUALTY_AFTER = re.compile(rf"^[^.;,]{{0,50}}?\b(?:{CASUALTY_VERBS})\b", re.I)
_DOLLARS_AFTER = re.compile(r"^\s*(?:US\s)?(?:dollars|USD)\b", re.I)
_PERIOD = re.compile(
    r"^[^.;$]{0,40}?\b(?:(?P<per>per|a|an|each|every)\s+(?P<unit>month|year|week|day|annum|soldier)"
    r"|(?P<adv>monthly|annually|yearly|weekly|daily))\b", re.I)
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_ORDINAL_OR_DATE_AFTER = re.compile(r"^(?:st|nd|rd|th)\b|^\s*(?:January|February|March|April|May|June|"
                                    r"July|August|September|October|November|December)\b", re.I)
_MONTH_BEFORE = re.compile(r"(?:January|February|March|April|May|June|July|August|September|October|"
                           r"November|December|Jan\.|Feb\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.)\s*$", re.I)


@dataclass(frozen=True)
class Figure:
    """One normalised figure. ``value`` is None for vague amounts; ``low``/``high`` always set."""

    kind: str  # troops | casualties | usd | distance | munitions | workers | percent
    value: float | None
    low: float
    high: float
    unit: str  # people | USD | km | items | percent
    qualifier: str  # exact | about | up_to | at_least | more_than | less_than | range | vague
    period: str | None = None  # month | year | week | day | per_soldier (money only)
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_doc(self) -> dict[str, Any]:
        """JSON-safe (an open upper bound is stored as null, not infinity)."""
        return asdict(self) | {"high": None if self.high == float("inf") else self.high}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        high = data.get("high")
        return cls(kind=data["kind"], value=data.get("value"), low=float(data.get("low") or 0.0),
                   high=float("inf") if high is None else float(high), unit=data.get("unit") or "",
                   qualifier=data.get("qualifier") or "exact", period=data.get("period"),
                   text=data.get("text") or "")


def _number(raw: str, scale: str | None) -> float:
    raw = raw.strip().lower()
    if raw in _WORDS:
        base = float(_WORDS[raw])
    else:
        base = float(re.sub(r"[,\u202f\u00a0]", "", raw))
    if scale:
        base *= _SCALE[scale.lower()]
    return base


def _qualifier(before: str) -> str | None:
    tail = before[-30:].lower()
    for name, pattern in _QUALIFIERS:
        if re.search(rf"\b(?:{pattern})\s*$", tail):
            return name
    return None


def _kind_and_unit(after: str, currency: bool) -> tuple[str, str, int] | None:
    """Kind, unit and how many characters of ``after`` name the unit (kept in the figure text)."""
    if currency:
        return "usd", "USD", 0
    if dollars := _DOLLARS_AFTER.match(after):
        return "usd", "USD", dollars.end()
    for kind, pattern in _KIND_NOUNS:
        if noun := pattern.match(after):
            if kind == "troops" and _CASUALTY_AFTER.match(after):
                return "casualties", "people", noun.end()
            unit = {"distance": "km", "munitions": "items"}.get(kind, "people")
            return kind, unit, noun.end()
    return None


# "raises its estimate of North Korean troops in Kursk to 11,000": the unit comes before the
# number, named by the thing being estimated, and the number ends the phrase.
_ESTIMATE_OF = re.compile(
    rf"\b(?P<head>estimates?|numbers?|counts?|tally|total|toll|figures?)\s+(?:of|for)\b[^.;:]{{0,60}}?"
    rf"\b(?P<noun>{TROOPS}|{CASUALTY_NOUNS}|{WORKERS})\b[^.;:]{{0,60}}?"
    rf"\b(?:to|at|as|is|was|stands at|stood at|reached|reaches)\s+"
    rf"(?:(?:more than|over|about|around|roughly|some|nearly|almost|at least|up to|as many as)\s+)?$",
    re.I)


def _kind_before(before: str) -> tuple[str, str] | None:
    """Kind and unit from an "estimate of <noun> ... to" phrase just before a bare number."""
    m = _ESTIMATE_OF.search(before[-160:])
    if m is None:
        return None
    noun = m.group("noun").lower()
    if m.group("head").lower() == "toll" or re.fullmatch(CASUALTY_NOUNS, noun):
        return "casualties", "people"
    if re.fullmatch(WORKERS, noun):
        return "workers", "people"
    return "troops", "people"


def parse_figures(text: str) -> list[Figure]:
    """All figures of the known kinds in ``text``, in order. Unclassifiable numbers are skipped:
    a year, a date or a bare count with no unit is not a figure a reader would compare."""
    figures: list[Figure] = []
    for m in _QTY.finditer(text):
        if not (m.group("num") or m.group("vague")):
            continue
        before, after = text[:m.start()], text[m.end():]
        currency = bool(m.group("cur") or m.group("cur2"))
        if m.group("num") and not currency and not m.group("scale"):
            raw = m.group("num")
            if _YEAR.match(raw) and not m.group("num2") or _ORDINAL_OR_DATE_AFTER.match(after) \
                    or _MONTH_BEFORE.search(before):
                continue
            if raw.lower() in {"one", "a", "an"} and not re.match(r"^\s+(?:hundred|thousand)", after, re.I):
                continue
        if m.group("pct"):
            low = high = _number(m.group("num"), m.group("scale")) if m.group("num") else 0.0
            figures.append(Figure("percent", low, low, high, "percent", _qualifier(before) or "exact",
                                  None, m.group(0).strip()))
            continue
        kind_unit = _kind_and_unit(after, currency)
        if kind_unit is None and not currency and (named := _kind_before(before)):
            kind_unit = (*named, 0)
        if kind_unit is None:
            continue
        kind, unit, noun_end = kind_unit
        qualifier = _qualifier(before)
        if m.group("vague"):
            low, high = _VAGUE[m.group("vague").lower()]
            value: float | None = None
            qualifier = "vague"
        else:
            value = _number(m.group("num"), m.group("scale"))
            low = high = value
            if m.group("num2"):
                high = _number(m.group("num2"), m.group("scale2") or m.group("scale"))
                if m.group("scale2") and not m.group("scale"):
                    value = low = _number(m.group("num"), m.group("scale2"))
                if high < low:  # "10-15 thousand" style or a typo: keep the text's order sane
                    low, high = high, low
                value = (low + high) / 2
                qualifier = "range"
            elif qualifier == "up_to":
                low = 0.0
            elif qualifier in {"at_least", "more_than"}:
                high = float("inf")
            elif qualifier == "less_than":
                low = 0.0
        if kind == "distance" and re.match(r"^\s*(?:-\s*)?mi", after, re.I):
            factor = MILE_KM
            value = None if value is None else round(value * factor, 3)
            low, high = round(low * factor, 3), (high if high == float("inf") else round(high * factor, 3))
        period = None
        if kind == "usd":
            pm = _PERIOD.match(after)
            if pm:
                word = (pm.group("unit") or pm.group("adv") or "").lower()
                period = {"monthly": "month", "annually": "year", "yearly": "year", "annum": "year",
                          "weekly": "week", "daily": "day", "soldier": "per_soldier"}.get(word, word)
        span = text[m.start():m.end() + noun_end].strip()
        figures.append(Figure(kind, value, float(low), float(high), unit, qualifier or "exact",
                              period, span))
    return figures


def _same_figure(a: Figure, b: Figure, tolerance: float = 0.02) -> bool:
    def close(x: float, y: float) -> bool:
        if x == y:
            return True
        return abs(x - y) <= tolerance * max(abs(x), abs(y))

    if (a.value is None) != (b.value is None):
        return False
    if a.value is not None and b.value is not None and a.qualifier != "range" and b.qualifier != "range":
        return close(a.value, b.value)
    return close(a.low, b.low) and (close(a.high, b.high) or a.high == b.high)


def figures_relation(a: list[Figure], b: list[Figure]) -> str:
    """``same``, ``different``, ``disjoint`` (both have figures, of no common kind) or ``none``
    (one side has no figure).

    Two figure lists differ when a kind/period both mention has no equal value on the other side:
    "1,100 casualties" vs "several hundred casualties" is different; "about 10,000 troops" vs
    "10,000 troops" is the same (the qualifier alone is not news).
    """
    shared = {(f.kind, f.period) for f in a} & {(f.kind, f.period) for f in b}
    if not shared:
        return "disjoint" if a and b and not {f.kind for f in a} & {f.kind for f in b} else "none"
    for key in shared:
        left = [f for f in a if (f.kind, f.period) == key]
        right = [f for f in b if (f.kind, f.period) == key]
        if not any(_same_figure(x, y) for x in left for y in right):
            return "different"
    return "same"
