"""Polite, bounded HTTP fetching of feeds and article pages.

Why so careful: feed URLs come from configuration and article URLs from third-party feeds, so a
fetch must never (a) read a huge or endless body into memory, (b) follow redirects forever,
(c) reach internal services (SSRF: private, loopback, link-local addresses are refused unless the
source is explicitly allowed), (d) hammer one host. Every failure comes back as a
``FetchResult`` with an ``error_kind`` so one bad feed is a row in a report, never a crash.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

MAX_REDIRECTS = 5
PER_HOST_LIMIT = 4
CHUNK = 64 * 1024


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


class _Refused(Exception):  # noqa: N818 - internal control flow, carries the error kind
    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


def _ip_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_address(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts resolving to non-public addresses.

    Every address the name resolves to must be public (an attacker-controlled name could list a
    public and a private one). Raises ``_Refused``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _Refused(
            "invalid_url", f"scheme {parts.scheme or '(none)'!r} is not allowed: only http and https"
        )
    host = parts.hostname
    if not host:
        raise _Refused("invalid_url", "URL has no host")
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addrs = [literal]
    else:
        try:
            infos = socket.getaddrinfo(
                host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise _Refused("dns", f"cannot resolve {host}: {exc}") from exc
        addrs = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    bad = [str(a) for a in addrs if not _ip_allowed(a)]
    if bad:
        raise _Refused(
            "blocked_address",
            f"{host} resolves to a non-public address ({', '.join(bad)}); "
            "set allow_private: true on the source to allow it",
        )


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


class Fetcher:
    """One shared ``httpx.Client`` with per-host concurrency limits; safe to use from threads."""

    def __init__(
        self,
        *,
        user_agent: str,
        per_host: int = PER_HOST_LIMIT,
        max_redirects: int = MAX_REDIRECTS,
        pool_size: int = 32,
    ) -> None:
        import httpx  # here, not at module level: DAG files import pipeline modules while parsing

        self.per_host = per_host
        self.max_redirects = max_redirects
        self._client = httpx.Client(
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
        )
        self._locks: dict[str, threading.Semaphore] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        self._client.close()

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
    ) -> FetchResult:
        """GET ``url`` following at most ``max_redirects`` redirects, each hop checked.

        ``timeout`` bounds each network wait and also the whole transfer (a server that trickles
        bytes cannot hold a worker forever). The body is streamed and abandoned past ``max_bytes``
        (counted after gzip decoding, so a compressed bomb is capped too).
        """
        import httpx

        started = time.perf_counter()
        result = FetchResult(url=url, final_url=url)
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen = {url}
        current = url
        try:
            while True:
                check_address(current, allow_private=allow_private)
                with self._host_slot(current):
                    status, resp_headers, body = self._get_once(current, headers, timeout, max_bytes, started)
                result.status, result.headers, result.final_url = status, resp_headers, current
                if status in (301, 302, 303, 307, 308):
                    location = resp_headers.get("location")
                    if not location:
                        raise _Refused("http_error", f"HTTP {status} without a Location header", status)
                    target = urljoin(current, location)
                    if target in seen:
                        raise _Refused("redirect_loop", f"redirect loop at {target}", status)
                    if result.redirects >= self.max_redirects:
                        raise _Refused(
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
                    raise _Refused("http_error", f"HTTP {status}", status)
                else:
                    result.body = body
                break
        except _Refused as exc:
            result.error_kind, result.error = exc.kind, str(exc)
            if exc.status is not None:
                result.status = exc.status
        except httpx.TimeoutException as exc:
            result.error_kind, result.error = (
                "timeout",
                f"timed out after {timeout:g}s ({type(exc).__name__})",
            )
        except httpx.HTTPError as exc:
            result.error_kind, result.error = "connection", f"{type(exc).__name__}: {exc}"
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    def _get_once(
        self, url: str, headers: dict[str, str], timeout: float, max_bytes: int, started: float
    ) -> tuple[int, dict[str, str], bytes | None]:
        import httpx

        with self._client.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout)) as resp:
            resp_headers = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status_code in (301, 302, 303, 304, 307, 308) or resp.status_code >= 400:
                return resp.status_code, resp_headers, None
            declared = resp_headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _Refused(
                    "too_large",
                    f"Content-Length {int(declared):,} exceeds the cap of {max_bytes:,} bytes",
                    resp.status_code,
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise _Refused(
                        "too_large", f"body exceeds the cap of {max_bytes:,} bytes", resp.status_code
                    )
                if time.perf_counter() - started > timeout * 3:
                    raise _Refused("timeout", f"transfer took longer than {timeout * 3:g}s", resp.status_code)
                chunks.append(chunk)
            return resp.status_code, resp_headers, b"".join(chunks)


def describe(result: FetchResult) -> dict[str, Any]:
    """A small JSON-able view of a fetch for reports."""
    return {
        "url": result.url,
        "final_url": result.final_url,
        "status": result.status,
        "error_kind": result.error_kind,
        "error": result.error,
        "ms": round(result.elapsed_ms, 1),
    }
