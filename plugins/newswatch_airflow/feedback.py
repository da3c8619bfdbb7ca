"""The feedback endpoint: a FastAPI app the plugin mounts in the Airflow API server.

``GET  <prefix>/feedback/<token>``  a small confirmation page with one button; changes nothing,
                                   because mail scanners and link previews fetch every link.
``POST <prefix>/feedback/<token>``  verifies the token and records the verdict once:
                                   201 recorded, 200 already recorded (a replay), 403 forged or
                                   tampered, 410 expired, 503 Elasticsearch down or feedback not
                                   configured (nothing recorded; the reader can click again).

No login: the HMAC in the token is the authority. Settings (key, Elasticsearch) come from
``settings_from_airflow`` and the client is built on the first request, once per API server
process, so importing this module (every Airflow component loads the plugin) costs nothing and
needs no service. The work is done by ``pipeline.feedback``.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = logging.getLogger(__name__)
URL_PREFIX = "/newswatch"
ROUTE = "/feedback/{token}"
# The token is a bearer credential in the URL: keep it out of caches, referrers and indexes, and
# let the page load nothing from elsewhere.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
}


@dataclass
class _Services:
    settings: Settings
    es: Any
    index_ready: bool = False


class FeedbackServices:
    """Settings and the Elasticsearch client, built on first use and then shared by every request
    of this process. A failure is not cached: the next request tries again."""

    def __init__(self, load_settings: Callable[[], Settings] | None = None) -> None:
        self._load = load_settings
        self._lock = threading.Lock()
        self._services: _Services | None = None

    def get(self) -> _Services:
        with self._lock:
            if self._services is None:
                from pipeline.es.client import build_client

                if self._load is None:
                    from newswatch_airflow.connections import settings_from_airflow

                    settings = settings_from_airflow()
                else:
                    settings = self._load()
                self._services = _Services(settings, build_client(settings))
            return self._services

    def ensure_index(self, services: _Services) -> None:
        from pipeline.feedback import ensure_feedback_index

        if not services.index_ready:
            ensure_feedback_index(services.es, services.settings)
            services.index_ready = True


def _page(title: str, body: str, status: int) -> Any:
    from fastapi.responses import HTMLResponse

    doc = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>newswatch: {html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em}"
        "blockquote{border-left:3px solid #ccc;margin:1em 0;padding-left:1em;color:#333}"
        "button{font-size:1em;padding:.5em 1.2em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers=SECURITY_HEADERS)


def _claim_text(services: _Services, claim_id: str) -> str | None:
    """The claim, to show what the verdict is about; the page works without it."""
    from pipeline.errors import ServiceError
    from pipeline.feedback.store import claim_snapshot

    try:
        claim = claim_snapshot(services.es, services.settings, claim_id)
    except ServiceError as exc:
        log.warning("feedback page without the claim's text: %s", exc)
        return None
    return (claim or {}).get("text")


def feedback_app(services: FeedbackServices | None = None) -> Any:
    """The FastAPI app (mounted by the plugin at ``URL_PREFIX``)."""
    from fastapi import FastAPI

    from pipeline.errors import ConfigError, ServiceError, ServiceUnavailable
    from pipeline.feedback import (
        KIND_LABELS,
        ExpiredToken,
        InvalidToken,
        feedback_recorded,
        record_feedback,
        verify_token,
    )

    services = services or FeedbackServices()
    app = FastAPI(title="newswatch feedback", docs_url=None, redoc_url=None, openapi_url=None)

    def _services_or_page() -> _Services | Any:
        try:
            found = services.get()
        except ConfigError as exc:
            log.error("feedback endpoint misconfigured: %s", exc)
            return _page("Not available", "<p>Feedback is not configured on this server.</p>", 503)
        if not found.settings.feedback.keys:
            log.error("feedback endpoint has no key: set the newswatch_feedback connection, the "
                      "newswatch_feedback_key variable or NEWSWATCH_FEEDBACK_KEY")
            return _page("Not available", "<p>Feedback is not configured on this server.</p>", 503)
        return found

    def _verify(found: _Services, token: str) -> tuple[Any, int] | Any:
        try:
            return verify_token(token, found.settings.feedback.keys, now=datetime.now(UTC))
        except ExpiredToken:
            return _page("Link expired", "<p>This feedback link has expired; nothing was recorded.</p>", 410)
        except InvalidToken as exc:
            log.info("feedback link refused: %s", exc)
            return _page("Invalid link", "<p>This feedback link is not valid; nothing was recorded.</p>", 403)

    @app.get(ROUTE)
    def confirm(token: str) -> Any:
        found = _services_or_page()
        if not isinstance(found, _Services):
            return found
        verified = _verify(found, token)
        if not isinstance(verified, tuple):
            return verified
        link, _ = verified
        label = KIND_LABELS[link.kind]
        try:
            done = feedback_recorded(found.es, found.settings, link)
        except ServiceError:
            done = False  # the POST will say whether it can be recorded
        if done:
            return _page("Already recorded", f"<p>Your verdict <strong>{html.escape(label)}</strong> "
                                             "on this claim is already recorded. Thank you.</p>", 200)
        text = _claim_text(found, link.claim_id)
        quoted = f"<blockquote>{html.escape(text)}</blockquote>" if text else ""
        body = (f"<p>Record <strong>{html.escape(label)}</strong> for this claim?</p>{quoted}"
                # action="" posts back to this very URL, whatever prefix the server is behind
                "<form method=\"post\" action=\"\"><button type=\"submit\">"
                f"Record &ldquo;{html.escape(label)}&rdquo;</button></form>")
        return _page("Feedback on an alert", body, 200)

    @app.post(ROUTE)
    def record(token: str) -> Any:
        found = _services_or_page()
        if not isinstance(found, _Services):
            return found
        verified = _verify(found, token)
        if not isinstance(verified, tuple):
            return verified
        link, key_index = verified
        label = html.escape(KIND_LABELS[link.kind])
        try:
            services.ensure_index(found)
            result = record_feedback(found.es, found.settings, link, now=datetime.now(UTC),
                                     key_index=key_index)
        except ServiceUnavailable as exc:
            log.warning("feedback not recorded, Elasticsearch unavailable: %s", exc)
            page = _page("Try again later", "<p>Feedback cannot be recorded right now; nothing was "
                                            "recorded. Please use the link again later.</p>", 503)
            page.headers["Retry-After"] = "60"
            return page
        except ServiceError as exc:
            log.error("feedback not recorded: %s", exc)
            return _page("Not recorded", "<p>Feedback could not be recorded.</p>", 500)
        if result.created:
            return _page("Thank you", f"<p>Recorded: <strong>{label}</strong>.</p>", 201)
        return _page("Already recorded", f"<p>Your verdict <strong>{label}</strong> on this claim "
                                         "was already recorded. Thank you.</p>", 200)

    return app


class LazyFeedbackApp:
    """An ASGI app that builds the FastAPI app on its first request.

    Every Airflow component imports the plugin (task processes too, for macros and listeners);
    only the API server ever serves it, so FastAPI is imported there and nowhere else.
    """

    def __init__(self, factory: Callable[[], Any] = feedback_app) -> None:
        self._factory = factory
        self._app: Any = None
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        await self._app(scope, receive, send)


def fastapi_apps() -> list[dict[str, Any]]:
    """The plugin's ``fastapi_apps`` entries (Airflow 3.1+: name, app, url_prefix)."""
    return [{"name": "newswatch feedback", "app": LazyFeedbackApp(), "url_prefix": URL_PREFIX}]
