"""The services the suite runs against are real: an Elasticsearch node and an SMTP server."""

from __future__ import annotations

import smtplib
import time
import uuid
from email.message import EmailMessage

import elasticsearch

from pipeline.es.schema import INDEX_SPECS, ensure_indices
from pipeline.stack import elasticsearch as es_node
from pipeline.stack.python_services import maildir
from pipeline.stack.smtp import read_maildir


def test_elasticsearch_is_a_real_node_of_the_pinned_major(es, base_settings):
    health = es.cluster.health()
    assert health["number_of_nodes"] == 1
    version = es_node.server_version(base_settings.elasticsearch.url)
    assert version == es_node.ES_VERSION
    assert version.split(".")[0] == elasticsearch.__versionstr__.split(".")[0]


def test_ensure_indices_creates_aliases_and_is_idempotent(es, settings):
    first = ensure_indices(es, settings)
    second = ensure_indices(es, settings)
    assert first == second
    for kind, spec in INDEX_SPECS.items():
        alias = settings.index(kind)
        assert first[alias] == f"{alias}-v{spec.version}"
        assert es.indices.exists_alias(name=alias)


def test_smtp_round_trip_through_the_stack_server(base_settings):
    """smtplib sends to the SMTP server `make test` started; the stored .eml holds the message."""
    token = uuid.uuid4().hex
    msg = EmailMessage()
    msg["From"] = "ci@localhost"
    msg["To"] = "analyst@localhost"
    msg["Subject"] = f"round trip {token}"
    msg.set_content(f"body {token} with ünïcode")
    with smtplib.SMTP(base_settings.smtp.host, base_settings.smtp.port, timeout=10) as smtp:
        smtp.send_message(msg)
    deadline = time.monotonic() + 10
    found = []
    while time.monotonic() < deadline and not found:
        found = [m for m in read_maildir(maildir(base_settings)) if token in m["Subject"]]
        time.sleep(0.1)
    assert len(found) == 1
    assert f"body {token} with ünïcode" in found[0].get_content()


def test_in_process_smtp_fixture_stores_messages(smtp_server):
    with smtplib.SMTP("127.0.0.1", smtp_server.port, timeout=10) as smtp:
        smtp.sendmail("a@localhost", ["b@localhost", "c@localhost"], b"Subject: hi\r\n\r\nhello\r\n")
    [msg] = smtp_server.messages()
    assert msg["Subject"] == "hi"
    assert msg["X-Envelope-To"] == "b@localhost, c@localhost"
