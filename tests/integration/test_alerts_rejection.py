"""An SMTP server that answers but refuses the recipient: the alert is marked failed with the
reason, retried a bounded number of times, and never marked sent."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aiosmtpd.controller import Controller

from pipeline.alerts import process_new_claims, send_pending
from pipeline.alerts.ledger import MAX_ATTEMPTS
from pipeline.stack.ports import free_port
from tests.claims_support import DEPLOYED_1500, EVERYONE, NOW, claim_doc, ledger, store_claims


class RefuseEveryone:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 no such mailbox here"


@pytest.fixture
def refusing_smtp():
    controller = Controller(RefuseEveryone(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


def test_a_refused_alert_is_failed_with_its_reason_and_retried_until_it_gives_up(es, settings, refusing_smtp):
    refusing = replace(settings, smtp=replace(settings.smtp, port=refusing_smtp.port))
    store_claims(es, settings, [claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire")])

    report = process_new_claims(refusing, es, now=NOW, subscriptions=[EVERYONE])

    assert report["delivery"]["failed"] == 1 and report["delivery"]["sent"] == 0
    (alert,) = ledger(es, settings)
    assert alert["status"] == "failed" and alert["attempts"] == 1
    assert "550" in alert["last_error"] and alert.get("sent_at") is None
    for _ in range(MAX_ATTEMPTS - 1):
        assert send_pending(refusing, es, now=NOW)["failed"] == 1
    final = send_pending(refusing, es, now=NOW)
    assert final["failed"] == 0 and final["gave_up"] == 1
    (alert,) = ledger(es, settings)
    assert alert["status"] == "failed" and alert["attempts"] == MAX_ATTEMPTS
