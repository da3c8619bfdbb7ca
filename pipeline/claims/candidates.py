"""Which sentences of a classified article are claims, and what is read from each.

A claim is a sentence that asserts something checkable about the topic: it names North Korea's
deployment (or carries a motive label) *and* it has a figure, a named source or a motive. The
headline is a claim candidate too, by its own rule (``pipeline.claims.headline``): feed items often
carry the figure and the source only there. A headline that states the same claim as a body
sentence is merged into one claim, whose ``origin`` says which one it came from. The selection is
deliberately lexical and cheap (the classifier already ran); what makes a claim useful downstream
is its attribution, its normalised figures and its hedges, computed here once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.claims.attribution import Attribution, find_attribution, find_hedges
from pipeline.claims.figures import Figure, parse_figures
from pipeline.claims.headline import HEADLINE_POSITION, merge_headline, read_headline
from pipeline.language import is_english

__all__ = ["TOPIC", "ClaimCandidate", "SentenceClassifier", "article_claims", "headline_claim",
           "read_sentence", "select_claims"]

TOPIC = re.compile(
    r"\b(?:North Korean?s?|N\.\s?Korean?|Pyongyang|DPRK|Kim Jong[ -]?[Uu]n|Korean People's Army|"
    r"Nordkorea\w*|Pj[öo]ngjang|Triều Tiên|Bình Nhưỡng|Kim Jong-un|"
    r"Kore[iaąę] Północn\w*|[Pp]ółnocnokoreań\w*|Pjongjang\w*|Kim Dzong Un\w*|KRLD|"
    r"Corée du Nord|[Nn]ord-coréen\w*|КНДР|[Сс]еверн\w* Коре\w*|[Сс]еверокорейск\w*|"
    r"[Пп]івнічн\w* Коре\w*|[Пп]івнічнокорейськ\w*|Ким Чен [Ыы]н\w*|Кім Чен Ин\w*)\b|"
    r"북한|김정은|北朝鮮|金正恩|朝鲜|朝鮮民主主義人民共和国")
MIN_WORDS, MAX_WORDS = 6, 90
# A feed summary is a few sentences, often cut off without a full stop; a page's unterminated
# lines are captions and subheads, so only short texts may end without one.
SUMMARY_SENTENCES = 3
_TERMINAL = re.compile(r"[.!…][\"”’')\]]*$")


class SentenceClassifier(Protocol):
    def classify_sentences(self, sentences: list[str], language: str | None = None) -> list[Any]: ...


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
    origin: str = "body"  # one of pipeline.claims.documents.ORIGINS


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
    results = classifier.classify_sentences(batch, language=article.get("language")) if batch else []
    if len(results) != len(batch):
        raise ValueError(f"classifier returned {len(results)} results for {len(batch)} sentences")
    body = select_claims(sentences, results[:len(sentences)])
    head = headline_claim(article, results[-1], topical=topical) if head_text else None
    english = is_english(article.get("language"))
    if head is not None and body and not english and not head.figures and head.attribution.kind == "none":
        # Without a verb lexicon for the language, a headline with neither a figure nor a source
        # may be a label ("Defeat at the front"); when the body has claims of its own, those
        # carry the article and the headline would only open a vague cluster of its own.
        head = None
    return merge_headline(head, body)
