"""A real SMTP server on 127.0.0.1 that keeps every message it receives as an ``.eml`` file.

Messages land in a maildir-style folder (``<maildir>/new/<time>-<n>.eml``) that a person can open
in any mail client and that tests read back. Run in-process with :class:`MailCatcher` or as a
background process with ``python -m pipeline.stack.smtp --port 8025 --maildir DIR``.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import signal
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class MaildirHandler:
    """aiosmtpd handler: write each message, with its envelope, to one ``.eml`` file."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        (maildir / "new").mkdir(parents=True, exist_ok=True)
        (maildir / "tmp").mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count()
        self._lock = threading.Lock()

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
        tmp.rename(self.maildir / "new" / name)  # atomic: readers never see half a message
        return "250 Message accepted for delivery"


class MailCatcher:
    """An SMTP server in a background thread of this process."""

    def __init__(self, maildir: Path, port: int, host: str = "127.0.0.1") -> None:
        self.maildir = Path(maildir)
        self.host = host
        self.port = port
        self._controller = Controller(MaildirHandler(self.maildir), hostname=host, port=port)

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
