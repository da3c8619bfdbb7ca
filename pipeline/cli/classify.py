"""``newswatch classify INPUT.jsonl`` and ``newswatch eval``.

``classify`` is a contract other tools rely on: one JSON line out per input line (split on
``\n`` only), in order, each with its ``line`` number; a malformed line gets
``{"id": ..., "line": n, "error": ..., "field": ...}`` and the rest go on. Progress goes to stderr so
stdout stays machine-readable. ``eval`` prints on-topic accuracy and per-motive precision, recall
and F1 (article and sentence level) for the held-out and tuning splits separately.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import IO, Any

BATCH = 16


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("classify", help="classify articles from a JSON-lines file",
                            description="Read {id, title, text[, language]} per line (lines end at "
                                        "\\n only; invalid UTF-8 and lone surrogates become U+FFFD, "
                                        "flagged in 'repaired'); write one JSON result per input "
                                        "line, with its 'line' number (stdout or --output).")
    parser.add_argument("input", nargs="?", help="JSON-lines file, or - for stdin")
    parser.add_argument("--output", "-o", help="write results here instead of stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--pending", action="store_true",
                        help="instead of a file: classify the articles in Elasticsearch that wait for it, "
                             "as the classify DAG does (with --limit, --now for a replay)")
    parser.add_argument("--limit", type=int, default=None, help="--pending: at most this many articles")
    parser.add_argument("--now", type=_instant, default=None,
                        help="--pending: the run's time, ISO 8601 (default: now)")
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
    ev.add_argument("--motives-real", action="store_true",
                    help="motives on the real feed items and articles: outlet-grouped CV and a time "
                         "split, per motive P/R/F1 with bootstrap 95%% intervals, today's head vs a "
                         "keyword rule vs the head learned from real sentences (with "
                         "--write-baseline: pin the 'motives_real' floors)")
    ev.add_argument("--train-motives", action="store_true",
                    help="fit the learned motive head on all real data and write "
                         "pipeline/classify/data/motive_head.json (the classifier then uses it: "
                         "re-run `newswatch model build` afterwards)")
    ev.add_argument("--feedback", type=Path, default=None, metavar="FILE.jsonl",
                    help="readers' one-click verdicts (`newswatch feedback labels --out FILE.jsonl`) as "
                         "extra labels: how far they agree with what was alerted")
    ev.add_argument("--multilingual", action="store_true",
                    help="non-English items on their own: the gate (outlet-grouped CV, and trained on "
                         "English only) and the multilingual-e5 motive head against English (with "
                         "--train-motives: refit pipeline/classify/data/motive_head_e5.json first; with "
                         "--write-baseline: pin the 'multilingual' floors)")
    ev.set_defaults(func=cmd_eval)


# ---------------------------------------------------------------- classify

# Records are separated by b"\n" only: U+2028, U+2029, U+0085, \r, \v and \f are ordinary
# characters inside a record (str.splitlines() would cut a valid JSON line into pieces and shift
# every later line number). Each line is decoded as UTF-8 with one stated repair rule: every
# invalid byte sequence, and every lone surrogate a JSON "\ud800" escape produces (which no
# encoder downstream can write), becomes U+FFFD, and the record says so in "repaired".
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads joins valid escaped pairs: the rest are lone
REPLACEMENT = "\ufffd"
_FIELDS = ("id", "title", "text", "language")


@dataclass
class _Line:
    number: int
    ident: str | None = None
    record: dict[str, Any] | None = None
    error: str | None = None
    field: str | None = None
    repaired: list[str] = dataclass_field(default_factory=list)


def _repair(value: str) -> tuple[str, int]:
    return _LONE_SURROGATE.subn(REPLACEMENT, value)


def _parse(raw: bytes, number: int) -> _Line:
    """One input line (without its b"\n") as a record to classify or an error naming the field."""
    line = _Line(number)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
        line.repaired.append("line: invalid UTF-8 bytes replaced by U+FFFD")
    if not text.strip():
        line.error = f"line {number}: empty line (expected a JSON object)"
        return line
    try:
        # strict=False: a raw control character (tab, NUL) inside a string is kept, not refused
        record = json.loads(text, strict=False)
    except ValueError as exc:
        line.error = f"line {number}: not valid JSON ({exc.args[0] if exc.args else exc})"
        return line
    if not isinstance(record, dict):
        line.error = f"line {number}: expected a JSON object"
        return line
    for key in _FIELDS:
        if isinstance(record.get(key), str):
            record[key], count = _repair(record[key])
            if count:
                line.repaired.append(f"{key}: {count} lone surrogate(s) replaced by U+FFFD")
    ident = record.get("id")
    line.ident = ident if isinstance(ident, str) else (_repair(str(ident))[0] if ident is not None else None)
    for key in ("title", "text"):
        if not isinstance(record.get(key), str):
            line.error, line.field = f"line {number}: field {key!r} must be a string", key
            return line
    if line.ident is None:
        line.error, line.field = f"line {number}: field 'id' is missing", "id"
        return line
    language = record.get("language")
    if language is not None and not isinstance(language, str):
        line.error, line.field = f"line {number}: field 'language' must be a string", "language"
        return line
    line.record = record
    return line


def result_line(ident: str, result: Any) -> dict[str, Any]:
    """The output contract of ``newswatch classify`` for one article."""
    return {
        "id": ident, "on_topic": result.on_topic, "topic_score": result.topic_score,
        "motives": result.motives, "motive_scores": result.motive_scores,
        "sentences": [{"text": s.text, "motives": s.motives, "scores": s.scores}
                      for s in result.sentences],
        "language": result.language, "language_supported": result.language_supported,
    }


def _records(source: IO[bytes]) -> Iterator[bytes]:
    """Lines of a binary stream split on b"\n" only, one at a time (a 5 MB line is read once)."""
    for number, raw in enumerate(source):
        if number == 0 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a UTF-8 byte-order mark some editors write
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        yield raw[:-1] if raw.endswith(b"\r") else raw


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def classify_stream(lines: Iterable[bytes | str], out: IO[bytes], *, total: int | None = None,
                    progress: bool = True) -> dict[str, int]:
    """Classify JSON lines; exactly one output line per input line, in order, each with its
    ``line`` number; a line that cannot be classified gets ``{"id", "line", "error"[, "field"]}``."""
    from tqdm import tqdm

    from pipeline.classify.classifier import ArticleInput, get_classifier

    classifier = None
    counts = {"lines": 0, "ok": 0, "errors": 0, "repaired": 0}
    pending: list[_Line] = []
    bar = tqdm(total=total, unit="article", file=sys.stderr, disable=not progress or total is None
               or total < 2, desc="classify")

    def classify(batch: list[_Line]) -> list[Any]:
        nonlocal classifier
        classifier = classifier or get_classifier()
        return classifier.classify_articles([ArticleInput(x.record["title"], x.record["text"],
                                                          x.record.get("language")) for x in batch])

    def flush() -> None:
        todo = [x for x in pending if x.error is None]
        results: dict[int, Any] = {}
        if todo:
            try:
                results = dict(zip([x.number for x in todo], classify(todo), strict=True))
            except Exception:  # noqa: BLE001 - one bad article must not cost its batch: retry one by one
                for x in todo:
                    try:
                        results[x.number] = classify([x])[0]
                    except Exception as exc:  # noqa: BLE001 - reported in this line's record
                        x.error = f"line {x.number}: could not be classified ({type(exc).__name__}: {exc})"
        for x in pending:
            if x.error is not None:
                record: dict[str, Any] = {"id": x.ident, "line": x.number, "error": x.error}
                if x.field:
                    record["field"] = x.field
                counts["errors"] += 1
            else:
                record = {**result_line(x.ident or "", results[x.number]), "line": x.number}
                counts["ok"] += 1
            if x.repaired:
                record["repaired"] = x.repaired
                counts["repaired"] += 1
            out.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "replace"))
            bar.update(1)
        out.flush()
        pending.clear()

    for number, raw in enumerate(lines, start=1):
        counts["lines"] += 1
        pending.append(_parse(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw,
                              number))
        if len(pending) >= BATCH:
            flush()
    flush()
    bar.close()
    return counts


def _instant(value: str) -> Any:
    from datetime import UTC, datetime

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _classify_pending(args: argparse.Namespace) -> int:
    from pipeline.classify import classify_pending
    from pipeline.es.client import build_client
    from pipeline.settings import load_settings

    settings = load_settings()
    report = classify_pending(settings, build_client(settings), limit=args.limit, now=args.now)
    print(json.dumps(report, indent=2, default=str))
    return 1 if report.get("failed") else 0


def cmd_classify(args: argparse.Namespace) -> int:
    from pipeline.errors import ConfigError

    if args.pending:
        if args.input is not None:
            raise ConfigError("give an input file or --pending, not both")
        return _classify_pending(args)
    if args.input is None:
        raise ConfigError("an input file (or - for stdin) is required, or --pending")
    if args.input == "-":
        source, total = sys.stdin.buffer, None
    else:
        path = Path(args.input)
        if not path.is_file():
            raise ConfigError("input file not found", path=str(path))
        try:
            source, total = path.open("rb"), _count_lines(path)
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(path)) from exc
    try:
        if args.output:
            with open(args.output, "wb") as out:
                counts = classify_stream(_records(source), out, total=total, progress=not args.no_progress)
        else:
            counts = classify_stream(_records(source), sys.stdout.buffer, total=total,
                                     progress=not args.no_progress)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    repaired = f", {counts['repaired']} repaired" if counts["repaired"] else ""
    print(f"classified {counts['ok']} of {counts['lines']} lines, {counts['errors']} errors{repaired}",
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
            parts.append("not English (on-topic decided here; motives in `newswatch eval --multilingual`): "
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
    from pipeline.classify.classifier import get_classifier
    from pipeline.classify.head import THRESHOLDS_FILE

    shared = args.shared or evaluate.SHARED_DIR
    labels = args.labels or evaluate.LABELS_FILE
    if args.feedback is not None:
        return _eval_feedback(args)
    if args.multilingual:
        return _eval_multilingual(args, shared)
    if args.train_motives or args.motives_real:
        return _eval_motives_real(args, shared)
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


def _eval_feedback(args: argparse.Namespace) -> int:
    from pipeline.errors import ConfigError
    from pipeline.feedback.agreement import format_agreement, reader_agreement

    try:
        rows = [json.loads(line) for line in args.feedback.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"not a feedback labels file: {exc}", path=str(args.feedback)) from exc
    result = reader_agreement(rows)
    print(json.dumps(result, indent=2) if args.json else format_agreement(result))
    return 0


def _eval_motives_real(args: argparse.Namespace, shared: Path) -> int:
    from pipeline.classify import motive_eval

    if args.train_motives:
        written = motive_eval.train_motive_head(shared)
        print(f"wrote {motive_eval.LEARNED_FILE} (thresholds {written['thresholds']}); re-run "
              "`newswatch model build` so the int8 agreement check covers the new labels", file=sys.stderr)
        if not args.motives_real:
            return 0
    report = motive_eval.run_motive_eval(shared)
    if args.write_baseline:
        motive_eval.write_motive_baseline(report)
        print(f"pinned 'motives_real' floors in {motive_eval.BASELINE_FILE}", file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else motive_eval.format_motive_report(report))
    return 0


def _eval_multilingual(args: argparse.Namespace, shared: Path) -> int:
    from pipeline.classify import motive_multilingual, multilingual_eval

    if args.train_motives:
        motive_multilingual.train_multilingual_head(shared)
        print(f"wrote {motive_multilingual.LEARNED_E5_FILE}", file=sys.stderr)
    report = multilingual_eval.run_multilingual_eval(shared)
    if args.write_baseline:
        multilingual_eval.write_multilingual_baseline(report)
        print(f"pinned 'multilingual' floors in {multilingual_eval.BASELINE_FILE}", file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else multilingual_eval.format_multilingual_eval(report))
    return 0
