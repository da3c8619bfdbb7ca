"""Polite, bounded HTTP fetching of feeds and article pages: ``Fetcher.get``.

Why so careful: feed URLs come from configuration and article URLs from third-party feeds, so a
fetch must never (a) read a huge or endless body into memory, (b) follow redirects forever,
(c) reach internal services, (d) hammer one host. Every failure comes back as a ``FetchResult``
with an ``error_kind`` so one bad feed is a row in a report, never a crash.

The parts, each in its own module:

- ``addresses``: which addresses may be reached (SSRF), checked for every address a host name
  resolves to; a URL that cannot be parsed (``http://999.1.1.1/``, ``http://[::1/``), as a link
  or as a redirect target, is an ``invalid_url`` refusal like any other;
- ``connections``: connections pinned to the addresses that were checked (no DNS rebinding
  between check and connect, at every redirect hop), and one total deadline per request
  (connect, TLS, headers and body of every hop), enforced during each socket wait, so a server
  trickling one byte a second is cut at the deadline, not per read;
- ``decoding``: bodies read raw and decompressed in pieces of at most ``CHUNK`` bytes, so a gzip
  bomb costs at most the cap in memory; encodings that cannot be decoded in steps are refused;
- here: redirects (each hop checked again), the per-host connection limit, the size cap, and the
  mapping of every failure to an ``error_kind``. Strict and private-allowed fetches use separate
  pools, so a kept-alive connection opened for a source that may reach private hosts is never
  reused by one that may not.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from pipeline.ingest.addresses import Refused, Resolver, check_url, parse_url, quote_url
from pipeline.ingest.connections import Connector, pinned_backend, request_deadline
from pipeline.ingest.decoding import CHUNK, BoundedDecoder
from pipeline.ingest.library_patches import transport_with_backend

if TYPE_CHECKING:
    import ssl

MAX_REDIRECTS = 5
PER_HOST_LIMIT = 4
DEADLINE_FACTOR = 3.0  # the total deadline of a request, in multiples of its per-wait timeout


@dataclass
class FetchResult:
    """What one GET produced. ``body`` is None on errors and on 304."""

    url: str
    final_url: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    not_modified: bool = False
    error_kind: str | None = None
    error: str | None = None
    elapsed_ms: float = 0.0
    redirects: int = 0
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    @property
    def body_hash(self) -> str | None:
        return hashlib.sha256(self.body).hexdigest() if self.body is not None else None


log = logging.getLogger(__name__)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


UNPARSED_LOCATION = "x-newswatch-unparsed-location"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _set_aside_unparsable_location(response: Any) -> None:
    """A response hook: a redirect whose Location httpx cannot parse gets it moved aside.

    httpx parses the Location of every redirect before returning the response, even when it does
    not follow redirects, and raises then, with neither the status nor the Location in hand.
    Moved aside, the redirect reaches ``Fetcher.get``, which refuses the target by name."""
    import httpx

    location = response.headers.get("location")
    if response.status_code in _REDIRECTS and location is not None:
        try:
            httpx.URL(location)
        except Exception:  # noqa: BLE001 - whatever httpx's parser raises, the URL is unusable
            del response.headers["location"]
            response.headers[UNPARSED_LOCATION] = location


class Fetcher:
    """One shared ``httpx.Client`` with per-host concurrency limits; safe to use from threads."""

    def __init__(
        self,
        *,
        user_agent: str,
        per_host: int = PER_HOST_LIMIT,
        max_redirects: int = MAX_REDIRECTS,
        pool_size: int = 32,
        resolver: Resolver = socket.getaddrinfo,
        connector: Connector | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``resolver`` and ``connector``: see ``PinnedBackend`` (tests inject them);
        ``ssl_context``: certificate verification (default: the certifi roots, as httpx does)."""
        import httpx  # here, not at module level: DAG files import pipeline modules while parsing

        self.per_host = per_host
        self.max_redirects = max_redirects
        limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
        self._clients: dict[bool, httpx.Client] = {}
        for allow_private in (False, True):  # separate pools: no connection crosses policies
            transport = transport_with_backend(
                limits=limits,
                ssl_context=ssl_context,
                network_backend=pinned_backend(
                    allow_private=allow_private, resolver=resolver, connector=connector, deadlines=True
                ),
            )
            self._clients[allow_private] = httpx.Client(
                headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
                follow_redirects=False,
                event_hooks={"response": [_set_aside_unparsable_location]},
                trust_env=False,
                transport=transport,
            )
        self._locks: dict[str, threading.Semaphore] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _host_slot(self, url: str) -> Iterator[None]:
        host = (urlsplit(url).hostname or "").lower()
        with self._guard:
            sem = self._locks.setdefault(host, threading.Semaphore(self.per_host))
        with sem:
            yield

    def get(
        self,
        url: str,
        *,
        allow_private: bool,
        timeout: float,
        max_bytes: int,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = "*/*",
        deadline: float | None = None,
    ) -> FetchResult:
        """GET ``url`` following at most ``max_redirects`` redirects, each hop checked. Never raises
        for anything the URL, a server or the network does: the result says what went wrong.

        ``timeout`` bounds each network wait; ``deadline`` (default ``timeout * DEADLINE_FACTOR``)
        the whole request: connect, headers and body of every hop together, enforced during each
        wait, so a server that trickles bytes cannot hold a worker longer. The body is streamed,
        decompressed in bounded pieces and abandoned past ``max_bytes`` (counted after decoding, so
        a compressed bomb is capped too, and never more than the cap is held in memory).
        """
        import httpx

        started = time.perf_counter()
        total = timeout * DEADLINE_FACTOR if deadline is None else deadline
        result = FetchResult(url=url, final_url=url)
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen = {url}
        current = url
        ends_at: float | None = None  # set when the first hop has its host slot
        try:
            while True:
                # Literal addresses are refused here; host names when connecting (PinnedBackend).
                try:
                    check_url(current, allow_private=allow_private)
                    target_url = parse_url(current)
                except Refused as exc:
                    if result.redirects and exc.kind == "invalid_url":
                        raise Refused(
                            exc.kind, f"{quote_url(result.final_url)} redirects to: {exc}", result.status
                        ) from exc
                    raise
                with self._host_slot(current):
                    # The clock starts once a slot is ours: waiting behind other requests to the
                    # same host (politeness) is not the server's slowness.
                    ends_at = ends_at if ends_at is not None else time.monotonic() + total
                    with request_deadline(ends_at):
                        status, resp_headers, body = self._get_once(
                            self._clients[bool(allow_private)], target_url, headers, timeout, max_bytes,
                            ends_at, total,
                        )
                result.status, result.headers, result.final_url = status, resp_headers, current
                if status in (301, 302, 303, 307, 308):
                    location = resp_headers.get("location") or resp_headers.get(UNPARSED_LOCATION)
                    if not location:
                        raise Refused("http_error", f"HTTP {status} without a Location header", status)
                    try:
                        target = urljoin(current, location)
                    except ValueError as exc:
                        raise Refused(
                            "invalid_url",
                            f"{quote_url(current)} redirects to an invalid URL {quote_url(location)}: {exc}",
                            status,
                        ) from exc
                    if target in seen:
                        raise Refused("redirect_loop", f"redirect loop at {target}", status)
                    if result.redirects >= self.max_redirects:
                        raise Refused(
                            "too_many_redirects", f"more than {self.max_redirects} redirects", status
                        )
                    result.redirects += 1
                    seen.add(target)
                    current = target
                    continue
                if status == 304:
                    result.not_modified = True
                elif status >= 400:
                    result.retry_after = _retry_after(resp_headers.get("retry-after"))
                    raise Refused("http_error", f"HTTP {status}", status)
                else:
                    result.body = body
                break
        except Refused as exc:
            result.error_kind, result.error = exc.kind, str(exc)
            if exc.status is not None:
                result.status = exc.status
        except httpx.TimeoutException as exc:
            if ends_at is not None and time.monotonic() >= ends_at - 0.05:
                result.error_kind, result.error = (
                    "timeout",
                    f"no complete response within the deadline of {total:g}s ({type(exc).__name__})",
                )
            else:
                result.error_kind, result.error = (
                    "timeout",
                    f"timed out after {timeout:g}s ({type(exc).__name__})",
                )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            result.error_kind, result.error = "invalid_url", f"invalid URL {quote_url(current)}: {exc}"
        except httpx.RemoteProtocolError as exc:
            if str(exc).startswith("Invalid URL in location header"):
                # httpx parses a redirect's Location before handing us the response
                result.error_kind = "invalid_url"
                result.error = f"{quote_url(current)} redirects to an invalid URL: {exc}"
            else:
                result.error_kind, result.error = "connection", f"{type(exc).__name__}: {exc}"
        except httpx.HTTPError as exc:
            result.error_kind, result.error = "connection", f"{type(exc).__name__}: {exc}"
        except (ValueError, UnicodeError, OSError) as exc:
            # h11 and the standard library on hostile headers or addresses: data, not a crash.
            result.error_kind, result.error = "protocol_error", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - one URL must never stop a run; logged with its stack
            log.warning("unexpected error fetching %s", quote_url(current), exc_info=True)
            result.error_kind, result.error = "fetch_failed", f"{type(exc).__name__}: {exc}"
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    def _get_once(
        self,
        client: Any,
        url: Any,
        headers: dict[str, str],
        timeout: float,
        max_bytes: int,
        ends_at: float,
        total: float,
    ) -> tuple[int, dict[str, str], bytes | None]:
        import httpx

        # Raw bytes, decoded here in bounded steps (BoundedDecoder), not by httpx.
        with client.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout)) as resp:
            resp_headers = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status_code in (301, 302, 303, 304, 307, 308) or resp.status_code >= 400:
                return resp.status_code, resp_headers, None
            declared = resp_headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise Refused(
                    "too_large",
                    f"Content-Length {int(declared):,} exceeds the cap of {max_bytes:,} bytes",
                    resp.status_code,
                )
            decoder = BoundedDecoder(resp_headers.get("content-encoding", ""))
            body = bytearray()
            raw = 0
            for chunk in resp.iter_raw(CHUNK):
                raw += len(chunk)
                if raw > max_bytes:
                    raise Refused(
                        "too_large", f"body exceeds the cap of {max_bytes:,} bytes", resp.status_code
                    )
                for piece in decoder.decode(chunk):
                    if len(body) + len(piece) > max_bytes:
                        raise Refused(
                            "too_large",
                            f"body exceeds the cap of {max_bytes:,} bytes after decompression",
                            resp.status_code,
                        )
                    body += piece
                    if time.monotonic() > ends_at:  # decompressing is work too
                        raise Refused(
                            "timeout", f"no complete response within the deadline of {total:g}s",
                            resp.status_code,
                        )
            return resp.status_code, resp_headers, bytes(body)
