"""Build the official Elasticsearch client from settings; map its errors at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.errors import ServiceError, ServiceUnavailable
from pipeline.settings import ElasticsearchSettings, Settings


def build_client(settings: Settings | ElasticsearchSettings) -> Any:
    """An ``elasticsearch.Elasticsearch`` for a local node or a secured cluster alike."""
    from elasticsearch import Elasticsearch

    cfg = settings.elasticsearch if isinstance(settings, Settings) else settings
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
