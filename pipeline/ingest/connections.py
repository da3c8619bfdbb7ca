"""Connections pinned to checked addresses, and a total deadline over every network wait.

Why: checking a host name and then letting the HTTP library resolve it again lets a DNS answer
that changes in between (DNS rebinding) reach an internal service. ``PinnedBackend`` is the
httpcore network backend of the fetcher's pools: it resolves the name itself
(``addresses.resolve_checked``) and connects to an address it checked, at every redirect hop and
for article pages alike. TLS keeps the host name (SNI and certificate verification use the URL's
host, not the IP) and so does the ``Host`` header.

httpx's timeouts bound each wait, so a server sending one byte just before every read timeout
could hold a request for ever. ``request_deadline`` sets the end of the current thread's request;
the streams of a pinned backend (``DeadlineStream``) give each wait only the time left before it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from pipeline.ingest.addresses import Resolver, resolve_checked

if TYPE_CHECKING:
    import ssl

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
        hosts without real DNS. A refused host raises ``Refused`` out of the request.
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
