"""Build ``pipeline.settings.Settings`` from the Airflow connections, at task run time only.

Operators configure the services in Airflow (UI, secrets backend or ``AIRFLOW_CONN_*``), not in
code: ``elasticsearch_default`` and ``smtp_default`` override the ``NEWSWATCH_*`` environment.
Field meanings follow the providers, so a connection made for their hooks works here unchanged:

* Elasticsearch (as ``ElasticsearchSQLHook``): host, port, ``schema`` is the URL scheme
  (http/https), login/password for basic auth; extras ``api_key``, ``ca_certs``,
  ``verify_certs``, ``request_timeout``. A host given as a full URL is taken as is. The mapping
  itself is ``pipeline.es.client.settings_from_connection``, which documents every rule.
* SMTP (read through the provider's ``SmtpHook`` properties): host, port, login/password; extras
  ``disable_ssl``, ``disable_tls`` (SSL and STARTTLS are on unless disabled), ``from_email``,
  ``timeout``.
* Feedback links (``newswatch_feedback``, any connection type, e.g. ``generic``): ``password`` is
  the HMAC key (several, comma-separated, for rotation: the first signs), ``host`` the full URL
  of the feedback endpoint (``http://airflow.example.org:8080/newswatch/feedback``), extra
  ``link_days``. Without that connection the variables ``newswatch_feedback_key`` and
  ``newswatch_feedback_url`` are read; without those, ``NEWSWATCH_FEEDBACK_*``.

A connection that does not exist leaves the environment's values in place (the local stack
exports both); a connection that exists but is unusable raises ``ConfigError`` naming it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.settings import ElasticsearchSettings, FeedbackSettings, Settings, SmtpSettings

log = logging.getLogger(__name__)

ES_CONN_ID = "elasticsearch_default"
SMTP_CONN_ID = "smtp_default"
FEEDBACK_CONN_ID = "newswatch_feedback"
FEEDBACK_KEY_VARIABLE = "newswatch_feedback_key"
FEEDBACK_URL_VARIABLE = "newswatch_feedback_url"


def _get_connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("no Airflow connection %r: using the NEWSWATCH_* environment", conn_id)
        return None


def elasticsearch_from_connection(conn: Any, base: ElasticsearchSettings) -> ElasticsearchSettings:
    """Turn an ``elasticsearch`` connection into settings. The rules are
    ``pipeline.es.client.settings_from_connection``'s (the one mapping); this only hands it the
    connection's fields."""
    from pipeline.es.client import settings_from_connection

    return settings_from_connection(host=conn.host, port=conn.port, schema=conn.schema, login=conn.login,
                                    password=conn.password, extra=conn.extra_dejson or {},
                                    conn_id=conn.conn_id, base=base)


def smtp_from_connection(conn: Any, base: SmtpSettings) -> SmtpSettings:
    """Turn an ``smtp`` connection into settings, with the provider hook's reading of the extras."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from pipeline.errors import ConfigError

    hook = SmtpHook(smtp_conn_id=conn.conn_id)
    hook.smtp_connection = conn  # the hook's properties read this; no server is contacted
    if not hook.host:
        raise ConfigError("the connection has no host", item=conn.conn_id, field="host")
    ssl = hook.use_ssl
    return replace(
        base, host=hook.host, port=int(hook.port or (465 if ssl else 25)),
        username=hook.smtp_user or None, password=hook.smtp_password or None,
        ssl=ssl, starttls=hook.smtp_starttls and not ssl, timeout=float(hook.timeout),
        sender=hook.from_email or base.sender,
    )


def feedback_from_connection(conn: Any, base: FeedbackSettings) -> FeedbackSettings:
    """Turn the ``newswatch_feedback`` connection into settings (pure: easy to test)."""
    from pipeline.settings import feedback_settings

    extra = conn.extra_dejson or {}
    host = (conn.host or "").strip()
    return feedback_settings(
        conn.password or ",".join(base.keys), host or base.base_url, extra.get("link_days", base.link_days),
        where=conn.conn_id, key_field="password", url_field="host", days_field="extra.link_days")


def _get_variable(key: str) -> str | None:
    from airflow.sdk import Variable

    value = Variable.get(key, default=None)
    return str(value) if value not in (None, "") else None


def feedback_from_airflow(base: FeedbackSettings, conn_id: str = FEEDBACK_CONN_ID) -> FeedbackSettings:
    """The feedback key and URL: the connection, else the two variables, else ``base``."""
    from pipeline.settings import feedback_settings

    conn = _get_connection(conn_id)
    if conn is not None:
        return feedback_from_connection(conn, base)
    key, url = _get_variable(FEEDBACK_KEY_VARIABLE), _get_variable(FEEDBACK_URL_VARIABLE)
    if key is None and url is None:
        return base
    return feedback_settings(key or ",".join(base.keys), url or base.base_url, base.link_days,
                             where="Airflow variables", key_field=FEEDBACK_KEY_VARIABLE,
                             url_field=FEEDBACK_URL_VARIABLE)


def settings_from_airflow(base: Settings | None = None, *, es_conn_id: str = ES_CONN_ID,
                          smtp_conn_id: str = SMTP_CONN_ID,
                          feedback_conn_id: str = FEEDBACK_CONN_ID) -> Settings:
    """Settings for a task: the environment, overridden by the Airflow connections."""
    from pipeline.settings import load_settings

    settings = base or load_settings()
    es_conn = _get_connection(es_conn_id)
    if es_conn is not None:
        settings = replace(settings, elasticsearch=elasticsearch_from_connection(es_conn,
                                                                                 settings.elasticsearch))
    smtp_conn = _get_connection(smtp_conn_id)
    if smtp_conn is not None:
        settings = replace(settings, smtp=smtp_from_connection(smtp_conn, settings.smtp))
    return replace(settings, feedback=feedback_from_airflow(settings.feedback, feedback_conn_id))
