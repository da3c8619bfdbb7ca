"""``newswatch es migrate|status``: the index schema on a cluster."""

from __future__ import annotations

import argparse
import json

from pipeline.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("es", help="create or migrate the Elasticsearch indices, show their state")
    actions = parser.add_subparsers(dest="es_action", metavar="ACTION", required=True)
    mig = actions.add_parser(
        "migrate", help="create missing indices; reindex and switch aliases when a mapping changed",
        description="Create what is missing and, when an index spec's version changed, copy every "
                    "document into the new versioned index and switch the alias atomically. "
                    "Safe to run again.")
    mig.add_argument("--kinds", help="comma-separated kinds (default: all)")
    mig.add_argument("--delete-old", action="store_true",
                     help="delete the old index after a successful switch (default: keep it "
                          "read-only as a backup)")
    mig.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    mig.add_argument("--json", action="store_true", help="print the report as JSON")
    mig.set_defaults(func=cmd_migrate)
    status = actions.add_parser("status", help="aliases, indices, versions and document counts")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)


def _kinds(value: str | None) -> list[str] | None:
    from pipeline.errors import ConfigError
    from pipeline.es.schema import INDEX_SPECS

    if not value:
        return None
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in INDEX_SPECS]
    if unknown:
        raise ConfigError(f"unknown kinds {unknown}; known: {', '.join(INDEX_SPECS)}", field="kinds")
    return kinds


def cmd_migrate(args: argparse.Namespace) -> int:
    from pipeline.es.client import build_client
    from pipeline.es.migrate import migrate

    settings = load_settings()
    report = migrate(build_client(settings), settings, kinds=_kinds(args.kinds),
                     delete_old=args.delete_old, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    for k in report.kinds:
        line = f"  {k.alias:<32} {k.action:<16} -> {k.index}"
        if k.action in ("migrated", "would_migrate"):
            line += f"  (from {k.from_index}, {k.source_count} documents"
            line += f", {k.copied} copied" if k.action == "migrated" else ""
            line += ", old index deleted)" if k.old_index_deleted else ")"
        print(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from pipeline.es.client import build_client
    from pipeline.es.status import index_status

    settings = load_settings()
    rows = index_status(build_client(settings), settings)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = r["state"]
        docs = "-" if r["docs"] is None else r["docs"]
        print(f"  {r['alias']:<32} {state:<14} {r['index'] or '-':<36} "
              f"v{r['live_version'] or '-'} (code v{r['code_version']})  {docs} docs"
              + ("  WRITES BLOCKED: run `newswatch es migrate`" if r["write_blocked"] else ""))
    return 0
