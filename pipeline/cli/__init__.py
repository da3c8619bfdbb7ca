"""The ``newswatch`` command.

Each module in this package that defines ``register(subparsers)`` adds its sub-commands, so a
new command is a new module and nothing else changes. Parsing lives here and in ``register``;
the work is done by functions elsewhere in ``pipeline``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from pipeline.errors import NewswatchError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newswatch",
        description="Watch a topic in the news: ingest feeds, classify motives, index in "
                    "Elasticsearch and alert by email on new claims.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except NewswatchError as exc:
        print(f"newswatch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
