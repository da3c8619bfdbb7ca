"""Is this claim new? Claim clusters, found by kNN over embeddings and confirmed by words and figures.

Why three signals: embeddings alone call "10,000 troops sent to Kursk" and "10,000 troops sent to
Donetsk" the same thing, and words alone miss paraphrases. A candidate cluster from Elasticsearch
kNN is accepted when the cosine is very high, or high enough *and* the content words overlap.
Figures then split "same claim" into a **repeat** (same or no comparable figure: corroboration, no
alert) and an **update** (same statement, different figure: alert, threaded under the first).

Outlets: a claim adds its outlet to the cluster as an *independent* outlet, unless its sentence is
an exact copy of one the cluster already holds from another outlet (a wire copy); an article's
syndicated copies (``outlets`` beyond its own source, found by near-duplicate detection at ingest)
are recorded as syndicated, never as independent.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.claims.figures import Figure, figures_relation

__all__ = ["Thresholds", "DEFAULT_THRESHOLDS", "content_words", "lexical_similarity", "same_claim",
           "claim_event", "figure_key", "text_key", "new_cluster", "apply_claim", "Match",
           "NoveltyChecker"]

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


@dataclass(frozen=True)
class Thresholds:
    """Tuned on ``eval/claim_pairs.yaml`` (see ``pipeline.alerts.evaluate``)."""

    cosine_strict: float = 0.90   # this close is the same claim whatever the wording
    cosine_min: float = 0.70      # below this never the same claim (unless the figures agree)
    lexical_min: float = 0.30     # between the two, content words must overlap this much
    cosine_figures: float = 0.65  # the same figure of the same kind on both sides lowers the bar
    k: int = 5
    num_candidates: int = 50


DEFAULT_THRESHOLDS = Thresholds()


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


def figure_key(f: Figure) -> str:
    high = "inf" if f.high == float("inf") else f"{f.high:.4g}"
    return f"{f.kind}:{f.period or '-'}:{f.low:.4g}:{high}"


def text_key(text: str) -> str:
    norm = re.sub(r"\s+", " ", text).strip().lower()
    return hashlib.blake2b(norm.encode(), digest_size=8).hexdigest()


def claim_event(claim_figures: list[Figure], cluster: dict[str, Any]) -> str:
    """``update`` when the claim's figures differ from the cluster's current ones and were never
    seen in it before (an old figure repeated late is corroboration, not news); else ``repeat``."""
    current = [Figure.from_dict(f) for f in cluster.get("figures") or []]
    if figures_relation(claim_figures, current) != "different":
        return "repeat"
    seen = set(cluster.get("figure_keys") or [])
    if all(figure_key(f) in seen for f in claim_figures):
        return "repeat"
    return "update"


def recorded_event(cluster: dict[str, Any], claim_id: str) -> str:
    for item in cluster.get("claim_events") or []:
        cid, _, event = item.rpartition(":")
        if cid == claim_id:
            return event
    return "repeat"


def _union(*lists: Any) -> list[str]:
    out: list[str] = []
    for items in lists:
        for item in items or []:
            if item and item not in out:
                out.append(item)
    return out


def new_cluster(claim: dict[str, Any], now_iso: str) -> dict[str, Any]:
    cluster_id = f"cl-{claim['id']}"
    cluster = {
        "id": cluster_id, "representative_claim_id": claim["id"], "text": claim["text"],
        "motives": list(claim.get("motives") or []), "first_seen": claim.get("first_seen") or now_iso,
        "last_seen": claim.get("first_seen") or now_iso, "updated": now_iso,
        "outlets": [], "independent_outlet_ids": [], "syndicated_outlets": [], "independent_outlets": 0,
        "claim_count": 0, "claim_ids": [], "text_keys": [], "figures": [], "figure_keys": [],
        "previous_figures": [], "updates": 0, "last_event": "new", "last_claim_id": claim["id"],
        "attribution_kinds": [], "article_ids": [], "urls": [], "embedding": claim.get("embedding"),
    }
    return apply_claim(cluster, claim, "new", now_iso)


def apply_claim(cluster: dict[str, Any], claim: dict[str, Any], event: str, now_iso: str) -> dict[str, Any]:
    """The cluster after ``claim`` joined it with ``event`` (new/repeat/update). Idempotent: a
    claim already in ``claim_ids`` changes nothing, so a re-run after a crash is safe."""
    if claim["id"] in (cluster.get("claim_ids") or []):
        return cluster
    c = dict(cluster)
    own = claim.get("outlet") or "unknown"
    copies = [o for o in claim.get("outlets") or [] if o != own]
    key = text_key(claim["text"])
    independent = list(c.get("independent_outlet_ids") or [])
    syndicated = list(c.get("syndicated_outlets") or [])
    wire_copy = key in (c.get("text_keys") or []) and own not in independent
    if wire_copy:
        syndicated = _union(syndicated, [own])
    else:
        independent = _union(independent, [own])
    syndicated = _union(syndicated, [o for o in copies if o not in independent])
    syndicated = [o for o in syndicated if o not in independent]
    figures = [Figure.from_dict(f) for f in claim.get("figures") or []]
    c.update({
        "independent_outlet_ids": independent, "syndicated_outlets": syndicated,
        "independent_outlets": len(independent),
        "outlets": _union(c.get("outlets"), [own], copies),
        "claim_ids": _union(c.get("claim_ids"), [claim["id"]]),
        "claim_events": _union(c.get("claim_events"), [f"{claim['id']}:{event}"]),
        "claim_count": int(c.get("claim_count") or 0) + 1,
        "text_keys": _union(c.get("text_keys"), [key]),
        "article_ids": _union(c.get("article_ids"), [claim.get("article_id")]),
        "urls": _union(c.get("urls"), [claim.get("url")]),
        "motives": _union(c.get("motives"), claim.get("motives")),
        "attribution_kinds": _union(c.get("attribution_kinds"),
                                    [(claim.get("attribution") or {}).get("kind")]),
        "last_seen": max(str(c.get("last_seen") or ""), str(claim.get("first_seen") or "")) or now_iso,
        "updated": now_iso, "last_event": event, "last_claim_id": claim["id"],
        "figure_keys": _union(c.get("figure_keys"), [figure_key(f) for f in figures]),
    })
    if event == "new" or (event == "update") or (not c.get("figures") and figures):
        if event == "update":
            c["previous_figures"] = c.get("figures") or []
            c["updates"] = int(c.get("updates") or 0) + 1
        if figures:
            c["figures"] = [f.as_doc() for f in figures]
    return c


@dataclass
class Match:
    """The decision for one claim: its cluster and the event (new, repeat, update)."""

    event: str
    cluster: dict[str, Any]
    cosine: float = 1.0
    lexical: float = 1.0
    seq_no: int | None = None
    primary_term: int | None = None


@dataclass
class NoveltyChecker:
    """Finds the cluster of each claim. Clusters created or changed in this run are kept in memory
    (with their seq_no for optimistic concurrency) so claims later in the same run see them before
    Elasticsearch refreshes."""

    es: Any
    clusters_index: str
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    touched: dict[str, Match] = field(default_factory=dict)
    _fresh_ids: list[str] = field(default_factory=list)
    _fresh_vecs: list[Any] = field(default_factory=list)  # numpy rows, imported lazily

    def candidates(self, vector: list[float]) -> list[tuple[float, dict[str, Any], int | None, int | None]]:
        from pipeline.es.client import mapped_errors

        t = self.thresholds
        with mapped_errors("the kNN search for similar claims"):
            resp = self.es.search(
                index=self.clusters_index, size=t.k, seq_no_primary_term=True,
                knn={"field": "embedding", "query_vector": vector, "k": t.k,
                     "num_candidates": t.num_candidates},
                source_excludes=["embedding"],
            )
        out = []
        for hit in resp["hits"]["hits"]:
            cosine = 2.0 * float(hit["_score"]) - 1.0  # ES cosine score is (1 + cos) / 2
            out.append((cosine, hit["_source"], hit.get("_seq_no"), hit.get("_primary_term")))
        if self._fresh_vecs:
            import numpy as np

            sims = np.stack(self._fresh_vecs) @ np.asarray(vector, dtype=np.float32)
            for cid, sim in zip(self._fresh_ids, sims, strict=True):
                out.append((float(sim), self.touched[cid].cluster, None, None))
        # A cluster changed in this run: use our newer copy (and its seq_no) instead of the hit's.
        best: dict[str, tuple[float, dict[str, Any], int | None, int | None]] = {}
        for cosine, src, seq, term in out:
            cid = src["id"]
            if cid in self.touched:
                m = self.touched[cid]
                src, seq, term = m.cluster, m.seq_no, m.primary_term
            if cid not in best or cosine > best[cid][0]:
                best[cid] = (cosine, src, seq, term)
        return sorted(best.values(), key=lambda x: -x[0])

    def decide(self, claim: dict[str, Any], now_iso: str) -> Match:
        figures = [Figure.from_dict(f) for f in claim.get("figures") or []]
        for cosine, src, seq, term in self.candidates(claim["embedding"]):
            if claim["id"] in (src.get("claim_ids") or []):
                # Already applied by an interrupted run: keep the event recorded then.
                match = Match(recorded_event(src, claim["id"]), src, cosine, 1.0, seq, term)
                self.remember(match)
                return match
            if cosine < self.thresholds.cosine_figures:
                break
            lexical = lexical_similarity(claim["text"], src.get("text") or "")
            relation = figures_relation(figures, [Figure.from_dict(f) for f in src.get("figures") or []])
            if same_claim(cosine, lexical, self.thresholds, relation):
                event = claim_event(figures, src)
                match = Match(event, apply_claim(src, claim, event, now_iso), cosine, lexical, seq, term)
                self.remember(match)
                return match
        match = Match("new", new_cluster(claim, now_iso))
        self.remember(match, vector=claim["embedding"])
        return match

    def remember(self, match: Match, vector: list[float] | None = None) -> None:
        cid = match.cluster["id"]
        if cid in self.touched and match.seq_no is None:
            match.seq_no, match.primary_term = self.touched[cid].seq_no, self.touched[cid].primary_term
        self.touched[cid] = match
        if vector is not None and cid not in self._fresh_ids:
            import numpy as np

            self._fresh_ids.append(cid)
            self._fresh_vecs.append(np.asarray(vector, dtype=np.float32))
