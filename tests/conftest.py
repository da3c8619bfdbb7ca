"""Shared fixtures: settings isolated per test, the real Elasticsearch node started by the
harness (``make test``), an in-process SMTP server and an HTTP server, all on 127.0.0.1."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.es.schema import drop_prefix
from pipeline.settings import Settings, load_settings
from pipeline.stack.ports import free_port
from pipeline.stack.smtp import MailCatcher
from tests.support import SHARED, LocalHTTPServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (seeds, corpus); tests that need it skip with a reason where it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the seeds and the corpus are not in this checkout")
    return SHARED


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def es(base_settings: Settings):
    """A client for the real node that `make test` started; fails loudly when it is not there."""
    from pipeline.es.client import build_client

    client = build_client(base_settings)
    try:
        health = client.cluster.health(wait_for_status="yellow", timeout="30s")
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Elasticsearch at {base_settings.elasticsearch.url} is not reachable ({exc}); "
                    "run the suite with `make test`, which starts it")
    assert health["status"] in {"green", "yellow"}
    return client


@pytest.fixture
def settings(base_settings: Settings, tmp_path: Path, es) -> Iterator[Settings]:
    """Settings with a unique index prefix and a private state folder; indices removed after."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    s = replace(base_settings, index_prefix=prefix, state_dir=tmp_path / "state",
                allow_private_hosts=True)
    yield s
    drop_prefix(es, prefix)


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[MailCatcher]:
    """A real SMTP server in this process that stores messages under ``tmp_path/mail``."""
    catcher = MailCatcher(tmp_path / "mail", free_port()).start()
    yield catcher
    catcher.stop()


@pytest.fixture
def mail_settings(settings: Settings, smtp_server: MailCatcher) -> Settings:
    """``settings`` pointing at ``smtp_server``."""
    return replace(settings, smtp=replace(settings.smtp, port=smtp_server.port))


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer().start()
    yield server
    server.stop()
