"""A hostile HTTP server on 127.0.0.1, for the hostile-input tests and ``benchmarks/bench_hostile.py``.

It writes raw HTTP itself (``BaseHTTPRequestHandler`` only reads the request), so it can do what
a broken or malicious server does: trickle its headers or its body one byte a second, send a gzip
bomb (1 GiB of zeros in about 1 MB), stream without end, redirect to URLs no client can parse,
serve a feed whose entities expand a billion times, or HTML where a feed should be. Every case is
a ``Case``: the source to poll and what a run must end with; ``install_cases`` routes them all on
one server beside a healthy feed. Sample data only (``tests.ingest_support``).
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

from tests.ingest_support import NOW, STORY, page, rss

Route = Callable[[BaseHTTPRequestHandler], None]

# Links no HTTP client can parse: an IPv4 literal out of range, an octal one (some resolvers would
# read it as 127.0.0.1), an IPv6 bracket never closed, a port out of range.
BAD_LINKS = ("http://0177.0.0.1/x", "http://999.1.1.1/x", "http://[::1/x", "http://sample.invalid:99999/x")
BOMB_BYTES = 1 << 30  # what the gzip bomb inflates to
TRICKLE_SECONDS = 60.0  # a trickling response would take this long to finish (at 1 byte a second)


@cache
def gzip_bomb(size: int = BOMB_BYTES) -> bytes:
    """A valid gzip body of ``size`` zero bytes (~1 MB for 1 GiB). Built from one compressed MiB
    repeated: after a full flush, deflate's output for the same input is the same bytes."""
    mib = bytes(1 << 20)
    count = max(1, size >> 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(mib) + comp.flush(zlib.Z_FULL_FLUSH)
    end = comp.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(mib, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * count + end + struct.pack("<II", crc, (count << 20) & 0xFFFFFFFF)


def billion_laughs(link: str, levels: int = 10) -> bytes:
    """An RSS document whose title is an entity defined ten times over in terms of the one before
    (10**10 "lol"s if a parser expanded it)."""
    ents = ['<!ENTITY lol0 "lol">']
    for i in range(1, levels):
        ents.append(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">')
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [' + "".join(ents) + "]>"
        '<rss version="2.0"><channel><title>Laughs</title><link>http://127.0.0.1/</link>'
        f"<item><title>&lol{levels - 1};</title><link>{link}</link>"
        "<guid>laughs-1</guid><description>Sample data: &lol3;</description></item>"
        "</channel></rss>"
    ).encode()


@dataclass
class Case:
    """One hostile source. ``feed_error``: the error kind the feed must end with (None: the feed
    is read and its entries indexed); ``page_error``: text every entry's article error contains;
    ``entries``: how many articles the feed must give (each kept, whatever its page did)."""

    name: str
    path: str
    feed_error: str | tuple[str, ...] | None = None
    page_error: str | None = None
    entries: int = 0
    needs_es: bool = True
    links: list[str] = field(default_factory=list)


class HostileServer:
    """A threaded server on 127.0.0.1 whose routes write raw responses. ``hits`` counts requests
    per path; ``sent`` counts body bytes written per path (what a client made us send)."""

    def __init__(self, trickle_seconds: float = TRICKLE_SECONDS) -> None:
        self.trickle_seconds = trickle_seconds
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                with server._lock:
                    server.hits[path] = server.hits.get(path, 0) + 1
                route = server.routes.get(path) or server._prefix_route(path)
                try:
                    if route is None:
                        server.respond(self, 404, {"Content-Type": "text/plain"}, b"not found")
                    else:
                        route(self)
                except OSError:  # the client gave up (what most of these cases are for)
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients hanging up mid-response is the point of most cases

        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # -- plumbing ------------------------------------------------------------------------------
    def _prefix_route(self, path: str) -> Route | None:
        for prefix, route in self.routes.items():
            if prefix.endswith("/") and path.startswith(prefix):
                return route
        return None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> HostileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _count(self, handler: BaseHTTPRequestHandler, n: int) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            self.sent[path] = self.sent.get(path, 0) + n

    def respond(
        self, handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        head = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
        if "Content-Length" not in headers:
            head.append(f"Content-Length: {len(body)}")
        handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        handler.wfile.flush()
        self._count(handler, len(body))

    # -- behaviours ----------------------------------------------------------------------------
    def static(self, body: bytes, content_type: str = "application/rss+xml", **headers: str) -> Route:
        return lambda h: self.respond(h, 200, {"Content-Type": content_type, **headers}, body)

    def trickle_headers(self) -> Route:
        """A status line, then one header byte a second: the headers never end in time."""

        def route(h: BaseHTTPRequestHandler) -> None:
            h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Trickle: ")
            h.wfile.flush()
            self._drip(h, int(self.trickle_seconds))
            h.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")

        return route

    def trickle_body(self, content_type: str) -> Route:
        """Headers at once, then the body one byte a second."""

        def route(h: BaseHTTPRequestHandler) -> None:
            n = int(self.trickle_seconds)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {n}\r\n\r\n"
            h.wfile.write(head.encode())
            h.wfile.flush()
            self._drip(h, n)

        return route

    def _drip(self, h: BaseHTTPRequestHandler, n: int) -> None:
        for _ in range(n):
            time.sleep(1.0)
            h.wfile.write(b"a")
            h.wfile.flush()
            self._count(h, 1)

    def bomb(self, content_type: str) -> Route:
        body = gzip_bomb()
        return self.static(body, content_type, **{"Content-Encoding": "gzip"})

    def endless(self, content_type: str = "application/rss+xml") -> Route:
        """No length, no end: the body streams until the client hangs up."""

        def route(h: BaseHTTPRequestHandler) -> None:
            h.close_connection = True
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
            h.wfile.write(head.encode())
            h.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>')
            chunk = b"a" * 65536
            while True:
                h.wfile.write(chunk)
                self._count(h, len(chunk))

        return route

    def redirect(self) -> Route:
        """``/redirect?to=<url>``: a 302 to exactly that text, however broken."""

        def route(h: BaseHTTPRequestHandler) -> None:
            target = parse_qs(urlsplit(h.path).query).get("to", [""])[0]
            self.respond(h, 302, {"Location": target, "Content-Type": "text/plain"}, b"")

        return route


def _items(prefix: str, links: list[str]) -> list[dict[str, object]]:
    return [
        {
            "title": f"Sample hostile item {prefix} {i}",
            "link": link,
            "guid": f"{prefix}-{i}",
            "description": f"Sample data: the feed's own text of item {i} of the {prefix} case. " * 3,
            "pubDate": NOW,
        }
        for i, link in enumerate(links)
    ]


def install_cases(server: HostileServer, *, bomb_pages: int = 16) -> dict[str, Case]:
    """Route every hostile case on ``server`` and return them by name, with ``healthy``: a normal
    feed of three items whose pages are normal too."""
    s = server
    cases: dict[str, Case] = {}

    def feed(case: Case, links: list[str]) -> None:
        case.links = links
        case.entries = len(links)
        s.routes[case.path] = s.static(rss(_items(case.name, links)))
        cases[case.name] = case

    s.routes["/page/good/"] = s.static(page("Bridge repair", STORY), "text/html; charset=utf-8")
    feed(Case("healthy", "/feeds/healthy.xml"), [s.url(f"/page/good/{i}") for i in range(3)])
    feed(Case("bad_links", "/feeds/bad-links.xml", page_error="invalid_url"), list(BAD_LINKS))
    s.routes["/redirect"] = s.redirect()
    feed(
        Case("bad_redirects", "/feeds/bad-redirects.xml", page_error="invalid_url"),
        [s.url("/redirect?to=" + quote(link, safe="")) for link in BAD_LINKS],
    )
    s.routes["/page/trickle-headers/"] = s.trickle_headers()
    feed(
        Case("trickle_headers_page", "/feeds/trickle-headers-pages.xml", page_error="timeout"),
        [s.url(f"/page/trickle-headers/{i}") for i in range(2)],
    )
    s.routes["/page/trickle-body/"] = s.trickle_body("text/html")
    feed(
        Case("trickle_body_page", "/feeds/trickle-body-pages.xml", page_error="timeout"),
        [s.url(f"/page/trickle-body/{i}") for i in range(2)],
    )
    s.routes["/page/bomb/"] = s.bomb("text/html")
    feed(
        Case("gzip_bomb_pages", "/feeds/bomb-pages.xml", page_error="too_large"),
        [s.url(f"/page/bomb/{i}") for i in range(bomb_pages)],
    )
    s.routes["/feeds/trickle-headers.xml"] = s.trickle_headers()
    cases["trickle_headers_feed"] = Case("trickle_headers_feed", "/feeds/trickle-headers.xml", "timeout")
    s.routes["/feeds/trickle-body.xml"] = s.trickle_body("application/rss+xml")
    cases["trickle_body_feed"] = Case("trickle_body_feed", "/feeds/trickle-body.xml", "timeout")
    s.routes["/feeds/bomb.xml"] = s.bomb("application/rss+xml")
    cases["gzip_bomb_feed"] = Case("gzip_bomb_feed", "/feeds/bomb.xml", "too_large")
    s.routes["/feeds/endless.xml"] = s.endless()
    cases["endless_feed"] = Case("endless_feed", "/feeds/endless.xml", ("too_large", "timeout"))
    s.routes["/feeds/laughs.xml"] = s.static(billion_laughs(s.url("/page/good/laughs")))
    # Not expanded: either the entry comes through with the references unexpanded, or the feed
    # is refused as malformed; what must not happen is 10**10 "lol"s in memory.
    cases["billion_laughs"] = Case("billion_laughs", "/feeds/laughs.xml", ("malformed", None), entries=1)
    s.routes["/feeds/html.xml"] = s.static(page("Not a feed", STORY), "text/html; charset=utf-8")
    cases["html_feed"] = Case("html_feed", "/feeds/html.xml", "not_a_feed")
    return cases
