"""A local replay feed server: the sample news items appear over time, as on a real news site.

The demo and the tests need feeds that change while the pipeline watches them, with no internet.
This server publishes the items of ``pipeline/demo/articles.yaml`` (sample data written by the
team) in their file order: ``initial`` items at start, then one every ``interval`` seconds, or on
demand through ``/release?n=1`` or :meth:`SampleFeedServer.release`. Only released items appear in
the feeds and have pages; others are 404, like an article that is not yet published.

Routes:

    /feeds/<outlet>.xml     RSS 2.0 of the items that outlet has released so far
    /feed.xml               every outlet in one feed
    /articles/<slug>.html   an article page (404 until the item is released)
    /release?n=1            release the next n items now (GET or POST); JSON answer
    /status                 JSON: released ids, remaining, interval, outlets
    /                       a small index page for people

Feeds honour conditional GET (``ETag``/``If-None-Match``, ``Last-Modified``/``If-Modified-Since``)
so a poller that sends them gets ``304 Not Modified`` until something new is released.

Run it with ``python -m pipeline.stack.feedserver --port 8765 [--interval 20] [--initial 3]``
(``newswatch stack up --services feeds`` does this) or in-process with :class:`SampleFeedServer`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pipeline.demo import SampleSet, load_sample
from pipeline.demo.render import Published, render_article, render_feed, render_index
from pipeline.errors import ConfigError

__all__ = ["DEFAULT_INITIAL", "DEFAULT_INTERVAL", "SampleFeedServer", "main"]

DEFAULT_INTERVAL = 20.0
DEFAULT_INITIAL = 3
MAX_RELEASE = 1000


class SampleFeedServer:
    """The replay server on 127.0.0.1, in a background thread of this process.

    ``interval``: seconds between automatic releases (None or 0: only on demand).
    ``initial``: items released at start. ``dates``: ``"replay"`` shows the release time as the
    publication date (a live-looking feed); ``"original"`` shows the item's own date from the file
    (deterministic output for tests).
    """

    def __init__(self, port: int = 0, interval: float | None = None, initial: int = 0, *,
                 host: str = "127.0.0.1", sample: SampleSet | None = None,
                 dates: str = "replay") -> None:
        if dates not in {"replay", "original"}:
            raise ValueError("dates must be 'replay' or 'original'")
        if interval is not None and interval < 0:
            raise ValueError("interval must be >= 0 seconds")
        self.sample = sample or load_sample()
        self.interval = interval or None
        self.initial = max(0, initial)
        self.dates = dates
        self._lock = threading.Lock()
        self._published: list[Published] = []
        self._started_at = datetime.now(UTC)
        self._stop = threading.Event()
        self._clock: threading.Thread | None = None
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="feedserver",
                                        daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def feed_url(self, outlet: str) -> str:
        return f"{self.base_url}/feeds/{outlet}.xml"

    def article_url(self, item_id: str) -> str:
        return f"{self.base_url}{self.sample.by_id(item_id).path}"

    def start(self) -> SampleFeedServer:
        self._thread.start()
        if self.initial:
            self.release(self.initial)
        if self.interval:
            self._clock = threading.Thread(target=self._tick, name="feedserver-clock", daemon=True)
            self._clock.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._clock:
            self._clock.join(timeout=5)

    def __enter__(self) -> SampleFeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.release(1):
                return  # everything is out; nothing more will change

    # -- state -------------------------------------------------------------------------------
    def release(self, n: int = 1) -> list[str]:
        """Publish the next ``n`` items now; returns their ids (fewer when the list runs out)."""
        out = []
        with self._lock:
            for item in self.sample.items[len(self._published):len(self._published) + max(0, n)]:
                at = self._publication_time(item.published)
                self._published.append(Published(item, at))
                out.append(item.id)
        return out

    def _publication_time(self, original: datetime) -> datetime:
        if self.dates == "original":
            return original
        # Feeds carry whole seconds: keep every release strictly later than the previous one.
        now = datetime.now(UTC).replace(microsecond=0)
        if self._published and now <= self._published[-1].at:
            now = self._published[-1].at + timedelta(seconds=1)
        return now

    def released(self) -> list[str]:
        with self._lock:
            return [p.item.id for p in self._published]

    def published(self, outlet: str | None = None) -> list[Published]:
        with self._lock:
            return [p for p in self._published if outlet is None or p.item.outlet == outlet]

    def status(self) -> dict:
        with self._lock:
            released = [p.item.id for p in self._published]
        return {
            "released": released,
            "released_count": len(released),
            "remaining": len(self.sample.items) - len(released),
            "total": len(self.sample.items),
            "interval": self.interval,
            "dates": self.dates,
            "started_at": self._started_at.isoformat(),
            "outlets": {o: self.feed_url(o) for o in self.sample.outlets},
            "sample_data": True,
        }

    # -- rendering ---------------------------------------------------------------------------
    def feed_body(self, outlet: str | None) -> tuple[bytes, datetime]:
        """The RSS body for one outlet (or all) and the time it last changed."""
        pubs = self.published(outlet)
        changed = max((p.at for p in pubs), default=self._started_at).replace(microsecond=0)
        if outlet is None:
            title, desc, path = ("newswatch sample feeds (all outlets)", self.sample.notice,
                                 "/feed.xml")
        else:
            info = self.sample.outlets[outlet]
            title, desc, path = info.name, info.description, f"/feeds/{outlet}.xml"
        body = render_feed(base_url=self.base_url, feed_path=path, title=title, description=desc,
                           published=pubs, outlets=self.sample.outlets, built=changed)
        return body, changed

    def article_body(self, slug: str) -> bytes | None:
        pubs = self.published()
        pub = next((p for p in pubs if p.item.slug == slug), None)
        if pub is None:
            return None
        related = [p for p in pubs if p.item.outlet == pub.item.outlet and p is not pub][-3:]
        return render_article(base_url=self.base_url, pub=pub,
                              outlet=self.sample.outlets[pub.item.outlet],
                              notice=self.sample.notice, related=related)


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _not_modified(headers: object, etag: str, changed: datetime) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since is used only without it."""
    inm = headers.get("If-None-Match")  # type: ignore[attr-defined]
    if inm:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return etag in tags or "*" in tags
    ims = headers.get("If-Modified-Since")  # type: ignore[attr-defined]
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return changed <= since
    return False


def _make_handler(server: SampleFeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "newswatch-feedserver/1"

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            self._route(head=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._route(head=True)

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path == "/release":
                self._route(head=False)
            else:
                self._send(405, b"method not allowed\n", "text/plain; charset=utf-8",
                           extra={"Allow": "GET, HEAD"})

        def log_message(self, *args: object) -> None:
            pass  # the CLI prints its own one-line log; tests want quiet servers

        def _route(self, head: bool) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            if path == "/":
                body = render_index(base_url=server.base_url, outlets=server.sample.outlets,
                                    notice=server.sample.notice,
                                    released=len(server.released()),
                                    total=len(server.sample.items))
                self._send(200, body, "text/html; charset=utf-8", head=head)
            elif path == "/feed.xml" or (path.startswith("/feeds/") and path.endswith(".xml")):
                outlet = None if path == "/feed.xml" else path[len("/feeds/"):-len(".xml")]
                if outlet is not None and outlet not in server.sample.outlets:
                    self._send(404, f"no outlet {outlet!r}\n".encode(), "text/plain; charset=utf-8",
                               head=head)
                    return
                body, changed = server.feed_body(outlet)
                etag = _etag(body)
                validators = {"ETag": etag, "Last-Modified": format_datetime(changed, usegmt=True),
                              "Cache-Control": "no-cache"}
                if _not_modified(self.headers, etag, changed):
                    self._send(304, b"", None, extra=validators, head=True)
                else:
                    self._send(200, body, "application/rss+xml; charset=utf-8", extra=validators,
                               head=head)
            elif path.startswith("/articles/") and path.endswith(".html"):
                body = server.article_body(path[len("/articles/"):-len(".html")])
                if body is None:
                    self._send(404, b"<h1>Not found</h1>\n", "text/html; charset=utf-8", head=head)
                else:
                    self._send(200, body, "text/html; charset=utf-8", head=head)
            elif path == "/release":
                self._release(parse_qs(parts.query), head)
            elif path == "/status":
                self._json(200, server.status(), head)
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8", head=head)

        def _release(self, query: dict[str, list[str]], head: bool) -> None:
            raw = (query.get("n") or ["1"])[0]
            try:
                n = int(raw)
            except ValueError:
                self._json(400, {"error": f"n must be a whole number, got {raw!r}"}, head)
                return
            if not 0 <= n <= MAX_RELEASE:
                self._json(400, {"error": f"n must be between 0 and {MAX_RELEASE}"}, head)
                return
            ids = server.release(n)
            status = server.status()
            self._json(200, {"released": ids, "remaining": status["remaining"],
                             "released_count": status["released_count"]}, head)

        def _json(self, status: int, payload: dict, head: bool) -> None:
            self._send(status, (json.dumps(payload, indent=2) + "\n").encode(),
                       "application/json", head=head)

        def _send(self, status: int, body: bytes, ctype: str | None, *,
                  extra: dict[str, str] | None = None, head: bool = False) -> None:
            try:
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body and not head:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away; nothing to report to it

    return Handler


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stack.feedserver",
        description="Serve the sample news items as RSS feeds whose items appear over time.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("NEWSWATCH_FEED_PORT", 8765)))
    parser.add_argument("--interval", type=float,
                        default=_env_float("NEWSWATCH_FEED_INTERVAL", DEFAULT_INTERVAL),
                        help="seconds between releases; 0 = only on demand (/release)")
    parser.add_argument("--initial", type=int,
                        default=int(_env_float("NEWSWATCH_FEED_INITIAL", DEFAULT_INITIAL)),
                        help="items released at start")
    parser.add_argument("--dates", choices=["replay", "original"], default="replay",
                        help="show release times (replay) or the items' own dates (original)")
    parser.add_argument("--sample", type=Path, default=None, help="another sample YAML file")
    args = parser.parse_args(argv)
    if args.interval < 0 or args.initial < 0:
        parser.error("--interval and --initial must not be negative")
    try:
        server = SampleFeedServer(args.port, args.interval, args.initial, host=args.host,
                                  sample=load_sample(args.sample) if args.sample else None,
                                  dates=args.dates)
    except ConfigError as exc:
        print(f"feedserver: {exc}", flush=True)
        return 1
    except OSError as exc:
        print(f"feedserver: cannot listen on {args.host}:{args.port}: {exc.strerror}; choose "
              f"another port with --port or NEWSWATCH_FEED_PORT", flush=True)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    every = f"one item every {server.interval:g} s" if server.interval else "on demand only"
    print(f"sample feeds on {server.base_url}/feeds/<outlet>.xml "
          f"({', '.join(server.sample.outlets)}); {len(server.released())} of "
          f"{len(server.sample.items)} items out, {every}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
