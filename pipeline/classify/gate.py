"""The on-topic gate: is this article about North Korea's troops or weapons for Russia's war?

Decided first and separately from motives, with multilingual keywords from the taxonomy's
``topic`` section, so German and Vietnamese articles get a decision even though the motive model is
English-only. The signal is *co-occurrence density*: sentences where North Korea (actor) and
Russia or its war (partner) appear together, or within one sentence of each other with a
deployment word. Near-topic negatives fail it: Kursk news with no North Korea has no actor, a
North Korean missile test with no Russian link has no partner, and an article on other weapons
that mentions the North Korean soldiers once in thirty sentences has too low a density.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from pipeline.taxonomy import TopicTerms

# How much evidence makes a score: raw = DENSITY_WEIGHT * density + title bonus.
DENSITY_WEIGHT = 6.0
TITLE_BONUS = 0.9        # title names North Korea with Russia/troops and the body has the partner
TITLE_BOTH_BONUS = 0.4   # title names North Korea and Russia/Ukraine together
NEAR = 2  # sentences either side in which a partner mention links an actor + deployment sentence


@lru_cache(maxsize=32)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted({t.lower() for t in terms}, key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(re.escape(t) for t in alternatives) + r")(?![\w])")


def _terms(groups: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    # All languages at once: a mis-detected language must not blind the gate.
    return tuple(sorted({t for words in groups.values() for t in words}))


def _normalise(text: str) -> str:
    return text.lower().replace("’", "'").replace("‘", "'")


@dataclass(frozen=True)
class GateResult:
    on_topic: bool
    score: float
    cooccurring: int      # body sentences that count as co-mentions
    sentences: int
    title_hit: bool


def topic_gate(title: str, sentences: list[str], terms: TopicTerms) -> GateResult:
    """Score the article in [0, 1]; on topic when the score reaches ``terms.threshold``."""
    actor, partner, deploy = (_pattern(_terms(g)) for g in (terms.actor, terms.partner,
                                                             terms.deployment))
    flags = []
    for sentence in sentences:
        low = _normalise(sentence)
        flags.append((bool(actor.search(low)), bool(partner.search(low)), bool(deploy.search(low))))
    co = 0
    for i, (a, p, d) in enumerate(flags):
        near = flags[max(0, i - NEAR):i + NEAR + 1]
        if a and p:
            co += 1
        elif a and d and any(n[1] for n in near):
            co += 1
        elif p and d and any(n[0] for n in near):
            co += 1
    low_title = _normalise(title or "")
    ta, tp, td = (bool(x.search(low_title)) for x in (actor, partner, deploy))
    body_partner = any(f[1] for f in flags)
    density = co / max(len(sentences), 1)
    raw = DENSITY_WEIGHT * density
    title_hit = ta and (tp or td) and body_partner
    if title_hit:
        raw += TITLE_BONUS
    if ta and tp:
        raw += TITLE_BOTH_BONUS
    score = round(1.0 - math.exp(-raw), 4)
    return GateResult(score >= terms.threshold, score, co, len(sentences), title_hit)
