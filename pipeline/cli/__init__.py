"""The ``newswatch`` command.

Each module in this package that defines ``register(subparsers)`` adds its sub-commands, so a
new command is a new module and nothing else changes. Parsing lives here and in ``register``;
the work is done by functions elsewhere in ``pipeline``.

Every failure ends in one line on stderr that starts ``newswatch: error:``; tracebacks (ours and
those library code logs on the way) are shown only with ``-v``, so that line is never buried.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import traceback

from pipeline.errors import NewswatchError, ServiceUnavailable

__all__ = ["EXIT_CODES", "build_parser", "exit_status", "main"]

# What each exit status means, for scripts and cron (printed by `newswatch --help`).
EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_ERROR = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERNAL = 4
EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    done, nothing failed
  {EXIT_PARTIAL}    done, but part of the work failed and was reported (a source could not be polled,
       alerts are left pending, every input line of classify was bad, doctor found problems)
  {EXIT_ERROR}    nothing was done: bad arguments, an invalid configuration or input file, a local
       service that could not be set up, or a service that refused the request
  {EXIT_UNAVAILABLE}    a service (Elasticsearch, SMTP, Kibana) is down or not answering: try again later
  {EXIT_INTERNAL}    an unexpected internal error (a bug): run again with -v for the traceback
  129  stopped by SIGHUP (terminal closed), 130 by SIGINT (Ctrl-C), 143 by SIGTERM (128 + signal)
  141  the output pipe was closed before everything was written (e.g. `| head`)
"""


def exit_status(exc: NewswatchError) -> int:
    """The exit status of a command that stopped on ``exc`` (see ``EXIT_CODES``)."""
    return EXIT_UNAVAILABLE if isinstance(exc, ServiceUnavailable) else EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newswatch",
        description="Watch a topic in the news: ingest feeds, classify motives, index in "
                    "Elasticsearch and alert by email on new claims.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging; with -v, errors come with their traceback")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


class _QuietFormatter(logging.Formatter):
    """Without -v a logged exception shows as its last line only (type and message): the
    tracebacks library code logs while a run fails would otherwise push the one line that says
    what went wrong off the screen."""

    def formatException(self, ei) -> str:  # noqa: ANN001, N802 - logging's signature
        return "".join(traceback.format_exception_only(ei[0], ei[1])).rstrip() + "  (-v: traceback)"

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's signature
        return ""


def _report(exc: BaseException, message: str, verbose: int) -> None:
    line = f"newswatch: error: {message}"
    try:
        print(line, file=sys.stderr, flush=True)
        if verbose:
            traceback.print_exception(exc, file=sys.stderr)
            print(line, file=sys.stderr, flush=True)  # last as well as first, after the traceback
    except (OSError, ValueError):
        pass  # stderr is closed or gone: the exit status is all that can still tell


def _quiet_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush does not
    raise (and print) a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = int(args.verbose)
    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt) if verbose else _QuietFormatter(fmt))
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), handlers=[handler])
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        return int(args.func(args) or 0)
    except NewswatchError as exc:
        _report(exc, str(exc), verbose)
        return exit_status(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except Exception as exc:  # noqa: BLE001 - the one place every unexpected failure is reported
        hint = "" if verbose else " (run with -v for the traceback)"
        _report(exc, f"unexpected {type(exc).__name__}: {exc}{hint}", verbose)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
