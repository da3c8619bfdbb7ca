"""Polite, bounded HTTP fetching of feeds and article pages.

Why so careful: feed URLs come from configuration and article URLs from third-party feeds, so a
fetch must never (a) read a huge or endless body into memory, (b) follow redirects forever,
(c) reach internal services (SSRF: private, loopback, link-local addresses are refused unless the
source is explicitly allowed), (d) hammer one host. Every failure comes back as a
``FetchResult`` with an ``error_kind`` so one bad feed is a row in a report, never a crash.

The address check is pinned to the connection (DNS rebinding): ``PinnedBackend`` is the httpcore
network backend of our connection pools; it resolves the host name itself, checks every address,
and connects to an address it checked, so a DNS answer that changes between a check and a
connect cannot reach an internal service. This holds for every hop of a redirect chain and for
article pages, since every connection is made there. TLS keeps the host name (SNI and certificate
verification use the URL's host, not the IP) and so does the ``Host`` header. Strict and
private-allowed fetches use separate pools, so a kept-alive connection opened for a source that
may reach private hosts is never reused by one that may not.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import ssl

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


Resolver = Callable[..., Sequence[tuple[Any, ...]]]
"""``socket.getaddrinfo``'s signature: ``(host, port, family=0, type=0, proto=0, flags=0)``."""

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _ip_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address: the embedded one must be public too.
        if ip.ipv4_mapped:
            candidates.append(ip.ipv4_mapped)
        if ip.sixtofour:
            candidates.append(ip.sixtofour)
        if ip.teredo:
            candidates.extend(ip.teredo)
        if ip in _NAT64:
            candidates.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return all(_one_ip_allowed(c) for c in candidates)


def _one_ip_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
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


def _check_url(url: str, *, allow_private: bool) -> None:
    """The checks that need no DNS: scheme, host present, and a literal IP host must be public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _Refused(
            "invalid_url", f"scheme {parts.scheme or '(none)'!r} is not allowed: only http and https"
        )
    host = parts.hostname
    if not host:
        raise _Refused("invalid_url", "URL has no host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError as exc:
        raise _Refused("invalid_url", f"bad port: {exc}") from exc
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return
    _refuse_bad([literal], host)


def _refuse_bad(addrs: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address], host: str) -> None:
    bad = [_describe(a) for a in addrs if not _ip_allowed(a)]
    if bad:
        raise _Refused(
            "blocked_address",
            f"{host} resolves to a non-public address ({', '.join(bad)}); "
            "set allow_private: true on the source to allow it",
        )


def _describe(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return f"{ip} = {mapped}" if mapped else str(ip)


def resolve_checked(
    host: str, port: int, *, allow_private: bool, resolver: Resolver = socket.getaddrinfo
) -> list[tuple[int, str]]:
    """Resolve ``host`` once and return its ``(family, address)`` pairs, all of them checked.

    Every address the name resolves to must be public (an attacker-controlled name could list a
    public and a private one) unless ``allow_private``. Raises ``_Refused`` (``dns`` or
    ``blocked_address``). The caller must connect to one of these addresses, never re-resolve.
    """
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _Refused("dns", f"cannot resolve {host}: {exc}") from exc
    pairs: list[tuple[int, str]] = []
    addrs: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0])
        try:
            addrs.append(ipaddress.ip_address(text.split("%")[0]))
        except ValueError as exc:
            raise _Refused("dns", f"{host} resolved to an unusable address {text!r}") from exc
        if (family, text) not in pairs:
            pairs.append((family, text))
    if not pairs:
        raise _Refused("dns", f"cannot resolve {host}: no IPv4 or IPv6 address")
    if not allow_private:
        _refuse_bad(addrs, host)
    return pairs


def check_address(url: str, *, allow_private: bool, resolver: Resolver = socket.getaddrinfo) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts resolving to non-public addresses.

    A stand-alone check (raises ``_Refused``). ``Fetcher`` does not rely on it for host names:
    its connections are pinned to the addresses ``PinnedBackend`` checked at connect time.
    """
    _check_url(url, allow_private=allow_private)
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    resolve_checked(
        host,
        parts.port or (443 if parts.scheme == "https" else 80),
        allow_private=False,
        resolver=resolver,
    )


Connector = Callable[[str, int, "float | None", "str | None", Any], Any]
"""``(ip, port, timeout, local_address, socket_options) -> httpcore.NetworkStream``."""


def _pinned_backend_class() -> type:
    import httpcore

    class PinnedBackend(httpcore.SyncBackend):
        """An httpcore network backend that connects only to addresses it resolved and checked.

        ``resolver`` (default ``socket.getaddrinfo``) and ``connector`` (default: a plain TCP
        connect to a numeric address) are injectable so tests can simulate DNS answers and
        hosts without real DNS. A refused host raises ``_Refused`` out of the request.
        """

        def __init__(
            self,
            *,
            allow_private: bool,
            resolver: Resolver = socket.getaddrinfo,
            connector: Connector | None = None,
        ) -> None:
            self.allow_private = allow_private
            self.resolver = resolver
            self.connector = connector

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            pairs = resolve_checked(
                host, port, allow_private=self.allow_private, resolver=self.resolver
            )
            last: Exception | None = None
            for _family, ip in pairs:  # like socket.create_connection: first that answers
                try:
                    if self.connector is not None:
                        return self.connector(ip, port, timeout, local_address, socket_options)
                    # A numeric address: create_connection does no DNS lookup for it.
                    return super().connect_tcp(ip, port, timeout, local_address, socket_options)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc
            assert last is not None
            raise last

    return PinnedBackend


def pinned_backend(
    *, allow_private: bool, resolver: Resolver = socket.getaddrinfo, connector: Connector | None = None
) -> Any:
    """A ``PinnedBackend`` (an ``httpcore.SyncBackend``) for the given policy."""
    return _pinned_backend_class()(allow_private=allow_private, resolver=resolver, connector=connector)


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
        resolver: Resolver = socket.getaddrinfo,
        connector: Connector | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``resolver`` and ``connector``: see ``PinnedBackend`` (tests inject them);
        ``ssl_context``: certificate verification (default: the certifi roots, as httpx does)."""
        import httpcore
        import httpx  # here, not at module level: DAG files import pipeline modules while parsing

        self.per_host = per_host
        self.max_redirects = max_redirects
        limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
        self._clients: dict[bool, httpx.Client] = {}
        for allow_private in (False, True):  # separate pools: no connection crosses policies
            transport = httpx.HTTPTransport(trust_env=False, limits=limits)
            # httpx.HTTPTransport (0.28) builds an httpcore.ConnectionPool with the default network
            # backend and has no parameter for another one: swap in the same pool with ours.
            if not isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):
                raise RuntimeError("httpx.HTTPTransport no longer keeps its pool in _pool")
            transport._pool = httpcore.ConnectionPool(
                ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                http1=True,
                http2=False,
                network_backend=pinned_backend(
                    allow_private=allow_private, resolver=resolver, connector=connector
                ),
            )
            self._clients[allow_private] = httpx.Client(
                headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
                follow_redirects=False,
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
                # Literal addresses are refused here; host names when connecting (PinnedBackend).
                _check_url(current, allow_private=allow_private)
                with self._host_slot(current):
                    status, resp_headers, body = self._get_once(
                        self._clients[bool(allow_private)], current, headers, timeout, max_bytes, started
                    )
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
        self,
        client: Any,
        url: str,
        headers: dict[str, str],
        timeout: float,
        max_bytes: int,
        started: float,
    ) -> tuple[int, dict[str, str], bytes | None]:
        import httpx

        with client.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout)) as resp:
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
