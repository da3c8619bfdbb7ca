"""Links from the Airflow UI to Kibana: the dashboard and the saved searches.

The saved objects are files in ``kibana/`` (NDJSON exported from Kibana); the links are read from
them so a new saved search gets its menu entry without a code change. ``NEWSWATCH_KIBANA_URL``
says where Kibana runs.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
KIBANA_DIR = Path(__file__).resolve().parents[2] / "kibana"
DEFAULT_KIBANA_URL = "http://127.0.0.1:5601"
_PATHS = {"dashboard": "app/dashboards#/view/{id}", "search": "app/discover#/view/{id}"}


def _saved_objects(kibana_dir: Path) -> list[dict[str, Any]]:
    objects = []
    for path in sorted(kibana_dir.glob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                log.warning("%s: a line is not JSON (%s); no UI link for it", path, exc)
                continue
            if obj.get("type") in _PATHS and obj.get("id"):
                objects.append(obj)
    return objects


def kibana_links(kibana_url: str | None = None, kibana_dir: Path = KIBANA_DIR) -> list[dict[str, Any]]:
    """Airflow 3 ``external_views`` entries: the dashboards first, then the saved searches."""
    base = (kibana_url or os.environ.get("NEWSWATCH_KIBANA_URL") or DEFAULT_KIBANA_URL).rstrip("/")
    objects = sorted(_saved_objects(kibana_dir), key=lambda o: (o["type"] != "dashboard",
                                                                 o.get("attributes", {}).get("title", "")))
    links = [{
        "name": f"Kibana: {obj.get('attributes', {}).get('title') or obj['id']}",
        "href": f"{base}/{_PATHS[obj['type']].format(id=obj['id'])}",
        "destination": "nav",
        "category": "Kibana",
    } for obj in objects]
    if not any(obj["type"] == "dashboard" for obj in objects):
        links.insert(0, {"name": "Kibana: dashboards", "href": f"{base}/app/dashboards",
                         "destination": "nav", "category": "Kibana"})
    return links
