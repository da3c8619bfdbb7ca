"""Evaluation against the hand labels in ``eval/labels.yaml`` and threshold calibration.

The corpus text is read from ``../shared`` at run time (never copied into the repo); labels refer
to sentences by index and a short hash, and a sentence is found by its hash first (so a small
splitter change that shifts indices does not silently mis-score). Calibration uses the ``tune``
split only; the ``heldout`` split is reported separately and never feeds a threshold.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ConfigError
from pipeline.settings import REPO_ROOT

LABELS_FILE = REPO_ROOT / "eval" / "labels.yaml"
BASELINE_FILE = REPO_ROOT / "eval" / "baseline.json"
SHARED_DIR = REPO_ROOT.parent / "shared"
SPLITS = ("heldout", "tune")
GRID = np.round(np.arange(0.30, 0.901, 0.025), 3)
SHRINK = 3.0  # pseudo-count pulling a calibrated threshold towards the default with few positives


def interval95(values: Any) -> list[float]:
    """The percentile-bootstrap 95% interval of ``values`` (NaN, NaN when there are none)."""
    if not len(values):
        return [float("nan"), float("nan")]
    low, high = np.percentile(values, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, gold: bool, pred: bool) -> None:
        self.tp += gold and pred
        self.fp += pred and not gold
        self.fn += gold and not pred

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "support": self.tp + self.fn}


@dataclass
class SplitReport:
    split: str
    articles: int = 0
    on_topic_correct: int = 0
    unsupported: list[str] = field(default_factory=list)
    article: dict[str, Counts] = field(default_factory=dict)
    sentence: dict[str, Counts] = field(default_factory=dict)
    stale_labels: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def on_topic_accuracy(self) -> float:
        return self.on_topic_correct / self.articles if self.articles else 0.0

    @staticmethod
    def micro(table: dict[str, Counts], ids: Iterable[str]) -> Counts:
        total = Counts()
        for motive_id in ids:
            c = table.get(motive_id, Counts())
            total.tp, total.fp, total.fn = total.tp + c.tp, total.fp + c.fp, total.fn + c.fn
        return total

    def summary(self, top_level: list[str]) -> dict[str, Any]:
        return {
            "articles": self.articles,
            "on_topic_accuracy": round(self.on_topic_accuracy, 4),
            "article_micro": self.micro(self.article, top_level).as_dict(),
            "sentence_micro": self.micro(self.sentence, top_level).as_dict(),
            "article": {m: c.as_dict() for m, c in self.article.items()},
            "sentence": {m: c.as_dict() for m, c in self.sentence.items()},
            "unsupported_language": self.unsupported,
            "stale_labels": self.stale_labels,
        }


def load_labels(path: Path = LABELS_FILE) -> dict[str, dict[str, Any]]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read labels: {exc}", path=str(path)) from exc
    articles = (data or {}).get("articles")
    if not isinstance(articles, dict):
        raise ConfigError("expected an 'articles' mapping", path=str(path))
    for article_id, entry in articles.items():
        if entry.get("split") not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}", path=str(path), item=article_id,
                              field="split")
    return articles


def load_corpus(shared_dir: Path = SHARED_DIR) -> dict[str, dict[str, Any]]:
    path = shared_dir / "corpus" / "articles.jsonl"
    if not path.is_file():
        raise ConfigError("the labelled corpus is missing (is ../shared present?)", path=str(path))
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return {row["id"]: row for row in rows}


def _locate(sentences: list[str], index: int, short_hash: str) -> int | None:
    """The position of the labelled sentence: by hash (index as the first guess)."""
    from pipeline.classify.embedder import sentence_key

    if 0 <= index < len(sentences) and sentence_key(sentences[index]).startswith(short_hash):
        return index
    for i, sentence in enumerate(sentences):
        if sentence_key(sentence).startswith(short_hash):
            return i
    return None


@dataclass
class Prepared:
    """Everything the metrics need, computed once (the model pass is the costly part)."""

    article_id: str
    split: str
    gold_on_topic: bool
    gold_motives: set[str]
    result: Any                           # ArticleResult
    scores: np.ndarray                    # sentence x motive scores (English only)
    gold_sentences: dict[int, set[str]]   # scored sentence position -> gold motives
    stale: list[str]


def prepare(classifier: Any, labels: dict[str, dict[str, Any]],
            corpus: dict[str, dict[str, Any]]) -> list[Prepared]:
    from pipeline.classify.classifier import ArticleInput

    ids = [a for a in labels if a in corpus]
    missing = [a for a in labels if a not in corpus]
    if missing:
        raise ConfigError(f"labelled articles missing from the corpus: {missing}", path=str(LABELS_FILE))
    results = classifier.classify_articles([ArticleInput(corpus[a]["title"], corpus[a]["text"],
                                                         corpus[a].get("language")) for a in ids])
    taxonomy = classifier.taxonomy
    out = []
    for article_id, result in zip(ids, results, strict=True):
        entry = labels[article_id]
        texts = [s.text for s in result.sentences]
        scores = np.array([[s.scores.get(m, 0.0) for m in classifier.head.ids]
                           for s in result.sentences], dtype=np.float32).reshape(len(texts), -1)
        gold_sentences: dict[int, set[str]] = {}
        stale = []
        if result.language_supported and result.language == "en" and corpus[article_id]["on_topic"]:
            ignored = set()
            for item in entry.get("ignore") or []:
                pos = _locate(texts, item["i"], item["hash"])
                if pos is None:
                    stale.append(f"{article_id}#{item['i']}")
                else:
                    ignored.add(pos)
            gold_sentences = {i: set() for i in range(len(texts)) if i not in ignored}
            for item in entry.get("sentences") or []:
                pos = _locate(texts, item["i"], item["hash"])
                if pos is None:
                    stale.append(f"{article_id}#{item['i']}")
                    continue
                gold_sentences[pos] = set(taxonomy.expand(item["motives"]))
        out.append(Prepared(article_id, entry["split"], bool(corpus[article_id]["on_topic"]),
                            set(taxonomy.expand(entry.get("motives") or [])), result, scores,
                            gold_sentences, stale))
    return out


def score_split(prepared: list[Prepared], split: str, ids: list[str],
                thresholds: dict[str, float], taxonomy: Any,
                learned: tuple[str, ...] = ()) -> SplitReport:
    """Counts of one split; labels decided as ``MotiveHead.labels`` decides them (``learned``:
    the top-level ids of the learned head, under which children only refine)."""
    from pipeline.classify.head import labels_from_row

    report = SplitReport(split)
    report.article = {m: Counts() for m in ids}
    report.sentence = {m: Counts() for m in ids}
    for item in (p for p in prepared if p.split == split):
        report.articles += 1
        report.on_topic_correct += item.result.on_topic == item.gold_on_topic
        report.stale_labels.extend(item.stale)
        # Motives of items not in English come from the multilingual head and are reported by
        # `newswatch eval --multilingual`; this report keeps to the English articles.
        if not item.result.language_supported or item.result.language != "en":
            report.unsupported.append(item.article_id)
            continue
        sentence_preds = []
        for row in item.scores:
            sentence_preds.append(set(labels_from_row(taxonomy, ids, row, thresholds, learned)))
        predicted = set().union(*sentence_preds) if (sentence_preds and item.result.on_topic) else set()
        for m in ids:
            report.article[m].add(m in item.gold_motives, m in predicted)
        for pos, gold in item.gold_sentences.items():
            for m in ids:
                report.sentence[m].add(m in gold, m in sentence_preds[pos])
    return report


def calibrate(prepared: list[Prepared], ids: list[str], default: float) -> dict[str, float]:
    """Per-motive thresholds maximising sentence F1 on the tune split, shrunk towards the default."""
    rows, golds = [], []
    for item in (p for p in prepared if p.split == "tune"):
        for pos, gold in item.gold_sentences.items():
            rows.append(item.scores[pos])
            golds.append(gold)
    if not rows:
        return {m: default for m in ids}
    matrix = np.vstack(rows)
    thresholds = {}
    for k, m in enumerate(ids):
        y = np.array([m in g for g in golds])
        positives = int(y.sum())
        if positives == 0:
            thresholds[m] = default
            continue
        f1s = []
        for t in GRID:
            pred = matrix[:, k] >= t
            tp = int((pred & y).sum())
            fp = int((pred & ~y).sum())
            fn = int((~pred & y).sum())
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        best = max(f1s)
        plateau = [t for t, f in zip(GRID, f1s, strict=True) if f == best]
        chosen = float(np.median(plateau))
        thresholds[m] = round((positives * chosen + SHRINK * default) / (positives + SHRINK), 3)
    return thresholds


def cross_validate(prepared: list[Prepared], ids: list[str], taxonomy: Any,
                   default: float = 0.5) -> SplitReport:
    """Leave one article out, over every labelled article of both splits.

    For each article, thresholds are calibrated (exactly as ``calibrate`` does for the shipped
    thresholds) on all the other articles and the article is scored with them; the counts are
    summed. With a corpus this small the fixed held-out split rests on a handful of article-motive
    pairs; this estimate uses every pair while never scoring an article with thresholds it helped
    set. (The head itself is trained on the team's sentences, not on the corpus.)
    """
    from dataclasses import replace

    total = SplitReport("cross_validated")
    total.article = {m: Counts() for m in ids}
    total.sentence = {m: Counts() for m in ids}
    for i, item in enumerate(prepared):
        others = [replace(p, split="tune") for j, p in enumerate(prepared) if j != i]
        one = score_split([replace(item, split="left_out")], "left_out", ids,
                          calibrate(others, ids, default), taxonomy)
        total.articles += one.articles
        total.on_topic_correct += one.on_topic_correct
        total.unsupported.extend(one.unsupported)
        total.stale_labels.extend(one.stale_labels)
        for table, part in ((total.article, one.article), (total.sentence, one.sentence)):
            for m, c in part.items():
                table[m].tp, table[m].fp, table[m].fn = (table[m].tp + c.tp, table[m].fp + c.fp,
                                                         table[m].fn + c.fn)
    return total


def save_thresholds(thresholds: dict[str, float], path: Path) -> None:
    payload = {"calibrated_on": "eval/labels.yaml split=tune", "method": (
        f"sentence-level F1 over a grid, median of the best plateau, shrunk to the default with "
        f"{SHRINK} pseudo-positives"), "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "thresholds": thresholds}
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def run_eval(classifier: Any, shared_dir: Path = SHARED_DIR, labels_path: Path = LABELS_FILE,
             thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """Classify the labelled corpus once and report both splits (JSON-able)."""
    labels = load_labels(labels_path)
    corpus = load_corpus(shared_dir)
    prepared = prepare(classifier, labels, corpus)
    ids = classifier.head.ids
    used = thresholds or classifier.thresholds
    top = classifier.taxonomy.top_level
    learned = tuple(getattr(classifier.head, "learned_ids", ()))
    return {"splits": {s: score_split(prepared, s, ids, used, classifier.taxonomy, learned).summary(top)
                       for s in SPLITS},
            "cross_validated": cross_validate(prepared, ids, classifier.taxonomy).summary(top),
            "thresholds": used, "top_level": top, "_prepared": prepared}


FLOOR_MARGIN = 0.05


def pin_baseline(entries: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``entries`` (top-level keys) into eval/baseline.json, keeping every other key: each
    evaluation pins its own entry."""
    target = Path(path or BASELINE_FILE)
    data = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else {}
    data.update(entries)
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return target


def write_baseline(report: dict[str, Any], path: Path = BASELINE_FILE) -> Path:
    """Pin floors (the measured figures minus a small margin) that the eval gate test enforces."""
    floors: dict[str, dict[str, float]] = {}
    measured: dict[str, dict[str, float]] = {}
    for split, s in [*report["splits"].items(), ("cross_validated", report["cross_validated"])]:
        figures = {"on_topic_accuracy": s["on_topic_accuracy"],
                   "article_micro_f1": s["article_micro"]["f1"],
                   "sentence_micro_f1": s["sentence_micro"]["f1"]}
        measured[split] = figures
        floors[split] = {k: round(max(0.0, v - FLOOR_MARGIN), 3) for k, v in figures.items()}
    return pin_baseline({"note": "floors = measured - margin; raise them when quality improves, never "
                                 "lower them silently", "margin": FLOOR_MARGIN, "measured": measured,
                         "floors": floors, "thresholds": report["thresholds"]}, path)
