"""The gate evaluation's floors (pinned in ``eval/baseline.json``) and its plain-text report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.classify.evaluate import pin_baseline

METHODS = ("hand_tuned", "keyword_rule", "learned")
SUBSETS = ("headline", "article", "non_english")
TIME_TEST_SHARE = 0.2


def gate_floors(report: dict[str, Any], margin: float = 0.05) -> dict[str, Any]:
    """The ``gate`` section of eval/baseline.json: the learned gate's measured accuracy and recall
    per scheme and subset, and floors = measured - margin."""
    measured: dict[str, Any] = {}
    for scheme in ("grouped_cv", "time_split"):
        for subset, s in report[scheme]["learned"].items():
            if not s.get("items"):
                continue
            entry = {"accuracy": s["accuracy"]}
            if s.get("recall") is not None:
                entry["recall"] = s["recall"]
            measured.setdefault(scheme, {})[subset] = entry
    english_only = report.get("english_only", {}).get("non_english", {})
    if english_only.get("items"):
        measured["english_only"] = {"non_english": {"accuracy": english_only["accuracy"],
                                                    "recall": english_only["recall"]}}
    floors: dict[str, Any] = {}
    for scheme, per in measured.items():
        for subset, m in per.items():
            s = (english_only if scheme == "english_only" else report[scheme]["learned"][subset])
            # One item may flip (int8 and fp32 embeddings differ a little): on a set of four
            # articles that is 0.25, so the margin is at least one item's worth.
            counts = {"accuracy": s["items"], "recall": s.get("on_topic") or 1}
            floors.setdefault(scheme, {})[subset] = {
                k: round(max(0.0, v - max(margin, 1.0 / counts[k])), 4) for k, v in m.items()}
    return {"note": "learned on-topic gate (pipeline.classify.gate_eval); floors = measured - "
                    "max(margin, one item's share of the subset)",
            "margin": margin, "measured": measured, "floors": floors}


def write_gate_baseline(report: dict[str, Any], margin: float = 0.05, path: Path | None = None) -> None:
    """Pin the gate floors in eval/baseline.json, keeping every other key."""
    pin_baseline({"gate": gate_floors(report, margin)}, path)


def format_gate_report(report: dict[str, Any]) -> str:
    """A plain-text table: method x subset, accuracy and recall with their 95% intervals."""
    lines = []
    d = report["data"]
    lines.append(f"gate evaluation: {d['headline_items']} headline items, {d['articles']} articles, "
                 f"{d['non_english']} non-English, {d['on_topic']} on topic, {d['outlets']} outlets")

    def cell(s: dict[str, Any], key: str) -> str:
        if not s.get("items") or s.get(key) is None:
            return "-"
        low, high = s[f"{key}_ci95"]
        return f"{s[key]:.3f} [{low:.2f}-{high:.2f}]"

    for scheme, title in (("grouped_cv", "outlet-grouped CV"), ("time_split", "time split "
                          f"(newest {int(TIME_TEST_SHARE * 100)}% per kind)")):
        lines.append(f"\n{title}")
        lines.append(f"{'method':<14}{'subset':<13}{'n':>5}{'pos':>5}  {'accuracy [95% CI]':<22}"
                     f"{'recall [95% CI]':<22}")
        for method in METHODS:
            for subset in SUBSETS:
                s = report[scheme][method][subset]
                lines.append(f"{method:<14}{subset:<13}{s.get('items', 0):>5}{s.get('on_topic', 0):>5}  "
                             f"{cell(s, 'accuracy'):<22}{cell(s, 'recall'):<22}")
    english_only = report.get("english_only", {}).get("non_english", {})
    if english_only.get("items"):
        lines.append("\nnon-English items, multilingual gate trained on English items only")
        lines.append(f"{'learned':<14}{'non_english':<13}{english_only['items']:>5}"
                     f"{english_only['on_topic']:>5}  {cell(english_only, 'accuracy'):<22}"
                     f"{cell(english_only, 'recall'):<22}")
    return "\n".join(lines)
