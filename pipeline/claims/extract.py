"""Claims from classified articles: which sentences are claims, and the claim documents.

A claim is a sentence that asserts something checkable about the topic: it names North Korea's
deployment (or carries a motive label) *and* it has a figure, a named source or a motive. The
headline is a claim candidate too, by its own rule (``pipeline.claims.headline``): feed items often
carry the figure and the source only there. A headline that states the same claim as a body
sentence is merged into one claim; each claim document says its ``origin`` (headline or body). The
selection is deliberately lexical and cheap (the classifier already ran); what makes a claim
useful downstream is its attribution, its normalised figures and its hedges, computed here once.

Writes are idempotent: a claim's id is a hash of the article id and the sentence (or headline) text, claims
are created with ``op_type=create`` (a re-run never resets a claim that novelty already
processed), and the article is marked ``claims_extracted`` only after all of its claims are in.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pipeline.claims.attribution import Attribution, find_attribution, find_hedges
from pipeline.claims.figures import Figure, parse_figures
from pipeline.claims.headline import HEADLINE_POSITION, merge_headline, read_headline
from pipeline.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["Claim", "ClaimCandidate", "claim_id", "select_claims", "read_sentence", "build_claim_docs",
           "article_claims", "headline_claim", "extract_pending_claims", "ORIGINS"]

TOPIC = re.compile(
    r"\b(?:North Korean?s?|N\.\s?Korean?|Pyongyang|DPRK|Kim Jong[ -]?[Uu]n|Korean People's Army|"
    r"Nordkorea\w*|Pj[öo]ngjang|Triều Tiên|Bình Nhưỡng|Kim Jong-un|"
    r"Kore[iaąę] Północn\w*|[Pp]ółnocnokoreań\w*|Pjongjang\w*|Kim Dzong Un\w*|KRLD|"
    r"Corée du Nord|[Nn]ord-coréen\w*)\b")
MIN_WORDS, MAX_WORDS = 6, 90
# A feed summary is a few sentences, often cut off without a full stop; a page's unterminated
# lines are captions and subheads, so only short texts may end without one.
SUMMARY_SENTENCES = 3
ORIGINS = ("headline", "body")
_TERMINAL = re.compile(r"[.!…][\"”’')\]]*$")


class SentenceClassifier(Protocol):
    def classify_sentences(self, sentences: list[str]) -> list[Any]: ...


@dataclass(frozen=True)
class ClaimCandidate:
    """A sentence that qualifies as a claim, with what was read from it."""

    position: int
    text: str
    figures: list[Figure]
    attribution: Attribution
    hedges: list[str]
    motives: list[str] = field(default_factory=list)
    motive_scores: dict[str, float] = field(default_factory=dict)
    origin: str = "body"  # one of ORIGINS


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


def _sentence_motives(result: Any) -> tuple[list[str], dict[str, float]]:
    if result is None:
        return [], {}
    motives = list(getattr(result, "motives", None) or [])
    scores = dict(getattr(result, "scores", None) or {})
    return motives, {k: float(v) for k, v in scores.items()}


def select_claims(sentences: Sequence[str], results: Sequence[Any] | None = None) -> list[ClaimCandidate]:
    """The claim sentences among ``sentences`` (in order). ``results`` are the classifier's
    SentenceResults for the same sentences (or None when no motives are known)."""
    out: list[ClaimCandidate] = []
    summary = len(sentences) <= SUMMARY_SENTENCES
    for position, sentence in enumerate(sentences):
        text = sentence.strip()
        words = len(text.split())
        if words < MIN_WORDS or words > MAX_WORDS or text.endswith("?") \
                or not (summary or _TERMINAL.search(text)):
            continue  # too short, too long, a question, or a caption/subhead of a page
        motives, scores = _sentence_motives(results[position] if results else None)
        topical = bool(TOPIC.search(text))
        if not (topical or motives):
            continue
        candidate = read_sentence(position, text, motives, scores)
        # Checkable: a figure or a named source; a bare motive sentence only when it names the actor.
        if candidate.figures or candidate.attribution.kind != "none" or (motives and topical):
            out.append(candidate)
    return out


def read_sentence(position: int, text: str, motives: Sequence[str] = (),
                  scores: dict[str, float] | None = None) -> ClaimCandidate:
    """Figures, attribution and hedges of one sentence (no selection)."""
    return ClaimCandidate(position, text, parse_figures(text), find_attribution(text), find_hedges(text),
                          list(motives), dict(scores or {}))


def _outlet_name(article: dict[str, Any]) -> str | None:
    return article.get("source_name") or article.get("outlet") or article.get("source_id")


def headline_claim(article: dict[str, Any], result: Any = None, *, topical: bool) -> ClaimCandidate | None:
    """The headline as a claim candidate, or None when the rule in ``pipeline.claims.headline``
    says it is none (or the article never names the actor: ``topical``)."""
    head = read_headline(article.get("title") or "", outlet=_outlet_name(article),
                         language=article.get("language"))
    if not (head.claim and topical):
        return None
    motives, scores = _sentence_motives(result)
    return ClaimCandidate(HEADLINE_POSITION, head.text, head.figures, head.attribution, head.hedges,
                          motives, scores, origin="headline")


def article_claims(article: dict[str, Any], classifier: SentenceClassifier) -> list[ClaimCandidate]:
    """All claim candidates of one article: body sentences by ``select_claims`` and the headline by
    its own rule, merged when they state the same claim. The headline is classified in the same
    batch as the body (one forward pass). Raises ValueError when the classifier's answer does not
    match the sentences (the caller reports the article as failed)."""
    from pipeline.classify.sentences import split_sentences

    title = (article.get("title") or "").strip()
    sentences = split_sentences(article.get("text") or "")
    topical = bool(TOPIC.search(title) or any(TOPIC.search(s) for s in sentences))
    head_text = ""
    if title and topical:
        head = read_headline(title, outlet=_outlet_name(article), language=article.get("language"))
        head_text = head.text if head.claim else ""
    batch = sentences + ([head_text] if head_text else [])
    results = classifier.classify_sentences(batch) if batch else []
    if len(results) != len(batch):
        raise ValueError(f"classifier returned {len(results)} results for {len(batch)} sentences")
    body = select_claims(sentences, results[:len(sentences)])
    head = headline_claim(article, results[-1], topical=topical) if head_text else None
    return merge_headline(head, body)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_claim_docs(article: dict[str, Any], candidates: Sequence[ClaimCandidate], *,
                     now: datetime) -> list[dict[str, Any]]:
    """Claim documents (without embeddings) for one article's claim sentences. The id hashes the
    claim text, so a headline claim and a body claim never collide unless their text is equal
    (and then ``merge_headline`` already kept one)."""
    outlet = article.get("source_id") or article.get("source_name") or "unknown"
    outlets = [o for o in article.get("outlets") or [] if o]
    if outlet not in outlets:
        outlets.insert(0, outlet)
    seen = article.get("fetched") or article.get("published") or _iso(now)
    docs = []
    for cand in candidates:
        relevant = {m: s for m, s in cand.motive_scores.items() if m in cand.motives}
        score = max(relevant.values(), default=float(article.get("topic_score") or 0.0))
        docs.append({
            "id": claim_id(article["id"], cand.text),
            "article_id": article["id"], "source_id": article.get("source_id"),
            "source_name": article.get("source_name"), "outlet": outlet, "outlets": outlets,
            "url": article.get("url") or article.get("canonical_url"), "title": article.get("title"),
            "text": cand.text, "position": cand.position, "first_seen": seen,
            "published": article.get("published"), "language": article.get("language"),
            "on_topic": bool(article.get("on_topic", True)),
            "motives": cand.motives, "motive_scores": relevant, "score": round(score, 4),
            "attribution": cand.attribution.as_dict(),
            "figures": [f.as_doc() for f in cand.figures],
            "has_figures": bool(cand.figures), "hedged": bool(cand.hedges), "hedges": cand.hedges,
            "novelty_checked": False, "extracted_at": _iso(now), "origin": cand.origin,
        })
    return docs


def _pending_articles_query() -> dict[str, Any]:
    return {"bool": {
        "filter": [{"term": {"status": "classified"}}, {"term": {"on_topic": True}}],
        "must_not": [{"exists": {"field": "duplicate_of"}}, {"term": {"claims_extracted": True}},
                     {"term": {"language_supported": False}}],
    }}


def extract_pending_claims(settings: Settings, es: Any = None, *, now: datetime | None = None,
                           classifier: SentenceClassifier | None = None,
                           limit: int | None = None) -> dict[str, Any]:
    """Extract claims from classified, on-topic, non-duplicate articles not yet processed.

    Returns counts for XCom: articles, claims, created, existing (already there from an earlier
    run), failed (per-article errors with reasons), and the article and claim ids.
    Raises ServiceUnavailable when Elasticsearch is down (nothing is marked then).
    """
    from elasticsearch import helpers

    from pipeline.es.schema import ensure_missing_indices
    from pipeline.classify.backends import get_embedder
    from pipeline.es.bulk import bulk_write
    from pipeline.es.client import build_client, mapped_errors

    es = es or build_client(settings)
    now = now or datetime.now(UTC)
    articles_alias = settings.index("articles")
    with mapped_errors("reading articles pending claim extraction"):
        ensure_missing_indices(es, settings, ["claims"])
        if not es.indices.exists_alias(name=articles_alias):
            return {"articles": 0, "claims": 0, "created": 0, "existing": 0, "failed": [],
                    "article_ids": [], "claim_ids": []}
        articles = []
        for hit in helpers.scan(es, index=articles_alias, query={"query": _pending_articles_query()},
                                size=200, _source_excludes=["evidence"]):
            articles.append(hit["_source"] | {"id": hit["_source"].get("id") or hit["_id"]})
            if limit and len(articles) >= limit:
                break
    if classifier is None and articles:  # no pending article: do not pay for loading the model
        from pipeline.classify import get_classifier

        classifier = get_classifier()

    failed: list[dict[str, Any]] = []
    docs_by_article: dict[str, list[dict[str, Any]]] = {}
    for article in articles:
        try:
            candidates = article_claims(article, classifier)
        except ValueError as exc:
            failed.append({"id": article["id"], "error": str(exc)})
            continue
        docs_by_article[article["id"]] = build_claim_docs(article, candidates, now=now)
    all_docs = [d for docs in docs_by_article.values() for d in docs]
    if all_docs:
        vectors = get_embedder("exact").embed([d["text"] for d in all_docs])
        for doc, vec in zip(all_docs, vectors, strict=True):
            doc["embedding"] = [round(float(x), 6) for x in vec]
    report = bulk_write(es, settings.index("claims"), all_docs, op_type="create", refresh=True)
    bad_claims = {e["id"]: e for e in report.errors}
    done = []
    for article_id, docs in docs_by_article.items():
        errors = [bad_claims[d["id"]] for d in docs if d["id"] in bad_claims]
        if errors:
            failed.append({"id": article_id, "error": f"{len(errors)} claim(s) not written: "
                           f"{errors[0].get('reason')}"})
        else:
            done.append(article_id)
    marks = bulk_write(es, articles_alias, [{"id": a, "claims_extracted": True} for a in done],
                       op_type="update", refresh=True)
    failed.extend({"id": e["id"], "error": f"not marked: {e.get('reason')}"} for e in marks.errors)
    for item in failed:
        log.warning("claims: article %s failed: %s", item["id"], item["error"])
    return {
        "articles": len(articles), "claims": len(all_docs), "created": report.created,
        "existing": report.conflicts, "failed": failed,
        "article_ids": done, "claim_ids": [d["id"] for d in all_docs if d["id"] not in bad_claims],
    }
