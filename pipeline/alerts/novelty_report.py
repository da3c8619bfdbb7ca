"""The novelty evaluation's report and its bounds in eval/baseline.json (``newswatch eval-claims``,
``--write-baseline``); the evaluation itself is ``pipeline.alerts.novelty_eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.alerts.novelty import Thresholds
from pipeline.alerts.novelty_eval import FOLDS, TIME_TEST_SHARE
from pipeline.classify.evaluate import BASELINE_FILE, pin_baseline

__all__ = ["BASELINE_FILE", "format_report", "novelty_floors", "write_novelty_baseline"]

BASELINE_MARGIN = 0.05


def _fmt(summary: dict[str, Any]) -> str:
    m, ci = summary["metrics"], summary["ci"]

    def one(key: str, label: str) -> str:
        if m[key] is None:
            return f"{label} -"
        lo, hi = ci[key] or (m[key], m[key])
        return f"{label} {m[key]:.3f} [{lo:.2f}, {hi:.2f}]"

    return (f"{one('recall', 'same-claim recall')}  {one('merge_rate', 'different merged')}  "
            f"{one('accuracy', '3-way accuracy')}  ({m['same']} same, {m['different']} different)")


def _fmt_repeats(runs: list[dict[str, Any]]) -> str:
    def one(key: str, label: str) -> str:
        values = [float(r[key]) for r in runs if r[key] is not None]
        if not values:
            return f"{label} -"
        return f"{label} mean {_mean(values):.3f} [{min(values):.2f}-{max(values):.2f}]"

    return (f"{one('recall', 'same-claim recall')}  {one('merge_rate', 'different merged')}  "
            f"{one('accuracy', '3-way accuracy')}")


def _mean(values: list[Any]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _fmt_t(t: Thresholds) -> str:
    return (f"cosine_strict={t.cosine_strict} cosine_min={t.cosine_min} lexical_min={t.lexical_min} "
            f"cosine_figures={t.cosine_figures} window_days={t.window_days:g} "
            f"update_window_days={t.update_window_days:g} split_sources={t.split_sources} "
            f"cosine_event={t.cosine_event:g} xl_cosine_min={t.xl_cosine_min:g}")


def format_report(result: dict[str, Any]) -> str:
    lines = [f"claim pairs: {result['pairs']}  thresholds: {_fmt_t(result['thresholds'])}"]
    for name, entry in result["sets"].items():
        lines.append(f"[{name}] {entry['pairs']} pairs")
        lines.append(f"  cross-validated ({FOLDS} folds, item-grouped): {_fmt(entry['cv'])}")
        runs = entry["cv_repeats"]
        lines.append(f"  over {len(runs)} fold assignments: {_fmt_repeats(runs)}")
        if "time_split" in entry:
            ts = entry["time_split"]
            lines.append(f"  time split (newest {int(TIME_TEST_SHARE * 100)}% of the real pairs, from "
                         f"{ts['test_from']}; tuned on {ts['train']} older and team pairs): {_fmt(ts)}")
            lines.append(f"    chosen there: cosine_min={ts['chosen'].cosine_min} "
                         f"window_days={ts['chosen'].window_days:g}")
        lines.append(f"  with the thresholds above (in-sample): {_fmt(entry['fixed'])}")
        lines.append(f"  before (similarity only, 0.9/0.7/0.3/0.65): {_fmt(entry['before'])}")
        lines += ["  errors:"] + ([f"    {e}" for e in entry["errors"]] or ["    none"])
    if "cv_thresholds" in result:
        lines.append("thresholds chosen per fold:")
        lines += [f"  {_fmt_t(t)}" for t in result["cv_thresholds"]]
    lines.append(f"chosen on all pairs (the defaults should match): {_fmt_t(result['selected_on_all'])}")
    return "\n".join(lines)


# metric -> (its bound's name, the count one pair's share is taken of, the bound's side)
_BOUNDS = {"recall": ("recall_min", "same", -1), "merge_rate": ("merge_rate_max", "different", 1),
           "accuracy": ("accuracy_min", "n", -1)}


def novelty_floors(result: dict[str, Any], margin: float = BASELINE_MARGIN) -> dict[str, Any]:
    """The ``novelty`` entry of eval/baseline.json: the measured figures and their bounds. Recall
    and accuracy floors sit ``margin`` (or one pair's share, when larger) under the measured figure,
    the merge-rate ceiling as far above it. The means over fold assignments get the same margins."""
    measured: dict[str, Any] = {}
    bounds: dict[str, Any] = {}
    for name, entry in result["sets"].items():
        schemes = {"cv": entry["cv"]["metrics"], "fixed": entry["fixed"]["metrics"]}
        if "time_split" in entry:
            schemes["time_split"] = entry["time_split"]["metrics"]
        runs = entry["cv_repeats"]
        schemes["cv_mean"] = {key: _mean([r[key] for r in runs]) for key in _BOUNDS}
        schemes["cv_mean"].update(same=runs[0]["same"], different=runs[0]["different"], n=runs[0]["n"])
        for scheme, m in schemes.items():
            # a metric with no pairs behind it (a set without different pairs) is neither pinned
            # nor bounded
            got = {k: float(m[k]) for k in _BOUNDS if m[k] is not None}
            measured.setdefault(name, {})[scheme] = {k: round(v, 4) for k, v in got.items()}
            out = bounds.setdefault(name, {})[scheme] = {}
            for key, (bound, support, sign) in _BOUNDS.items():
                if key in got:
                    slack = max(margin, 1.0 / max(1, m[support]))
                    out[bound] = round(min(1.0, max(0.0, got[key] + sign * slack)), 4)
    return {"note": "claim novelty on labelled pairs (pipeline.alerts.novelty_eval): 'cv' item-grouped "
                    "5-fold CV, 'cv_mean' its mean over five fold assignments, 'time_split' tuned on "
                    "older pairs and judged on the newest real ones, 'fixed' the shipped thresholds "
                    "(in-sample for the real pairs); bounds = measured -/+ max(margin, one pair's share)",
            "margin": margin, "measured": measured, "bounds": bounds}


def write_novelty_baseline(result: dict[str, Any], path: Path | None = None) -> None:
    """Pin the ``novelty`` bounds in eval/baseline.json, keeping every other key."""
    pin_baseline({"novelty": novelty_floors(result)}, path)
