"""Build the official Elasticsearch client from settings; map its errors at the boundary.

The same code serves a local node (``http://127.0.0.1:9200``) and a secured cluster (HTTPS, API
key or basic auth, a CA bundle). Connection details come from ``NEWSWATCH_ES_*`` variables (see
``pipeline.settings``), from one URL (``settings_from_url``: credentials in the userinfo, options
in the query string) or from the fields of an Airflow connection (``settings_from_connection``,
the only mapping of an ``elasticsearch`` connection, called by ``plugins/`` with the fields;
this module never imports Airflow).
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
    # A cluster may be given as comma-separated node URLs: the client then spreads requests over
    # them and retries another node when one is down.
    hosts = [u.strip() for u in cfg.url.split(",") if u.strip()]
    return Elasticsearch(hosts if len(hosts) > 1 else cfg.url, **kwargs)


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


def settings_from_connection(*, host: str | None, port: int | str | None = None,
                             schema: str | None = None, login: str | None = None,
                             password: str | None = None, extra: Mapping[str, Any] | None = None,
                             conn_id: str = "elasticsearch_default",
                             base: ElasticsearchSettings | None = None) -> ElasticsearchSettings:
    """Settings from the fields of an Airflow ``elasticsearch`` connection: the one mapping.

    ``plugins/`` passes the connection's fields (this module never imports Airflow). The rules
    follow the provider's ``ElasticsearchSQLHook``, so a connection made for it works here:

    * ``host`` is required. A whole URL (``https://user:pw@es:9243/?ca_certs=...``) is read by
      ``settings_from_url`` and ``port`` and ``schema`` are ignored.
    * The scheme is ``extra.scheme``, else ``schema`` (the provider stores the URL scheme there),
      else ``https`` when ``extra.use_ssl`` is true, else ``http``; anything but http/https is an
      error. ``port`` defaults to 9200, Elasticsearch's port for both schemes.
    * ``login``/``password`` are basic auth, ignored when ``extra.api_key`` is set (the key is the
      stronger credential, and ``build_client`` would prefer it anyway).
    * ``extra`` may carry ``api_key``, ``ca_certs`` (a path), ``verify_certs`` (true/false, default
      true) and ``request_timeout`` (or ``timeout``, seconds).
    * Only ``request_timeout`` falls back to ``base``: the address and the credentials come from
      the connection alone, so credentials from the environment never go to another host.
    * ``extra.hosts`` names the other nodes of a cluster (a list, or comma-separated), each
      ``host``, ``host:port`` or an ``http(s)://host:port`` URL without credentials; a bare host
      takes the connection's scheme and port 9200. The client is given every node, so losing one
      loses no request (a connection has one ``host`` field, a cluster several addresses).

    Raises ``ConfigError`` naming the connection (``item``) and the field.
    """
    extra = dict(extra or {})

    def bad(message: str, field: str) -> ConfigError:
        return ConfigError(message, item=conn_id, field=field)

    def flag(value: object, field: str) -> bool:
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise bad(f"expected true or false, got {value!r}", field)

    host = (host or "").strip()
    if not host:
        raise bad("the connection has no host", "host")
    if "://" in host:
        url = host
    else:
        scheme = str(extra.get("scheme") or "").strip().lower()
        where = "extra.scheme"
        if not scheme and (schema or "").strip():
            scheme, where = str(schema).strip().lower(), "schema"
        if not scheme:
            scheme = "https" if flag(extra.get("use_ssl", False), "extra.use_ssl") else "http"
        if scheme not in ("http", "https"):
            raise bad(f"must be http or https (it is the URL scheme), not {scheme!r}", where)
        try:
            port_number = int(port) if port not in (None, "") else 9200
        except (TypeError, ValueError):
            port_number = 0
        if not 0 < port_number < 65536:
            raise bad(f"must be a port number (1-65535), got {port!r}", "port")
        url = f"{scheme}://{host}:{port_number}"
    timeout_key = "request_timeout" if "request_timeout" in extra else "timeout"
    timeout = extra.get(timeout_key)
    try:
        timeout_value = float(timeout) if timeout not in (None, "") else None
    except (TypeError, ValueError):
        raise bad(f"must be a number of seconds, got {timeout!r}", f"extra.{timeout_key}") from None
    verify = extra.get("verify_certs")
    verify_value = None if verify in (None, "") else flag(verify, "extra.verify_certs")
    api_key = str(extra.get("api_key") or "") or None
    fresh = ElasticsearchSettings(request_timeout=(base or ElasticsearchSettings()).request_timeout)
    try:
        cfg = settings_from_url(
            url, api_key=api_key, username=None if api_key else (login or None),
            password=None if api_key else (password or None),
            ca_certs=str(extra.get("ca_certs") or "") or None, verify_certs=verify_value,
            request_timeout=timeout_value, base=fresh)
    except ConfigError as exc:  # the URL in ``host`` is bad: name the connection's field
        raise bad(str(exc).removeprefix(f"field {exc.field!r}: "), "host") from None
    nodes = _cluster_nodes(extra.get("hosts"), urlsplit(cfg.url).scheme, bad)
    if nodes:
        cfg = replace(cfg, url=",".join(dict.fromkeys([cfg.url, *nodes])))
    return replace(cfg, username=None, password=None) if cfg.api_key else cfg


def _cluster_nodes(value: object, scheme: str, bad: Any) -> list[str]:
    """The URLs of ``extra.hosts``; ``bad(message, field)`` makes the error naming the field."""
    if value in (None, ""):
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    nodes = []
    for raw in (str(item).strip() for item in items):
        if not raw:
            continue
        parts = urlsplit(raw if "://" in raw else f"{scheme}://{raw}")
        try:
            port = parts.port or 9200
        except ValueError:
            port = 0
        if parts.scheme not in ("http", "https") or not parts.hostname or not 0 < port < 65536 \
                or parts.username or parts.password or parts.path not in ("", "/") or parts.query:
            shown = f"***@{raw.rsplit('@', 1)[1]}" if "@" in raw else raw  # never echo a password
            raise bad(f"expected host, host:port or http(s)://host:port without credentials, got {shown!r}",
                      "extra.hosts")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        nodes.append(f"{parts.scheme}://{host}:{port}")
    return nodes


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
