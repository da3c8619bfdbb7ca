"""PinnedBackend and resolve_checked with an injected resolver and connector: no DNS, no sockets."""

from __future__ import annotations

import socket

import httpcore
import pytest

from pipeline.ingest.addresses import Refused as _Refused
from pipeline.ingest.addresses import check_address, resolve_checked
from pipeline.ingest.connections import pinned_backend


def resolver(answers: dict[str, list[str]], calls: list[str] | None = None):
    def resolve(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in answers[host]
        ]

    return resolve


class Recorder:
    """A connector that records where it was asked to connect; fails for addresses in `down`."""

    def __init__(self, down: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, int]] = []
        self.down = down

    def __call__(self, ip, port, timeout, local_address, socket_options):
        self.calls.append((ip, port))
        if ip in self.down:
            raise httpcore.ConnectError(f"{ip} is down")
        return f"stream to {ip}:{port}"


def test_the_backend_connects_to_the_address_it_checked_and_resolves_once():
    calls: list[str] = []
    answers = {"news.example": ["93.184.216.34"]}
    conn = Recorder()
    backend = pinned_backend(allow_private=False, resolver=resolver(answers, calls), connector=conn)
    assert isinstance(backend, httpcore.SyncBackend)
    assert backend.connect_tcp("news.example", 443, timeout=1.0) == "stream to 93.184.216.34:443"
    assert calls == ["news.example"] and conn.calls == [("93.184.216.34", 443)]


def test_the_backend_tries_the_next_checked_address_when_one_is_down():
    answers = {"two.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]}
    conn = Recorder(down=("93.184.216.34",))
    backend = pinned_backend(allow_private=False, resolver=resolver(answers), connector=conn)
    assert backend.connect_tcp("two.example", 80).endswith("2606:2800:220:1:248:1893:25c8:1946:80")
    every = Recorder(down=("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"))
    backend = pinned_backend(allow_private=False, resolver=resolver(answers), connector=every)
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("two.example", 80)
    assert len(every.calls) == 2


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["93.184.216.34", "10.0.0.2"], ["::1"], ["::ffff:127.0.0.1"], ["169.254.169.254"]],
)
def test_the_backend_refuses_before_connecting(addresses):
    conn = Recorder()
    backend = pinned_backend(allow_private=False, resolver=resolver({"x.example": addresses}), connector=conn)
    with pytest.raises(_Refused) as info:
        backend.connect_tcp("x.example", 80)
    assert info.value.kind == "blocked_address" and conn.calls == []
    allowed = pinned_backend(allow_private=True, resolver=resolver({"x.example": addresses}), connector=conn)
    assert allowed.connect_tcp("x.example", 80) == f"stream to {addresses[0]}:80"


def test_resolution_failures_are_dns_errors():
    with pytest.raises(_Refused) as info:
        resolve_checked("nowhere.example", 80, allow_private=False, resolver=resolver({}))
    assert info.value.kind == "dns" and "nowhere.example" in str(info.value)
    with pytest.raises(_Refused) as empty:
        resolve_checked("empty.example", 80, allow_private=True, resolver=resolver({"empty.example": []}))
    assert empty.value.kind == "dns"


def test_duplicate_answers_are_tried_once_and_the_message_names_the_mapped_address():
    pairs = resolve_checked(
        "dup.example", 80, allow_private=False, resolver=resolver({"dup.example": ["93.184.216.34"] * 3})
    )
    assert pairs == [(socket.AF_INET, "93.184.216.34")]
    with pytest.raises(_Refused) as info:
        check_address(
            "http://m.example/", allow_private=False, resolver=resolver({"m.example": ["::ffff:7f00:1"]})
        )
    assert "127.0.0.1" in str(info.value)
