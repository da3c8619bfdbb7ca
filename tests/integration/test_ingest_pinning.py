"""The SSRF check is pinned to the connection: what was checked is what is connected to.

Real loopback HTTP servers; DNS answers come from an injected resolver (no real DNS), and a
"public" address is simulated by a connector that routes it to a second loopback server, so no
test ever connects outside 127.0.0.1.
"""

from __future__ import annotations

import socket
from dataclasses import replace

import httpcore
import pytest

from pipeline.ingest.fetch import Fetcher
from tests.ingest_support import NOW, rss, source
from tests.support import LocalHTTPServer, Response

PUBLIC_IP = "93.184.216.34"  # a global address, never really connected to (see `Network`)
INTERNAL = b"internal service data"
PUBLIC = b"public page"


class Network:
    """A fake DNS (name -> successive answers, the last one repeated) and a connector that sends
    ``PUBLIC_IP`` to the `public` loopback server and refuses any other non-loopback address."""

    def __init__(self, public: LocalHTTPServer, answers: dict[str, list[list[str]]]) -> None:
        self.public, self.answers = public, answers
        self.lookups: list[str] = []
        self.connects: list[tuple[str, int]] = []
        self._backend = httpcore.SyncBackend()

    def resolve(self, host: str, port: int, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0):  # noqa: A002
        self.lookups.append(host)
        try:  # numeric spellings ("127.1", "2130706433", "::ffff:7f00:1") as the C library reads them
            numeric = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
            ips = [str(info[4][0]) for info in numeric]
        except socket.gaierror:
            queue = self.answers.get(host)
            if not queue:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            ips = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in ips
        ]

    def connect(self, ip: str, port: int, timeout, local_address, socket_options):
        self.connects.append((ip, port))
        if ip == PUBLIC_IP:
            ip, port = "127.0.0.1", self.public.port
        if ip.startswith("127.") or ip == "::1":
            return self._backend.connect_tcp(ip, port, timeout, local_address, socket_options)
        raise httpcore.ConnectError(f"test network: {ip} is outside loopback")

    def fetcher(self) -> Fetcher:
        return Fetcher(user_agent="newswatch-test", resolver=self.resolve, connector=self.connect)


@pytest.fixture
def public():
    server = LocalHTTPServer().start()
    yield server
    server.stop()


def get(fetcher: Fetcher, url: str, *, allow_private: bool = False):
    return fetcher.get(url, allow_private=allow_private, timeout=5.0, max_bytes=1 << 20)


def test_a_rebinding_answer_cannot_reach_loopback(http_server, public):
    http_server.route("/secret", INTERNAL)
    public.route("/secret", PUBLIC)
    # Public when first asked, loopback ever after: the classic rebinding pattern.
    net = Network(public, {"rebind.test": [[PUBLIC_IP], ["127.0.0.1"]]})
    url = f"http://rebind.test:{http_server.port}/secret"
    with net.fetcher() as fetcher:
        first = get(fetcher, url)
        assert first.ok and first.body == PUBLIC, first.error
        assert net.lookups == ["rebind.test"]  # resolved once, and that answer was connected to
        assert net.connects == [(PUBLIC_IP, http_server.port)]
        assert public.hits[0].headers["host"] == f"rebind.test:{http_server.port}"  # name kept
    with net.fetcher() as fetcher:  # a new connection: the name now answers 127.0.0.1
        second = get(fetcher, url)
    assert second.error_kind == "blocked_address" and "127.0.0.1" in (second.error or "")
    assert second.body is None and len(net.connects) == 1  # refused before any connect
    assert http_server.hits == []


def test_a_name_listing_a_public_and_a_private_address_is_refused(http_server, public):
    http_server.route("/secret", INTERNAL)
    net = Network(public, {"mixed.test": [[PUBLIC_IP, "127.0.0.1"]]})
    with net.fetcher() as fetcher:
        result = get(fetcher, f"http://mixed.test:{http_server.port}/secret")
    assert result.error_kind == "blocked_address" and net.connects == [] and http_server.hits == []


def test_allowed_private_sources_still_work_and_their_connections_stay_theirs(http_server, public):
    http_server.route("/secret", INTERNAL)
    net = Network(public, {"intranet.test": [["127.0.0.1"]]})
    url = f"http://intranet.test:{http_server.port}/secret"
    with net.fetcher() as fetcher:
        allowed = get(fetcher, url, allow_private=True)
        assert allowed.ok and allowed.body == INTERNAL, allowed.error
        assert http_server.hits[0].headers["host"] == f"intranet.test:{http_server.port}"
        # Same origin, kept-alive connection in the pool: a strict fetch must not ride on it.
        strict = get(fetcher, url, allow_private=False)
        assert strict.error_kind == "blocked_address", strict.error
        again = get(fetcher, url, allow_private=True)
        assert again.ok
    assert len(http_server.hits) == 2


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/secret",
        "http://intranet.test:{port}/secret",
        "http://[::1]:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://mapped.test:{port}/secret",
        "http://localhost:{port}/secret",
    ],
)
def test_a_redirect_to_a_private_address_is_refused(http_server, public, location):
    http_server.route("/secret", INTERNAL)
    public.route("/go", Response(b"", 302, {"Location": location.format(port=http_server.port)}))
    net = Network(
        public,
        {
            "news.test": [[PUBLIC_IP]],
            "intranet.test": [["127.0.0.1"]],
            "mapped.test": [["::ffff:127.0.0.1"]],
            "localhost": [["127.0.0.1"]],
        },
    )
    with net.fetcher() as fetcher:
        result = get(fetcher, f"http://news.test:{http_server.port}/go")
    assert result.error_kind == "blocked_address", result.error
    assert result.redirects == 1 and len(public.hits) == 1
    assert http_server.hits == [] and net.connects == [(PUBLIC_IP, http_server.port)]


@pytest.mark.parametrize(
    "host", ["[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "127.1", "2130706433", "0x7f.1"]
)
def test_ip_literals_in_any_spelling_are_refused(http_server, public, host):
    http_server.route("/secret", INTERNAL)
    net = Network(public, {})
    with net.fetcher() as fetcher:
        result = get(fetcher, f"http://{host}:{http_server.port}/secret")
    assert result.error_kind == "blocked_address", result.error
    assert "127.0.0.1" in (result.error or "") or "::1" in (result.error or "")
    assert http_server.hits == [] and net.connects == []


def test_a_feed_on_a_name_for_loopback_is_a_per_source_error(settings, es, http_server):
    """Through the real run and real DNS for ``localhost`` (the hosts file, no network)."""
    from pipeline.ingest import ingest_once

    url = http_server.route("/feed.xml", rss([]))
    strict = replace(settings, allow_private_hosts=False)
    named = url.replace("127.0.0.1", "localhost")
    report = ingest_once(
        strict,
        es,
        sources=[source("named", named, allow_private=False)],
        now=NOW,
        ignore_schedule=True,
        fetch_articles=False,
    )
    result = report.feeds[0]
    assert (result.status, result.error_kind) == ("error", "blocked_address"), result.error
    assert "localhost" in (result.error or "") and http_server.hits == []


def _certificates(tmp_path, name: str):
    """A throwaway CA and a server certificate for ``name`` (sample data, made per test)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def build(subject: str, key, issuer: str, issuer_key, *, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            alt = x509.SubjectAlternativeName([x509.DNSName(subject)])
            builder = builder.add_extension(alt, critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("newswatch test CA", ca_key, "newswatch test CA", ca_key, ca=True)
    cert = build(name, key, "newswatch test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "server.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"


def test_https_verifies_the_host_name_while_connecting_to_the_checked_address(tmp_path):
    import ssl

    pytest.importorskip("cryptography", reason="cryptography makes the throwaway certificates")
    ca, cert, key = _certificates(tmp_path, "secure.test")
    server = LocalHTTPServer()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server._httpd.socket = server_ctx.wrap_socket(server._httpd.socket, server_side=True)
    server.start()
    try:
        server.route("/story", b"over tls")
        net = Network(server, {"secure.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
        client_ctx = ssl.create_default_context(cafile=str(ca))
        with Fetcher(
            user_agent="newswatch-test", resolver=net.resolve, connector=net.connect, ssl_context=client_ctx
        ) as fetcher:
            good = get(fetcher, f"https://secure.test:{server.port}/story", allow_private=True)
            assert good.ok and good.body == b"over tls", good.error
            assert net.connects == [("127.0.0.1", server.port)]  # the checked IP ...
            assert server.hits[0].headers["host"] == f"secure.test:{server.port}"  # ... the name kept
            # Same IP under a name the certificate does not carry: verification uses the name.
            wrong = get(fetcher, f"https://other.test:{server.port}/story", allow_private=True)
            assert wrong.error_kind == "connection" and "certificate" in (wrong.error or "").lower()
        assert len(server.hits) == 1
    finally:
        server.stop()
