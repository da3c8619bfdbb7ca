"""``newswatch search "query" [--motive ID] [--since 7d] [--source S] [--claims] [--json]``."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Any

from pipeline.errors import ConfigError
from pipeline.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "search", help="search indexed articles or claims",
        description="Search articles (or claims) in Elasticsearch and print a table. Words are "
                    'matched in title and text ("exact phrase", -exclude, prefix* work); without '
                    "words the newest documents come first.")
    parser.add_argument("query", nargs="?", default="", help="words to look for (optional)")
    parser.add_argument("--motive", help="only documents with this motive id (children included)")
    parser.add_argument("--since", help="only documents newer than 30m, 24h, 7d, 2w or an ISO date")
    parser.add_argument("--source", help="only this source (id or outlet name)")
    parser.add_argument("--claims", action="store_true", help="search claims instead of articles")
    parser.add_argument("-n", "--size", type=int, default=20, help="how many results (default 20)")
    parser.add_argument("--json", action="store_true", help="print JSON (one list) for scripts")
    parser.set_defaults(func=cmd_search)


def _known_motives(settings: Any) -> list[str] | None:
    """Motive ids from the taxonomy file, so a typo gets a helpful error instead of no results."""
    from pipeline.taxonomy import load_taxonomy

    if not settings.taxonomy_file.exists():
        return None
    return load_taxonomy(settings.taxonomy_file).ids


def cmd_search(args: argparse.Namespace) -> int:
    from pipeline.es.client import build_client
    from pipeline.search import search, validate_motive

    settings = load_settings()
    if args.motive:
        validate_motive(args.motive, _known_motives(settings))
    if args.size < 1:
        raise ConfigError("--size must be at least 1", field="size")
    rows = search(settings, build_client(settings), args.query, motive=args.motive,
                  since=args.since, source=args.source, claims=args.claims, size=args.size)
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=2, default=str)
        print()
        return 0
    print(format_table(rows, claims=args.claims, width=shutil.get_terminal_size((140, 24)).columns))
    return 0


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def format_table(rows: list[dict[str, Any]], *, claims: bool = False, width: int = 140) -> str:
    """A plain-text table a person can scan: time, source, title, motives, score, link.

    The score column is there only when the rows have one: a search without words is sorted by
    time, and Elasticsearch gives no relevance then.
    """
    from tabulate import tabulate

    if not rows:
        return "no results"
    scored = any(r.get("score") is not None for r in rows)
    title_width = max(30, min(80, width - 100))
    table = []
    for r in rows:
        time = str(r.get("time") or "")[:16].replace("T", " ")
        row = [time, _clip(r["source"], 18), _clip(r["title"], title_width),
               _clip(", ".join(r["motives"]) or "-", 36)]
        if claims:
            row.append(r["fields"].get("novelty") or "")
        if scored:
            row.append("" if r["score"] is None else f"{r['score']:.2f}")
        row.append(r["url"])
        table.append(row)
    headers = ["time", "source", "claim" if claims else "title", "motives"]
    headers += ["novelty"] * claims + ["score"] * scored + ["link"]
    kind = "claims" if claims else "articles"
    return f"{tabulate(table, headers=headers, tablefmt='simple')}\n{len(rows)} {kind}"
