"""Delivery channels: where a rendered message goes. SMTP is the one channel today.

A channel is a small interface (``Channel``) so another one (a chat webhook, a second mail
relay) is one class, the way ElastAlert2 keeps one alerter per channel; the ledger and the
exactly-once protocol (``pipeline.alerts.delivery``) do not change with it.

SMTP errors are mapped at this boundary: connection trouble is ServiceUnavailable (retry later),
a refusal of the message is ``DeliveryRejected`` (recorded on the ledger document, retried a
bounded number of times).

``DeliveryStore`` is the "already delivered?" question asked before re-sending a message whose
earlier attempt may have reached the server: ``True`` the server holds a message with that
Message-ID, ``False`` it does not, ``None`` it cannot tell (a generic SMTP server).
``SmtpChannel`` answers it through the private ``XDELIVERED`` ESMTP command when the server
advertises it (the local mail catcher does); ``MaildirStore`` in ``pipeline.stack.smtp`` answers
it from a Maildir on this machine.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol

from pipeline.errors import ServiceError, ServiceUnavailable
from pipeline.settings import SmtpSettings

__all__ = ["Channel", "SmtpChannel", "DeliveryRejected", "DeliveryStore", "LOOKUP_EXTENSION"]

# The private ESMTP command of the local mail catcher (pipeline.stack.smtp.LOOKUP_COMMAND); the
# name is repeated here because alerts must not import the stack package.
LOOKUP_EXTENSION = "XDELIVERED"


class DeliveryRejected(ServiceError):  # noqa: N818 - reads as an outcome, like ServiceUnavailable
    """The SMTP server answered but refused this message (bad recipient, policy, size)."""


class DeliveryStore(Protocol):
    """Does the mail server already hold a message with this Message-ID? None: cannot tell."""

    def delivered(self, message_id: str) -> bool | None: ...


class Channel(DeliveryStore, Protocol):
    """Sends rendered messages. ``open`` connects (and raises ServiceUnavailable when it cannot,
    before any alert is leased), ``send`` returns a short record of the server's answer."""

    @property
    def where(self) -> str: ...

    def open(self) -> None: ...

    def send(self, msg: EmailMessage, recipients: list[str]) -> str: ...

    def close(self) -> None: ...


class SmtpChannel:
    """One SMTP session for a batch of messages, opened on first use."""

    def __init__(self, cfg: SmtpSettings) -> None:
        self.cfg = cfg
        self._smtp: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def _connect(self) -> smtplib.SMTP:
        cfg = self.cfg
        try:
            if cfg.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                                      context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
                if cfg.starttls:
                    smtp.starttls(context=ssl.create_default_context())
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise ServiceError(f"SMTP login to {self.where} refused: {exc}") from exc
        except ConnectionRefusedError as exc:
            raise ServiceUnavailable(f"SMTP at {self.where} refused the connection") from exc
        except TimeoutError as exc:
            raise ServiceUnavailable(f"SMTP at {self.where} did not answer within {cfg.timeout:g} s") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ServiceUnavailable(f"SMTP at {self.where} is unreachable: {exc}") from exc
        return smtp

    def open(self) -> None:
        """Connect now (a no-op when connected), so a server that is down is found out before
        any alert is leased: an unreachable server must not use up delivery attempts."""
        if self._smtp is None:
            self._smtp = self._connect()

    def delivered(self, message_id: str) -> bool | None:
        """Ask the server whether it already holds ``message_id`` (``DeliveryStore``). None when
        the server does not offer the lookup, which is every generic SMTP server."""
        self.open()
        assert self._smtp is not None
        try:
            self._smtp.ehlo_or_helo_if_needed()
            if not self._smtp.has_extn(LOOKUP_EXTENSION.lower()):
                return None
            code, _ = self._smtp.docmd(LOOKUP_EXTENSION, message_id)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise ServiceUnavailable(f"SMTP connection to {self.where} lost: {exc}") from exc
        return True if code == 250 else False if code == 550 else None

    def send(self, msg: EmailMessage, recipients: list[str]) -> str:
        """Send; returns a short record of the server's answer. Raises ServiceUnavailable when the
        server cannot be reached (the message was not sent) and DeliveryRejected when it refused."""
        self.open()
        assert self._smtp is not None
        try:
            refused = self._smtp.send_message(msg, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryRejected(f"all recipients refused: {exc.recipients}") from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            code = getattr(exc, "smtp_code", 0)
            if 400 <= code < 500:
                self.close()
                raise ServiceUnavailable(
                    f"SMTP at {self.where} deferred the message ({code}): {exc}") from exc
            raise DeliveryRejected(f"SMTP server refused the message ({code}): {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise ServiceUnavailable(f"SMTP connection to {self.where} lost: {exc}") from exc
        if refused:
            return f"accepted, some recipients refused: {sorted(refused)}"
        return "accepted"

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None

    def __enter__(self) -> SmtpChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
