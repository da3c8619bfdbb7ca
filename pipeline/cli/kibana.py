"""``newswatch kibana import|export``: the saved objects in ``kibana/``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from pipeline.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("kibana", help="import the Kibana data views, searches and dashboard")
    actions = parser.add_subparsers(dest="kibana_action", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import", help="post kibana/*.ndjson to Kibana's saved objects API (overwrite)",
        description="Import the saved objects into Kibana, replacing earlier versions. Credentials: "
                    "NEWSWATCH_KIBANA_API_KEY, or NEWSWATCH_KIBANA_USERNAME/PASSWORD, or user:pass@ "
                    "in the URL.")
    imp.add_argument("--url", help="Kibana URL (default: NEWSWATCH_KIBANA_URL or settings)")
    imp.add_argument("--file", type=Path, action="append",
                     help="NDJSON file(s) to import (default: kibana/*.ndjson)")
    imp.add_argument("--space", help="Kibana space id (default: the default space)")
    imp.add_argument("--prefix", help="index prefix the data views point at (default: settings)")
    imp.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                     help="wait up to this long for Kibana to answer before importing")
    imp.add_argument("--ca-certs", help="CA bundle for an HTTPS Kibana")
    imp.set_defaults(func=cmd_import)
    exp = actions.add_parser("export", help="regenerate kibana/newswatch.ndjson from pipeline/kibana.py")
    exp.add_argument("--output", type=Path, default=None)
    exp.set_defaults(func=cmd_export)


def cmd_import(args: argparse.Namespace) -> int:
    from pipeline import kibana, kibana_api
    from pipeline.errors import ConfigError

    settings = load_settings()
    url = args.url or settings.kibana_url
    parts = urlsplit(url)
    username = unquote(parts.username) if parts.username else os.environ.get("NEWSWATCH_KIBANA_USERNAME")
    password = unquote(parts.password) if parts.password else os.environ.get("NEWSWATCH_KIBANA_PASSWORD")
    if parts.username:
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    files = args.file or sorted(kibana.NDJSON_PATH.parent.glob("*.ndjson"))
    if not files:
        raise ConfigError("no .ndjson files to import", path=str(kibana.NDJSON_PATH.parent))
    objects = [obj for f in files for obj in kibana.load_ndjson(f)]
    prefix = args.prefix or settings.index_prefix
    if prefix != kibana.DEFAULT_PREFIX:
        objects = kibana.retarget(objects, prefix)
    broken = kibana.problems(objects)
    if broken:
        raise ConfigError("the saved objects are inconsistent: " + "; ".join(broken[:10]),
                          path=", ".join(str(f) for f in files))
    if args.wait > 0:
        kibana_api.wait_for_kibana(url, timeout=args.wait, verify=args.ca_certs or True)
    result = kibana_api.import_saved_objects(
        url, kibana.dumps_ndjson(objects), space=args.space,
        api_key=os.environ.get("NEWSWATCH_KIBANA_API_KEY"), username=username, password=password,
        ca_certs=args.ca_certs)
    print(f"imported {result.success_count} saved objects into {url}"
          f"{f' (space {args.space})' if args.space else ''}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pipeline import kibana

    path = args.output or kibana.NDJSON_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    objects = kibana.build_objects()
    path.write_text(kibana.dumps_ndjson(objects), encoding="utf-8")
    print(f"wrote {len(objects)} saved objects to {path}")
    return 0
