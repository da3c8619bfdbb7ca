"""What a claim says, read lightly: its content words and its event signature, for novelty.

Content words are lower-cased words without stop words, with the names news uses interchangeably
(Pyongyang, the DPRK, North Korea) mapped to one token. An event signature is the action class
(sign, ratify, summon, deploy, kill, ...), the agent of each action, the source of the statement,
the places and the objects (troops, workers, satellites, drones, ...) of a sentence, matched on
lower-cased text in English and in the German, Polish and Vietnamese forms met in the feeds.
Dates: a claim's date is its article's publication date, else when it was first seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["content_words", "lexical_similarity", "EventSignature", "event_signature", "event_conflict",
           "event_match", "event_match_across_languages", "sources_compatible", "days_apart", "claim_date"]


_STOP = frozenset("""
a an the and or but of to in on at by for with from as is are was were be been being has have had
it its this that these those their there which who whom whose what when where while than then so
such also not no nor into over under about up down out more most less least very just only said
says say told according reported report reports would could may might will shall should can do does
did his her he she they them we us our you your i per each every some any all both other another
since after before during until last this week month year years months weeks day days monday
tuesday wednesday thursday friday saturday sunday s t
""".split())
_WORD = re.compile(r"[a-z][a-z'’-]+")
# Names and near-synonyms news uses interchangeably, mapped to one token before comparing words.
_CANON = [(re.compile(p), r) for p, r in (
    (r"\bpyongyang\b|\bdprk\b|\bnorth korea(?:n|ns)?\b|\bnorth's\b|\bkim jong[ -]un\b|\bkim\b", " nk "),
    (r"\bmoscow\b|\bkremlin\b|\brussia(?:n|ns)?\b|\bputin\b", " ru "),
    (r"\bseoul\b|\bsouth korea(?:n|ns)?\b", " sk "),
    (r"\bkyiv\b|\bukrain(?:e|ian|ians)\b", " ua "),
    (r"\bwashington\b|\bu\.s\.|\bus\b|\bpentagon\b|\bdefense department\b|\bamerican\b", " usa "),
    (r"\b(?:troops?|soldiers?|forces|servicemen|personnel|fighters)\b", " troop "),
    (r"\b(?:sent|send|sends|sending|dispatch(?:ed|es|ing)?|deploy(?:ed|s|ing|ment)?|shipped)\b", " send "),
    (r"\b(?:spy agency|intelligence service|intelligence agency|nis)\b", " intel "),
    (r"\b(?:killed|died|dead|deaths|casualties|losses|wounded|injured)\b", " casualty "),
    (r"\b(?:captured|prisoners? of war|pows?|captive)\b", " pow "),
    (r"\b(?:pact|treaty|alliance)\b", " treaty "),
    (r"\b(?:defen[cs]e|military|militarily)\b", " military "),
)]


def content_words(text: str) -> set[str]:
    low = text.lower().replace("’", "'")
    for pattern, token in _CANON:
        low = pattern.sub(token, low)
    words = {w.strip("'’-") for w in _WORD.findall(low)}
    return {w[:-1] if w.endswith("s") and len(w) > 4 else w for w in words if w and w not in _STOP}


def lexical_similarity(a: str, b: str) -> float:
    """Jaccard overlap of content words; numbers are left out so a new figure does not hide a
    restatement."""
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


# --- events: who did what, where, according to whom ------------------------------------------
# Patterns are matched on lower-cased text. English first, with the German, Polish and
# Vietnamese forms met in the feeds, so cross-lingual repeats keep their event.
_ACTORS = [(a, re.compile(p)) for a, p in (
    ("nk", r"north korea|pyongyang|\bdprk\b|\bkim\b|kim jong|kim dzong|kore(?:a|i|ę) północn|"
           r"północnokorea|nordkorea|pjöngjang|triều tiên|bình nhưỡng|\bthe north\b|\bnorth\b(?= accused)"),
    ("ru", r"russia|moscow|kremlin|putin|\brosj|moskw|russland|russisch|\bkreml|\bnga\b|lavrov|shoigu"),
    ("ua", r"ukrain|kyiv|zelensk|zełensk|selenskyj|kij[oó]w|budanov|budanow"),
    ("sk", r"south korea|seoul|hàn quốc|korea południow|południowokorea|südkorea|\bnis\b"),
    ("usa", r"\bu\.s\.|united states|washington|pentagon|\baustin\b|blinken|\bmỹ\b|stany zjednoczone"),
    ("cn", r"china|beijing|\bchin[ay]\b|trung quốc|peking"),
    ("nato", r"\bnato\b"),
)]
# Action classes. Within a family, two claims whose sets differ report different stages of a
# story (a treaty signed / ratified / in force; soldiers captured / offered in a swap; troops
# sent / pulled back), so they are different events.
_ACTIONS = [(a, f, re.compile(p)) for a, f, p in (
    ("sign", "treaty", r"\bsign(?:s|ed|ing)?\b|unterzeichn|besiegel|podpisa|\bký\b"),
    ("ratify", "treaty", r"ratif|ratyfik"),
    ("in_force", "treaty", r"into force|in kraft|w życie|có hiệu lực"),
    ("summon", "summon", r"summon|wezwa|einbestell|triệu tập"),
    ("deploy", "force", r"\bsen[dt]s?\b|sending|deploy|dispatch|shipp?(?:ed|ing)\b|wysła|entsand|"
                        r"entsend|\bschick|gửi quân|điều quân"),
    ("withdraw", "force", r"withdr[ae]w|pull(?:ed|s|ing)? (?:out|back)|zniknęli|wycofa|abzieh|abgezogen|"
                          r"rút quân"),
    ("capture", "pow", r"captur|prisoner|\bpows?\b|niewol|pojma|gefangen|bắt giữ|tù binh"),
    ("swap", "pow", r"\bswap|exchange (?:them|for|of)|prisoner exchange|w zamian|wymian|austausch|"
                    r"trao đổi"),
    ("launch", "launch", r"launch|test-fir|wystrzeli|abgefeuert|phóng"),
    # "attack" alone is left out: "aid each other if either is attacked" reports no attack
    ("shell", "attack", r"\bshell(?:s|ed|ing)\b|\bfir(?:e|es|ed|ing) (?:on|at)\b|bombard|ostrzel|beschoss|"
                        r"beschuss|pháo kích"),
    ("kill", "casualty", r"killed|\bdied\b|\bdead\b|deaths|casualt|losses|wounded|zginęł|zginęli|\branny|"
                         r"rannych|straciła|gestorben|getötet|thiệt mạng|tử vong"),
)]
_FAMILY = {action: family for action, family, _ in _ACTIONS}
# The agent matters for state acts only: "Russian senators ratify" vs "North Korea ratifies".
_AGENT_ACTIONS = frozenset({"ratify", "summon"})
# Where forces go matters more than who sends them ("Russia to deploy North Korean troops" and
# "North Korea sent troops" are one story; troops sent to Russia and personnel sent to Ukraine are
# two): the actor named just after the verb behind "to", "into", "nach", "do", "sang".
_DIRECTED_ACTIONS = frozenset({"deploy"})
_TOWARDS = re.compile(r"(?:\bto|\binto|\bnach|\bdo|\bsang|\btới)\s+(?:the\s+)?$")
_TOWARDS_REACH = 60  # characters after the verb: "sent about 1,500 special forces troops to Russia"
# Who makes the statement. "ua" alone is a generic Ukrainian source, compatible with a named one.
_SOURCES = [(s, re.compile(p)) for s, p in (
    ("ua/zelensky", r"zelensk|zełensk|selenskyj"),
    ("ua/hur", r"budanov|budanow|\bhur\b|ukrain\w* military intelligence|military intelligence"),
    ("ua", r"(?:ukraine|kyiv)(?:'s)? (?:says|said|official|warns)|kyiv said|ukrainian officials?"),
    ("sk", r"spy agency|(?:south korea\w*|seoul)(?:'s)? (?:national )?(?:intelligence|spy)|\bnis\b|"
           r"południowokoreańska agencja|seoul says|"
           r"(?:–|-|:) seoul\b|says seoul|south korea(?:'s)? (?:says|said|has said)|says south korea|"
           r"south korea\w*(?:'s)? (?:officials?|defen[cs]e|military|authorities|government|joint chiefs)|"
           r"officials in seoul"),
    ("usa", r"pentagon|\baustin\b|blinken|(?:u\.s\.|washington)(?:'s)? (?:says|confirms|official)|"
            r"u\.s\. and south korean officials|"
            r"says washington|united states said|defen[cs]e secretary"),
    ("ru", r"kremlin (?:says|said)|russia says|russia(?:'s)? (?:un )?envoy|đại sứ nga|"
           r"russia\w*(?:'s)? foreign ministry"),
    ("nk", r"\bkcna\b|state media|(?:north korea|pyongyang) (?:says|confirms|acknowledg)"),
    ("nato", r"nato (?:chief|says|confirms?)"),
)]
_PLACES = [(p, re.compile(r)) for p, r in (
    ("kursk", r"kursk|kursk|kurski|kurskim"), ("donetsk", r"donetsk|donezk|doniec|donbas"),
    ("far_east", r"far east|vladivostok|dalek\w* wsch|fernen osten"),
    # Pyongyang is also the name for the government, so only its use as a place counts.
    ("pyongyang", r"(?:\bin|\bto|\bat|\binto|nach|\bw|tại) (?:pyongyang|pjöngjang|pjongjangu|bình nhưỡng)|"
                  r"pyongyang summit"),
    ("beijing", r"beijing|peking|bắc kinh|pekin"), ("wonsan", r"wonsan"), ("vietnam", r"vietnam|việt nam"),
)]


# What the action is about. Two claims about disjoint objects (troops vs engineers; a satellite vs
# a submarine reactor; warheads vs fighter jets) report different things even in the same words.
_OBJECTS = [(o, re.compile(p)) for o, p in (
    ("troops", r"troops?\b|soldiers?|\bforces\b|servicemen|personnel|fighters\b|żołnierz|wojsk|soldat|"
               r"truppen|binh sĩ|quân đội"),
    ("workers", r"engineers?|workers?|builders?|deminers?|sappers?|labou?rers?|robotnik|arbeiter"),
    ("munitions", r"shells?\b|ammunition|artillery|munitions|rockets?\b|pocisk|munition"),
    ("weapons", r"weapons?|\barms\b|broń|broni|waffen|vũ khí"),
    ("nuclear", r"nuclear|warheads?|jądrow|atomwaffen|hạt nhân"),
    ("space", r"satellite|satelit|vệ tinh"),
    ("drones", r"drones?\b|\buavs?\b|unmanned aerial|drohnen?|dron(?:y|ów)\b|máy bay không người lái"),
    ("naval", r"submarine|okręt podwodn|u-boot|tàu ngầm"),
    ("aircraft", r"fighter jets?|\bjets?\b|air defen[cs]e|aircraft|myśliw"),
    ("money", r"\$|dollars|\bmoney\b|\bcash\b|\bpaid\b|\bpays?\b|payment"),
    ("treaty", r"treaty|\bpact\b|agreement|partnership|abkommen|vertrag|umow|traktat|hiệp ước"),
)]


@dataclass(frozen=True)
class EventSignature:
    """What a claim reports, in classes coarse enough to survive paraphrase and translation."""

    actors: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    agents: frozenset[tuple[str, str]] = frozenset()  # (action, actor) for state acts
    destinations: frozenset[str] = frozenset()  # the actors forces are sent to
    sources: frozenset[str] = frozenset()
    places: frozenset[str] = frozenset()
    objects: frozenset[str] = frozenset()
    one_sentence: bool = True  # a headline or one sentence: its acts are one report


_SENTENCE_END = re.compile(r"[.!?][\"'”’)]*\s+\S")
# An act named in a time clause is the background of the report, not its event: "fired on the
# troops for the first time since they were deployed" reports shelling, not a deployment.
_BACKGROUND = re.compile(r"\b(?:since|after|before|when|once|seit|nachdem|od kiedy|odkąd|kể từ khi)"
                         r"(?:\s+[\w']+){0,3}\s+$")


def event_signature(text: str) -> EventSignature:
    low = text.lower().replace("’", "'")
    actor_hits = sorted((m.start(), a) for a, rx in _ACTORS for m in rx.finditer(low))
    actions, agents, destinations = set(), set(), set()
    for action, _family, rx in _ACTIONS:
        for m in rx.finditer(low):
            if _BACKGROUND.search(low, max(0, m.start() - 40), m.start()):
                continue
            actions.add(action)
            if action in _DIRECTED_ACTIONS:
                destinations.update(a for pos, a in actor_hits if m.end() <= pos <= m.end() + _TOWARDS_REACH
                                    and _TOWARDS.search(low, max(m.end(), pos - 12), pos))
            if action in _AGENT_ACTIONS:
                # The actor named last before the verb in the same clause is its agent.
                clause_start = max(low.rfind(c, 0, m.start()) for c in ".;|")
                before = [a for pos, a in actor_hits if clause_start < pos < m.start()]
                if before:
                    agents.add((action, before[-1]))
    sources = {s for s, rx in _SOURCES if rx.search(low)}
    if any(s.startswith("ua/") for s in sources):
        sources.discard("ua")  # a named Ukrainian source is more precise than "Ukraine says"
    return EventSignature(frozenset(a for _, a in actor_hits), frozenset(actions), frozenset(agents),
                          frozenset(destinations), frozenset(sources),
                          frozenset(p for p, rx in _PLACES if rx.search(low)),
                          frozenset(o for o, rx in _OBJECTS if rx.search(low)),
                          _SENTENCE_END.search(text.strip()) is None)


def sources_compatible(a: frozenset[str], b: frozenset[str]) -> bool | None:
    """None when either side names no source; else whether some source is the same (a generic
    "Ukraine says" matches a named Ukrainian source)."""
    if not a or not b:
        return None
    return any(x == y or x.startswith(y + "/") or y.startswith(x + "/") for x in a for y in b)


def event_conflict(a: EventSignature, b: EventSignature) -> str | None:
    """Why two claims cannot report the same event, or None when nothing contradicts it."""
    fam_a, fam_b = {_FAMILY[n] for n in a.actions}, {_FAMILY[n] for n in b.actions}
    for family in sorted(fam_a & fam_b):
        left = {n for n in a.actions if _FAMILY[n] == family}
        right = {n for n in b.actions if _FAMILY[n] == family}
        if left != right:
            return f"different {family} actions: {'/'.join(sorted(left))} vs {'/'.join(sorted(right))}"
    if a.one_sentence and b.one_sentence:
        # One sentence reports one thing: troops sent and troops shelled are two events even in
        # the same words (a longer text may name other acts in passing).
        if fam_a and fam_b and not fam_a & fam_b:
            return f"different kinds of events: {'/'.join(sorted(fam_a))} vs {'/'.join(sorted(fam_b))}"
    for action in _AGENT_ACTIONS:
        left = {who for act, who in a.agents if act == action}
        right = {who for act, who in b.agents if act == action}
        if left and right and not left & right:
            return f"{action} by different actors: {'/'.join(sorted(left))} vs {'/'.join(sorted(right))}"
    if a.destinations and b.destinations and not a.destinations & b.destinations:
        return f"sent to different countries: {'/'.join(sorted(a.destinations))} vs " \
               f"{'/'.join(sorted(b.destinations))}"
    if a.objects and b.objects and not a.objects & b.objects:
        return f"different objects: {'/'.join(sorted(a.objects))} vs {'/'.join(sorted(b.objects))}"
    if a.places and b.places and not a.places & b.places:
        return f"different places: {'/'.join(sorted(a.places))} vs {'/'.join(sorted(b.places))}"
    return None


def event_match(a: EventSignature, b: EventSignature) -> bool:
    """Both claims name a common action, a common object and at least two common actors (and no
    two different places); ``event_conflict`` has already ruled out different stages."""
    return bool(a.actions & b.actions and a.objects & b.objects and len(a.actors & b.actors) >= 2
                and (not a.places or not b.places or a.places & b.places))


def event_match_across_languages(a: EventSignature, b: EventSignature) -> bool:
    """``event_match`` for claims in two languages, where the evidence words would give is
    missing: a common action and object, and two common actors *or* a common place, where the
    source of a statement counts as an actor ("Ukraine's military intelligence" names Ukraine
    even where the actor patterns of one language miss it)."""
    def actors(sig: EventSignature) -> set[str]:
        return set(sig.actors) | {s.partition("/")[0] for s in sig.sources}

    if not (a.actions & b.actions and a.objects & b.objects):
        return False
    if a.places and b.places and not a.places & b.places:
        return False
    return len(actors(a) & actors(b)) >= 2 or bool(a.places & b.places)


def parse_date(value: Any) -> datetime | None:
    """An ISO 8601 date or instant as an aware datetime (UTC when it names no zone); None when
    missing or unreadable."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(raw[:10])
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def days_apart(a: Any, b: Any) -> float | None:
    """Days between two ISO dates (either order); None when either is missing or unreadable."""
    da, db = parse_date(a), parse_date(b)
    if da is None or db is None:
        return None
    return abs((da - db).total_seconds()) / 86400.0


def claim_date(claim: dict[str, Any]) -> str | None:
    """When the claim was *published* (the article's date), else when we first saw it. Events are
    compared by publication: a feed replayed today still reports June's summit in June."""
    return claim.get("published") or claim.get("first_seen")
