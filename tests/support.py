"""Real local servers for tests: an HTTP server with programmable routes, all on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@dataclass
class Response:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Handler = Callable[[BaseHTTPRequestHandler], Response]


@dataclass
class Hit:
    path: str
    headers: dict[str, str]


class LocalHTTPServer:
    """A threaded HTTP server on 127.0.0.1 whose routes tests set: a Response or a callable.

    ``hits`` records every request (path and headers) so tests can assert what was sent,
    e.g. ``If-None-Match`` on a conditional GET.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Response | Handler] = {}
        self.hits: list[Hit] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                server.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    resp = Response(b"not found", 404)
                elif callable(route):
                    resp = route(self)
                else:
                    resp = route
                if resp.delay:
                    time.sleep(resp.delay)
                try:
                    self.send_response(resp.status)
                    for key, value in resp.headers.items():
                        self.send_header(key, value)
                    if "content-length" not in {k.lower() for k in resp.headers}:
                        self.send_header("Content-Length", str(len(resp.body)))
                    self.end_headers()
                    if resp.body:
                        self.wfile.write(resp.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_HEAD = do_GET  # noqa: N815
            do_POST = do_GET  # noqa: N815
            do_PUT = do_GET  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def route(self, path: str, response: Response | Handler | bytes | str, **kwargs: object) -> str:
        if isinstance(response, str):
            response = response.encode()
        if isinstance(response, bytes):
            response = Response(response, **kwargs)  # type: ignore[arg-type]
        self.routes[path] = response
        return self.url(path)

    def start(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
