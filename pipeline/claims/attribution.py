"""Who says a claim, and how sure they sound: attribution (speaker, organisation, kind) and hedges.

Why it matters: an analyst weighs "South Korea's spy agency said" differently from "KCNA said" or
"a source said", and "reportedly" from a flat statement. The rules are lexical on purpose: they
are cheap, explainable in an email, and the sentence text is always kept next to them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Attribution", "find_attribution", "find_hedges", "ATTRIBUTION_KINDS"]

ATTRIBUTION_KINDS = ("state_media", "intelligence", "military", "official", "analyst", "anonymous")

_VERBS = (r"said|says|say|told|tells|reported|reports|report|estimated|estimates|estimate|claimed|claims|"
          r"claim|stated|states|announced|announces|confirmed|confirms|confirm|warned|warns|warn|added|"
          r"believes|believe|assessed|assesses|assess|revealed|reveals|noted|notes|wrote|writes|"
          r"testified|briefed|disclosed|alleged|alleges|acknowledged|acknowledges|denied|denies|"
          r"insisted|insists|argued|argues|predicted|predicts|suggested|suggests|explained")

# Kind lexicon, most specific first: a state-media report quoting an official is state media.
_KIND_WORDS: list[tuple[str, str]] = [
    ("state_media", r"KCNA|Korean Central News Agency|Rodong Sinmun|state media|state-run|state TV|"
                    r"state television|TASS|RIA Novosti|Sputnik|Xinhua|Uriminzokkiri|KCTV"),
    ("intelligence", r"spy agency|intelligence|NIS|National Intelligence Service|GUR|HUR|CIA|DIA|"
                     r"MI6|spy chief|espionage"),
    ("anonymous", r"sources?|unnamed|anonymity|anonymous|people familiar|person familiar|"
                  r"insiders?|a diplomat|diplomats said"),
    ("military", r"military|Joint Chiefs|JCS|armed forces|General Staff|army|commander|"
                 r"(?<!Secretary )(?<!Secretary-)general|"
                 r"colonel|defense forces|defence forces|troops said|Pentagon officials|"
                 r"special operations forces|marine corps"),
    ("analyst", r"analysts?|experts?|researchers?|research fellow|fellow|professor|Prof\.|scholar|"
                r"institute|think tank|think-tank|Chatham House|Carnegie|RUSI|Heritage Foundation|"
                r"Brookings|CSIS|RAND|Sejong|Asan|university|observers?|specialists?|commentators?"),
    ("official", r"officials?|minister|ministry|president|secretary|spokesperson|spokesman|spokeswoman|"
                 r"government|White House|Pentagon|State Department|NATO|Kremlin|lawmakers?|"
                 r"presidential office|Blue House|Zelensky|Zelenskyy|Putin|Yoon|Lee Jae-myung|Kim Jong Un|"
                 r"embassy|ambassador|senator|parliament|Seoul|Washington|Kyiv|Moscow|Pyongyang|"
                 r"U\.S\.|South Korea|Ukraine|Russia|North Korea|Unification Ministry"),
]
_KIND_RES = [(kind, re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.I if kind not in {"intelligence"} else 0))
             for kind, words in _KIND_WORDS]
_INTEL_CI = re.compile(r"\b(?:spy agency|intelligence|spy chief)\b", re.I)

_ORG_PATTERNS = [
    r"(?:the )?(?:[A-Z][\w.'’-]*\s){0,4}(?:Institute|Ministry|Agency|Service|Center|Centre|Foundation|"
    r"House|Council|Office|Department|Staff|University|Command|Forces|News|Times|Post)"
    r"(?:\s(?:of|for)\s(?:the\s)?(?:[A-Z][\w'’-]*\s?){1,4})?",
    r"Ministry of (?:[A-Z][\w'’-]*\s?){1,3}",
    r"\b(?:NATO|KCNA|NIS|GUR|HUR|CIA|DIA|JCS|RUSI|CSIS|RAND|Pentagon|Kremlin|White House|"
    r"State Department|Yonhap|Reuters|TASS|Xinhua|United Nations|UN Security Council)\b",
]
_ORG_RE = re.compile("|".join(f"(?:{p})" for p in _ORG_PATTERNS))
_TITLE_WORDS = {"President", "Secretary", "General", "Minister", "Foreign", "Defense", "Defence", "Prime",
                "Deputy", "Chief", "Director", "Prof", "Prof.", "Professor", "Dr", "Dr.", "Mr", "Ms",
                "Mrs", "Gen.", "Gen", "Lt.", "Colonel", "Col.", "Admiral", "Spokesperson", "Spokesman",
                "Ambassador", "Senator", "Leader", "Commander", "Vice", "Chairman", "Head", "NATO",
                "Ukrainian", "Russian", "American", "South", "North", "Korean", "U.S.", "US", "Sen.",
                "Rep.", "The", "A", "An", "In", "But", "And", "According", "Security", "State"}
_NAME = re.compile(r"(?<![\w’'])((?:[A-Z][a-z’'-]+|[A-Z]\.)(?:\s(?:[A-Z][a-z’'-]+|[A-Z][a-z]+-[a-z]+|"
                   r"[A-Z]\.)){1,3})(?![\w’'])")

# "X said ...", "... , X said.", "said X, a ...", "according to X".
_SUBJECT_VERB = re.compile(rf"(?P<who>(?:[A-Z“\"]|\b(?:a|an|the|two|three|several|some|many|other)\b)"
                           rf"(?:[^.;:“”\"]|\.(?=\S)|(?<=\b[A-Z])\.){{0,90}}?)\s+"
                           r"(?:has |have |had |also |previously |earlier )?"
                           rf"(?P<verb>{_VERBS})\b")
_VERB_SUBJECT = re.compile(r"[,”\"]\s*(?P<verb>said|says|told|added|wrote|noted|warned|explained)\s+"
                           r"(?P<who>[A-Z][^.;:“”\"]{2,120})")
_ACCORDING = re.compile(r"\b(?:according to|citing|cited by|as reported by|per)\s+(?P<who>[^.;:“”\"]{3,120})",
                        re.I)


@dataclass(frozen=True)
class Attribution:
    """Who is said to say it. ``kind`` is one of ATTRIBUTION_KINDS or "none"."""

    speaker: str | None = None
    organisation: str | None = None
    kind: str = "none"
    text: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kind_of(phrase: str) -> str:
    for kind, regex in _KIND_RES:
        if regex.search(phrase) or (kind == "intelligence" and _INTEL_CI.search(phrase)):
            return kind
    return "official" if _speaker(phrase) else "none"  # a named person, role unknown


_NOT_A_PERSON = re.compile(
    r"Institute|Ministry|Agency|Service|Center|Centre|Foundation|House|Council|University|Korea|Russia|"
    r"Ukraine|States|Nations|Staff|Department|Office|Forces|News|Association|Committee|Group|Party|Army|"
    r"Command|Times|Post|Oblast|Region|Province|City|Seoul|Washington|Moscow|Kyiv|Pyongyang|Beijing|"
    r"Tokyo|Kremlin|Pentagon|Europe|Asia|Western|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday")


def _speaker(phrase: str) -> str | None:
    for match in _NAME.finditer(phrase):
        words = [re.sub(r"[’']s$", "", w) for w in match.group(1).split() if w not in _TITLE_WORDS]
        candidate = " ".join(words)
        if len(words) >= 2 and not _ORG_RE.fullmatch(candidate) and not _NOT_A_PERSON.search(candidate):
            return candidate
    # A bare surname as the whole subject: "Putin said", "Peters said".
    single = phrase.strip()
    if re.fullmatch(r"[A-Z][a-z’'-]{2,}", single) and single not in _TITLE_WORDS \
            and not _NOT_A_PERSON.search(single) and not _ORG_RE.fullmatch(single):
        return single
    return None


def _leading_name(phrase: str) -> str | None:
    """"Alexander Gabuev, director of ..., told": the name that opens an appositive subject."""
    m = _NAME.match(phrase)
    if m and phrase[m.end():m.end() + 1] == ",":
        return _speaker(m.group(1))
    return None


def _organisation(phrase: str) -> str | None:
    match = _ORG_RE.search(phrase)
    if match:
        return re.sub(r"^the\s", "", match.group(0).strip(" ,"), flags=re.I).strip()
    possessive = re.search(r"\b((?:South |North )?Korea|Russia|Ukraine|Japan|China|the U\.S\.)[’']s?\s+"
                           r"((?:spy agency|military|defen[cs]e ministry|foreign ministry|intelligence"
                           r"(?: service| agency)?|General Staff|Joint Chiefs of Staff|presidential office|"
                           r"government))", phrase, re.I)
    if possessive:
        return possessive.group(0)
    return None


def _clean(who: str) -> str:
    who = re.sub(r"^(?:but|and|so|meanwhile|however|in|on|last|this|earlier)\b[, ]*", "", who.strip(),
                 flags=re.I)
    return who.strip(" ,")


def find_attribution(sentence: str) -> Attribution:
    """The source a sentence names, if any. The first matching pattern wins, in this order:
    "according to X", "..., said X, ...", "X said ...". A sentence with no source gets kind "none"
    (a flat statement by the outlet itself)."""
    candidates: list[str] = []
    if m := _ACCORDING.search(sentence):
        candidates.append(m.group("who"))
    if m := _VERB_SUBJECT.search(sentence):
        candidates.append(m.group("who"))
    for m in _SUBJECT_VERB.finditer(sentence):
        who = m.group("who")
        # The subject is usually the tail before the verb, after the last comma or quote; for
        # "Name, director of X, told ..." it is the whole stretch, so both are tried.
        tail = re.split(r"[,“”\"]\s*|\bthat\b", who)[-1]
        candidates.extend(w for w in (tail, who) if w.strip())
    for raw in candidates:
        phrase = _clean(raw)
        kind = _kind_of(phrase)
        if kind == "none":
            continue
        speaker = _speaker(phrase) or next((s for c in candidates if (s := _leading_name(_clean(c)))), None)
        return Attribution(speaker=speaker, organisation=_organisation(phrase), kind=kind,
                           text=phrase[:160])
    return Attribution()


_HEDGES = [
    r"reportedly", r"allegedly", r"purportedly", r"apparently", r"presumably", r"possibly",
    r"probably", r"likely", r"unlikely", r"may", r"might", r"could", r"suspected(?: of)?",
    r"(?:is|are|was|were) (?:believed|thought|said|understood|expected|estimated|alleged|rumou?red) to",
    r"believed to", r"unconfirmed", r"unverified", r"not (?:yet )?(?:been )?(?:independently )?verified",
    r"it is (?:unclear|not clear)", r"appears? to", r"seems? to", r"suggests?", r"estimated",
    r"according to (?:unconfirmed|unverified)", r"rumou?red", r"claimed to", r"would appear",
]
_HEDGE_RE = re.compile(rf"(?<![\w-])(?:{'|'.join(_HEDGES)})(?![\w-])")


def find_hedges(sentence: str) -> list[str]:
    """Hedge words and phrases in their order of appearance (lower case, without duplicates).
    Case-sensitive for "may" so that the month May is not a hedge."""
    seen: list[str] = []
    for m in _HEDGE_RE.finditer(sentence):
        word = m.group(0).lower()
        if word not in seen:
            seen.append(word)
    # "is believed to" also contains "believed to": keep the longer phrase only.
    return [w for w in seen if not any(w != o and w in o for o in seen)]
