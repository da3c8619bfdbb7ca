"""The feedback links of one claim in one alert email, for the message templates."""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.feedback.tokens import KINDS, FeedbackToken, sign_token
from pipeline.settings import Settings


def feedback_url(base_url: str, token: str) -> str:
    """Where the plugin's endpoint serves ``token`` (the token is URL-safe as it is)."""
    return f"{base_url.rstrip('/')}/{token}"


def feedback_links(settings: Settings, *, alert_id: str, claim_id: str, cluster_id: str,
                   subscription_id: str, now: datetime) -> dict[str, str]:
    """Kind -> signed URL for every feedback kind, in ``KINDS`` order.

    Empty when no key or no base URL is configured: the email then carries no links. ``now`` is
    the run's time (the logical date in a DAG), so re-rendering an alert gives the same links.
    """
    cfg = settings.feedback
    if not cfg.enabled or cfg.base_url is None:
        return {}
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    expires = now + timedelta(days=cfg.link_days)
    return {kind: feedback_url(cfg.base_url, sign_token(
        FeedbackToken(alert_id=alert_id, claim_id=claim_id, cluster_id=cluster_id,
                      subscription_id=subscription_id, kind=kind, expires=expires), cfg.keys))
            for kind in KINDS}
