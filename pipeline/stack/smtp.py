"""A real SMTP server on 127.0.0.1 that keeps every message it receives as an ``.eml`` file.

Messages land in a maildir-style folder (``<maildir>/new/<time>-<n>.eml``) that a person can open
in any mail client and that tests read back. Run in-process with :class:`MailCatcher` or as a
background process with ``python -m pipeline.stack.smtp --port 8025 --maildir DIR``.

"Already delivered?" lookup: the alert sender needs to know, after a crash between the server's
acceptance and its own ledger write, whether a message is already here. The catcher answers a
private ESMTP command, advertised in its EHLO reply::

    XDELIVERED <message-id>    250 the message is stored / 550 it is not / 501 no argument

``MaildirStore`` is the same lookup read straight from the folder (same machine, no server). Only
Message-IDs are disclosed, and only to clients of a server that listens on loopback.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import signal
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["MailCatcher", "MaildirHandler", "MaildirStore", "MaildirController", "read_maildir",
           "LOOKUP_COMMAND"]

LOOKUP_COMMAND = "XDELIVERED"

# Called after a message is safely stored and before the server answers 250: (path, Message-ID).
OnStored = Callable[[Path, str], None]


def _message_id_of(raw: bytes) -> str:
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    return str(headers.get("Message-ID") or "").strip()


class MaildirStore:
    """Which Message-IDs a Maildir holds. Files already indexed are not read again, so a lookup
    after the first costs one directory listing (``cur/`` too: a mail client moves read mail)."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = Path(maildir)
        self._ids: set[str] = set()
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def add(self, message_id: str, name: str | None = None) -> None:
        with self._lock:
            if message_id:
                self._ids.add(message_id.strip())
            if name:
                self._seen.add(name)

    def _scan(self) -> None:
        for sub in ("new", "cur"):
            folder = self.maildir / sub
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                # Maildir readers rename new/x to cur/x:2,S; the base name stays the key.
                key = path.name.split(":", 1)[0]
                if key in self._seen or not path.is_file():
                    continue
                try:
                    mid = _message_id_of(path.read_bytes())
                except OSError:
                    continue  # moved by a reader between the listing and the read: found next time
                self.add(mid, key)

    def delivered(self, message_id: str) -> bool:
        """True when a message with this Message-ID is stored here."""
        wanted = message_id.strip()
        with self._lock:
            if wanted in self._ids:
                return True
        self._scan()
        with self._lock:
            return wanted in self._ids


class MaildirHandler:
    """aiosmtpd handler: write each message, with its envelope, to one ``.eml`` file."""

    def __init__(self, maildir: Path, on_stored: OnStored | None = None) -> None:
        self.maildir = maildir
        (maildir / "new").mkdir(parents=True, exist_ok=True)
        (maildir / "tmp").mkdir(parents=True, exist_ok=True)
        self.store = MaildirStore(maildir)
        self.on_stored = on_stored
        self._counter = itertools.count()
        self._lock = threading.Lock()

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a handler that hooks EHLO
        if isinstance(server, CatcherSMTP):
            # Before the final "250 HELP" line: the last line of a reply has no hyphen.
            responses.insert(len(responses) - 1, f"250-{LOOKUP_COMMAND}")
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        with self._lock:
            name = f"{time.time_ns()}-{next(self._counter):06d}.eml"
        header = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                  f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(header + content)
        final = self.maildir / "new" / name
        tmp.rename(final)  # atomic: readers never see half a message
        mid = _message_id_of(content)
        self.store.add(mid, name)
        if self.on_stored is not None:
            self.on_stored(final, mid)
        return "250 Message accepted for delivery"


class CatcherSMTP(SMTP):
    """aiosmtpd's server plus the ``XDELIVERED`` lookup."""

    async def smtp_XDELIVERED(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's naming
        store = getattr(self.event_handler, "store", None)
        wanted = (arg or "").strip()
        if not wanted or store is None:
            await self.push(f"501 Syntax: {LOOKUP_COMMAND} <message-id>")
            return
        if store.delivered(wanted):
            await self.push(f"250 2.0.0 {wanted} is stored here")
        else:
            await self.push(f"550 5.1.0 {wanted} is not stored here")


class MaildirController(Controller):
    """aiosmtpd's threaded controller serving :class:`CatcherSMTP`."""

    def factory(self) -> SMTP:
        return CatcherSMTP(self.handler, **self.SMTP_kwargs)


class MailCatcher:
    """An SMTP server in a background thread of this process."""

    def __init__(self, maildir: Path, port: int, host: str = "127.0.0.1", *,
                 on_stored: OnStored | None = None, handler: Any = None) -> None:
        self.maildir = Path(maildir)
        self.host = host
        self.port = port
        self.handler = handler if handler is not None else MaildirHandler(self.maildir, on_stored)
        self._controller = MaildirController(self.handler, hostname=host, port=port)

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def messages(self) -> list[EmailMessage]:
        return read_maildir(self.maildir)


def read_maildir(maildir: Path) -> list[EmailMessage]:
    """Every stored message, oldest first, parsed with the modern email policy."""
    folder = Path(maildir) / "new"
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out.append(msg)  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Store every SMTP message as an .eml file.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    catcher = MailCatcher(args.maildir, args.port, args.host).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"SMTP on {args.host}:{args.port}, messages in {args.maildir / 'new'}", flush=True)
    stop.wait()
    catcher.stop()


if __name__ == "__main__":
    main()
