"""The feedback endpoint over HTTP, in a real Airflow API server started here (free port, the DAG
tests' private AIRFLOW_HOME, the repo's plugins folder), against the real Elasticsearch.

Elasticsearch is reached through a loopback TCP relay the test can switch off, so "Elasticsearch
down" is a refused connection as the API server really sees it, while the shared node stays up.
The documents are counted in Elasticsearch directly, not through the endpoint.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipeline.errors import ConfigError
from pipeline.es.schema import drop_prefix, ensure_indices
from pipeline.feedback import FeedbackToken, feedback_links, sign_token
from pipeline.settings import FeedbackSettings, Settings
from tests.dags.conftest import REPO

KEY = "test-feedback-key-" + "x" * 24
OLD_KEY = "old-feedback-key-" + "y" * 24
CLAIM = {"id": "claim-fb-1", "text": "Officials say <b>2,000</b> troops & more arrived",
         "article_id": "art-fb", "motives": ["combat_experience"], "on_topic": True, "novelty": "new",
         "outlet": "wire-a", "source_id": "wire-a", "source_name": "Wire A",
         "attribution": {"speaker": "officials", "organisation": "Ministry", "kind": "official"}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Relay:
    """A TCP relay 127.0.0.1:port -> upstream; ``down()`` cuts every connection and refuses new ones
    (accepts and closes at once) until ``up()``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.is_up = True
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.is_up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open |= {client, server}
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def down(self) -> None:
        self.is_up = False
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._open.clear()

    def up(self) -> None:
        self.is_up = True

    def close(self) -> None:
        self.down()
        self._listener.close()


@dataclass
class Server:
    url: str
    settings: Settings  # what the test signs links with (the server reads the same key)
    relay: Relay
    log: Path


@pytest.fixture(scope="module")
def server(airflow_db, es, base_settings: Settings, tmp_path_factory) -> Iterator[Server]:
    prefix = f"test-fb-{uuid.uuid4().hex[:8]}"
    settings = replace(base_settings, index_prefix=prefix)
    ensure_indices(es, settings, ["claims"])
    es.index(index=settings.index("claims"), id=CLAIM["id"], document=CLAIM, refresh=True)
    es_url = urlsplit(base_settings.elasticsearch.url)
    relay = Relay((es_url.hostname or "127.0.0.1", es_url.port or 9200))
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/newswatch/feedback"
    log = tmp_path_factory.mktemp("api-server") / "api-server.log"
    env = {**os.environ,
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
           "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port),
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}", "AIRFLOW__API__WORKERS": "1",
           "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex * 2,
           "AIRFLOW_CONN_ELASTICSEARCH_DEFAULT": json.dumps({
               "conn_type": "elasticsearch", "host": "127.0.0.1", "port": relay.port, "schema": "http",
               "extra": {"request_timeout": 5}}),
           # the rotation case: the server knows the new key (signs) and the old one (verifies)
           "AIRFLOW_CONN_NEWSWATCH_FEEDBACK": json.dumps({
               "conn_type": "generic", "host": base_url, "password": f"{KEY},{OLD_KEY}"}),
           "NEWSWATCH_INDEX_PREFIX": prefix,
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    env.pop("NEWSWATCH_FEEDBACK_KEY", None)
    with log.open("w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "api-server", "--apps", "core",
                                 "--port", str(port), "--host", "127.0.0.1", "--workers", "1"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the API server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the API server did not answer within 180 s:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        signing = replace(settings, feedback=FeedbackSettings(keys=(KEY,), base_url=base_url))
        yield Server(base_url, signing, relay, log)
    finally:
        # the server leads its own session: signal the group, so a forked worker goes too
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        relay.close()
        drop_prefix(es, prefix)


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]  # names in lower case


def _call(url: str, method: str = "GET") -> Reply:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return Reply(resp.status, resp.read().decode(), {k.lower(): v for k, v in resp.headers.items()})
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read().decode(), {k.lower(): v for k, v in exc.headers.items()})


def _count(es, server: Server) -> int:
    alias = server.settings.index("feedback")
    if not es.indices.exists_alias(name=alias):
        return 0
    es.indices.refresh(index=alias)
    return int(es.count(index=alias)["count"])


def _links(server: Server, alert: str, now: datetime | None = None) -> dict[str, str]:
    return feedback_links(server.settings, alert_id=alert, claim_id=CLAIM["id"], cluster_id="cluster-fb",
                          subscription_id="analysts", now=now or datetime.now(UTC))


def test_get_shows_an_escaped_confirmation_page_and_records_nothing(es, server):
    url = _links(server, "alert-get")["useful"]
    for _ in range(3):  # a mail scanner and a link preview fetch it too
        reply = _call(url)
        assert reply.status == 200
    assert '<form method="post" action="">' in reply.body and "Useful" in reply.body
    assert "Officials say &lt;b&gt;2,000&lt;/b&gt; troops &amp; more arrived" in reply.body
    assert "<b>2,000</b>" not in reply.body
    assert reply.headers["cache-control"] == "no-store" and reply.headers["referrer-policy"] == "no-referrer"
    assert _count(es, server) == 0


def test_post_records_once_and_a_replay_changes_nothing(es, server):
    url = _links(server, "alert-post")["not_new"]
    before = _count(es, server)
    first = _call(url, "POST")
    assert first.status == 201 and "Recorded" in first.body
    assert _count(es, server) == before + 1
    for _ in range(2):
        replay = _call(url, "POST")
        assert replay.status == 200 and "already recorded" in replay.body
    assert _call(url).status == 200 and "already recorded" in _call(url).body
    assert _count(es, server) == before + 1
    doc = es.search(index=server.settings.index("feedback"), query={"term": {"alert_id": "alert-post"}})
    source = doc["hits"]["hits"][0]["_source"]
    assert (source["kind"], source["claim_id"], source["outlet"], source["motives"]) == \
        ("not_new", CLAIM["id"], "wire-a", ["combat_experience"])


def _tampered(url: str) -> str:
    base, token = url.rsplit("/", 1)
    payload, mac = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["t"] = "useful"
    forged = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{base}/{forged}.{mac}"


def test_forged_tampered_and_expired_links_change_nothing(es, server):
    links = _links(server, "alert-bad")
    before = _count(es, server)
    foreign = feedback_links(replace(server.settings, feedback=replace(server.settings.feedback,
                                                                       keys=("z" * 32,))),
                             alert_id="alert-bad", claim_id=CLAIM["id"], cluster_id="c", subscription_id="s",
                             now=datetime.now(UTC))["useful"]
    for url in (_tampered(links["not_on_topic"]), foreign, f"{server.url}/not-a-token",
                f"{server.url}/{'A' * 3000}.B"):
        for method in ("GET", "POST"):
            reply = _call(url, method)
            assert reply.status == 403, (url, method, reply.status)
            assert "not valid" in reply.body
    expired = _links(server, "alert-old", now=datetime.now(UTC) - timedelta(days=15))["useful"]
    for method in ("GET", "POST"):
        reply = _call(expired, method)
        assert reply.status == 410 and "expired" in reply.body
    assert _count(es, server) == before


def test_a_link_signed_with_the_previous_key_still_works(es, server):
    token = FeedbackToken(alert_id="alert-rotated", claim_id=CLAIM["id"], cluster_id="cluster-fb",
                          subscription_id="analysts", kind="useful",
                          expires=datetime.now(UTC) + timedelta(days=1))
    before = _count(es, server)
    reply = _call(f"{server.url}/{sign_token(token, [OLD_KEY])}", "POST")
    assert reply.status == 201
    assert _count(es, server) == before + 1
    hit = es.search(index=server.settings.index("feedback"), query={"term": {"alert_id": "alert-rotated"}})
    assert hit["hits"]["hits"][0]["_source"]["key_index"] == 1


def test_elasticsearch_down_is_503_with_nothing_recorded_then_the_link_works(es, server):
    url = _links(server, "alert-outage")["wrong_motive"]
    _call(_links(server, "alert-warm")["useful"], "POST")  # the client is built and pooled
    before = _count(es, server)
    server.relay.down()
    try:
        reply = _call(url, "POST")
        assert reply.status == 503 and reply.headers.get("retry-after") == "60"
        assert "nothing was recorded" in reply.body
        assert _call(url).status == 200  # the page still shows, without the claim's text
    finally:
        server.relay.up()
    assert _count(es, server) == before
    assert _call(url, "POST").status == 201
    assert _count(es, server) == before + 1


def test_feedback_settings_from_the_connection_or_the_variables(monkeypatch):
    """The same reading the API server did above, in process: connection first, then variables."""
    from newswatch_airflow import settings_from_airflow

    base = Settings(feedback=FeedbackSettings(keys=("e" * 20,), base_url="http://env/feedback"))
    monkeypatch.delenv("AIRFLOW_CONN_NEWSWATCH_FEEDBACK", raising=False)
    assert settings_from_airflow(base).feedback == base.feedback  # nothing set: the environment's
    monkeypatch.setenv("AIRFLOW_VAR_NEWSWATCH_FEEDBACK_KEY", f"{KEY},{OLD_KEY}")
    monkeypatch.setenv("AIRFLOW_VAR_NEWSWATCH_FEEDBACK_URL", "https://airflow.example/newswatch/feedback")
    got = settings_from_airflow(base).feedback
    assert got.keys == (KEY, OLD_KEY) and got.base_url == "https://airflow.example/newswatch/feedback"
    monkeypatch.setenv("AIRFLOW_CONN_NEWSWATCH_FEEDBACK", json.dumps(
        {"conn_type": "generic", "host": "http://conn/newswatch/feedback", "password": KEY,
         "extra": {"link_days": 3}}))
    got = settings_from_airflow(base).feedback
    assert (got.keys, got.base_url, got.link_days) == ((KEY,), "http://conn/newswatch/feedback", 3.0)
    monkeypatch.setenv("AIRFLOW_CONN_NEWSWATCH_FEEDBACK", json.dumps(
        {"conn_type": "generic", "host": "http://conn/f", "password": "short"}))
    with pytest.raises(ConfigError) as info:
        settings_from_airflow(base)
    assert (info.value.item, info.value.field) == ("newswatch_feedback", "password")
