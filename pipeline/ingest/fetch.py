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

Hostile servers are bounded in time and memory. Every request has a total deadline (connect,
TLS, headers and body together, all redirect hops): the network streams of our pools give each
socket wait only the time left before it (``DeadlineStream``), so a server trickling one byte a
second, in its headers or in its body, is cut at the deadline, not per read. Bodies are read raw
and decompressed here in pieces of at most ``CHUNK`` bytes (``BoundedDecoder``), so a gzip bomb
costs at most the cap in memory; encodings that cannot be decompressed in bounded pieces are
refused. A URL that cannot be parsed (``http://999.1.1.1/``, ``http://[::1/``), as a link or as a
redirect target, is an ``invalid_url`` result like any other refusal.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import ssl

MAX_REDIRECTS = 5
PER_HOST_LIMIT = 4
CHUNK = 64 * 1024
DEADLINE_FACTOR = 3.0  # the total deadline of a request, in multiples of its per-wait timeout
URL_IN_ERRORS = 300  # characters of a URL quoted in an error message


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


log = logging.getLogger(__name__)
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
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "http://[::1/x": an unclosed or unusable IPv6 bracket
        raise _Refused("invalid_url", f"invalid URL {_quote(url)}: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise _Refused(
            "invalid_url", f"scheme {parts.scheme or '(none)'!r} is not allowed: only http and https"
        )
    host = parts.hostname
    if not host:
        raise _Refused("invalid_url", f"URL has no host: {_quote(url)}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError as exc:
        raise _Refused("invalid_url", f"bad port in {_quote(url)}: {exc}") from exc
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return
    _refuse_bad([literal], host)


def _quote(url: str) -> str:
    """``url`` for an error message: repr (so control characters and surrogates show), truncated."""
    text = repr(url)
    return text if len(text) <= URL_IN_ERRORS else text[: URL_IN_ERRORS - 3] + "..."


def _parse_url(url: str) -> Any:
    """``url`` as an ``httpx.URL``, or ``_Refused("invalid_url")`` naming it.

    httpx refuses more than ``urlsplit`` does (IPv4 literals such as ``999.1.1.1`` or the octal
    ``0177.0.0.1``, bad IDNA labels, surrogates), and would raise that from inside the request."""
    import httpx

    try:
        parsed = httpx.URL(url)
        parsed.host  # noqa: B018 - the IDNA decoding of the host happens here
    except (httpx.InvalidURL, ValueError, UnicodeError, TypeError) as exc:
        raise _Refused("invalid_url", f"invalid URL {_quote(url)}: {exc}") from exc
    return parsed


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


_deadline = threading.local()  # .at: time.monotonic() by which the current thread's request must end


@contextmanager
def request_deadline(at: float) -> Iterator[None]:
    """Network waits made in this thread (through ``PinnedBackend`` streams) end by ``at``
    (``time.monotonic()``). httpx's timeouts apply to each wait, so without this a server sending
    a byte just before each read timeout could hold a request for ever."""
    previous = getattr(_deadline, "at", None)
    _deadline.at = at
    try:
        yield
    finally:
        _deadline.at = previous


def _time_left(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` shortened to the time left before this thread's deadline; ``error`` when none is."""
    at = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the request's total deadline has passed")
    return left if timeout is None else min(timeout, left)


@cache
def _deadline_stream_class() -> type:
    import httpcore

    class DeadlineStream(httpcore.NetworkStream):
        """A network stream whose every wait (read, write, TLS handshake) is bounded by the time
        left before the deadline of the request being made in the calling thread."""

        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return bytes(self._inner.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout)))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._inner.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._inner.close()

        def start_tls(
            self,
            ssl_context: ssl.SSLContext,
            server_hostname: str | None = None,
            timeout: float | None = None,
        ) -> Any:
            left = _time_left(timeout, httpcore.ConnectTimeout)
            return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left))

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    return DeadlineStream


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
            deadlines: bool = False,
        ) -> None:
            self.allow_private = allow_private
            self.resolver = resolver
            self.connector = connector
            self.deadlines = deadlines  # streams bounded by the calling thread's request deadline

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
                    left = _time_left(timeout, httpcore.ConnectTimeout)
                    if self.connector is not None:
                        stream = self.connector(ip, port, left, local_address, socket_options)
                    else:
                        # A numeric address: create_connection does no DNS lookup for it.
                        stream = super().connect_tcp(ip, port, left, local_address, socket_options)
                    return deadline_stream(stream) if self.deadlines else stream
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc
            assert last is not None
            raise last

    return PinnedBackend


def deadline_stream(inner: Any) -> Any:
    """``inner`` (an ``httpcore.NetworkStream``) with its waits bounded by the request's deadline."""
    return _deadline_stream_class()(inner)


def pinned_backend(
    *,
    allow_private: bool,
    resolver: Resolver = socket.getaddrinfo,
    connector: Connector | None = None,
    deadlines: bool = False,
) -> Any:
    """A ``PinnedBackend`` (an ``httpcore.SyncBackend``) for the given policy; with ``deadlines``
    its streams are ``DeadlineStream``s (``request_deadline``), as in ``Fetcher``."""
    return _pinned_backend_class()(
        allow_private=allow_private, resolver=resolver, connector=connector, deadlines=deadlines
    )


class BoundedDecoder:
    """Content-Encoding decoding that never makes more than ``CHUNK`` bytes at a time.

    httpx decodes each network read whole before anyone can look at its size, so 64 KiB of a gzip
    bomb became 64 MiB in memory at once, in every thread. Here each ``zlib`` step is limited with
    ``max_length`` and the caller stops taking pieces at its cap. Only the encodings we ask for
    (gzip, deflate; ``identity``) are decoded; any other one raises ``_Refused("bad_encoding")``,
    since we cannot bound what we cannot decompress in steps."""

    def __init__(self, content_encoding: str) -> None:
        names = [n.strip().lower() for n in content_encoding.split(",") if n.strip()]
        self._stages: list[Any] = []
        for name in reversed(names):  # listed in the order applied: undone last to first
            if name in ("identity", ""):
                continue
            if name in ("gzip", "x-gzip"):
                self._stages.append(_Inflate(16 + zlib.MAX_WBITS))
            elif name == "deflate":
                self._stages.append(_Inflate(zlib.MAX_WBITS, raw_fallback=True))
            else:
                raise _Refused(
                    "bad_encoding", f"Content-Encoding {name!r} is not supported (we ask for gzip, deflate)"
                )

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data`` (the next raw bytes of the body), in pieces of at most CHUNK."""
        return self._through(0, data)

    def _through(self, stage: int, data: bytes) -> Iterator[bytes]:
        if stage == len(self._stages):
            if data:
                yield data
            return
        for piece in self._stages[stage].feed(data):
            yield from self._through(stage + 1, piece)


class _Inflate:
    """One zlib stream decoded in steps of at most CHUNK output bytes."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._obj = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback  # "deflate" is sent both zlib-wrapped and raw
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._obj.eof:
            return  # bytes after the end of the stream: nothing of the document
        try:
            first = self._obj.decompress(data, CHUNK)
        except zlib.error as exc:
            if not (self._raw_fallback and not self._started):
                raise _Refused("decoding_error", f"cannot decompress the body: {exc}") from exc
            self._raw_fallback = False
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            yield from self.feed(data)
            return
        self._started = True
        out, previous = first, data
        while True:
            if out:
                yield out
            tail = self._obj.unconsumed_tail
            # A full piece may leave output pending inside zlib even with no input left.
            if self._obj.eof or (not tail and len(out) < CHUNK) or (not out and tail == previous):
                return
            previous = tail
            try:
                out = self._obj.decompress(tail, CHUNK)
            except zlib.error as exc:
                raise _Refused("decoding_error", f"cannot decompress the body: {exc}") from exc


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
                    _check_url(current, allow_private=allow_private)
                    target_url = _parse_url(current)
                except _Refused as exc:
                    if result.redirects and exc.kind == "invalid_url":
                        raise _Refused(
                            exc.kind, f"{_quote(result.final_url)} redirects to: {exc}", result.status
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
                        raise _Refused("http_error", f"HTTP {status} without a Location header", status)
                    try:
                        target = urljoin(current, location)
                    except ValueError as exc:
                        raise _Refused(
                            "invalid_url",
                            f"{_quote(current)} redirects to an invalid URL {_quote(location)}: {exc}",
                            status,
                        ) from exc
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
            result.error_kind, result.error = "invalid_url", f"invalid URL {_quote(current)}: {exc}"
        except httpx.RemoteProtocolError as exc:
            if str(exc).startswith("Invalid URL in location header"):
                # httpx parses a redirect's Location before handing us the response
                result.error_kind = "invalid_url"
                result.error = f"{_quote(current)} redirects to an invalid URL: {exc}"
            else:
                result.error_kind, result.error = "connection", f"{type(exc).__name__}: {exc}"
        except httpx.HTTPError as exc:
            result.error_kind, result.error = "connection", f"{type(exc).__name__}: {exc}"
        except (ValueError, UnicodeError, OSError) as exc:
            # h11 and the standard library on hostile headers or addresses: data, not a crash.
            result.error_kind, result.error = "protocol_error", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - one URL must never stop a run; logged with its stack
            log.warning("unexpected error fetching %s", _quote(current), exc_info=True)
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
                raise _Refused(
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
                    raise _Refused(
                        "too_large", f"body exceeds the cap of {max_bytes:,} bytes", resp.status_code
                    )
                for piece in decoder.decode(chunk):
                    if len(body) + len(piece) > max_bytes:
                        raise _Refused(
                            "too_large",
                            f"body exceeds the cap of {max_bytes:,} bytes after decompression",
                            resp.status_code,
                        )
                    body += piece
                    if time.monotonic() > ends_at:  # decompressing is work too
                        raise _Refused(
                            "timeout", f"no complete response within the deadline of {total:g}s",
                            resp.status_code,
                        )
            return resp.status_code, resp_headers, bytes(body)


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
