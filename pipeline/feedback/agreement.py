"""How far readers agree with what the pipeline decided, from their one-click verdicts.

Every verdict is a label on a decision the pipeline already made and sent: "not on topic" says
the gate was wrong, "wrong motive" that the motives were, "not new" that novelty was, and
"useful" confirms all three. So the figures are precisions of the alerted decisions (readers
never see what was not alerted: recall needs the labelled corpus). A claim with conflicting
verdicts counts by the majority of its votes; a tie counts against the pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["reader_agreement", "wilson", "format_agreement"]


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson interval of a proportion (sound for the small counts feedback gives)."""
    if n == 0:
        return None
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)


def _share(hits: int, n: int) -> dict[str, Any]:
    return {"agree": hits, "n": n, "share": round(hits / n, 3) if n else None, "interval": wilson(hits, n)}


def reader_agreement(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """From ``feedback_labels`` rows: the share of judged claims readers found on topic, with the
    right motives, and new; overall and per motive, each with its 95% interval."""
    votes: dict[str, dict[str, int]] = {}
    motives: dict[str, list[str]] = {}
    for row in rows:
        votes.setdefault(row["claim_id"], {})[row["kind"]] = int(row.get("votes") or 1)
        motives.setdefault(row["claim_id"], list(row.get("motives") or []))

    def agrees(claim: str, against: str) -> bool:
        v = votes[claim]
        return v.get(against, 0) < sum(n for k, n in v.items() if k != against)

    claims = sorted(votes)
    with_motive = [c for c in claims if motives[c] and {"useful", "wrong_motive"} & set(votes[c])]
    per_motive: dict[str, dict[str, Any]] = {}
    for motive in sorted({m for c in with_motive for m in motives[c] if "." not in m}):
        mine = [c for c in with_motive if motive in motives[c]]
        per_motive[motive] = _share(sum(agrees(c, "wrong_motive") for c in mine), len(mine))
    return {
        "claims": len(claims),
        "on_topic": _share(sum(agrees(c, "not_on_topic") for c in claims), len(claims)),
        "motives": _share(sum(agrees(c, "wrong_motive") for c in with_motive), len(with_motive)),
        "new": _share(sum(agrees(c, "not_new") for c in claims), len(claims)),
        "per_motive": per_motive,
    }


def format_agreement(result: dict[str, Any]) -> str:
    def cell(s: dict[str, Any]) -> str:
        if not s["n"]:
            return "no verdicts"
        lo, hi = s["interval"]
        return f"{s['share']:.2f} [{lo:.2f}-{hi:.2f}] of {s['n']}"

    lines = [f"Readers' verdicts on {result['claims']} alerted claim(s) (precision of what was sent):",
             f"  on topic      {cell(result['on_topic'])}",
             f"  right motives {cell(result['motives'])}",
             f"  new           {cell(result['new'])}"]
    lines += [f"    {m:<24} {cell(s)}" for m, s in result["per_motive"].items()]
    return "\n".join(lines)
