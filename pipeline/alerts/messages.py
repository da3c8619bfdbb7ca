"""Messages by kind, rendered from ledger documents: a bundle of claim events (one event is an
alert), a status change, and the daily digest. Plain text and autoescaped HTML from Jinja
templates, threading headers, and links.

Everything in an email comes from news text written by strangers, so the HTML templates are
autoescaped (a ``<script>`` in an article arrives as text), links are restricted to http(s), and
header values lose their line breaks (no header injection).
"""

from __future__ import annotations

import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from pipeline.settings import Settings

__all__ = ["render", "kibana_cluster_url", "build_message", "format_figure", "one_line", "safe_url",
           "message_for", "bundle_message", "digest_message", "top_level", "UNLABELLED"]

TEMPLATES = Path(__file__).parent / "templates"


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




UNLABELLED = "no motive (deployment news)"


def top_level(motives: list[str]) -> list[str]:
    """Top-level motive ids of ``motives``, a child standing for its parent, in order."""
    tops = [m for m in motives if "." not in m]
    tops += [m.split(".")[0] for m in motives if "." in m and m.split(".")[0] not in tops]
    return tops


def _digest_sections(claims: list[dict[str, Any]],
                     order: list[str]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for claim in claims:
        for motive in top_level(claim.get("motives") or []) or [UNLABELLED]:
            groups.setdefault(motive, []).append(claim)
    rank = {m: i for i, m in enumerate(order)}
    return sorted(groups.items(), key=lambda kv: (kv[0] == UNLABELLED, rank.get(kv[0], 99), kv[0]))


def digest_message(settings: Settings, doc: dict[str, Any], now: datetime) -> EmailMessage:
    """A digest ledger document as an email with the week's chart inline."""
    from pipeline.alerts.chart import claims_per_motive_chart

    p = doc["payload"]
    cid = f"chart-{doc['id']}@newswatch"
    week = p["week"]
    png = claims_per_motive_chart(week["days"], week["counts"])
    totals = sorted(((m, sum(v)) for m, v in week["counts"].items()), key=lambda x: -x[1])
    context = {"day": p["day"], "total": len(p["claims"]),
               "sections": _digest_sections(p["claims"], p.get("motive_order") or []),
               "week_totals": totals, "subscription": p["subscription"], "chart_cid": cid,
               "subject": doc["subject"]}
    return build_message(settings, subject=doc["subject"], recipients=doc["recipients"],
                         text=render("digest.txt.j2", **context), html=render("digest.html.j2", **context),
                         message_id=doc["message_id"], date=now.timestamp(), inline_images=[(cid, png)])


def _single_alert_payload(doc: dict[str, Any]) -> dict[str, Any]:
    """A one-claim alert written before bundles existed, in the shape of a bundle."""
    p = doc["payload"]
    entry = {"event": p["event"], "claim": p["claim"], "cluster": p["cluster"],
             "kibana_link": p["kibana_link"], "importance": None, "why": "", "feedback": {}}
    return {"intro": "", "sections": [(None, [entry])], "subscription": p["subscription"],
            "mode": doc.get("mode") or "immediate"}


def bundle_message(settings: Settings, doc: dict[str, Any], now: datetime) -> EmailMessage:
    """A bundle of claim events (one event is a plain alert), threaded when it continues one."""
    p = doc["payload"] if doc.get("kind") == "bundle" else _single_alert_payload(doc)
    context = {"intro": p.get("intro") or "", "sections": p["sections"], "subscription": p["subscription"],
               "mode": p.get("mode") or doc.get("mode"), "subject": doc["subject"]}
    return build_message(
        settings, subject=doc["subject"], recipients=doc["recipients"],
        text=render("bundle.txt.j2", **context), html=render("bundle.html.j2", **context),
        message_id=doc["message_id"], in_reply_to=doc["thread_root"] if doc.get("references") else None,
        references=doc.get("references") or None, date=now.timestamp(),
    )


def message_for(settings: Settings, doc: dict[str, Any], now: datetime) -> EmailMessage:
    """The email of a ledger document, by its kind."""
    if doc.get("kind") == "digest":
        return digest_message(settings, doc, now)
    return bundle_message(settings, doc, now)
