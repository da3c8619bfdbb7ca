"""``newswatch claims extract``, ``newswatch alerts process|send-pending|digest|subscriptions`` and
``newswatch eval-claims``: the claims and alerts stages by hand (the DAGs call the same functions)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.settings import load_settings

# The codes of `newswatch --help`: 1 "done, part of the work failed", 3 "a service is down".
EXIT_OK = 0
EXIT_ITEM_ERRORS = 1
EXIT_PENDING = 3
EXIT_UNDELIVERABLE = 1

DELIVERY_EXIT_CODES = f"""\
exit status:
  {EXIT_OK}  every due alert was delivered (or there was none); alerts another sender is
     delivering right now ("leased" in the report) are not counted as a failure
  {EXIT_ITEM_ERRORS}  the SMTP server refused alerts, or alerts gave up after their last attempt (a
     person has to look: "last_error" on the alert in the ledger), or some claims (process) or
     digest documents (digest) could not be written: see "errors"
  2  an error stopped the command (configuration, SMTP login refused)
  {EXIT_PENDING}  alerts are still pending: the SMTP server could not be reached or deferred them;
     they are kept and a later run (or `newswatch alerts send-pending`) delivers them; also
     Elasticsearch unreachable
When both 3 and 1 apply, 3 wins. The first line on stderr says why, e.g.
"newswatch: 524 alert(s) pending: SMTP at 127.0.0.1:8025 refused the connection"."""


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _instant(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _print(report: dict) -> None:
    print(json.dumps(report, indent=2, default=str, ensure_ascii=False))


def delivery_outcome(delivery: dict[str, Any] | None) -> tuple[int, str | None]:
    """The exit status a delivery report (``send_pending``) deserves and its one-line reason."""
    if not delivery:
        return EXIT_OK, None
    pending = int(delivery.get("pending") or 0)
    if pending:
        why = delivery.get("smtp_error") or "the SMTP server could not take them"
        return EXIT_PENDING, f"{pending} alert(s) pending: {why}"
    failed, gave_up = int(delivery.get("failed") or 0), int(delivery.get("gave_up") or 0)
    if failed or gave_up:
        parts = []
        if failed:
            first = (delivery.get("errors") or [{}])[0].get("error")
            parts.append(f"{failed} alert(s) refused by the SMTP server" + (f" ({first})" if first else ""))
        if gave_up:
            parts.append(f"{gave_up} alert(s) given up after their last attempt")
        return EXIT_UNDELIVERABLE, "; ".join(parts)
    return EXIT_OK, None


def _finish(report: dict[str, Any], delivery: dict[str, Any] | None, items: str = "") -> int:
    """Print the reason first (stderr), then the report (stdout); return the exit status.
    ``items`` names what the report's ``errors`` list is about, when it counts for the status."""
    code, line = delivery_outcome(delivery)
    if code == EXIT_OK and items and report.get("errors"):
        code, line = EXIT_ITEM_ERRORS, f"{len(report['errors'])} {items} failed, see \"errors\""
    if line:
        print(f"newswatch: {line}", file=sys.stderr, flush=True)
    _print(report)
    return code


def register(sub: argparse._SubParsersAction) -> None:
    claims = sub.add_parser("claims", help="extract claims from classified articles")
    claims_actions = claims.add_subparsers(dest="claims_action", metavar="ACTION", required=True)
    extract = claims_actions.add_parser("extract", help="claims from classified, on-topic articles")
    extract.add_argument("--limit", type=int, default=None, help="at most this many articles")
    extract.add_argument("--now", type=_instant, default=None,
                         help="the run's time, ISO 8601 (a replay or backfill; default: now)")
    extract.set_defaults(func=cmd_extract)

    alerts = sub.add_parser("alerts", help="novelty, alert emails and digests")
    actions = alerts.add_subparsers(dest="alerts_action", metavar="ACTION", required=True)
    codes = {"epilog": DELIVERY_EXIT_CODES, "formatter_class": argparse.RawDescriptionHelpFormatter}
    process = actions.add_parser("process", help="cluster new claims, create alerts and send them",
                                 **codes)
    process.add_argument("--no-send", action="store_true", help="create alerts but do not send")
    process.set_defaults(func=cmd_process)
    pending = actions.add_parser("send-pending", help="bundle queued claim events that are due and send "
                                 "every pending email (e.g. after SMTP was down)", **codes)
    pending.set_defaults(func=cmd_send_pending)
    for command in (process, pending):
        command.add_argument("--now", type=_instant, default=None,
                             help="the run's time, ISO 8601 (a replay or backfill; default: now)")
    digest = actions.add_parser("digest", help="send the daily digest of one day", **codes)
    digest.add_argument("--day", type=_day, default=None, help="YYYY-MM-DD (default: yesterday, UTC)")
    digest.add_argument("--send-empty", action="store_true", help="also send when nothing matched")
    digest.add_argument("--now", type=_instant, default=None, help="the run's time, ISO 8601")
    digest.set_defaults(func=cmd_digest)
    subs = actions.add_parser("subscriptions", help="validate and list the subscriptions file")
    subs.set_defaults(func=cmd_subscriptions)

    evaluate = sub.add_parser("eval-claims", help='precision/recall of "same claim" on labelled pairs')
    evaluate.add_argument("--pairs", type=Path, default=None, help="default: eval/claim_pairs.yaml")
    evaluate.add_argument("--sweep", action="store_true",
                          help="also print the thresholds each cross-validation fold chose")
    evaluate.add_argument("--write-baseline", action="store_true",
                          help="pin the measured figures (with a margin) as the 'novelty' bounds in "
                               "eval/baseline.json")
    evaluate.set_defaults(func=cmd_eval)


def cmd_extract(args: argparse.Namespace) -> int:
    from pipeline.claims import extract_pending_claims
    from pipeline.es.client import build_client

    settings = load_settings()
    report = extract_pending_claims(settings, build_client(settings), now=args.now, limit=args.limit)
    _print(report)
    return 1 if report["failed"] else 0


def _edge() -> tuple[Any, Any, list[Any]]:
    """Settings, the Elasticsearch client and the subscriptions, built once for a command."""
    from pipeline.alerts import configured_subscriptions
    from pipeline.es.client import build_client

    settings = load_settings()
    return settings, build_client(settings), configured_subscriptions(settings)


def cmd_process(args: argparse.Namespace) -> int:
    from pipeline.alerts import process_new_claims
    from pipeline.alerts.channels import SmtpChannel

    settings, es, subs = _edge()
    with SmtpChannel(settings.smtp) as channel:
        report = process_new_claims(settings, es, subs, now=args.now, deliver=not args.no_send,
                                    channel=channel)
    return _finish(report, report.get("delivery"), "claim(s)")


def cmd_send_pending(args: argparse.Namespace) -> int:
    from pipeline.alerts import bundle_and_send
    from pipeline.alerts.channels import SmtpChannel

    settings, es, subs = _edge()
    # Not raised: the operator gets the counts and the reason, and the exit status says "pending".
    with SmtpChannel(settings.smtp) as channel:
        report = bundle_and_send(settings, es, subs, now=args.now, raise_on_unavailable=False,
                                 channel=channel)
    return _finish(report, report)


def cmd_digest(args: argparse.Namespace) -> int:
    from pipeline.alerts import send_digests

    day = args.day or (datetime.now(UTC).date() - timedelta(days=1))
    settings, es, subs = _edge()
    report = send_digests(settings, es, subs, day=day, now=args.now, send_empty=args.send_empty)
    return _finish(report, report.get("delivery"), "digest document(s)")


def cmd_subscriptions(args: argparse.Namespace) -> int:
    from pipeline.alerts import configured_subscriptions

    settings = load_settings()
    subs = configured_subscriptions(settings)
    print(f"{settings.subscriptions_file}: {len(subs)} subscription(s)")
    for s in subs:
        motives = ", ".join(s.motives) or "all motives"
        cadence = f" every {s.every_minutes} min" if s.batched else ""
        cap = f" at most {s.max_per_hour}/h" if s.max_per_hour else ""
        print(f"  {s.id:<16} {s.mode:<9}{cadence}{cap} min_score={s.min_score:<4} "
              f"min_importance={s.min_importance:<4} events={','.join(s.events)} {motives} "
              f"-> {', '.join(s.recipients)}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pipeline.alerts import novelty_report
    from pipeline.alerts.novelty_eval import evaluate_pairs

    result = evaluate_pairs(args.pairs, sweep=args.sweep)
    print(novelty_report.format_report(result))
    if args.write_baseline:
        novelty_report.write_novelty_baseline(result)
        print(f"pinned 'novelty' bounds in {novelty_report.BASELINE_FILE}", file=sys.stderr)
    return 0
