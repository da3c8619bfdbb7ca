"""Which addresses a fetch may reach (SSRF), and URLs refused before any connection.

Why: feed URLs come from configuration and article URLs from third-party feeds, so a link can
point at an internal service. Private, loopback, link-local, multicast and reserved addresses are
refused unless the source opts in with ``allow_private``, including IPv6 forms that carry an IPv4
address. ``resolve_checked`` is the one place a host name becomes addresses: every address it
returns was checked, and the caller (``connections.PinnedBackend``) connects only to those.

A refusal is a ``Refused`` carrying an error kind (``invalid_url``, ``dns``, ``blocked_address``),
which ``Fetcher.get`` turns into the ``FetchResult``'s ``error_kind``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

URL_IN_ERRORS = 300  # characters of a URL quoted in an error message


class Refused(Exception):  # noqa: N818 - a refusal, not a failure: carries the error kind
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


def check_url(url: str, *, allow_private: bool) -> None:
    """The checks that need no DNS: scheme, host present, and a literal IP host must be public."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "http://[::1/x": an unclosed or unusable IPv6 bracket
        raise Refused("invalid_url", f"invalid URL {quote_url(url)}: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise Refused(
            "invalid_url", f"scheme {parts.scheme or '(none)'!r} is not allowed: only http and https"
        )
    host = parts.hostname
    if not host:
        raise Refused("invalid_url", f"URL has no host: {quote_url(url)}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError as exc:
        raise Refused("invalid_url", f"bad port in {quote_url(url)}: {exc}") from exc
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return
    _refuse_bad([literal], host)


def quote_url(url: str) -> str:
    """``url`` for an error message: repr (so control characters and surrogates show), truncated."""
    text = repr(url)
    return text if len(text) <= URL_IN_ERRORS else text[: URL_IN_ERRORS - 3] + "..."


def parse_url(url: str) -> Any:
    """``url`` as an ``httpx.URL``, or ``Refused("invalid_url")`` naming it.

    httpx refuses more than ``urlsplit`` does (IPv4 literals such as ``999.1.1.1`` or the octal
    ``0177.0.0.1``, bad IDNA labels, surrogates), and would raise that from inside the request."""
    import httpx

    try:
        parsed = httpx.URL(url)
        parsed.host  # noqa: B018 - the IDNA decoding of the host happens here
    except (httpx.InvalidURL, ValueError, UnicodeError, TypeError) as exc:
        raise Refused("invalid_url", f"invalid URL {quote_url(url)}: {exc}") from exc
    return parsed


def _refuse_bad(addrs: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address], host: str) -> None:
    bad = [_describe(a) for a in addrs if not _ip_allowed(a)]
    if bad:
        raise Refused(
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
    public and a private one) unless ``allow_private``. Raises ``Refused`` (``dns`` or
    ``blocked_address``). The caller must connect to one of these addresses, never re-resolve.
    """
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused("dns", f"cannot resolve {host}: {exc}") from exc
    pairs: list[tuple[int, str]] = []
    addrs: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0])
        try:
            addrs.append(ipaddress.ip_address(text.split("%")[0]))
        except ValueError as exc:
            raise Refused("dns", f"{host} resolved to an unusable address {text!r}") from exc
        if (family, text) not in pairs:
            pairs.append((family, text))
    if not pairs:
        raise Refused("dns", f"cannot resolve {host}: no IPv4 or IPv6 address")
    if not allow_private:
        _refuse_bad(addrs, host)
    return pairs


def check_address(url: str, *, allow_private: bool, resolver: Resolver = socket.getaddrinfo) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts resolving to non-public addresses.

    A stand-alone check (raises ``Refused``). ``Fetcher`` does not rely on it for host names:
    its connections are pinned to the addresses ``PinnedBackend`` checked at connect time.
    """
    check_url(url, allow_private=allow_private)
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
