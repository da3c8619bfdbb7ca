"""``newswatch run``: the whole demo on local services, with a live summary, until Ctrl-C.

It starts Elasticsearch, the SMTP catcher, the sample feed server and Airflow (in that order, so
a failure names the service that failed), creates the indices, prints where to look, and then
prints one summary line every few seconds, read from Elasticsearch: what the DAGs have done so
far. Ctrl-C (or SIGTERM) stops every service it started, so nothing is left running; a second
Ctrl-C while stopping is ignored rather than leaving half-stopped processes behind.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.errors import NewswatchError, ServiceUnavailable, SetupError
from pipeline.settings import Settings, load_settings
from pipeline.stack import manager
from pipeline.stack.common import read_pid

__all__ = ["Summary", "format_summary", "register", "summary_counts"]

ALL_SERVICES = ["elasticsearch", "smtp", "feeds", "airflow"]


@dataclass(frozen=True)
class Summary:
    """What the pipeline has produced so far, as counts (all read in one pass)."""

    articles: int
    duplicates: int
    on_topic: int
    classified: int
    claims: int
    clusters: int
    alerts: dict[str, int]
    mails: int
    feed_released: int | None = None
    feed_total: int | None = None


def _count(es: Any, index: str, query: dict | None = None) -> int:
    body = {"query": query} if query else {}
    return int(es.count(index=index, ignore_unavailable=True, allow_no_indices=True, **body)["count"])


def summary_counts(es: Any, settings: Settings, *, feed_status: dict | None = None) -> Summary:
    """Counts from the article, claim, cluster and alert indices; a missing index counts 0."""
    from pipeline.es.client import mapped_errors

    articles = settings.index("articles")
    with mapped_errors("the run summary"):
        alerts = es.search(index=settings.index("alerts"), size=0, ignore_unavailable=True,
                           allow_no_indices=True,
                           aggs={"status": {"terms": {"field": "status", "size": 20}}})
        buckets = alerts.get("aggregations", {}).get("status", {}).get("buckets", [])
        summary = Summary(
            articles=_count(es, articles),
            duplicates=_count(es, articles, {"exists": {"field": "duplicate_of"}}),
            on_topic=_count(es, articles, {"term": {"on_topic": True}}),
            classified=_count(es, articles, {"exists": {"field": "classified_at"}}),
            claims=_count(es, settings.index("claims")),
            clusters=_count(es, settings.index("clusters")),
            alerts={b["key"]: int(b["doc_count"]) for b in buckets},
            mails=len(list((manager.maildir(settings) / "new").glob("*.eml"))),
            feed_released=(feed_status or {}).get("released_count"),
            feed_total=(feed_status or {}).get("total"),
        )
    return summary


def format_summary(s: Summary, now: datetime | None = None) -> str:
    """One line a person can follow scrolling by: each stage of the pipeline, left to right."""
    stamp = (now or datetime.now()).strftime("%H:%M:%S")
    feed = f"feed {s.feed_released}/{s.feed_total} released | " if s.feed_total is not None else ""
    alerts = ", ".join(f"{k} {v}" for k, v in sorted(s.alerts.items())) or "none"
    return (f"{stamp}  {feed}articles {s.articles} (duplicates {s.duplicates}) | "
            f"classified {s.classified}, on topic {s.on_topic} | claims {s.claims} | "
            f"clusters {s.clusters} | alerts {alerts} | mails {s.mails}")


def _feed_status(timeout: float = 1.0) -> dict | None:
    url = f"http://127.0.0.1:{manager.feed_port()}/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None  # the feed server is reported by the service check, not here


def _airflow_info(settings: Settings) -> tuple[str, str]:
    try:
        from pipeline.stack import airflow as airflow_stack
    except ImportError:
        return "not available", ""
    login = airflow_stack.admin_login(settings)
    who = f"login {login[0]} / {login[1]}" if login else \
        f"login: see {airflow_stack.home(settings) / 'simple_auth_manager_passwords.json.generated'}"
    return airflow_stack.api_url(), who


def where_to_look(settings: Settings, services: list[str]) -> str:
    lines = ["", "newswatch is running on local services with the sample feeds (no internet needed):"]
    if "airflow" in services:
        url, who = _airflow_info(settings)
        lines.append(f"  Airflow UI     {url}   {who}")
    lines.append(f"  Elasticsearch  {settings.elasticsearch.url}   (aliases {settings.index('*')})")
    if "feeds" in services:
        base = f"http://127.0.0.1:{manager.feed_port()}"
        lines.append(f"  Sample feeds   {base}/   (release the next item now: curl '{base}/release?n=1')")
    lines.append(f"  Alert emails   {manager.maildir(settings) / 'new'}/*.eml   (open with any mail client)")
    lines.append(f"  Kibana         {settings.kibana_url} when you run it (docker compose, see README)")
    lines.append("Press Ctrl-C to stop everything.\n")
    return "\n".join(lines)


def _start(settings: Settings, services: list[str], say: Callable[[str], None]) -> None:
    for name in services:
        say(f"starting {name} ...")
        try:
            manager.up(settings, [name])
        except SetupError as exc:
            raise SetupError(f"{name} failed to start: {exc}") from exc


def _service_pids(settings: Settings, services: list[str]) -> set[int]:
    files = [settings.state_dir / name / f"{name}.pid" for name in services if name in ("smtp", "feeds")]
    if "airflow" in services:
        try:
            from pipeline.stack import airflow as airflow_stack

            files.append(airflow_stack.pid_file(settings))
        except ImportError:
            pass
    return {pid for pid in (read_pid(f) for f in files) if pid}


def _reap(pids: set[int], done: threading.Event) -> None:
    """Collect the exit status of services this process started while they are being stopped.

    Without it a stopped child stays a zombie, which ``kill(pid, 0)`` still reports as alive, so
    the manager would wait out its whole timeout before giving up on each service.
    """
    while pids and not done.is_set():
        for pid in list(pids):
            try:
                finished, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not our child (started by an earlier command): not ours to reap
                pids.discard(pid)
                continue
            if finished:
                pids.discard(pid)
        done.wait(0.1)


def _down_services(settings: Settings, services: list[str], say: Callable[[str], None]) -> list[str]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish stopping, whatever happens
    done = threading.Event()
    reaper: threading.Thread | None = None
    try:
        say("stopping services ...")
        reaper = threading.Thread(target=_reap, args=(_service_pids(settings, services), done),
                                  daemon=True)
        reaper.start()
        stopped = manager.down(settings, services)
        still = [s.name for s in manager.status(settings) if s.running and s.name in services]
        if still:
            say(f"warning: still answering: {', '.join(still)} (run `newswatch stack down`)")
        else:
            say(f"stopped: {', '.join(stopped) or 'nothing was running'}; nothing is left running.")
        return stopped
    except OSError as exc:  # the state folder itself is unusable, so no pid file of ours exists
        say(f"could not read the pid files under {settings.state_dir} ({exc.strerror or exc}); "
            "nothing was started from it")
        return []
    finally:
        done.set()
        if reaper is not None:
            reaper.join(timeout=2)
        signal.signal(signal.SIGINT, previous)


def _services(value: str) -> list[str]:
    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [n for n in names if n not in manager.SERVICES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown services {unknown}; choose from "
                                         f"{', '.join(manager.SERVICES)}")
    return [s for s in ALL_SERVICES if s in names]  # always start in dependency order


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run", help="the demo: start every local service, create the indices, show a live summary",
        description="Start Elasticsearch, the SMTP catcher, the sample feed server and Airflow, create "
                    "the indices, print where to look, then a live summary every few seconds until "
                    "Ctrl-C, which stops everything.")
    parser.add_argument("--services", type=_services, default=list(ALL_SERVICES),
                        help=f"comma-separated subset of {','.join(ALL_SERVICES)} (default: all)")
    parser.add_argument("--refresh", type=float, default=5.0, help="seconds between summary lines")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop by itself after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--keep-running", action="store_true",
                        help="leave the services running on exit (stop them with `newswatch stack down`)")
    parser.set_defaults(func=cmd_run)


def _demo_defaults(settings: Settings, services: list[str], say: Callable[[str], None]) -> None:
    """Point the demo at the sample feeds and poll them often, unless the user chose otherwise.

    Set in this process's environment, which the services started from here inherit (Airflow's
    task processes read ``NEWSWATCH_*`` from it).
    """
    if "feeds" in services and settings.sources_path is None:
        local = settings.config_dir / "sources.local.yaml"
        os.environ["NEWSWATCH_SOURCES_FILE"] = str(local)
        say(f"sources: {local} (the sample feeds; set NEWSWATCH_SOURCES_FILE to use others)")
    if "airflow" in services and not os.environ.get("NEWSWATCH_INGEST_SCHEDULE"):
        # the sample feed releases an item every 20 s; the production default polls every 5 min
        os.environ["NEWSWATCH_INGEST_SCHEDULE"] = "* * * * *"


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    def say(msg: str) -> None:
        print(msg, flush=True)

    services: list[str] = args.services
    _demo_defaults(load_settings(), services, say)
    settings = load_settings()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` stops as cleanly as Ctrl-C
    # A process started in the background by a script inherits SIGINT as "ignored"; Ctrl-C and
    # `kill -INT` must still stop the demo, so install Python's handler explicitly.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _start(settings, services, say)
        from pipeline.es.client import build_client, mapped_errors
        from pipeline.es.schema import ensure_indices

        es = build_client(settings)
        with mapped_errors("creating the indices"):
            ensure_indices(es, settings)
        say(where_to_look(settings, services))
        _watch(es, settings, services, args.refresh, args.duration, say)
    except KeyboardInterrupt:
        say("\ninterrupted")
    except NewswatchError as exc:
        print(f"newswatch run: {exc}", file=sys.stderr, flush=True)
        return 1
    except OSError as exc:  # e.g. a state folder that is a file, or not writable
        print(f"newswatch run: cannot use {exc.filename or settings.state_dir}: {exc.strerror or exc}; "
              "fix it or set NEWSWATCH_STATE_DIR to a folder you own", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        if not args.keep_running:
            _down_services(settings, services, say)
    return 0


def _watch(es: Any, settings: Settings, services: list[str], refresh: float, duration: float,
           say: Callable[[str], None]) -> None:
    deadline = time.monotonic() + duration if duration > 0 else None
    misses: dict[str, int] = {}  # consecutive failed checks per service
    while True:
        try:
            summary = summary_counts(es, settings,
                                     feed_status=_feed_status() if "feeds" in services else None)
            say(format_summary(summary))
        except ServiceUnavailable as exc:
            say(f"{datetime.now():%H:%M:%S}  Elasticsearch is not answering: {exc}")
        for st in manager.status(settings):
            if st.name not in services:
                continue
            before = misses.get(st.name, 0)
            misses[st.name] = 0 if st.running else before + 1
            # one slow health probe on a busy machine is not an outage: warn on the second miss
            if misses[st.name] == 2:
                say(f"warning: {st.name} is not answering ({st.detail}); logs under "
                    f"{Path(settings.state_dir) / st.name}")
            elif st.running and before >= 2:
                say(f"{st.name} is answering again")
        if deadline is not None and time.monotonic() >= deadline:
            return  # the line just printed is the final state
        pause = refresh if deadline is None else max(0.0, min(refresh, deadline - time.monotonic()))
        time.sleep(pause)
