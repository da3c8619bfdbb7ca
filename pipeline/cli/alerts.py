"""``newswatch claims extract``, ``newswatch alerts process|send-pending|digest|subscriptions`` and
``newswatch eval-claims``: the claims and alerts stages by hand (the DAGs call the same functions)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipeline.settings import load_settings


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _print(report: dict) -> None:
    print(json.dumps(report, indent=2, default=str, ensure_ascii=False))


def register(sub: argparse._SubParsersAction) -> None:
    claims = sub.add_parser("claims", help="extract claims from classified articles")
    claims_actions = claims.add_subparsers(dest="claims_action", metavar="ACTION", required=True)
    extract = claims_actions.add_parser("extract", help="claims from classified, on-topic articles")
    extract.add_argument("--limit", type=int, default=None, help="at most this many articles")
    extract.set_defaults(func=cmd_extract)

    alerts = sub.add_parser("alerts", help="novelty, alert emails and digests")
    actions = alerts.add_subparsers(dest="alerts_action", metavar="ACTION", required=True)
    process = actions.add_parser("process", help="cluster new claims, create alerts and send them")
    process.add_argument("--no-send", action="store_true", help="create alerts but do not send")
    process.set_defaults(func=cmd_process)
    pending = actions.add_parser("send-pending", help="send alerts still pending (e.g. after SMTP was down)")
    pending.set_defaults(func=cmd_send_pending)
    digest = actions.add_parser("digest", help="send the daily digest of one day")
    digest.add_argument("--day", type=_day, default=None, help="YYYY-MM-DD (default: yesterday, UTC)")
    digest.add_argument("--send-empty", action="store_true", help="also send when nothing matched")
    digest.set_defaults(func=cmd_digest)
    subs = actions.add_parser("subscriptions", help="validate and list the subscriptions file")
    subs.set_defaults(func=cmd_subscriptions)

    evaluate = sub.add_parser("eval-claims", help='precision/recall of "same claim" on labelled pairs')
    evaluate.add_argument("--pairs", type=Path, default=None, help="default: eval/claim_pairs.yaml")
    evaluate.add_argument("--sweep", action="store_true", help="also print a threshold sweep")
    evaluate.set_defaults(func=cmd_eval)


def cmd_extract(args: argparse.Namespace) -> int:
    from pipeline.claims import extract_pending_claims

    report = extract_pending_claims(load_settings(), limit=args.limit)
    _print(report)
    return 1 if report["failed"] else 0


def cmd_process(args: argparse.Namespace) -> int:
    from pipeline.alerts import process_new_claims

    report = process_new_claims(load_settings(), deliver=not args.no_send)
    _print(report)
    return 1 if report["errors"] else 0


def cmd_send_pending(args: argparse.Namespace) -> int:
    from pipeline.alerts import send_pending

    _print(send_pending(load_settings()))
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from pipeline.alerts import send_digests

    day = args.day or (datetime.now(UTC).date() - timedelta(days=1))
    _print(send_digests(load_settings(), day=day, send_empty=args.send_empty))
    return 0


def cmd_subscriptions(args: argparse.Namespace) -> int:
    from pipeline.alerts import configured_subscriptions

    settings = load_settings()
    subs = configured_subscriptions(settings)
    print(f"{settings.subscriptions_file}: {len(subs)} subscription(s)")
    for s in subs:
        motives = ", ".join(s.motives) or "all motives"
        print(f"  {s.id:<16} {s.mode:<9} min_score={s.min_score:<4} {motives} -> {', '.join(s.recipients)}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pipeline.alerts.evaluate import evaluate_pairs, format_report

    result = evaluate_pairs(args.pairs, sweep=args.sweep)
    print(format_report(result))
    return 0
