"""``newswatch classify INPUT.jsonl`` and ``newswatch eval``.

``classify`` is a contract other tools rely on: one JSON line out per input line, in order; a
malformed line gets ``{"id": ..., "error": ...}`` and the rest go on. Progress goes to stderr so
stdout stays machine-readable. ``eval`` prints on-topic accuracy and per-motive precision, recall
and F1 (article and sentence level) for the held-out and tuning splits separately.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

BATCH = 16


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("classify", help="classify articles from a JSON-lines file",
                            description="Read {id, title, text[, language]} per line; write one "
                                        "JSON result per line (stdout or --output).")
    parser.add_argument("input", help="JSON-lines file, or - for stdin")
    parser.add_argument("--output", "-o", help="write results here instead of stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(func=cmd_classify)

    ev = sub.add_parser("eval", help="evaluate the classifier on the labelled corpus",
                        description="On-topic accuracy and per-motive P/R/F1 on eval/labels.yaml, "
                                    "held-out and tuning splits separately.")
    ev.add_argument("--shared", type=Path, default=None, help="the shared folder (../shared)")
    ev.add_argument("--labels", type=Path, default=None, help="labels file (eval/labels.yaml)")
    ev.add_argument("--json", action="store_true", help="print the report as JSON")
    ev.add_argument("--calibrate", action="store_true",
                    help="recompute per-motive thresholds on the tune split and save them")
    ev.add_argument("--write-baseline", action="store_true",
                    help="pin the current figures (minus a margin) as floors in eval/baseline.json")
    ev.set_defaults(func=cmd_eval)


# ---------------------------------------------------------------- classify

def _parse(line: str, number: int) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """``(id, record, error)`` for one input line."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        return None, None, f"line {number}: not valid JSON ({exc.args[0] if exc.args else exc})"
    if not isinstance(record, dict):
        return None, None, f"line {number}: expected a JSON object"
    ident = record.get("id")
    ident = ident if isinstance(ident, str) else (str(ident) if ident is not None else None)
    for key in ("title", "text"):
        if not isinstance(record.get(key), str):
            return ident, None, f"line {number}: field {key!r} must be a string"
    if ident is None:
        return None, None, f"line {number}: field 'id' is missing"
    language = record.get("language")
    if language is not None and not isinstance(language, str):
        return ident, None, f"line {number}: field 'language' must be a string"
    return ident, record, None


def result_line(ident: str, result: Any) -> dict[str, Any]:
    """The output contract of ``newswatch classify`` for one article."""
    return {
        "id": ident, "on_topic": result.on_topic, "topic_score": result.topic_score,
        "motives": result.motives, "motive_scores": result.motive_scores,
        "sentences": [{"text": s.text, "motives": s.motives, "scores": s.scores}
                      for s in result.sentences],
        "language": result.language, "language_supported": result.language_supported,
    }


def classify_stream(lines: Iterator[str], out: IO[str], *, total: int | None = None,
                    progress: bool = True) -> dict[str, int]:
    from tqdm import tqdm

    from pipeline.classify.model import ArticleInput, get_classifier

    classifier = None
    counts = {"lines": 0, "ok": 0, "errors": 0}
    pending: list[tuple[str | None, dict[str, Any] | None, str | None]] = []
    bar = tqdm(total=total, unit="article", file=sys.stderr, disable=not progress or total is None
               or total < 2, desc="classify")

    def flush() -> None:
        nonlocal classifier
        records = [(i, r) for i, r, e in pending if e is None]
        results = {}
        if records:
            classifier = classifier or get_classifier()
            outputs = classifier.classify_articles([ArticleInput(r["title"], r["text"],
                                                                 r.get("language")) for _, r in records])
            results = {n: res for n, res in zip([id(r) for _, r in records], outputs, strict=True)}
        for ident, record, error in pending:
            if error is not None:
                out.write(json.dumps({"id": ident, "error": error}, ensure_ascii=False) + "\n")
                counts["errors"] += 1
            else:
                out.write(json.dumps(result_line(ident or "", results[id(record)]),
                                     ensure_ascii=False) + "\n")
                counts["ok"] += 1
            bar.update(1)
        out.flush()
        pending.clear()

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        counts["lines"] += 1
        pending.append(_parse(line, number))
        if len(pending) >= BATCH:
            flush()
    flush()
    bar.close()
    return counts


def cmd_classify(args: argparse.Namespace) -> int:
    from pipeline.errors import ConfigError

    if args.input == "-":
        lines: list[str] = sys.stdin.read().splitlines()
    else:
        path = Path(args.input)
        if not path.is_file():
            raise ConfigError("input file not found", path=str(path))
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    total = sum(1 for line in lines if line.strip())
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            counts = classify_stream(iter(lines), out, total=total, progress=not args.no_progress)
    else:
        counts = classify_stream(iter(lines), sys.stdout, total=total, progress=not args.no_progress)
    print(f"classified {counts['ok']} of {counts['lines']} lines, {counts['errors']} errors",
          file=sys.stderr)
    return 1 if counts["errors"] and not counts["ok"] else 0


# ---------------------------------------------------------------- eval

def _table(title: str, rows: dict[str, dict[str, float]], micro: dict[str, float]) -> str:
    from tabulate import tabulate

    body = [[m, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"]]
            for m, r in rows.items()]
    body.append(["micro (top-level ids)", f"{micro['precision']:.3f}", f"{micro['recall']:.3f}",
                 f"{micro['f1']:.3f}", micro["support"]])
    return f"{title}\n" + tabulate(body, headers=["motive", "P", "R", "F1", "support"])


def format_report(report: dict[str, Any]) -> str:
    parts = []
    sections = [(f"split: {split}", s) for split, s in report["splits"].items()]
    if "cross_validated" in report:
        sections.append(("leave one article out (thresholds calibrated on the other articles)",
                         report["cross_validated"]))
    for title, s in sections:
        parts.append(f"=== {title} ({s['articles']} articles) ===")
        parts.append(f"on-topic accuracy: {s['on_topic_accuracy']:.3f}")
        if s["unsupported_language"]:
            parts.append("language unsupported (on-topic decided, motives not predicted): "
                         + ", ".join(s["unsupported_language"]))
        if s["stale_labels"]:
            parts.append("STALE sentence labels (hash not found): " + ", ".join(s["stale_labels"]))
        parts.append(_table("article level (English articles)", s["article"], s["article_micro"]))
        parts.append(_table("sentence level (labelled English on-topic articles)", s["sentence"],
                            s["sentence_micro"]))
        parts.append("")
    return "\n".join(parts)


def cmd_eval(args: argparse.Namespace) -> int:
    from pipeline.classify import evaluate
    from pipeline.classify.head import THRESHOLDS_FILE
    from pipeline.classify.model import get_classifier

    shared = args.shared or evaluate.SHARED_DIR
    labels = args.labels or evaluate.LABELS_FILE
    classifier = get_classifier()
    if args.calibrate:
        prepared = evaluate.prepare(classifier, evaluate.load_labels(labels),
                                    evaluate.load_corpus(shared))
        thresholds = evaluate.calibrate(prepared, classifier.head.ids, 0.5)
        evaluate.save_thresholds(thresholds, THRESHOLDS_FILE)
        classifier.head.thresholds.update(thresholds)
        print(f"calibrated thresholds on the tune split -> {THRESHOLDS_FILE}", file=sys.stderr)
    report = evaluate.run_eval(classifier, shared, labels)
    report.pop("_prepared", None)
    if args.write_baseline:
        path = evaluate.write_baseline(report)
        print(f"pinned floors in {path}", file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
