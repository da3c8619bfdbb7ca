"""Build the official Elasticsearch client from settings; map its errors at the boundary.

The same code serves a local node (``http://127.0.0.1:9200``) and a secured cluster (HTTPS, API
key or basic auth, a CA bundle). Connection details come from ``NEWSWATCH_ES_*`` variables (see
``pipeline.settings``), from one URL (``settings_from_url``: credentials in the userinfo, options
in the query string) or from the parts of an Airflow connection (``settings_from_connection``,
called by ``plugins/`` with the connection's fields; this module never imports Airflow).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pipeline.errors import ConfigError, ServiceError, ServiceUnavailable
from pipeline.settings import ElasticsearchSettings, Settings

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def build_client(settings: Settings | ElasticsearchSettings) -> Any:
    """An ``elasticsearch.Elasticsearch`` for a local node or a secured cluster alike."""
    from elasticsearch import Elasticsearch

    cfg = settings.elasticsearch if isinstance(settings, Settings) else settings
    if "@" in urlsplit(cfg.url).netloc or "?" in cfg.url:
        # NEWSWATCH_ES_URL may carry credentials and options (https://user:pass@host/?ca_certs=..)
        cfg = settings_from_url(cfg.url, base=cfg)
    kwargs: dict[str, Any] = {
        "request_timeout": cfg.request_timeout,
        "retry_on_timeout": True,
        "max_retries": 3,
    }
    if cfg.api_key:
        kwargs["api_key"] = cfg.api_key
    elif cfg.username:
        kwargs["basic_auth"] = (cfg.username, cfg.password or "")
    if cfg.ca_certs:
        kwargs["ca_certs"] = cfg.ca_certs
    if not cfg.verify_certs:
        kwargs["verify_certs"] = False
    return Elasticsearch(cfg.url, **kwargs)


def _flag(value: object, what: str) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"expected true or false, got {value!r}", field=what)


def settings_from_url(url: str, *, api_key: str | None = None, username: str | None = None,
                      password: str | None = None, ca_certs: str | None = None,
                      verify_certs: bool | None = None, request_timeout: float | None = None,
                      base: ElasticsearchSettings | None = None) -> ElasticsearchSettings:
    """Parse ``https://user:pass@host:9200/?ca_certs=/etc/ca.pem&verify_certs=true&api_key=...``.

    An Airflow connection URI (``elasticsearch://user:pass@host:9200?use_ssl=true``) works too.

    Credentials in the userinfo are percent-decoded and removed from the URL the client gets;
    the query options ``api_key``, ``ca_certs``, ``verify_certs`` and ``request_timeout`` (or
    ``timeout``) are read and removed, other query parameters are kept. Keyword arguments win
    over what the URL says. Raises ``ConfigError`` for a URL that is not http(s) with a host.
    """
    parts = urlsplit(url.strip())
    if parts.scheme in ("elasticsearch", "es"):
        # An Airflow connection URI (``conn.get_uri()``): TLS comes from ``use_ssl``/``scheme``.
        query = dict(parse_qsl(parts.query))
        scheme = query.get("scheme") or ("https" if _flag(query.get("use_ssl", "false"), "use_ssl")
                                         else "http")
        kept_query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in ("scheme", "use_ssl")])
        parts = parts._replace(scheme=scheme, query=kept_query)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"Elasticsearch URL must be http(s)://host[:port], got {_redact(url)!r}",
                          field="url")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad port in Elasticsearch URL {_redact(url)!r}", field="url") from exc
    options: dict[str, str] = {}
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ("api_key", "ca_certs", "verify_certs", "request_timeout", "timeout"):
            options[key] = value
        else:
            kept.append((key, value))
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{host}:{port}" if port else host
    clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), urlencode(kept), ""))
    cfg = base or ElasticsearchSettings()
    timeout = options.get("request_timeout") or options.get("timeout")
    try:
        timeout_value = float(timeout) if timeout else cfg.request_timeout
    except ValueError as exc:
        raise ConfigError(f"request_timeout must be a number, got {timeout!r}",
                          field="request_timeout") from exc
    cfg = replace(
        cfg, url=clean,
        api_key=options.get("api_key") or cfg.api_key,
        username=unquote(parts.username) if parts.username else cfg.username,
        password=unquote(parts.password) if parts.password is not None else cfg.password,
        ca_certs=options.get("ca_certs") or cfg.ca_certs,
        verify_certs=(_flag(options["verify_certs"], "verify_certs") if "verify_certs" in options
                      else cfg.verify_certs),
        request_timeout=timeout_value,
    )
    overrides = {k: v for k, v in {
        "api_key": api_key, "username": username, "password": password, "ca_certs": ca_certs,
        "verify_certs": verify_certs, "request_timeout": request_timeout}.items() if v is not None}
    return replace(cfg, **overrides)


def settings_from_connection(*, host: str, port: int | None = None, schema: str | None = None,
                             login: str | None = None, password: str | None = None,
                             extra: Mapping[str, Any] | None = None) -> ElasticsearchSettings:
    """Settings from the fields of an Airflow connection (``elasticsearch_default``).

    ``host`` may be a bare host name or a whole URL. The scheme comes from ``extra.scheme``, then
    ``schema`` when it is ``http``/``https``, then ``extra.use_ssl``; ``extra`` may also carry
    ``api_key``, ``ca_certs`` (a path to a CA bundle), ``verify_certs`` and ``request_timeout``.
    With an API key, login and password are ignored (the key is the stronger credential).
    """
    extra = dict(extra or {})
    if "://" in host:
        url = host
    else:
        scheme = str(extra.get("scheme") or "").lower()
        if not scheme and (schema or "").lower() in ("http", "https"):
            scheme = (schema or "").lower()
        if not scheme:
            scheme = "https" if _flag(extra.get("use_ssl", False), "use_ssl") else "http"
        url = f"{scheme}://{host}:{port or 9200}"
    api_key = extra.get("api_key") or None
    verify = extra.get("verify_certs")
    timeout = extra.get("request_timeout") or extra.get("timeout")
    return settings_from_url(
        url, api_key=api_key,
        username=None if api_key else (login or None),
        password=None if api_key else (password or None),
        ca_certs=extra.get("ca_certs") or None,
        verify_certs=None if verify is None else _flag(verify, "verify_certs"),
        request_timeout=float(timeout) if timeout else None,
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


@contextmanager
def mapped_errors(what: str) -> Iterator[None]:
    """Turn transport failures into ServiceUnavailable and API errors into ServiceError."""
    from elasticsearch import ApiError, TransportError

    try:
        yield
    except ApiError as exc:
        status = getattr(exc, "status_code", None) or getattr(getattr(exc, "meta", None), "status", 0)
        if status in (429, 502, 503, 504):
            raise ServiceUnavailable(f"Elasticsearch is overloaded during {what}: {exc}") from exc
        raise ServiceError(f"Elasticsearch refused {what}: {exc}") from exc
    except TransportError as exc:
        raise ServiceUnavailable(f"Elasticsearch is unreachable during {what}: {exc}") from exc
