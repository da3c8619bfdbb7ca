"""Headlines as claims: the publisher suffix, the question/label rule, and merging with the body.

Feeds often carry only a headline and a one-sentence summary, and the checkable part (the figure,
the source) is in the headline: "Ministry says 2,000 more troops arrived" over "The briefing was
held in the capital on Tuesday." So a headline is a claim candidate of its own.

The rule (``read_headline``): a headline is a claim when, after removing the publisher suffix and
section labels ("Live:", ": What we know"),
  * it is not a question: parts ending in "?" are dropped ("Kim has sent troops. What's in it for
    him?" keeps the first sentence), and an English headline opening with an interrogative
    ("How", "Why", "What", ...) is a question or an explainer label even without "?";
  * it has at least ``MIN_HEADLINE_WORDS`` words;
  * in English it has a verb (a finite or infinitive form from a headline-verb lexicon, an
    auxiliary, or an -ed participle): "North Korean troops in Kursk: timeline" is a label, not a
    claim. Other languages skip the verb test (no lexicon here; a short label is caught by the
    word count), and ``article_claims`` drops such a headline when it has neither a figure nor a
    source while the body has claims of its own;
  * the article names the actor (``TOPIC``) in its title or body: the headline of an article the
    gate let through is its central claim, but only when North Korea is actually in it.
It needs no figure or named source: the body-sentence test ("checkable") is what summaries fail.

Publisher suffix: " | X" is always the site name. " - X" / " – X" naming a news outlet is the
publisher when X is the item's own outlet or the item's outlet is unknown; from another outlet it
is the cited source (The Moscow Times writes "... – Yonhap", "... – Seoul"), read as attribution.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pipeline.claims.attribution import OUTLET_RE, Attribution, find_headline_attribution, find_hedges
from pipeline.claims.figures import Figure, figures_relation, parse_figures
from pipeline.language import is_english

__all__ = ["Headline", "HEADLINE_POSITION", "MIN_HEADLINE_WORDS", "read_headline", "same_claim",
           "merge_headline", "strip_publisher"]

HEADLINE_POSITION = -1  # claims keep ``position``: the headline is before sentence 0
MIN_HEADLINE_WORDS = 4

_PIPE = re.compile(r"\s+\|\s+(?P<pub>[^|]{2,60})$")
_DASH = re.compile(r"\s+[-–—]\s+(?P<pub>[^-–—|]{2,60})$")
_LEAD_LABEL = re.compile(r"^(?:live(?: updates)?|analysis|explainer|opinion|watch|video|photos?|exclusive|"
                         r"breaking|update|factbox|fact ?check|timeline|in numbers|in pictures)\s*[:|–-]\s+",
                         re.I)
_TRAIL_LABEL = re.compile(r"\s*[:–—-]\s*(?:what we know|what to know|the latest|live(?: updates)?|explained|"
                          r"timeline|analysis|in pictures|in numbers)\s*$", re.I)
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*$")
_QUESTION_START = re.compile(r"^(?:how|why|what|what's|who|whom|whose|where|when|which|whether|is|are|"
                             r"does|do|did|can|could|should|would)\b", re.I)
_PARTS = re.compile(r"(?<=[.?!])\s+(?=[‘'\"“]?[A-Z])")

_VERB_STEMS = """
send deploy arrive sign ratify meet visit welcome confirm deny say claim kill capture die fight clash strike
attack launch supply provide ship pay train join leave return withdraw enter resume agree pledge vow warn urge
thank praise laud hail accuse condemn summon seek help use need want face lose gain give offer boost deepen
expand strengthen open close host hold mark show reveal report estimate suffer fire ban sanction impose plan
prepare move head travel begin start end continue become remain emerge appear reach hit target defend protect
shoot seize recruit rebuild honor honour celebrate underscore embrace engage solve create learn test develop
transfer export import buy sell build discuss talk call ask tell admit acknowledge announce expect add note
believe fear threaten escalate respond react break breach violate flee defect desert surrender rescue release
swap exchange sentence rule allow let arm station mobilize mobilise rotate replace reinforce retake recapture
liberate invade occupy bomb shell destroy damage wound injure lead order approve adopt pass vote enforce
deliver receive acquire obtain share cooperate partner ally back support oppose reject slam blast criticise
criticize dismiss insist suggest indicate signal look step ramp scale double triple rise fall grow drop surge
take make get go come see put run keep bring win fly draw stand set find spend earn dispatch transport
""".split()
_IRREGULAR = """
is are was were be been being am will would could can may might must shall should has have had does do did
sent met said says told took taken gave given got gone went fought struck shot lost left held made began
begun became won flew flown sold bought built brought came saw seen ran kept fell fallen drew drawn stood
found spent stole hid led paid laid dies died lies lay
""".split()


def _forms(stem: str) -> set[str]:
    forms = {stem, stem + "s", stem + "es", stem + "ed", stem + "d", stem + "ing"}
    if stem.endswith("e"):
        forms |= {stem[:-1] + "ing"}
    if stem.endswith("y"):
        forms |= {stem[:-1] + "ies", stem[:-1] + "ied"}
    if re.search(r"[^aeiou][aeiou][bdgmnprt]$", stem):  # ship -> shipped, hit -> hitting
        forms |= {stem + stem[-1] + "ed", stem + stem[-1] + "ing"}
    return forms


_VERBS = frozenset(set(_IRREGULAR).union(*(_forms(s) for s in _VERB_STEMS)))
_NOT_PARTICIPLE = frozenset({"united", "armed", "red", "bed", "need", "speed", "seed", "feed", "shed"})
_WORD = re.compile(r"[A-Za-z][A-Za-z’'-]*")
_STOP = frozenset("""a an the of to in on at for from by with and or but as is are was were be been has have
had will would could may might its his her their it this that these those than over after before into about
says say said new more""".split())
_CONTENT = re.compile(r"[^\W\d_][\w’'-]*|\d[\d,.]*", re.UNICODE)


@dataclass(frozen=True)
class Headline:
    """What was read from a title. ``claim`` is False with a ``reason`` when it is no claim."""

    text: str
    attribution: Attribution
    hedges: list[str]
    figures: list[Figure]
    publisher: str | None
    claim: bool
    reason: str = ""


def _same_outlet(a: str, b: str | None) -> bool:
    def key(x: str) -> str:
        return re.sub(r"^the\s+|\W+", "", x.lower().replace("the ", "", 1))

    return bool(b) and (key(a) == key(b) or key(a) in key(b or "") or key(b or "") in key(a))


def strip_publisher(title: str, outlet: str | None = None) -> tuple[str, str | None]:
    """The title without its publisher suffix, and the publisher (None when there is none). A
    dash suffix naming another outlet than ``outlet`` is left in place: it is a cited source."""
    text = title.strip()
    if m := _PIPE.search(text):
        return text[:m.start()].rstrip(), m.group("pub").strip()
    m = _DASH.search(text)
    if m:
        pub = m.group("pub").strip()
        if _same_outlet(pub, outlet) or (OUTLET_RE.fullmatch(pub) and not outlet):
            return text[:m.start()].rstrip(), pub
    return text, None


def has_verb(text: str) -> bool:
    """English: a finite/infinitive verb from the lexicon, an auxiliary or an -ed participle."""
    for raw in _WORD.findall(text):
        word = raw.lower().strip("’'")
        word = re.sub(r"n[’']t$", "", word)  # "doesn't" -> "does"
        if word in _VERBS or (word.endswith("ed") and len(word) > 4 and word not in _NOT_PARTICIPLE):
            return True
    return False


def read_headline(title: str, *, outlet: str | None = None, language: str | None = "en") -> Headline:
    """Claim text, attribution, hedges and figures of a headline, and whether it is a claim (the
    rule is in the module docstring; ``reason`` says why not)."""
    text, publisher = strip_publisher(title or "", outlet)
    text = _LEAD_LABEL.sub("", text)
    text = _TRAIL_LABEL.sub("", text)
    text = _ELLIPSIS.sub("", text).strip()
    english = is_english(language)
    statements = [p for p in _PARTS.split(text) if p.strip() and not p.rstrip().endswith("?")]
    text = " ".join(statements).strip()
    empty = Attribution()
    if not text:
        return Headline("", empty, [], [], publisher, False, "question" if title.strip() else "empty")
    att = find_headline_attribution(text, strict=not english)
    hedges = find_hedges(text)
    if att.kind == "anonymous" and (att.text or "").lower() in {"report", "reports", "media"}:
        hedges = [*hedges, "report"]  # "-report": an unnamed outlet's report, not a confirmed fact
    figures = parse_figures(text)
    reason = ""
    if english and _QUESTION_START.match(text):
        reason = "question"
    elif len(text.split()) < MIN_HEADLINE_WORDS:
        reason = "too short"
    elif english and not has_verb(text):
        reason = "label (no verb)"
    return Headline(text, att, hedges, figures, publisher, not reason, reason)


def content_words(text: str) -> set[str]:
    """Lower-case content words, crudely stemmed, for lexical overlap (no model needed)."""
    out = set()
    for raw in _CONTENT.findall(text.lower()):
        word = raw.strip("’'-.,")
        if not word or word in _STOP:
            continue
        if word[0].isdigit():
            out.add(word.replace(",", ""))
            continue
        word = re.sub(r"[’']s$", "", word)
        word = re.sub(r"(?:ies|es|s|ed|ing)$", "", word) if len(word) > 4 else word
        out.add(_SAME_WORD.get(word, word))
    return out


# Words every sentence on this topic shares: they say nothing about whether two claims are one.
_TOPIC_WORDS = frozenset({"north", "korea", "south", "russia", "ukraine", "troop", "us", "war", "military",
                          "putin", "force", "kursk", "region"})


def overlap(a: str, b: str) -> float:
    """Share of the smaller side's distinctive content words (topic words left out) found in the
    other; 0 when fewer than two are shared, so a pair of topic words alone never merges."""
    left, right = content_words(a) - _TOPIC_WORDS, content_words(b) - _TOPIC_WORDS
    if len(left & right) < 2:
        return 0.0
    return len(left & right) / min(len(left), len(right))


# Headline wording differs from the body's: adjective vs country, "soldiers" vs "troops".
_SAME_WORD = {"korean": "korea", "n.": "north", "n": "north", "russian": "russia", "ukrainian": "ukraine",
              "soldier": "troop", "u.s": "us", "u.s.": "us", "american": "us", "washington": "us",
              "pyongyang": "korea", "moscow": "russia", "kremlin": "russia", "kyiv": "ukraine",
              "kim": "korea", "sent": "send", "deploy": "send", "deployment": "send", "dispatch": "send"}
SAME_WITH_FIGURES, SAME_WITHOUT_FIGURES = 0.4, 0.5


def _compatible(a: Sequence[Figure], b: Sequence[Figure]) -> bool:
    """"thousands of troops" and "3,000 troops" do not disagree: a vague amount agrees with any
    figure of its kind inside its interval."""
    for x in a:
        for y in b:
            if (x.kind, x.period) != (y.kind, y.period):
                continue
            vague = x if x.value is None else y if y.value is None else None
            exact = y if vague is x else x
            if vague is None or exact.value is None or not vague.low <= exact.value <= vague.high:
                return False
    return True


def same_claim(head_text: str, head_figures: Sequence[Figure], body_text: str,
               body_figures: Sequence[Figure]) -> bool:
    """The headline and a body sentence state the same claim: figures do not disagree, and they
    share enough words (less when the figures agree, since an equal figure is strong evidence)."""
    relation = figures_relation(list(head_figures), list(body_figures))
    if relation == "different" and not _compatible(head_figures, body_figures):
        return False  # "300 killed" in the headline and "100 killed" in the body are two claims
    share = overlap(head_text, body_text)
    return share >= (SAME_WITH_FIGURES if relation == "same" else SAME_WITHOUT_FIGURES)


def _specificity(figures: Sequence[Figure], attribution: Attribution) -> int:
    return 2 * len(figures) + (attribution.kind != "none") + bool(attribution.speaker)


def merge_headline(head, body: list) -> list:
    """The body claims with the headline claim added, unless a body claim states the same claim:
    then one claim remains (the more specific; the body sentence on a tie, since it has context),
    carrying the other's figures of kinds it lacks, its attribution when it has none, and the
    union of motives. ``head`` and ``body`` are ``ClaimCandidate`` records."""
    if head is None:
        return list(body)
    matches = [(overlap(head.text, b.text), i) for i, b in enumerate(body)
               if same_claim(head.text, head.figures, b.text, b.figures)]
    if not matches:
        return [head, *body]
    _, index = max(matches)
    other = body[index]
    keep, drop = ((head, other) if _specificity(head.figures, head.attribution)
                  > _specificity(other.figures, other.attribution) else (other, head))
    kinds = {(f.kind, f.period) for f in keep.figures}
    figures = list(keep.figures) + [f for f in drop.figures if (f.kind, f.period) not in kinds]
    attribution = keep.attribution if keep.attribution.kind != "none" else drop.attribution
    motives = list(dict.fromkeys([*keep.motives, *drop.motives]))
    scores = {m: max(keep.motive_scores.get(m, 0.0), drop.motive_scores.get(m, 0.0))
              for m in {**keep.motive_scores, **drop.motive_scores}}
    merged = replace(keep, figures=figures, attribution=attribution, motives=motives, motive_scores=scores)
    rest = [b for i, b in enumerate(body) if i != index]
    return [merged, *rest] if merged.origin == "headline" else [*rest[:index], merged, *rest[index:]]
