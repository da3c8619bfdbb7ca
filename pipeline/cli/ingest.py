"""``newswatch ingest --plan|--once|--reconcile`` and ``newswatch sources check|status``.

Parsing and printing only. Each ``ingest`` action runs the function the ingest DAG's task of the
same stage calls, so an operator can replay a run by hand (``--now`` sets the run's time, as the
DAG passes its logical date): ``--plan`` is ``batches.plan_batches``, ``--once`` is
``ingest_once``, ``--reconcile`` is ``batches.reconcile_batches`` over the JSON reports that
``--once --json`` printed. ``sources`` uses ``check_sources`` and the stored feed states.

Exit codes of ``newswatch ingest --once``: 0 when every polled source succeeded (articles that
kept the feed text because their page failed do not count as failures: they are indexed);
``EXIT_SOURCE_FAILED`` (1) when at least one source failed, after a one-line summary naming them
on stderr (the other sources' articles and states are written all the same); 2 for a
configuration error and 130 for Ctrl-C (``pipeline.cli.main``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.settings import Settings, load_settings

EXIT_SOURCE_FAILED = 1


def _ids(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


def _time(value: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r} (e.g. 2026-03-02T12:00Z)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(sub: argparse._SubParsersAction) -> None:
    ingest = sub.add_parser(
        "ingest",
        help="poll the sources and index new articles (or one stage of the ingest DAG)",
        description="Poll the sources and index new articles. Exit code 0 when every polled source "
        f"succeeded, {EXIT_SOURCE_FAILED} when any failed (named on stderr; the others are written "
        "anyway), 2 for a configuration error. --plan and --reconcile run the DAG's other stages.",
    )
    stage = ingest.add_mutually_exclusive_group(required=True)
    stage.add_argument(
        "--once",
        action="store_true",
        help="one pass over the sources (scheduled runs are Airflow's job)",
    )
    stage.add_argument(
        "--plan", action="store_true", help="print the batches of source ids the DAG would poll in parallel"
    )
    stage.add_argument(
        "--reconcile",
        action="store_true",
        help="mark copies that parallel polls indexed separately, and print the run's totals (--report)",
    )
    ingest.add_argument("--now", type=_time, default=None, metavar="TIME",
                        help="the run's time (ISO 8601, default now): replays a scheduled run")
    ingest.add_argument("--batches", type=int, default=None, metavar="N",
                        help="with --plan: at most N batches (default NEWSWATCH_INGEST_BATCHES, else 2)")
    ingest.add_argument("--report", type=Path, action="append", default=[], metavar="FILE",
                        help="with --reconcile: a JSON report of --once --json ('-': stdin); repeatable")
    ingest.add_argument("--extractor", default=None, metavar="NAME",
                        help="page-text strategy, trafilatura or feed (default: NEWSWATCH_EXTRACTOR, "
                        "else trafilatura)")
    ingest.add_argument("--sources", type=_ids, default=None, metavar="ID,ID", help="only these source ids")
    ingest.add_argument("--sources-file", type=Path, default=None, help="instead of NEWSWATCH_SOURCES_FILE")
    ingest.add_argument(
        "--due-only",
        action="store_true",
        help="skip sources whose next poll time has not come (as the scheduled DAG does)",
    )
    ingest.add_argument(
        "--force", action="store_true", help="also poll sources disabled after repeated failures"
    )
    ingest.add_argument("--no-pages", action="store_true", help="do not fetch article pages; feed text only")
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")
    ingest.set_defaults(func=cmd_ingest)

    sources = sub.add_parser("sources", help="check or inspect the configured sources")
    actions = sources.add_subparsers(dest="sources_action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="poll every source once (writes nothing) and print a table")
    check.add_argument("--sources", type=_ids, default=None, metavar="ID,ID")
    check.add_argument("--sources-file", type=Path, default=None)
    check.add_argument(
        "--offline-index", action="store_true", help="do not ask Elasticsearch which entries are new"
    )
    check.set_defaults(func=cmd_check)
    status = actions.add_parser("status", help="stored polling state per source (health, backoff, next poll)")
    status.set_defaults(func=cmd_status)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    if getattr(args, "sources_file", None):
        settings = settings.with_overrides(sources_path=args.sources_file)
    return settings


def _console() -> Any:
    from rich.console import Console

    return Console()


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.plan:
        return cmd_plan(args)
    if args.reconcile:
        return cmd_reconcile(args)
    return cmd_once(args)


def cmd_plan(args: argparse.Namespace) -> int:
    from pipeline.ingest.batches import plan_batches

    batches = args.batches
    if batches is None:
        batches = int(os.environ.get("NEWSWATCH_INGEST_BATCHES", "2"))
    print(json.dumps(plan_batches(_settings(args), batches), indent=2))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from pipeline.errors import ConfigError
    from pipeline.ingest.batches import reconcile_batches

    if not args.report:
        raise ConfigError("--reconcile needs at least one --report FILE (the JSON of ingest --once --json)")
    reports = []
    for path in args.report:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        try:
            reports.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not a JSON ingest report: {exc}", path=str(path)) from exc
    totals = reconcile_batches(_settings(args), reports, now=args.now or datetime.now(UTC))
    print(json.dumps(totals, indent=2))
    return 0


def cmd_once(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipeline.ingest import ingest_once
    from pipeline.ingest.extract import extractor_from_environment, extractor_named

    settings = _settings(args)
    extractor = extractor_named(args.extractor) if args.extractor else extractor_from_environment()
    console = _console()
    with Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
        disable=args.json,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(result: Any, done: int, total: int) -> None:
            bar.update(
                task,
                completed=done,
                total=total,
                description=f"{result.source_id}: {result.status} +{result.new_articles}",
            )

        report = ingest_once(
            settings,
            source_ids=args.sources,
            now=args.now,
            progress=progress,
            force=args.force,
            ignore_schedule=not args.due_only,
            fetch_articles=False if args.no_pages else None,
            processes=None,  # worker processes when many feeds are due (this entry point is guarded)
            extractor=extractor,
        )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_results(console, report.feeds, title="ingest")
        d = report.as_dict()
        console.print(
            f"sources polled {d['sources_polled']} (ok {d['sources_ok']}, failed {d['sources_failed']}, "
            f"unchanged {d['sources_not_modified']}, skipped {d['sources_skipped']}); "
            f"entries {d['entries']}, new articles {d['new_articles']}, duplicates {d['duplicates']}"
        )
    summary = report.failure_summary()
    if summary is None:
        return 0
    print(f"newswatch: {summary}", file=sys.stderr)
    return EXIT_SOURCE_FAILED


def cmd_check(args: argparse.Namespace) -> int:
    from pipeline.es.client import build_client
    from pipeline.ingest import check_sources

    settings = _settings(args)
    es = None if args.offline_index else build_client(settings)
    results = check_sources(settings, es, source_ids=args.sources)
    _print_results(_console(), results, title="sources check", new_label="new" if es else "new (unchecked)")
    return 1 if any(r.status == "error" for r in results) else 0


def _print_results(console: Any, results: list[Any], *, title: str, new_label: str = "new") -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in ("source", "status", "http", "entries", new_label, "errors", "time"):
        table.add_column(
            col, justify="right" if col in ("http", "entries", "time") or col.startswith("new") else "left"
        )
    for r in results:
        errors = r.error or ""
        if r.error_kind:
            errors = f"{r.error_kind}: {errors}"
        if r.bozo and r.status != "error":
            errors = f"warning: {r.bozo_message}"
        if r.article_errors:
            errors = (errors + "; " if errors else "") + f"{len(r.article_errors)} article error(s)"
        style = {"error": "red", "ok": "green", "disabled": "dim", "not_due": "dim"}.get(r.status, "")
        table.add_row(
            r.source_id,
            f"[{style}]{r.status}[/]" if style else r.status,
            str(r.http_status or ""),
            str(r.entries),
            str(r.new_articles),
            errors[:100],
            f"{r.elapsed_ms / 1000:.2f}s",
        )
    console.print(table)


def cmd_status(args: argparse.Namespace) -> int:
    from rich.table import Table

    from pipeline.es.client import build_client, mapped_errors
    from pipeline.ingest.state import all_states

    settings = load_settings()
    es = build_client(settings)
    with mapped_errors("checking the feeds index"):
        present = es.indices.exists_alias(name=settings.index("feeds"))
    states = all_states(es, settings) if present else []
    table = Table(title="feed state")
    for col in ("source", "last status", "last success", "failures", "next poll", "last error / disabled"):
        table.add_column(col)
    for st in states:
        note = st.disabled_reason if st.disabled else (st.last_error or "") if st.consecutive_failures else ""
        table.add_row(
            st.source_id,
            st.last_status or "",
            st.last_success or "never",
            str(st.consecutive_failures),
            st.next_poll or "",
            (note or "")[:100],
        )
    _console().print(table if states else "no feed has been polled yet")
    return 0
