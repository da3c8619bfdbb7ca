"""Delivery leases and exit codes, on the real Elasticsearch node and real SMTP servers.

The crash cases run a real sender in a subprocess and kill it with SIGKILL from inside the mail
server, at the moment that matters (after the message is stored, or before DATA). Recovery is
then tested with a wall clock moved past the lease instead of waiting ten minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from pipeline.alerts import process_new_claims, send_pending
from pipeline.alerts.channels import SmtpChannel
from pipeline.alerts.ledger import LEASE, due, lease_state
from pipeline.alerts.subscriptions import Subscription
from pipeline.cli import main
from pipeline.stack.ports import free_port
from pipeline.stack.smtp import MailCatcher, MaildirHandler, MaildirStore, read_maildir
from tests.claims_support import DEPLOYED_1500, EVERYONE, NOW, SATELLITES, claim_doc, ledger, store_claims

REPO = Path(__file__).resolve().parents[2]

# A sender in its own process, the way the alerts DAG task or `newswatch alerts send-pending` runs.
CHILD = """
import json, sys
from dataclasses import replace
from pathlib import Path
from pipeline.alerts import send_pending
from pipeline.es.client import build_client
from pipeline.settings import load_settings
cfg = json.loads(sys.argv[1])
base = load_settings()
settings = replace(base, index_prefix=cfg["prefix"], state_dir=Path(cfg["state_dir"]),
                   smtp=replace(base.smtp, port=cfg["port"]))
print(json.dumps(send_pending(settings, build_client(settings), raise_on_unavailable=False)))
"""


def _later() -> datetime:
    """A wall clock just past any lease taken now."""
    return datetime.now(UTC) + LEASE + timedelta(seconds=5)


STARTED: list[subprocess.Popen] = []


def _sender(settings, port: int) -> subprocess.Popen:
    cfg = {"prefix": settings.index_prefix, "state_dir": str(settings.state_dir), "port": port}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    STARTED.append(proc)
    return proc


class Killer:
    """Kills the registered sender with SIGKILL, from inside an SMTP hook, and waits for it."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.done = threading.Event()

    def __call__(self, *_: object) -> None:
        if self.proc is not None and self.proc.poll() is None and not self.done.is_set():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.done.set()

    def run(self, settings, port: int) -> None:
        self.proc = _sender(settings, port)
        _, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == -signal.SIGKILL, err
        # the hook, not something else, killed it (it may still be returning from its wait)
        assert self.done.wait(timeout=30)


def _one_pending_alert(es, settings) -> dict:
    store_claims(es, settings, [claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire")])
    made = process_new_claims(settings, es, now=NOW, subscriptions=[EVERYONE], deliver=False)
    assert made["events_created"] == 1
    (alert,) = ledger(es, settings)
    assert alert["status"] == "pending"
    return alert


# -- pure rules ------------------------------------------------------------------------------------

def test_a_lease_is_held_until_it_expires_and_old_sending_documents_use_updated():
    wall = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    held = {"status": "sending", "attempts": 1, "lease_expires": "2026-03-02T09:31:00.000Z"}
    assert lease_state(held, wall) == "held" and not due(held, wall)
    later = wall + timedelta(minutes=1)
    assert lease_state(held, later) == "expired" and due(held, later)
    # written before leases existed: LEASE from the last update, as before
    legacy = {"status": "sending", "attempts": 1, "updated": "2026-03-02T09:29:00.000Z"}
    assert lease_state(legacy, wall) == "held"
    assert lease_state(legacy, wall + LEASE) == "expired"
    assert lease_state({"status": "pending", "attempts": 0}, wall) == "free"
    assert not due(held | {"attempts": 8}, wall + LEASE)


def test_the_maildir_store_finds_messages_by_message_id_in_new_and_cur(tmp_path):
    maildir = tmp_path / "mail"
    (maildir / "new").mkdir(parents=True)
    (maildir / "cur").mkdir()
    (maildir / "new" / "1-a.eml").write_bytes(b"X-Envelope-From: a\r\nMessage-ID: <one@x>\r\n\r\nbody")
    store = MaildirStore(maildir)
    assert store.delivered("<one@x>") is True
    assert store.delivered("<two@x>") is False
    # a mail client marks the message read and files a second one
    (maildir / "new" / "1-a.eml").rename(maildir / "cur" / "1-a.eml:2,S")
    (maildir / "cur" / "2-b.eml:2,S").write_bytes(b"Message-ID:  <two@x> \r\n\r\nbody")
    assert store.delivered("<two@x>") is True and store.delivered(" <one@x>") is True


def test_the_catcher_answers_the_lookup_and_a_generic_server_cannot(tmp_path, smtp_server, mail_settings):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "a@x.org", "b@x.org", "s", "<m1@x.org>"
    msg.set_content("hello")
    with SmtpChannel(mail_settings.smtp) as sender:
        assert sender.delivered("<m1@x.org>") is False
        sender.send(msg, ["b@x.org"])
        assert sender.delivered("<m1@x.org>") is True
    generic = Controller(MaildirHandler(tmp_path / "generic"), hostname="127.0.0.1", port=free_port())
    generic.start()
    try:
        with SmtpChannel(replace(mail_settings.smtp, port=generic.port)) as sender:
            sender.send(msg, ["b@x.org"])
            assert sender.delivered("<m1@x.org>") is None  # stored, but the server cannot say so
    finally:
        generic.stop()


# -- exit codes ------------------------------------------------------------------------------------

def _cli_env(monkeypatch, settings, port: int, subs: Path) -> None:
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
    monkeypatch.setenv("NEWSWATCH_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("NEWSWATCH_SMTP_PORT", str(port))
    monkeypatch.setenv("NEWSWATCH_SMTP_TIMEOUT", "5")
    monkeypatch.setenv("NEWSWATCH_SUBSCRIPTIONS_FILE", str(subs))


def test_smtp_down_exits_3_keeps_alerts_pending_and_back_up_sends_each_once(
        es, mail_settings, smtp_server, tmp_path, monkeypatch, capsys):
    subs = tmp_path / "subscriptions.yaml"
    subs.write_text("subscriptions:\n  - id: everyone\n    recipients: [desk@example.org]\n")
    store_claims(es, mail_settings, [
        claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire"),
        claim_doc(SATELLITES, article_id="a2", outlet="eastern-observer", motives=["military_technology"]),
    ])
    dead = free_port()
    _cli_env(monkeypatch, mail_settings, dead, subs)

    assert main(["alerts", "process"]) == 3
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (f"newswatch: 2 alert(s) pending: SMTP at 127.0.0.1:{dead} "
                                   "refused the connection")
    # an unreachable server used up no attempt
    assert [(a["status"], a["attempts"]) for a in ledger(es, mail_settings)] == [("pending", 0)] * 2
    assert main(["alerts", "send-pending"]) == 3
    out = capsys.readouterr()
    assert out.err.startswith("newswatch: 2 alert(s) pending: SMTP at")
    assert json.loads(out.out)["pending"] == 2
    assert smtp_server.messages() == []

    monkeypatch.setenv("NEWSWATCH_SMTP_PORT", str(smtp_server.port))
    assert main(["alerts", "send-pending"]) == 0
    assert json.loads(capsys.readouterr().out)["sent"] == 2
    assert main(["alerts", "send-pending"]) == 0
    assert main(["alerts", "process"]) == 0
    ids = [m["Message-ID"] for m in smtp_server.messages()]
    assert len(ids) == len(set(ids)) == 2
    assert [(a["status"], a["attempts"]) for a in ledger(es, mail_settings)] == [("sent", 1)] * 2


class RefuseEveryone:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 no such mailbox here"


def test_a_refused_alert_exits_4_with_the_servers_reason(es, settings, tmp_path, monkeypatch, capsys):
    _one_pending_alert(es, settings)
    refusing = Controller(RefuseEveryone(), hostname="127.0.0.1", port=free_port())
    refusing.start()
    try:
        subs = tmp_path / "subscriptions.yaml"
        subs.write_text("subscriptions:\n  - id: everyone\n    recipients: [desk@example.org]\n")
        _cli_env(monkeypatch, settings, refusing.port, subs)
        assert main(["alerts", "send-pending"]) == 1
    finally:
        refusing.stop()
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("newswatch: 1 alert(s) refused by the SMTP server") and "550" in first
    (alert,) = ledger(es, settings)
    assert alert["status"] == "failed" and alert.get("lease_expires") is None


# -- crashes and concurrent senders ----------------------------------------------------------------

def test_a_sender_killed_after_the_catcher_stored_the_message_is_not_sent_again(es, settings, tmp_path):
    alert = _one_pending_alert(es, settings)
    killer = Killer()
    with MailCatcher(tmp_path / "mail", free_port(), on_stored=killer) as catcher:
        mailed = replace(settings, smtp=replace(settings.smtp, port=catcher.port))
        killer.run(settings, catcher.port)

        (crashed,) = ledger(es, settings)
        assert crashed["status"] == "sending" and crashed["attempts"] == 1
        assert f":{killer.proc.pid}:" in crashed["lease_holder"]
        assert crashed["message_id"] == alert["message_id"]
        assert len(catcher.messages()) == 1

        # the lease is still running: a second sender leaves the alert alone
        early = send_pending(mailed, es)
        assert (early["leased"], early["sent"], early["recovered"]) == (1, 0, 0)

        late = send_pending(mailed, es, clock=_later)
        assert (late["recovered"], late["sent"], late["leased"]) == (1, 0, 0)
        assert send_pending(mailed, es, clock=_later)["sent"] == 0

        (done,) = ledger(es, settings)
        assert done["status"] == "sent" and done["delivery_check"] == "found" and done["attempts"] == 2
        assert done["lease_expires"] is None
        (msg,) = catcher.messages()
        assert msg["Message-ID"] == alert["message_id"]


def test_with_a_generic_server_the_residual_is_one_resend_with_the_same_message_id(es, settings, tmp_path):
    alert = _one_pending_alert(es, settings)
    killer = Killer()
    generic = Controller(MaildirHandler(tmp_path / "mail", on_stored=killer), hostname="127.0.0.1",
                         port=free_port())
    generic.start()
    try:
        killer.run(settings, generic.port)
        mailed = replace(settings, smtp=replace(settings.smtp, port=generic.port))
        late = send_pending(mailed, es, clock=_later)
    finally:
        generic.stop()

    assert late["sent"] == 1 and late["recovered"] == 0, late
    (done,) = ledger(es, settings)
    assert done["status"] == "sent" and done["delivery_check"] == "unknown"
    ids = [m["Message-ID"] for m in read_maildir(tmp_path / "mail")]
    assert ids == [alert["message_id"]] * 2  # documented in pipeline.alerts.ledger


class KillAtRcpt(MaildirHandler):
    """Kills the sender after it leased the alert and before DATA: nothing reaches the store."""

    def __init__(self, maildir: Path, killer: Killer) -> None:
        super().__init__(maildir)
        self.killer = killer

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.killer()
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_an_expired_lease_of_a_dead_sender_is_taken_over_and_sent_once(es, settings, tmp_path):
    alert = _one_pending_alert(es, settings)
    killer = Killer()
    handler = KillAtRcpt(tmp_path / "mail", killer)
    with MailCatcher(tmp_path / "mail", free_port(), handler=handler) as catcher:
        killer.run(settings, catcher.port)
        (dead,) = ledger(es, settings)
        assert dead["status"] == "sending" and catcher.messages() == []

        mailed = replace(settings, smtp=replace(settings.smtp, port=catcher.port))
        assert send_pending(mailed, es)["leased"] == 1
        late = send_pending(mailed, es, clock=_later)

        assert late["sent"] == 1
        (done,) = ledger(es, settings)
        assert done["status"] == "sent" and done["delivery_check"] == "not_found"
        assert done["lease_holder"] != dead["lease_holder"] and done["attempts"] == 2
        (msg,) = catcher.messages()
        assert msg["Message-ID"] == alert["message_id"]


class SlowMaildir(MaildirHandler):
    """Stores each message after a short pause, so two senders' batches overlap."""

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_two_sender_processes_at_once_deliver_each_alert_exactly_once(es, settings, tmp_path):
    subs = [Subscription(id=f"desk{i}", recipients=(f"desk{i}@example.org",)) for i in range(5)]
    store_claims(es, settings, [
        claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire"),
        claim_doc(SATELLITES, article_id="a2", outlet="eastern-observer", motives=["military_technology"]),
    ])
    made = process_new_claims(settings, es, now=NOW, subscriptions=subs, deliver=False)
    assert made["events_created"] == 10
    with MailCatcher(tmp_path / "mail", free_port(), handler=SlowMaildir(tmp_path / "mail")) as catcher:
        procs = [_sender(settings, catcher.port) for _ in range(2)]
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
        ids = [m["Message-ID"] for m in catcher.messages()]

    assert sum(r["sent"] for r in reports) == 10
    assert len(ids) == len(set(ids)) == 10
    assert [(a["status"], a["attempts"]) for a in ledger(es, settings)] == [("sent", 1)] * 10


def test_an_alerts_index_from_before_the_lease_fields_gets_them_and_delivers(es, settings, smtp_server):
    from pipeline.es.bulk import bulk_write
    from pipeline.es.schema import ALERTS, ensure_indices

    older = replace(ALERTS, properties={k: v for k, v in ALERTS.properties.items()
                                        if k not in ("lease_holder", "lease_expires", "delivery_check")})
    ensure_indices(es, settings, ["alerts"], specs={"alerts": older})
    ensure_indices(es, settings, ["claims", "clusters"])
    bulk_write(es, settings.index("claims"), [claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire")],
               op_type="create", refresh=True)
    made = process_new_claims(settings, es, now=NOW, subscriptions=[EVERYONE], deliver=False)
    assert made["events_created"] == 1
    alias = settings.index("alerts")
    [index] = es.indices.get_alias(name=alias)
    assert "lease_expires" not in es.indices.get_mapping(index=index)[index]["mappings"]["properties"]

    mailed = replace(settings, smtp=replace(settings.smtp, port=smtp_server.port))
    assert send_pending(mailed, es)["sent"] == 1

    assert "lease_expires" in es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert len(smtp_server.messages()) == 1


@pytest.fixture(autouse=True)
def _no_stray_senders():
    """A failed assertion must not leave a sender process behind."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
