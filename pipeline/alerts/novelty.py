"""Is this claim new? Claim clusters, found by kNN over embeddings and confirmed by words and figures.

Why three signals: embeddings alone call "10,000 troops sent to Kursk" and "10,000 troops sent to
Donetsk" the same thing, and words alone miss paraphrases. A candidate cluster from Elasticsearch
kNN is accepted when the cosine is very high, or high enough *and* the content words overlap.
Figures then split "same claim" into a **repeat** (same or no comparable figure: corroboration, no
alert) and an **update** (same statement, different figure: alert, threaded under the first).

Events and time: two claims are the same only when they report the same *event*. A light
extraction (``event_signature``) finds the action class (sign, ratify, enter into force, summon,
deploy, withdraw, kill, capture, swap, ...), the agent of each action (the actor named just before
the verb: "Russian senators ratify" is not "North Korea ratifies"), the source of the statement
(Seoul's spy agency, Zelensky, Ukraine's military intelligence, the Pentagon, ...) and places.
Actions of one family that do not overlap (a treaty's signing vs its entry into force) or the same
action by different agents are different events. The publication dates must be close: beyond
``window_days`` the same kind of event is a new one (the summoning of an ambassador in June is not
the one in October), except a revised figure from the same source (``update_window_days``), which
is how casualty and troop estimates evolve. Figures that differ from *different* sources are two
claims (Seoul's 3,000 troops vs the Pentagon's 10,000), never a silent repeat. The window and
thresholds are chosen by cross-validation over labelled pairs (``pipeline.alerts.novelty_eval``).

Languages: MiniLM reads English only (two Polish sentences score high whatever they say, and
MiniLM vectors of two languages are unrelated), so an English claim finds English clusters by
MiniLM kNN (``embedding``), and every other pair (two languages, or one language not English) is
found by multilingual-e5 kNN (``embedding_xl``, same e5 build only). There words cannot confirm
anything, so the e5 cosine must be backed by the shared event or a shared figure, and every
other check applies.

Clusters themselves (outlets, figures, status) are kept by ``pipeline.alerts.clusters``; the
words and event signatures compared here are read by ``pipeline.alerts.signatures``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.alerts.clusters import (
    apply_claim,
    claim_event,
    new_cluster,
    recorded_event,
    source_label,
    status_event,
)
from pipeline.alerts.signatures import (
    claim_date,
    days_apart,
    event_conflict,
    event_match,
    event_match_across_languages,
    event_signature,
    lexical_similarity,
    sources_compatible,
)
from pipeline.alerts.status import add_dispute, is_denial
from pipeline.claims.figures import Figure, figures_relation
from pipeline.language import is_english

__all__ = ["Thresholds", "DEFAULT_THRESHOLDS", "same_claim", "same_claim_across_languages", "judge",
           "judge_features", "conflict_with", "Match", "NoveltyChecker", "VECTOR_FIELDS"]


@dataclass(frozen=True)
class Thresholds:
    """``cosine_min`` and ``window_days`` are chosen by item-grouped cross-validation over the
    real pairs (``../shared/corpus``) and the team's pairs (``eval/claim_pairs.yaml``) together;
    ``newswatch eval-claims`` reproduces the choice ("chosen on all pairs") and the out-of-fold
    figures. The rest keep the values argued for below: 51 real pairs cannot choose nine settings
    (searched together, the out-of-fold figures swung with the fold assignment). The similarity
    bars are lower than a similarity-only rule could afford because the event checks (actions,
    agents, objects, places, sources, dates) now reject most look-alike claims."""

    cosine_strict: float = 0.85   # this close is the same claim whatever the wording
    cosine_min: float = 0.60      # below this never the same claim (unless the figures agree)
    lexical_min: float = 0.10     # between the two, content words must overlap this much
    cosine_figures: float = 0.50  # the same figure of the same kind on both sides lowers the bar
    # Publication dates further apart than this are different events. Repeats in the real pairs
    # are 0-8 days apart; the same kind of event recurs after weeks or months (a treaty's
    # ratifications four weeks before its entry into force; two summonses months apart).
    window_days: float = 10.0
    # A revised figure from the same source may come later (Seoul's 100 -> 300 killed after 25
    # days; Zelensky's 10,000 -> 11,000 troops after 18).
    update_window_days: float = 30.0
    # Claims attributed to different named sources (Seoul's spy agency vs the Pentagon) are
    # different claims even without figures: who says it is part of what is claimed.
    split_sources: bool = True
    # Within ``event_days``, with a common action, object and actors: the event itself is the
    # evidence, so a translation or a loose paraphrase may pass with a cosine this low. Off (1.0):
    # searched, it was chosen by some folds only and let more different claims merge (12.5% vs
    # 9% over five fold assignments); translations are compared by e5 now (``xl_cosine_min``).
    cosine_event: float = 1.0
    event_days: float = 2.0
    # Across languages MiniLM cosines mean nothing and content words never overlap, so a cluster
    # in another language is compared by multilingual-e5 cosine (``embedding_xl``) instead, and
    # e5 rates unrelated news sentences ~0.8 already: the bar sits high and is not enough alone.
    # The claims must also share language-independent evidence: the event (action, object, two
    # actors, no other place) or the same figure. 1.01 switches cross-language matching off.
    # 0.80, where unrelated sentences start: the event checks, not the cosine, keep different
    # cross-language claims apart (0.80-0.84 tie on the 7 real cross-language pairs).
    xl_cosine_min: float = 0.80
    k: int = 5
    num_candidates: int = 50


DEFAULT_THRESHOLDS = Thresholds()


def same_claim(cosine: float, lexical: float, thresholds: Thresholds = DEFAULT_THRESHOLDS,
               figures: str = "none") -> bool:
    """``figures`` is ``figures_relation`` of the two claims: agreeing figures ("10,000 troops" on
    both sides) are strong evidence for a paraphrase, figures of unrelated kinds ("1,500 troops" vs
    "1,500 shells") strong evidence against."""
    if cosine >= thresholds.cosine_strict:
        return True
    if figures == "disjoint":
        return False
    if figures == "same" and cosine >= thresholds.cosine_figures:
        return True
    return cosine >= thresholds.cosine_min and lexical >= thresholds.lexical_min


def same_claim_across_languages(cosine: float, relation: str, match: bool,
                                thresholds: Thresholds = DEFAULT_THRESHOLDS) -> bool:
    """``same_claim`` for two languages: ``cosine`` is the multilingual-e5 cosine, and the
    evidence words would give comes from the event signature or an agreeing figure instead."""
    if cosine < thresholds.xl_cosine_min or relation == "disjoint":
        return False
    return match or relation == "same"


def judge(cosine: float, lexical: float, cluster_text: str, cluster_figures: list[Figure],
          cluster_date: Any, claim_text: str, claim_figures: list[Figure], claim_date_: Any,
          thresholds: Thresholds = DEFAULT_THRESHOLDS, cross_language: bool = False) -> tuple[bool, str]:
    """Whether a claim joins a candidate cluster, and why (the reason is kept for error reports).
    With ``cross_language`` the cosine is the multilingual-e5 one (see ``Thresholds``)."""
    sig_a, sig_b = event_signature(cluster_text), event_signature(claim_text)
    return judge_features(cosine, lexical, figures_relation(claim_figures, cluster_figures),
                          event_conflict(sig_a, sig_b), sources_compatible(sig_a.sources, sig_b.sources),
                          bool(cluster_figures or claim_figures), days_apart(cluster_date, claim_date_),
                          thresholds,
                          (event_match_across_languages if cross_language else event_match)(sig_a, sig_b),
                          cross_language)


def judge_features(cosine: float, lexical: float, relation: str, conflict: str | None,
                   compatible: bool | None, has_figures: bool, gap: float | None,
                   thresholds: Thresholds = DEFAULT_THRESHOLDS, match: bool = False,
                   cross_language: bool = False) -> tuple[bool, str]:
    """``judge`` on precomputed parts (the evaluation sweeps thresholds over these). Across
    languages only the similarity test differs; the event, source, figure and date checks are
    the same, so a translation is held to everything a paraphrase is."""
    if cross_language:
        similar = same_claim_across_languages(cosine, relation, match, thresholds)
        near_identical = False  # a translation is never "the same statement" in MiniLM's sense
    else:
        same_event_same_day = (match and gap is not None and gap <= thresholds.event_days
                               and cosine >= thresholds.cosine_event)
        similar = same_claim(cosine, lexical, thresholds, relation) or same_event_same_day
        near_identical = cosine >= thresholds.cosine_strict
    if not similar:
        return False, "not similar enough"
    if conflict:
        return False, conflict
    if compatible is False and (has_figures or thresholds.split_sources):
        return False, "figures from different sources" if has_figures else "different sources"
    if relation == "different" and compatible is not True and not near_identical:
        # A revised figure is an update when the same source is named on both sides, or the two
        # statements are near-identical; otherwise a different figure may be anyone's estimate.
        return False, "different figures without a common source"
    if gap is not None and gap > thresholds.window_days:
        if relation == "different" and gap <= thresholds.update_window_days:
            return True, "revised figure from the same source"
        return False, f"{gap:.0f} days apart"
    return True, "same event"


def conflict_with(claim: dict[str, Any], figures: list[Figure], cluster: dict[str, Any], why: str,
                  thresholds: Thresholds = DEFAULT_THRESHOLDS) -> str | None:
    """Why a claim kept out of ``cluster`` disputes it, or None. Only claims about the same event
    count: the judge must have found them similar and rejected them for their source or figures
    (not for wording, event or date), and they must fall within the update window."""
    if why not in {"figures from different sources", "different sources",
                   "different figures without a common source"}:
        return None
    gap = days_apart(cluster.get("last_seen"), claim_date(claim))
    if gap is not None and gap > thresholds.update_window_days:
        return None
    source = source_label(claim)
    if is_denial(claim["text"]) and not is_denial(cluster.get("text") or ""):
        return f"denied by {source}"
    theirs = [Figure.from_dict(f) for f in cluster.get("figures") or []]
    if figures and theirs and figures_relation(figures, theirs) == "different":
        return f"conflicting figure from {source}"
    return None


@dataclass
class Match:
    """The decision for one claim: its cluster and the event (new, repeat, update)."""

    event: str
    cluster: dict[str, Any]
    cosine: float = 1.0
    lexical: float = 1.0
    seq_no: int | None = None
    primary_term: int | None = None
    # Clusters this claim disputes without joining them: (cluster id, reason); see ``conflict_with``.
    disputes: list[tuple[str, str]] = field(default_factory=list)
    status_event: str | None = None


Candidate = tuple[float, dict[str, Any], int | None, int | None]
VECTOR_FIELDS = ("embedding", "embedding_xl")


def _minilm_filter(language: str, model: str) -> dict[str, Any]:
    """Clusters MiniLM compares with a claim in ``language``: every cluster the e5 search does not
    cover (``_e5_filter``): for an English claim, English clusters and those with no language
    recorded or no e5 vector of the claim's build (clusters from before e5 vectors: compared as
    they always were); for a claim in another language, only the latter."""
    legacy = [{"bool": {"must_not": {"exists": {"field": "language"}}}},
              {"bool": {"must_not": {"term": {"embedding_xl_model": model}}}}]
    if is_english(language):  # MiniLM reads English only
        legacy.insert(0, {"term": {"language": language}})
    return {"bool": {"should": legacy}}


def _e5_filter(language: str, model: str) -> dict[str, Any]:
    """Clusters compared by multilingual-e5, with an e5 vector of the claim's build: those in
    another language, and for a claim MiniLM cannot read, those in its own language too."""
    clauses: dict[str, Any] = {"filter": [{"term": {"embedding_xl_model": model}},
                                          {"exists": {"field": "language"}}]}
    if is_english(language):
        clauses["must_not"] = [{"term": {"language": language}}]
    return {"bool": clauses}


@dataclass
class NoveltyChecker:
    """Finds the cluster of each claim. Clusters created or changed in this run are kept in memory
    (with their seq_no for optimistic concurrency) so claims later in the same run see them before
    Elasticsearch refreshes.

    Two searches per claim: MiniLM kNN over clusters in the claim's language (``embedding``), then
    multilingual-e5 kNN over clusters in other languages (``embedding_xl``, same e5 build only).
    Same-language candidates are judged first: words and MiniLM are the sharper evidence there."""

    es: Any
    clusters_index: str
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    touched: dict[str, Match] = field(default_factory=dict)
    _fresh_ids: list[str] = field(default_factory=list)
    _fresh_vecs: dict[str, list[Any]] = field(default_factory=dict)  # field -> numpy rows (or None)

    def candidates(self, vector: list[float], vector_field: str = "embedding",
                   filter_: dict[str, Any] | None = None,
                   keep: Any = None) -> list[Candidate]:
        """Clusters by cosine on ``vector_field``, best first; ``keep(cluster)`` picks which of the
        clusters created in this run (not yet searchable) count, as ``filter_`` does in the index."""
        from pipeline.es.client import mapped_errors

        t = self.thresholds
        knn: dict[str, Any] = {"field": vector_field, "query_vector": vector, "k": t.k,
                               "num_candidates": t.num_candidates}
        if filter_ is not None:
            knn["filter"] = filter_
        with mapped_errors("the kNN search for similar claims"):
            resp = self.es.search(index=self.clusters_index, size=t.k, seq_no_primary_term=True, knn=knn,
                                  source_excludes=list(VECTOR_FIELDS))
        out = []
        for hit in resp["hits"]["hits"]:
            cosine = 2.0 * float(hit["_score"]) - 1.0  # ES cosine score is (1 + cos) / 2
            out.append((cosine, hit["_source"], hit.get("_seq_no"), hit.get("_primary_term")))
        rows = self._fresh_vecs.get(vector_field) or []
        if rows:
            import numpy as np

            query = np.asarray(vector, dtype=np.float32)
            for cid, row in zip(self._fresh_ids, rows, strict=True):
                cluster = self.touched[cid].cluster
                if row is not None and (keep is None or keep(cluster)):
                    out.append((float(row @ query), cluster, None, None))
        # A cluster changed in this run: use our newer copy (and its seq_no) instead of the hit's.
        best: dict[str, Candidate] = {}
        for cosine, src, seq, term in out:
            cid = src["id"]
            if cid in self.touched:
                m = self.touched[cid]
                src, seq, term = m.cluster, m.seq_no, m.primary_term
            if cid not in best or cosine > best[cid][0]:
                best[cid] = (cosine, src, seq, term)
        return sorted(best.values(), key=lambda x: -x[0])

    def _searches(self, claim: dict[str, Any]) -> list[tuple[bool, list[Candidate]]]:
        """(judged by e5?, candidates) for each search that applies to ``claim``. A pair is judged
        by e5 (cosine plus the shared event or figure) when either side is not English."""
        lang, model = claim.get("language"), claim.get("embedding_xl_model")
        if not (lang and model and claim.get("embedding_xl")):
            # No multilingual vector (no e5 build): MiniLM over every cluster, as before e5.
            return [(False, self.candidates(claim["embedding"]))]

        def by_e5(c: dict[str, Any]) -> bool:
            other = c.get("language")
            return (other is not None and c.get("embedding_xl_model") == model
                    and (other != lang or not is_english(lang)))

        return [(False, self.candidates(claim["embedding"], "embedding", _minilm_filter(lang, model),
                                        keep=lambda c: not by_e5(c))),
                (True, self.candidates(claim["embedding_xl"], "embedding_xl", _e5_filter(lang, model),
                                       keep=by_e5))]

    def decide(self, claim: dict[str, Any], now_iso: str) -> Match:
        figures = [Figure.from_dict(f) for f in claim.get("figures") or []]
        disputes: list[tuple[str, str]] = []
        for cross_language, found in self._searches(claim):
            floor = self.thresholds.xl_cosine_min if cross_language else self.thresholds.cosine_figures
            for cosine, src, seq, term in found:
                if claim["id"] in (src.get("claim_ids") or []):
                    # Already applied by an interrupted run: keep the event recorded then.
                    match = Match(recorded_event(src, claim["id"]), src, cosine, 1.0, seq, term)
                    self.remember(match)
                    return match
                if cosine < floor:
                    break
                lexical = 0.0 if cross_language else lexical_similarity(claim["text"], src.get("text") or "")
                same, why = judge(cosine, lexical, src.get("text") or "",
                                  [Figure.from_dict(f) for f in src.get("figures") or []],
                                  src.get("last_seen"), claim["text"], figures, claim_date(claim),
                                  self.thresholds, cross_language)
                if same:
                    event = claim_event(figures, src)
                    after = apply_claim(src, claim, event, now_iso)
                    match = Match(event, after, cosine, lexical, seq, term, disputes,
                                  status_event(src, after))
                    self.remember(match)
                    return match
                reason = conflict_with(claim, figures, src, why, self.thresholds)
                if reason and len(disputes) < 1:
                    disputes.append((src["id"], reason))
        match = Match("new", new_cluster(claim, now_iso), disputes=disputes)
        if disputes:
            match.cluster = add_dispute(match.cluster, claim["id"], disputes[0][1], now_iso)
        self.remember(match, vector=claim["embedding"])
        return match

    def remember(self, match: Match, vector: list[float] | None = None) -> None:
        """Keep ``match``; with ``vector`` (the claim's MiniLM vector) the cluster is new in this
        run and later claims must find it by both its vectors before Elasticsearch refreshes."""
        cid = match.cluster["id"]
        if cid in self.touched and match.seq_no is None:
            match.seq_no, match.primary_term = self.touched[cid].seq_no, self.touched[cid].primary_term
        self.touched[cid] = match
        if vector is not None and cid not in self._fresh_ids:
            import numpy as np

            xl = match.cluster.get("embedding_xl")
            self._fresh_ids.append(cid)
            self._fresh_vecs.setdefault("embedding", []).append(np.asarray(vector, dtype=np.float32))
            self._fresh_vecs.setdefault("embedding_xl", []).append(
                None if xl is None else np.asarray(xl, dtype=np.float32))
