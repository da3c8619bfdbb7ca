"""Who says a claim, and how sure they sound: attribution (speaker, organisation, kind) and hedges.

Why it matters: an analyst weighs "South Korea's spy agency said" differently from "KCNA said" or
"a source said", and "reportedly" from a flat statement. The rules are lexical on purpose: they
are cheap, explainable in an email, and the sentence text is always kept next to them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Attribution", "find_attribution", "find_headline_attribution", "find_hedges", "ATTRIBUTION_KINDS",
           "OUTLET_RE", "source_kind"]

# "media": another news outlet named as the source ("... – Yonhap" in a Moscow Times headline).
ATTRIBUTION_KINDS = ("state_media", "intelligence", "military", "official", "analyst", "anonymous", "media")

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
                 r"U\.S\.|South Korea|Ukraine|Russia|North Korea|Unification Ministry|envoy|governor|"
                 r"EU|European Union|prime minister|PM|mayor|chief"),
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


# --- Headlines -------------------------------------------------------------------------------
# Headlines carry their source in fixed places instead of a sentence: "..., Seoul says",
# "..., says Washington", "...: Pentagon", "... – Seoul", "... -report", "NATO Chief Says ...",
# "Zelensky: ...". The sentence patterns above miss most of these (no full stop, Title Case,
# inverted order), so they are read here, with the same kind lexicon.

# News outlets and wires: named at a headline's end they are a publisher or a cited outlet, never
# a person ("Yonhap" is not a surname), so they are recognised before the speaker fallback.
OUTLET_RE = re.compile(
    r"(?:Yonhap(?: News Agency)?|Reuters|AP|AFP|Associated Press|Agence France-Presse|NK News|Daily NK|"
    r"BBC(?: News)?|CNN|NBC(?: News)?|CBS(?: News)?|ABC(?: News)?|Al Jazeera|Sky News|Bloomberg|"
    r"Politico(?: Europe)?|"
    r"(?:The )?(?:New York Times|Washington Post|Wall Street Journal|Guardian|Moscow Times|Kyiv Independent|"
    r"Korea Herald|Korea Times|Japan Times|Financial Times|Economist|Telegraph|Independent)|NYT|WSJ|FT|"
    r"Nikkei(?: Asia)?|Kyodo(?: News)?|DW|Deutsche Welle|Euronews|France ?24|Le Monde|Der Spiegel|Spiegel|"
    r"dpa|Interfax|Vyorstka|Meduza|Kommersant|Ukrainska Pravda|Ukrinform|RBC|Newsweek|Fox News|"
    r"(?:[A-Z][\w'’&.-]*\s){0,3}(?:News|Times|Post|Herald|Daily|Journal|Tribune|Gazette|Telegraph))",
)
_HEAD_SAY = (r"says?|said|claims?|reports?|confirms?|confirmed|warns?|warned|tells|told|denies|denied|"
             r"admits?|announces?|accuses?|alleges?|insists?|believes?|estimates?|thinks?")
_ROLE_WORDS = frozenset("""official officials envoy minister ministry spokesman spokeswoman spokesperson chief
president general commander intelligence military army agency governor lawmaker lawmakers source sources
analyst analysts expert experts media report reports of the u.n. un us u.s. foreign defense defence
secretary deputy top senior ambassador staff service spy""".split())
# Section labels that lead a headline ("Live: ...") or trail it ("...: What we know"): not sources.
_LABELS = re.compile(r"^(?:live|live updates|analysis|explainer|explained|opinion|watch|video|photos?|"
                     r"exclusive|breaking|update|factbox|fact ?check|timeline|interview|comment|editorial|"
                     r"podcast|"
                     r"in numbers|in pictures|what we know|what to know|the latest)$", re.I)
_REPORT = re.compile(r"^(?:a |the )?(?:reports?|media(?: reports?)?|sources?|insiders?)$", re.I)


def source_kind(phrase: str, *, strict: bool = False) -> str:
    """The attribution kind of a bare source phrase ("Seoul", "U.S. Official", "Yonhap").
    ``strict``: a lone capitalised word counts only when the lexicon knows it (used where a label
    such as "Ukrainekrieg:" stands in the same place as a source such as "Zelensky:")."""
    phrase = phrase.strip(" ,'’\"“”‘")
    if not phrase or _LABELS.match(phrase):
        return "none"
    if _REPORT.match(phrase):
        return "anonymous"
    for kind, regex in _KIND_RES[:1]:  # state media before the outlet rule: KCNA, TASS
        if regex.search(phrase):
            return kind
    if OUTLET_RE.fullmatch(phrase):
        return "media"
    for kind, regex in _KIND_RES:
        if regex.search(phrase) or (kind == "intelligence" and _INTEL_CI.search(phrase)):
            return kind
    if strict and " " not in phrase:
        return "none"
    return "official" if _speaker(phrase) else "none"


def _looks_like_source(phrase: str) -> bool:
    """Short, and every word capitalised or a role word: "Russia UN envoy", "Kyiv official"."""
    words = phrase.split()
    if not 1 <= len(words) <= 5:
        return False
    return all(w[:1].isupper() or w[:1] in "‘'\"“" or w.lower().strip("’'s") in _ROLE_WORDS
               or w.lower() in _ROLE_WORDS for w in words)


def _headline_att(phrase: str, *, strict: bool = False) -> Attribution | None:
    phrase = _clean(phrase).strip(" ,'’\"“”‘")
    kind = source_kind(phrase, strict=strict)
    if kind == "none":
        return None
    if kind in {"media", "anonymous"}:
        org = phrase if kind == "media" else None
        return Attribution(speaker=None, organisation=org, kind=kind, text=phrase[:160])
    # "German Intelligence" is not a person: only officials and analysts are read as named speakers.
    speaker = _speaker(phrase) if kind in {"official", "analyst"} else None
    # Title Case makes roles look like names: "U.S. Official Says" names no one.
    if speaker and any(w.lower().strip(".") in _ROLE_WORDS or re.fullmatch(r"[A-Z]\.", w)
                       for w in speaker.split()):
        speaker = None
    return Attribution(speaker=speaker, organisation=_organisation(phrase), kind=kind, text=phrase[:160])


_TRAIL_SAYS = re.compile(rf",\s*(?P<who>[^,:;]{{2,70}}?)\s+(?:{_HEAD_SAY})\s*$", re.I)
_TRAIL_SAYS_INV = re.compile(rf",\s*(?:{_HEAD_SAY})\s+(?P<who>[^,:;]{{2,70}})$", re.I)
_TRAIL_COLON = re.compile(r":\s*(?P<who>[^:]{2,60})$")
_TRAIL_DASH = re.compile(r"(?:\s[-–—]\s?|(?<=\w)-|\s-)(?P<who>[^-–—|]{2,60})$")
_LEAD_SAYS = re.compile(rf"^(?P<who>[^:;?]{{2,70}}?)\s+(?:{_HEAD_SAY})\b", re.I)
_LEAD_COLON = re.compile(r"^(?P<who>[^:]{2,50}):\s+\S")


def find_headline_attribution(headline: str, *, strict: bool = False) -> Attribution:
    """The source a headline names by headline convention, else what ``find_attribution`` finds.

    Expects the publisher suffix already removed (see ``pipeline.claims.headline``): a trailing
    "– Seoul" read here is a source. ``strict`` (non-English headlines) refuses lone unknown
    capitalised words as speakers, since a topic label sits in the same place."""
    text = headline.strip()
    if m := (_TRAIL_SAYS.search(text) or _TRAIL_SAYS_INV.search(text)):
        if att := _headline_att(m.group("who"), strict=strict):
            return att
    for pattern in (_TRAIL_COLON, _TRAIL_DASH):
        m = pattern.search(text)
        if m and _looks_like_source(m.group("who").strip()) and (att := _headline_att(m.group("who"),
                                                                                      strict=strict)):
            return att
    lead = text
    if (m := _LEAD_COLON.match(text)) and len(m.group("who").split()) <= 4:
        who = m.group("who").strip()
        quoted = who[:1] in "‘'\"“"
        if not quoted and _looks_like_source(who) and (att := _headline_att(who, strict=True)):
            return att
        lead = text[m.end() - 1:]  # "‘Nonsense’: Putin denies ...": the speaker follows the label
    if (m := _LEAD_SAYS.match(lead)) and len(m.group("who").split()) <= 7 \
            and (att := _headline_att(m.group("who"), strict=strict)):
        return att
    return find_attribution(text)
