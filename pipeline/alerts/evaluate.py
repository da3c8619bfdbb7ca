"""Evaluation of the novelty check on labelled claim pairs (``eval/claim_pairs.yaml``).

Prints precision, recall and F1 of "same claim" (repeat or update vs different) on the tuning
pairs, the held-out test pairs and all pairs, plus the accuracy of repeat-vs-update on the pairs
that are the same claim. Pairs may reference sentences of ``../shared`` by index, so the repo
holds no copied text; those are resolved here at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any

from pipeline.alerts.novelty import (
    DEFAULT_THRESHOLDS,
    Thresholds,
    claim_event,
    lexical_similarity,
    same_claim,
)
from pipeline.claims.figures import figures_relation, parse_figures
from pipeline.classify.evaluate import Counts
from pipeline.errors import ConfigError
from pipeline.settings import REPO_ROOT

__all__ = ["evaluate_pairs", "format_report", "load_pairs", "DEFAULT_PAIRS", "SHARED"]

DEFAULT_PAIRS = REPO_ROOT / "eval" / "claim_pairs.yaml"
SHARED = REPO_ROOT.parent / "shared"
RELATIONS = ("repeat", "update", "different")
SPLITS = (("tune", "tune"), ("test", "test"), ("all", None))


@dataclass
class Pair:
    a: str
    b: str
    relation: str
    split: str


@dataclass
class Scores(Counts):
    """Precision/recall counts of "same claim" plus repeat-vs-update accuracy."""

    tn: int = 0
    event_ok: int = 0
    event_total: int = 0
    errors: list[str] = field(default_factory=list)


class _Resolver:
    def __init__(self, shared: Path) -> None:
        self.shared = shared
        self._cache: dict[str, list[str]] = {}

    def sentences(self, source: str) -> list[str]:
        from pipeline.classify.sentences import split_sentences

        if source not in self._cache:
            kind, _, name = source.partition("/")
            if kind == "seeds":
                text = (self.shared / "seeds" / name).read_text(encoding="utf-8")
            elif kind == "corpus":
                lines = (self.shared / "corpus" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
                docs = {d.get("id"): d for d in map(json.loads, filter(None, lines))}
                if name not in docs:
                    raise KeyError(f"no article {name!r} in the corpus")
                text = docs[name]["text"]
            else:
                raise KeyError(f"unknown source {source!r} (seeds/... or corpus/...)")
            self._cache[source] = split_sentences(text)
        return self._cache[source]

    def text(self, side: Any, path: str, index: int) -> str:
        if isinstance(side, dict) and isinstance(side.get("text"), str):
            return side["text"]
        if isinstance(side, dict) and isinstance(side.get("ref"), str) and "#" in side["ref"]:
            source, _, n = side["ref"].rpartition("#")
            sentences = self.sentences(source)
            if not n.isdigit() or int(n) >= len(sentences):
                raise ConfigError(f"sentence {n} does not exist in {source} ({len(sentences)} sentences)",
                                  path=path, item=f"pair {index + 1}")
            return sentences[int(n)]
        raise ConfigError("each side needs `text:` or `ref: <source>#<n>`", path=path,
                          item=f"pair {index + 1}")


def load_pairs(path: Path | None = None, shared: Path = SHARED) -> list[Pair]:
    import yaml

    file = Path(path or DEFAULT_PAIRS)
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    resolver = _Resolver(shared)
    out = []
    for i, raw in enumerate(data.get("pairs") or []):
        relation = raw.get("relation")
        if relation not in RELATIONS:
            raise ConfigError(f"relation must be one of {RELATIONS}", path=str(file), item=f"pair {i + 1}",
                              field="relation")
        out.append(Pair(resolver.text(raw.get("a"), str(file), i), resolver.text(raw.get("b"), str(file), i),
                        relation, raw.get("split", "tune")))
    return out


def _features(pairs: list[Pair]) -> list[tuple[float, float]]:
    import numpy as np

    from pipeline.classify.backends import get_embedder

    emb = get_embedder("exact").embed([p.a for p in pairs] + [p.b for p in pairs])
    n = len(pairs)
    cos = np.sum(emb[:n] * emb[n:], axis=1)
    return [(float(c), lexical_similarity(p.a, p.b)) for c, p in zip(cos, pairs, strict=True)]


def _score(pairs: list[Pair], feats: list[tuple[float, float]], t: Thresholds, split: str | None) -> Scores:
    s = Scores()
    for pair, (cos, lex) in zip(pairs, feats, strict=True):
        if split and pair.split != split:
            continue
        predicted = same_claim(cos, lex, t, figures_relation(parse_figures(pair.a), parse_figures(pair.b)))
        actual = pair.relation != "different"
        s.tp += predicted and actual
        s.fp += predicted and not actual
        s.fn += (not predicted) and actual
        s.tn += (not predicted) and (not actual)
        if actual:
            fa = parse_figures(pair.a)
            event = claim_event(parse_figures(pair.b), {"figures": [f.as_doc() for f in fa],
                                                        "figure_keys": []})
            s.event_total += 1
            s.event_ok += event == pair.relation
        if predicted != actual:
            s.errors.append(f"{'FP' if predicted else 'FN'} cos={cos:.3f} lex={lex:.2f} [{pair.split}] "
                            f"{pair.a[:60]!r} ~ {pair.b[:60]!r}")
    return s


def evaluate_pairs(path: Path | None = None, *, thresholds: Thresholds = DEFAULT_THRESHOLDS,
                   sweep: bool = False, shared: Path = SHARED) -> dict[str, Any]:
    """Scores per split with ``thresholds``; with ``sweep`` also the best thresholds on ``tune``."""
    pairs = load_pairs(path, shared)
    feats = _features(pairs)
    result: dict[str, Any] = {"pairs": len(pairs), "thresholds": thresholds,
                              "scores": {name: _score(pairs, feats, thresholds, split)
                                         for name, split in SPLITS}}
    if sweep:
        grid = product((0.85, 0.88, 0.90, 0.92, 0.95), (0.55, 0.60, 0.65, 0.70, 0.75),
                       (0.15, 0.2, 0.25, 0.3, 0.4), (0.6, 0.65, 0.7))
        ranked = []
        for strict, cmin, lmin, cfig in grid:
            t = replace(thresholds, cosine_strict=strict, cosine_min=cmin, lexical_min=lmin,
                        cosine_figures=cfig)
            tune = _score(pairs, feats, t, "tune")
            ranked.append((tune.f1, tune.precision, t))
        ranked.sort(key=lambda x: (-x[0], -x[1]))
        best = ranked[0][2]
        result["best"] = {"thresholds": best, "tune": _score(pairs, feats, best, "tune"),
                          "test": _score(pairs, feats, best, "test")}
    return result


def format_report(result: dict[str, Any]) -> str:
    t = result["thresholds"]
    lines = [f"claim pairs: {result['pairs']}  thresholds: cosine_strict={t.cosine_strict} "
             f"cosine_min={t.cosine_min} lexical_min={t.lexical_min} cosine_figures={t.cosine_figures}",
             f"{'split':<6} {'precision':>9} {'recall':>7} {'F1':>6} {'tp/fp/fn/tn':>12} "
             f"{'repeat-vs-update':>17}"]
    for name, s in result["scores"].items():
        ev = f"{s.event_ok}/{s.event_total}"
        lines.append(f"{name:<6} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f} "
                     f"{f'{s.tp}/{s.fp}/{s.fn}/{s.tn}':>12} {ev:>17}")
    lines += ["errors:"] + [f"  {e}" for e in result["scores"]["all"].errors] or ["  none"]
    if "best" in result:
        b = result["best"]
        bt = b["thresholds"]
        lines.append(f"best on tune: cosine_strict={bt.cosine_strict} cosine_min={bt.cosine_min} "
                     f"lexical_min={bt.lexical_min} cosine_figures={bt.cosine_figures} -> "
                     f"tune F1 {b['tune'].f1:.3f}, held-out test "
                     f"P {b['test'].precision:.3f} R {b['test'].recall:.3f} F1 {b['test'].f1:.3f}")
    return "\n".join(lines)
