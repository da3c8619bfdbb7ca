"""Claim documents: their ids, how they are built from an article's candidates, and the typed view.

A claim's id is a hash of the article id and the normalised sentence (or headline) text, so the
same sentence of the same article is always the same document, however often extraction runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.claims.attribution import Attribution
from pipeline.claims.candidates import ClaimCandidate
from pipeline.claims.figures import Figure
from pipeline.timefmt import iso_utc

__all__ = ["ORIGINS", "Claim", "build_claim_docs", "claim_id", "normalise_text"]

ORIGINS = ("headline", "body")


@dataclass(frozen=True)
class Claim:
    """The typed view of a claim document (what novelty and alerts read back)."""

    id: str
    text: str
    article_id: str
    outlet: str
    motives: list[str]
    score: float
    figures: list[Figure]
    attribution: Attribution
    hedged: bool
    outlets: list[str] = field(default_factory=list)
    url: str | None = None
    title: str | None = None
    first_seen: str | None = None
    embedding: list[float] | None = None
    origin: str = "body"

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Claim:
        att = doc.get("attribution") or {}
        return cls(
            id=doc["id"], text=doc["text"], article_id=doc.get("article_id", ""),
            outlet=doc.get("outlet") or "", motives=list(doc.get("motives") or []),
            score=float(doc.get("score") or 0.0),
            figures=[Figure.from_dict(f) for f in doc.get("figures") or []],
            attribution=Attribution(speaker=att.get("speaker"), organisation=att.get("organisation"),
                                    kind=att.get("kind") or "none", text=att.get("text")),
            hedged=bool(doc.get("hedged")), outlets=list(doc.get("outlets") or []),
            url=doc.get("url"), title=doc.get("title"), first_seen=doc.get("first_seen"),
            embedding=doc.get("embedding"), origin=doc.get("origin") or "body",
        )


def normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def claim_id(article_id: str, text: str) -> str:
    """Deterministic: the same sentence in the same article is always the same claim."""
    raw = f"{article_id}\x00{normalise_text(text)}".encode()
    return hashlib.blake2b(raw, digest_size=10).hexdigest()


def build_claim_docs(article: dict[str, Any], candidates: Sequence[ClaimCandidate], *,
                     now: datetime) -> list[dict[str, Any]]:
    """Claim documents (without embeddings) for one article's claim sentences. The id hashes the
    claim text, so a headline claim and a body claim never collide unless their text is equal
    (and then ``merge_headline`` already kept one). The link is the article's canonical URL: the
    feed's link may carry tracking parameters (``utm_*``) that a reader should not be sent with."""
    outlet = article.get("source_id") or article.get("source_name") or "unknown"
    outlets = [o for o in article.get("outlets") or [] if o]
    if outlet not in outlets:
        outlets.insert(0, outlet)
    seen = article.get("fetched") or article.get("published") or iso_utc(now)
    docs = []
    for cand in candidates:
        relevant = {m: s for m, s in cand.motive_scores.items() if m in cand.motives}
        score = max(relevant.values(), default=float(article.get("topic_score") or 0.0))
        docs.append({
            "id": claim_id(article["id"], cand.text),
            "article_id": article["id"], "source_id": article.get("source_id"),
            "source_name": article.get("source_name"), "outlet": outlet, "outlets": outlets,
            "url": article.get("canonical_url") or article.get("url"), "title": article.get("title"),
            "text": cand.text, "position": cand.position, "first_seen": seen,
            "published": article.get("published"), "language": article.get("language"),
            "on_topic": bool(article.get("on_topic", True)),
            "motives": cand.motives, "motive_scores": relevant, "score": round(score, 4),
            "attribution": cand.attribution.as_dict(),
            "figures": [f.as_doc() for f in cand.figures],
            "has_figures": bool(cand.figures), "hedged": bool(cand.hedges), "hedges": cand.hedges,
            "novelty_checked": False, "extracted_at": iso_utc(now), "origin": cand.origin,
        })
    return docs
