"""``newswatch run``: the whole demo on local services, with a live summary, until Ctrl-C.

It starts Elasticsearch, the SMTP catcher, the sample feed server and Airflow (in that order, so
a failure names the service that failed), creates the indices, prints where to look, and then
prints one summary line every few seconds, read from Elasticsearch: what the DAGs have done so
far. Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stops every service it started, so nothing is
left running, whether its output goes to a terminal, a file or a pipe that has closed: a message
that cannot be written is dropped, never allowed to skip the stop. A second signal while stopping
is ignored rather than leaving half-stopped processes behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from pipeline.errors import NewswatchError, ServiceUnavailable, SetupError
from pipeline.settings import Settings, load_settings
from pipeline.stack import registry
from pipeline.stack.processes import STOP_SIGNALS
from pipeline.stack.python_services import FeedService, maildir
from pipeline.stack.service import Service

__all__ = ["Summary", "format_summary", "register", "summary_counts"]


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
            mails=len(list((maildir(settings) / "new").glob("*.eml"))),
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


def where_to_look(settings: Settings, started: list[Service], profile: str = "local") -> str:
    names = {svc.name for svc in started}
    shape = (" (scaled: Celery workers, PostgreSQL, Redis, 3 Elasticsearch nodes)"
             if profile == "scale" else "")
    lines = ["", f"newswatch is running on local services{shape} with the sample feeds (no internet needed):"]
    for svc in registry.services(settings, profile=profile):
        line = svc.guide(started=svc.name in names)
        if line:
            lines.append(line)
    lines.append(f"  Kibana         {settings.kibana_url} when you run it (docker compose, see README)")
    lines.append("Press Ctrl-C to stop everything.\n")
    return "\n".join(lines)


def _start(settings: Settings, started: list[Service], say: Callable[[str], None]) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    for svc in started:
        say(f"starting {svc.name} ...")
        try:
            svc.start()
        except SetupError as exc:
            raise SetupError(f"{svc.name} failed to start: {exc}") from exc


def _reap(pids: set[int], done: threading.Event) -> None:
    """Collect the exit status of services this process started while they are being stopped.

    Without it a stopped child stays a zombie, which ``kill(pid, 0)`` still reports as alive, so
    each service's stop would wait out its whole timeout before giving up.
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


def _down_services(settings: Settings, services: list[str], say: Callable[[str], None]) -> bool:
    """Stop the services; True when none of them is left running. Never raises, so nothing after
    it is skipped.

    The caller keeps its stop-signal handler installed, which after the first signal only records
    further ones: a second Ctrl-C (or the SIGHUP of a closing terminal) while stopping is ignored
    rather than leaving half-stopped processes behind.
    """
    done = threading.Event()
    reaper: threading.Thread | None = None
    try:
        say("stopping services ...")
        pids = set().union(*(svc.pids() for svc in registry.services(settings, services)))
        reaper = threading.Thread(target=_reap, args=(pids, done), daemon=True)
        reaper.start()
        stopped = registry.down(settings, services)
        still = [s.name for s in registry.status(settings, services) if s.running]
        if still:
            say(f"warning: still answering: {', '.join(still)} (run `newswatch stack down`)")
            return False
        say(f"stopped: {', '.join(stopped) or 'nothing was running'}; nothing is left running.")
        return True
    except OSError as exc:  # the state folder itself is unusable, so no pid file of ours exists
        say(f"could not read the pid files under {settings.state_dir} ({exc.strerror or exc}); "
            "nothing was started from it")
        return True
    except Exception as exc:  # noqa: BLE001 - report and go on: the exit status says it failed
        say(f"warning: stopping failed: {exc} (run `newswatch stack down`)")
        return False
    finally:
        done.set()
        if reaper is not None:
            reaper.join(timeout=2)


def _services(value: str) -> list[str]:
    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [n for n in names if n not in registry.REGISTRY]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown services {unknown}; choose from "
                                         f"{', '.join(registry.REGISTRY)}")
    return registry.in_start_order(names)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run", help="the demo: start every local service, create the indices, show a live summary",
        description="Start Elasticsearch, the SMTP catcher, the sample feed server and Airflow, create "
                    "the indices, print where to look, then a live summary every few seconds until "
                    "Ctrl-C, which stops everything.")
    parser.add_argument("--services", type=_services, default=None,
                        help=f"comma-separated subset of {','.join(registry.SERVICES)} (default: all; "
                             f"with --scale: {','.join(registry.PROFILES['scale'])})")
    parser.add_argument("--scale", action="store_true",
                        help="run it the way it runs across machines: Airflow on the CeleryExecutor with "
                             "PostgreSQL and Redis (scheduler, API server, dag-processor, an io and a cpu "
                             "worker) and a three-node Elasticsearch cluster with one replica per index")
    parser.add_argument("--refresh", type=float, default=5.0, help="seconds between summary lines")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop by itself after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--keep-running", action="store_true",
                        help="leave the services running on exit (stop them with `newswatch stack down`)")
    parser.set_defaults(func=cmd_run)


def _demo_defaults(started: list[Service], say: Callable[[str], None]) -> None:
    """What the started services ask of the demo (the sample feeds as sources, a frequent poll),
    unless the user set it.

    Set in this process's environment, which the services started from here inherit (Airflow's
    task processes read ``NEWSWATCH_*`` from it).
    """
    for svc in started:
        for var, (value, why) in svc.demo_environment().items():
            if not os.environ.get(var):
                os.environ[var] = value
                say(f"{var}={value} ({why}; set {var} to choose otherwise)")


def _client_sees_every_node(say: Callable[[str], None]) -> None:
    """The scaled stack's cluster is three nodes: the client (here and in every task) is given all
    three, so losing one node loses no request."""
    from pipeline.stack.es_cluster import cluster_urls

    urls = ",".join(cluster_urls(os.environ.get("NEWSWATCH_ES_URL", "http://127.0.0.1:9200")))
    if os.environ.get("NEWSWATCH_ES_URL") != urls:
        os.environ["NEWSWATCH_ES_URL"] = urls
        say(f"NEWSWATCH_ES_URL={urls} (the three nodes of the cluster)")


class _Output:
    """Prints lines to the first of its streams that still works, and gives up on one for good at
    its first failure: a closed pipe (``| tee`` killed by the same Ctrl-C), a terminal that hung up
    (EIO after SIGHUP), a full disk or a closed file. Nothing written here can raise, so no message
    can ever skip stopping the services."""

    def __init__(self, *streams: IO[str]) -> None:
        self.streams = list(streams)
        self.dead: set[int] = set()

    def __call__(self, msg: str) -> None:
        for i, stream in enumerate(self.streams):
            if i in self.dead:
                continue
            try:
                print(msg, file=stream, flush=True)
                return
            except (OSError, ValueError):
                self.dead.add(i)
                _to_devnull(stream)


def _to_devnull(stream: IO[str]) -> None:
    """Point a dead stream's descriptor at /dev/null: what is still buffered in it, later logging
    and the interpreter's final flush then go nowhere instead of raising a second time."""
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class _Stopped(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived: stop everything (a KeyboardInterrupt, so code that
    cleans up on Ctrl-C cleans up on all three)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _StopSignals:
    """Turns the first stop signal into ``_Stopped`` and only records the later ones, so a signal
    that arrives while stopping (even before the ``finally`` block has begun) cannot cut it short."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.stopping = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        for sig in STOP_SIGNALS:
            # installed explicitly even for SIGINT: a process started in the background by a
            # script inherits SIGINT as "ignored", and Ctrl-C or `kill -INT` must still stop it
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.signum = signum
        raise _Stopped(signum)

    def __exit__(self, *_: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def cmd_run(args: argparse.Namespace) -> int:
    """Exit status: 0 when ``--duration`` ran out, 128 + the signal number when stopped by
    SIGINT (130), SIGTERM (143) or SIGHUP (129), 2 when a service could not be set up or the
    configuration is invalid, 3 when Elasticsearch is unavailable; 1 when stopping itself failed."""
    from pipeline.cli import exit_status

    say = _Output(sys.stdout, sys.stderr)
    tell = _Output(sys.stderr, sys.stdout)  # errors: stderr first, stdout when stderr is gone
    profile = "scale" if getattr(args, "scale", False) else "local"
    services: list[str] = args.services or list(registry.PROFILES[profile])
    code = 0
    with _StopSignals() as stops:
        settings: Settings | None = None
        try:
            if profile == "scale":
                _client_sees_every_node(say)
            _demo_defaults(registry.services(load_settings(), services), say)
            settings = load_settings()
            started = registry.services(settings, services)
            _start(settings, started, say)
            from pipeline.es.client import build_client, mapped_errors
            from pipeline.es.schema import ensure_indices

            es = build_client(settings)
            with mapped_errors("creating the indices"):
                ensure_indices(es, settings)
            say(where_to_look(settings, started, profile))
            _watch(es, settings, started, args.refresh, args.duration, say)
        except _Stopped as stopped:
            say(f"\n{signal.Signals(stopped.signum).name}: stopping")
            code = 128 + stopped.signum
        except KeyboardInterrupt:  # raised by code that installs its own SIGINT handler
            say("\ninterrupted")
            code = 130
        except NewswatchError as exc:
            tell(f"newswatch run: {exc}")
            code = exit_status(exc)
        except OSError as exc:  # e.g. a state folder that is a file, or not writable
            where = exc.filename or (settings.state_dir if settings else "the state folder")
            tell(f"newswatch run: cannot use {where}: {exc.strerror or exc}; "
                 "fix it or set NEWSWATCH_STATE_DIR to a folder you own")
            code = 2
        finally:
            stops.stopping = True  # from here on a signal is recorded, never raised
            if settings is not None and not args.keep_running \
                    and not _down_services(settings, services, say) and (code == 0 or code > 128):
                code = 1  # something is left running: say so in the status as well
    return code


def _watch(es: Any, settings: Settings, started: list[Service], refresh: float, duration: float,
           say: Callable[[str], None]) -> None:
    deadline = time.monotonic() + duration if duration > 0 else None
    misses: dict[str, int] = {}  # consecutive failed checks per service
    # the summary counts the sample items released so far when this run serves them
    feeds = next((svc for svc in started if isinstance(svc, FeedService)), None)
    while True:
        try:
            summary = summary_counts(es, settings,
                                     feed_status=feeds.release_status() if feeds else None)
            say(format_summary(summary))
        except ServiceUnavailable as exc:
            say(f"{datetime.now():%H:%M:%S}  Elasticsearch is not answering: {exc}")
        for svc in started:
            st = svc.status()
            before = misses.get(st.name, 0)
            misses[st.name] = 0 if st.running else before + 1
            # one slow health probe on a busy machine is not an outage: warn on the second miss
            if misses[st.name] == 2:
                say(f"warning: {st.name} is not answering ({st.detail}); logs under {svc.folder}")
            elif st.running and before >= 2:
                say(f"{st.name} is answering again")
        if deadline is not None and time.monotonic() >= deadline:
            return  # the line just printed is the final state
        pause = refresh if deadline is None else max(0.0, min(refresh, deadline - time.monotonic()))
        time.sleep(pause)
