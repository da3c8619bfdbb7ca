"""How much a claim event matters to an analyst, as a score in [0, 1] with its reasons.

The parts are what a desk editor weighs when deciding whether to forward a line: who says it (a
named intelligence service or ministry over the outlet's own unattributed sentence), whether it
carries a checkable figure, whether it bears on a motive, whether it is news (new > update >
repeat; a status change is news about the cluster), and whether independent outlets carry it.
Hedging ("reportedly", "may") lowers it; a conditional or a question ("if the deployment reaches
...", "could Pyongyang ...?") is not a claim of fact, so it is scaled down hard rather than nudged.

The weights are stated, not learned: there are no analyst judgements to learn them from yet (the
feedback links in each email collect them). Each part is a separate line of the explanation, so a
reader who disagrees with a ranking sees why it happened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Importance", "importance", "conditional_or_question", "SOURCE_WEIGHTS", "EVENT_WEIGHTS"]

# Attribution kinds come from ``pipeline.claims.attribution`` (ATTRIBUTION_KINDS).
SOURCE_WEIGHTS = {"intelligence": 0.25, "official": 0.25, "military": 0.25, "state_media": 0.2,
                  "analyst": 0.1, "media": 0.1, "anonymous": 0.05}
EVENT_WEIGHTS = {"new": 0.15, "update": 0.12, "disputed": 0.15, "corroborated": 0.1, "repeat": 0.0}
BASE = 0.15
FIGURE = 0.15
MOTIVE = 0.1
CORROBORATED = 0.1   # two independent outlets
WIDELY = 0.05        # three or more, on top
HEDGED = -0.1
NOT_A_FACT = 0.35    # multiplier for a conditional or a question

_QUESTION_START = re.compile(
    r"^\s*(?:why|how|what|who|whom|whose|which|when|where|will|would|could|can|should|is|are|was|"
    r"were|does|do|did|has|have)\b", re.I)
_CONDITIONAL = re.compile(r"(?:^|[,;:(]\s*|\s)(?:if|unless|should it|were it|in case)\s", re.I)
_WOULD = re.compile(r"\b(?:would|could)\s+(?:be|come|amount|mean|reach|rise|cost|bring|total)\b", re.I)


@dataclass(frozen=True)
class Importance:
    score: float
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def why(self) -> str:
        """One line for the email: the reasons, most weighty first."""
        return "; ".join(self.reasons)


def conditional_or_question(text: str) -> str | None:
    """"question" or "conditional" when the sentence does not state a fact, else None.

    A conditional needs both an ``if``-clause and a ``would/could`` consequence or a leading
    ``If``: "troops if needed" alone is a plain report with a condition attached."""
    flat = text.strip().strip("\"'“”‘’«»")
    if flat.endswith("?") or (_QUESTION_START.match(flat) and "?" in flat):
        return "question"
    if re.match(r"^(?:if|unless|should)\b", flat, re.I):
        return "conditional"
    if _CONDITIONAL.search(flat) and _WOULD.search(flat):
        return "conditional"
    return None


def _source_reason(attribution: dict[str, Any]) -> tuple[float, str | None]:
    kind = (attribution or {}).get("kind") or "none"
    weight = SOURCE_WEIGHTS.get(kind, 0.0)
    if not weight:
        return 0.0, None
    who = (attribution.get("organisation") or attribution.get("speaker") or "").strip()
    label = kind.replace("_", " ")
    return weight, f"source: {who} ({label})" if who else f"source: {label}"


def importance(claim: dict[str, Any], event: str, *, independent_outlets: int = 1) -> Importance:
    """Score one claim event (``new``, ``update``, ``repeat``, ``corroborated``, ``disputed``).

    ``independent_outlets`` is the cluster's count after this claim joined it."""
    parts: list[tuple[float, str]] = []
    weight, reason = _source_reason(claim.get("attribution") or {})
    if reason:
        parts.append((weight, reason))
    else:
        parts.append((0.0, "no named source"))
    figures = claim.get("figures") or []
    if figures:
        shown = figures[0].get("text") or figures[0].get("kind") or "a figure"
        parts.append((FIGURE, f"figure: {shown}"))
    motives = [m for m in claim.get("motives") or [] if "." not in m] or list(claim.get("motives") or [])
    if motives:
        parts.append((MOTIVE, "motive: " + ", ".join(motives[:3])))
    parts.append((EVENT_WEIGHTS.get(event, 0.0), {"new": "new claim", "update": "updated figure",
                                                   "repeat": "repeat",
                                                   "corroborated": "now corroborated",
                                                   "disputed": "now disputed"}.get(event, event)))
    if independent_outlets >= 2:
        extra = WIDELY if independent_outlets >= 3 else 0.0
        parts.append((CORROBORATED + extra, f"{independent_outlets} independent outlets"))
    hedges = claim.get("hedges") or []
    if claim.get("hedged") or hedges:
        parts.append((HEDGED, "hedged: " + ", ".join(hedges[:2]) if hedges else "hedged"))
    score = BASE + sum(w for w, _ in parts)
    kind = conditional_or_question(str(claim.get("text") or ""))
    if kind:
        score *= NOT_A_FACT
        parts.append((-1.0, f"{kind}, not a statement of fact"))
    score = round(min(1.0, max(0.0, score)), 3)
    # Positive reasons by weight first, then what lowered the score.
    ordered = sorted(parts, key=lambda p: (p[0] <= 0, -abs(p[0])))
    return Importance(score, tuple(r for w, r in ordered if w != 0.0 or r == "no named source"))
