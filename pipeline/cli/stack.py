"""``newswatch stack up|down|status``: the local services."""

from __future__ import annotations

import argparse

from pipeline.settings import load_settings
from pipeline.stack import registry
from pipeline.stack.service import ServiceStatus


def _services(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("stack", help="start, stop or inspect the local services")
    actions = parser.add_subparsers(dest="stack_action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start services (idempotent)")
    up.add_argument("--services", type=_services, default=None,
                    help=f"comma-separated, from {','.join(registry.REGISTRY)} (default: elasticsearch,smtp; "
                         "with --scale: every service of the scaled stack)")
    up.add_argument("--scale", action="store_true",
                    help="the scaled stack: 3 Elasticsearch nodes, PostgreSQL, Redis, Airflow on Celery")
    up.set_defaults(func=cmd_up)
    down = actions.add_parser("down", help="stop services (all by default)")
    down.add_argument("--services", type=_services, default=None)
    down.set_defaults(func=cmd_down)
    status = actions.add_parser("status", help="which services answer")
    status.add_argument("--scale", action="store_true", help="the services of the scaled stack")
    status.set_defaults(func=cmd_status)


def _print(statuses: list[ServiceStatus]) -> None:
    for st in statuses:
        print(f"  {st.name:<14} {'up' if st.running else 'down':<5} {st.detail}")


def cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings()
    names = args.services or (list(registry.PROFILES["scale"]) if args.scale else ["elasticsearch", "smtp"])
    statuses = registry.up(settings, names)
    _print([s for s in statuses if s.name in names])
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = registry.down(load_settings(), args.services)
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _print(registry.status(load_settings(), profile="scale" if args.scale else "local"))
    return 0
