"""Kibana's saved objects API: wait for Kibana, import NDJSON (``newswatch kibana import``).

The objects themselves are built in ``pipeline.kibana``; this module only talks to a Kibana.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ImportResult:
    success: bool
    success_count: int
    errors: list[dict[str, Any]]


def import_saved_objects(kibana_url: str, ndjson: str, *, overwrite: bool = True,
                         space: str | None = None, api_key: str | None = None,
                         username: str | None = None, password: str | None = None,
                         ca_certs: str | None = None, verify: bool = True,
                         timeout: float = 60.0) -> ImportResult:
    """POST ``ndjson`` to Kibana's saved objects import API (multipart, ``kbn-xsrf`` header).

    Kibana down or answering 5xx raises ``ServiceUnavailable`` (a setup job should retry);
    a 4xx or an import with per-object errors raises ``ServiceError`` listing them, because a
    half-imported dashboard is worse than a failed setup step.
    """
    import httpx

    from pipeline.errors import ServiceError, ServiceUnavailable

    base = kibana_url.rstrip("/")
    if space and space != "default":
        base = f"{base}/s/{space}"
    headers = {"kbn-xsrf": "newswatch", "Accept": "application/json"}
    auth: Any = None
    if api_key:
        headers["Authorization"] = f"ApiKey {api_key}"
    elif username:
        auth = (username, password or "")
    verify_arg: Any = ca_certs if ca_certs else verify
    try:
        resp = httpx.post(f"{base}/api/saved_objects/_import",
                          params={"overwrite": "true"} if overwrite else None,
                          files={"file": ("newswatch.ndjson", ndjson.encode("utf-8"),
                                          "application/ndjson")},
                          headers=headers, auth=auth, timeout=timeout, verify=verify_arg)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"Kibana at {kibana_url} is unreachable: {exc}") from exc
    if resp.status_code >= 500 or resp.status_code == 429:
        raise ServiceUnavailable(f"Kibana answered {resp.status_code}: {resp.text[:300]}")
    if resp.status_code >= 400:
        raise ServiceError(f"Kibana refused the import ({resp.status_code}): {resp.text[:500]}")
    try:
        body = resp.json()
    except ValueError as exc:
        raise ServiceError(f"Kibana answered with something that is not JSON: {resp.text[:200]}") from exc
    result = ImportResult(bool(body.get("success")), int(body.get("successCount", 0)),
                          list(body.get("errors") or []))
    if not result.success or result.errors:
        detail = "; ".join(f"{e.get('type')} {e.get('id')}: {e.get('error', {}).get('type')}"
                           for e in result.errors[:10])
        raise ServiceError(f"Kibana imported {result.success_count} objects with errors: {detail}")
    return result


def wait_for_kibana(kibana_url: str, *, timeout: float, interval: float = 2.0,
                    verify: bool | str = True) -> None:
    """Poll ``/api/status`` until Kibana answers 200 (a setup container starts with Kibana)."""
    import time

    import httpx

    from pipeline.errors import ServiceUnavailable

    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            resp = httpx.get(f"{kibana_url.rstrip('/')}/api/status", timeout=10, verify=verify)
            if resp.status_code == 200:
                return
            last = f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc)
        if time.monotonic() >= deadline:
            raise ServiceUnavailable(f"Kibana at {kibana_url} was not ready after {timeout:g}s: {last}")
        time.sleep(interval)
