"""Email: rendering (Jinja, autoescaped HTML + plain text), threading headers, SMTP delivery.

Everything in an email comes from news text written by strangers, so the HTML templates are
autoescaped (a ``<script>`` in an article arrives as text), links are restricted to http(s), and
header values lose their line breaks (no header injection). SMTP errors are mapped at this
boundary: connection trouble is ServiceUnavailable (retry later), a rejection by the server is
``DeliveryRejected`` (recorded on the alert, retried a bounded number of times).

``DeliveryStore`` is the "already delivered?" question the sender asks before re-sending an alert
whose earlier attempt may have reached the server (see ``pipeline.alerts.ledger``): ``True`` the
server holds a message with that Message-ID, ``False`` it does not, ``None`` it cannot tell (a
generic SMTP server). ``SmtpSender`` answers it through the private ``XDELIVERED`` ESMTP command
when the server advertises it (the local mail catcher does); ``MaildirStore`` in
``pipeline.stack.smtp`` answers it from a Maildir on this machine.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlparse

from pipeline.errors import ServiceError, ServiceUnavailable
from pipeline.settings import Settings, SmtpSettings

__all__ = ["render", "kibana_cluster_url", "build_message", "format_figure", "SmtpSender",
           "DeliveryRejected", "DeliveryStore", "one_line", "LOOKUP_EXTENSION"]

# The private ESMTP command of the local mail catcher (pipeline.stack.smtp.LOOKUP_COMMAND); the
# name is repeated here because alerts must not import the stack package.
LOOKUP_EXTENSION = "XDELIVERED"

TEMPLATES = Path(__file__).parent / "templates"


class DeliveryRejected(ServiceError):  # noqa: N818 - reads as an outcome, like ServiceUnavailable
    """The SMTP server answered but refused this message (bad recipient, policy, size)."""


class DeliveryStore(Protocol):
    """Does the mail server already hold a message with this Message-ID? None: cannot tell."""

    def delivered(self, message_id: str) -> bool | None: ...


def format_figure(f: dict[str, Any]) -> str:
    """"about 10,000 troops", "USD 2,000 per month", "50-150 USD" for the reader."""
    def num(x: float | None) -> str:
        if x is None:
            return "?"
        return f"{x:,.0f}" if float(x).is_integer() or x >= 100 else f"{x:,.2f}"

    unit = {"troops": "troops", "casualties": "casualties", "usd": "USD", "distance": "km",
            "munitions": "munitions", "workers": "workers", "percent": "%"}.get(f.get("kind"), f.get("unit"))
    q = f.get("qualifier")
    if q == "vague":
        core = f"{f.get('text') or 'an unspecified number'} ({num(f.get('low'))}-{num(f.get('high'))})"
    elif q == "range":
        core = f"{num(f.get('low'))}-{num(f.get('high'))}"
    else:
        prefix = {"about": "about ", "up_to": "up to ", "at_least": "at least ", "more_than": "more than ",
                  "less_than": "fewer than "}.get(q or "", "")
        core = prefix + num(f.get("value"))
    period = f.get("period")
    tail = f" per {period}" if period and period != "per_soldier" else (" per soldier" if period else "")
    return f"{core} {unit}{tail}"


def safe_url(url: Any) -> str:
    """Only http(s) links survive into HTML (no ``javascript:``)."""
    text = str(url or "")
    return text if urlparse(text).scheme in {"http", "https"} else "#"


def one_line(text: str, limit: int = 120) -> str:
    flat = re.sub(r"[\r\n\t]+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@lru_cache(maxsize=1)
def _env() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        # HTML templates are escaped; the plain-text part must not carry HTML entities.
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True,
                                     default=False),
        undefined=StrictUndefined, trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True,
    )
    env.filters["figure"] = format_figure
    env.filters["safe_url"] = safe_url
    return env


def render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


def kibana_cluster_url(settings: Settings, cluster_id: str) -> str:
    """Discover on the claims data view, filtered on the cluster (data view id = claims alias)."""
    data_view = settings.index("claims")
    state = (f"(dataSource:(dataViewId:'{data_view}',type:dataView),"
             f"query:(language:kuery,query:'cluster_id:\"{cluster_id}\"'))")
    return (f"{settings.kibana_url.rstrip('/')}/app/discover#/?_g=(time:(from:now-1y,to:now))"
            f"&_a={quote(state, safe='():,')}")


def build_message(settings: Settings, *, subject: str, recipients: list[str], text: str, html: str,
                  message_id: str, in_reply_to: str | None = None, references: list[str] | None = None,
                  date: float | None = None,
                  inline_images: list[tuple[str, bytes]] | None = None) -> EmailMessage:
    """A multipart/alternative message; ``inline_images`` are (cid, png) parts related to the HTML."""
    msg = EmailMessage()
    msg["Subject"] = one_line(subject, 200)
    msg["From"] = settings.smtp.sender
    msg["To"] = ", ".join(recipients)
    msg["Message-ID"] = message_id
    msg["Date"] = formatdate(date, usegmt=True) if date is not None else formatdate(usegmt=True)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join(references or [in_reply_to])
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    if inline_images:
        html_part = msg.get_payload()[1]
        for cid, data in inline_images:
            html_part.add_related(data, maintype="image", subtype="png", cid=f"<{cid}>",
                                  filename=f"{cid.split('@')[0]}.png")
    return msg


class SmtpSender:
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

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
