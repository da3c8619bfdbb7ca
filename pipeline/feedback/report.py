"""What readers said: counts per motive and per source, and the verdicts as evaluation labels."""

from __future__ import annotations

from typing import Any

from pipeline.es.client import mapped_errors
from pipeline.feedback.store import KIND
from pipeline.feedback.tokens import KINDS
from pipeline.settings import Settings

_GROUPS = {"motive": "motives", "outlet": "outlet", "attribution": "attribution_source"}
_MAX_TERMS = 1000


def _row(key: str, kind_buckets: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {kind: 0 for kind in KINDS}
    for bucket in kind_buckets:
        if bucket["key"] in counts:
            counts[bucket["key"]] = int(bucket["doc_count"])
    total = sum(counts.values())
    return {"key": key, "total": total, "counts": counts,
            "useful_share": round(counts["useful"] / total, 3) if total else None}


def feedback_report(es: Any, settings: Settings) -> dict[str, Any]:
    """Counts of each kind, and the share "useful", overall, per motive, per outlet and per
    attribution source (claims without one are left out of that table), busiest first."""
    kinds = {"terms": {"field": "kind", "size": len(KINDS) + 1}}
    aggs: dict[str, Any] = {"kinds": kinds}
    for name, field in _GROUPS.items():
        aggs[name] = {"terms": {"field": field, "size": _MAX_TERMS}, "aggs": {"kinds": kinds}}
    with mapped_errors("feedback report"):
        resp = es.options(ignore_status=404).search(index=settings.index(KIND), size=0, aggs=aggs,
                                                    track_total_hits=True)
    found = resp.get("aggregations") or {}
    report: dict[str, Any] = {"index": settings.index(KIND),
                              "overall": _row("all", found.get("kinds", {}).get("buckets", []))}
    for name in _GROUPS:
        buckets = found.get(name, {}).get("buckets", [])
        report[f"by_{name}"] = [_row(str(b["key"]), b["kinds"]["buckets"]) for b in buckets]
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as plain-text tables."""
    columns = ["total", *KINDS, "useful share"]
    widths = [max(len(c), 5) for c in columns]
    lines: list[str] = []
    for title, rows in (("overall", [report["overall"]]), ("per motive", report["by_motive"]),
                        ("per outlet", report["by_outlet"]),
                        ("per attribution source", report["by_attribution"])):
        lines.append(f"{title}:")
        if not rows or not rows[0]["total"]:
            lines += ["  (no feedback)", ""]
            continue
        first = max(len(r["key"]) for r in rows)

        def line(label: str, cells: list[str], first: int = first) -> str:
            return f"  {label:<{first}}" + "".join(f"  {c:>{w}}" for c, w in zip(cells, widths, strict=True))

        lines.append(line("", columns))
        for r in rows:
            share = "-" if r["useful_share"] is None else f"{r['useful_share']:.2f}"
            lines.append(line(r["key"], [str(r["total"]), *(str(r["counts"][k]) for k in KINDS), share]))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _all_feedback(es: Any, settings: Settings, page: int = 500) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": page, "sort": [{"id": "asc"}], "query": {"match_all": {}}}
        if after is not None:
            body["search_after"] = after
        with mapped_errors("read feedback"):
            resp = es.options(ignore_status=404).search(index=settings.index(KIND), **body)
        hits = (resp.get("hits") or {}).get("hits") or []
        docs.extend(h["_source"] for h in hits)
        if len(hits) < page:
            return docs
        after = hits[-1]["sort"]


def feedback_labels(es: Any, settings: Settings) -> list[dict[str, Any]]:
    """Readers' verdicts as extra evaluation labels, one row per (claim, kind).

    ``on_topic`` is False for "not on topic" and True for "useful" (a reader found it worth
    reading on this topic), else None; ``novel`` is False for "not new", else None;
    ``motives_wrong`` lists the motives the claim was alerted with when a reader said "wrong
    motive". ``votes`` counts the alerts and subscriptions that gave the verdict. Conflicting
    verdicts on one claim are all kept: weighing them is the evaluation's business.
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in _all_feedback(es, settings):
        key = (doc["claim_id"], doc["kind"])
        row = rows.get(key)
        if row is None:
            kind = doc["kind"]
            motives = sorted(doc.get("motives") or [])
            row = rows[key] = {
                "claim_id": doc["claim_id"], "article_id": doc.get("article_id"), "kind": kind,
                "text": doc.get("claim_text"), "motives": motives,
                "motives_wrong": motives if kind == "wrong_motive" else [],
                "on_topic": False if kind == "not_on_topic" else (True if kind == "useful" else None),
                "novel": False if kind == "not_new" else None,
                "votes": 0, "subscriptions": [], "first_at": doc["recorded_at"],
                "last_at": doc["recorded_at"],
            }
        row["votes"] += 1
        if doc["subscription_id"] not in row["subscriptions"]:
            row["subscriptions"].append(doc["subscription_id"])
        row["first_at"] = min(row["first_at"], doc["recorded_at"])
        row["last_at"] = max(row["last_at"], doc["recorded_at"])
    return sorted(rows.values(), key=lambda r: (r["claim_id"], KINDS.index(r["kind"])))
