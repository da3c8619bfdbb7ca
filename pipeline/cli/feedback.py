"""``newswatch feedback report|labels|links``: what readers said through the links in alerts."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    feedback = sub.add_parser("feedback", help="readers' feedback from the links in alert emails")
    actions = feedback.add_subparsers(dest="feedback_action", metavar="ACTION", required=True)
    report = actions.add_parser("report", help="counts of each verdict and the share 'useful', per "
                                               "motive, outlet and attribution source")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(func=cmd_report)
    labels = actions.add_parser("labels", help="export the verdicts as evaluation labels (JSON lines)")
    labels.add_argument("--out", type=Path, required=True, help="the JSON-lines file to write ('-': stdout)")
    labels.set_defaults(func=cmd_labels)
    links = actions.add_parser("links", help="print the signed links of one claim (to check the set-up)")
    for name in ("alert", "claim", "cluster", "subscription"):
        links.add_argument(f"--{name}", required=True, help=f"the {name} id")
    links.set_defaults(func=cmd_links)


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.es.client import build_client
    from pipeline.feedback import feedback_labels, feedback_report, format_report
    from pipeline.feedback.agreement import format_agreement, reader_agreement

    settings = load_settings()
    es = build_client(settings)
    report = feedback_report(es, settings)
    agreement = reader_agreement(feedback_labels(es, settings))
    if args.json:
        print(json.dumps({**report, "agreement": agreement}, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(format_report(report))
        print("\n" + format_agreement(agreement))
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    from pipeline.es.client import build_client
    from pipeline.feedback import feedback_labels

    settings = load_settings()
    rows = feedback_labels(build_client(settings), settings)
    text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
    if str(args.out) == "-":
        sys.stdout.write(text)
    else:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the labels: {exc.strerror}", path=str(args.out)) from None
        print(f"{args.out}: {len(rows)} label(s)", file=sys.stderr)
    return 0


def cmd_links(args: argparse.Namespace) -> int:
    from pipeline.feedback import feedback_links

    settings = load_settings()
    links = feedback_links(settings, alert_id=args.alert, claim_id=args.claim, cluster_id=args.cluster,
                           subscription_id=args.subscription, now=datetime.now(UTC))
    if not links:
        raise ConfigError("feedback links are off: set NEWSWATCH_FEEDBACK_KEY and NEWSWATCH_FEEDBACK_URL",
                          field="NEWSWATCH_FEEDBACK_KEY" if not settings.feedback.keys
                          else "NEWSWATCH_FEEDBACK_URL")
    for kind, url in links.items():
        print(f"{kind:<13} {url}")
    return 0
