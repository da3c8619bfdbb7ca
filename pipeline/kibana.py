"""Kibana saved objects as code: data views, saved searches and the overview dashboard.

Why generate them: a hand-edited NDJSON file of stringified JSON inside JSON drifts (a renamed
field, a dangling reference) and nobody notices until an import fails in front of an analyst.
``build_objects()`` is the single source; ``kibana/newswatch.ndjson`` is its output, committed so
operators can import it without Python, and a test fails when the two differ
(regenerate with ``newswatch kibana export``).

Every saved search uses Lucene syntax (``language: lucene``) that Elasticsearch runs unchanged as
a ``query_string`` query, so the tests prove each one returns what its title promises.
Formats follow Kibana 9.5 exports: ``coreMigrationVersion``/``typeMigrationVersion`` are set to
versions Kibana migrates forward on import; the dashboard's Lens panels are stored by value and
its saved-search panels by reference, as Kibana itself stores them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.settings import REPO_ROOT

KIBANA_VERSION = "9.5.4"
DEFAULT_PREFIX = "newswatch"
NDJSON_PATH = REPO_ROOT / "kibana" / "newswatch.ndjson"
CORE_MIGRATION_VERSION = "8.8.0"
TYPE_MIGRATION_VERSION = {"index-pattern": "8.0.0", "search": "8.0.0", "dashboard": "8.7.0"}
PANEL_VERSION = "8.11.0"
DASHBOARD_ID = "newswatch-dashboard-overview"

# The eight top-level motives are a cross-team contract (../shared/docs/taxonomy.md).
MOTIVES = {
    "hard_currency": "Hard currency",
    "military_technology": "Military technology",
    "combat_experience": "Combat experience",
    "security_guarantees": "Security guarantees",
    "diplomatic_cover": "Diplomatic cover",
    "prestige": "Prestige",
    "economic_aid": "Economic aid",
    "costs_and_risks": "Costs and risks",
}


@dataclass(frozen=True)
class DataView:
    kind: str
    name: str
    time_field: str

    @property
    def id(self) -> str:
        return f"newswatch-dv-{self.kind}"


@dataclass(frozen=True)
class SavedSearch:
    id: str
    title: str
    kind: str
    query: str
    columns: tuple[str, ...]
    sort: tuple[str, str]
    description: str


DATA_VIEWS = {dv.kind: dv for dv in (
    DataView("articles", "newswatch articles", "published"),
    DataView("claims", "newswatch claims", "first_seen"),
    DataView("alerts", "newswatch alerts", "created"),
    DataView("feeds", "newswatch feeds", "last_poll"),
    DataView("clusters", "newswatch claim clusters", "last_seen"),
)}

ARTICLE_COLUMNS = ("title", "source_name", "motives", "topic_score", "canonical_url")
CLUSTER_COLUMNS = ("text", "status", "independent_outlets", "dispute_reasons", "motives", "status_changed")
CLAIM_COLUMNS = ("text", "outlet", "motives", "novelty", "attribution.kind", "has_figures", "url")

SAVED_SEARCHES: tuple[SavedSearch, ...] = (
    *(SavedSearch(f"newswatch-search-motive-{m}", f"Motive: {label}", "articles",
                  f"motives:{m} AND on_topic:true", ARTICLE_COLUMNS, ("published", "desc"),
                  f"On-topic articles whose sentences carry the {m} motive (children included).")
      for m, label in MOTIVES.items()),
    SavedSearch("newswatch-search-new-claims-24h", "New claims in the last 24 hours", "claims",
                "novelty:new AND first_seen:[now-24h TO *]", CLAIM_COLUMNS, ("first_seen", "desc"),
                "Claims first seen in the last 24 hours that restate no known claim."),
    SavedSearch("newswatch-search-latest-new-claims", "Latest new claims", "claims",
                "novelty:new", CLAIM_COLUMNS, ("first_seen", "desc"),
                "Every new claim, newest first (the dashboard's table)."),
    SavedSearch("newswatch-search-claims-with-figures", "Claims with figures", "claims",
                "has_figures:true", CLAIM_COLUMNS, ("first_seen", "desc"),
                "Claims that state a number: troops, money, casualties, distances."),
    SavedSearch("newswatch-search-updated-claims", "Updated claims", "claims",
                "novelty:update", CLAIM_COLUMNS + ("cluster_id",), ("first_seen", "desc"),
                "Claims that restate a known claim with a different figure."),
    SavedSearch("newswatch-search-important-claims", "Most important claims", "claims",
                "importance:>=0.6 AND (novelty:new OR novelty:update)",
                ("text", "importance", "importance_reasons", "cluster_status", "outlet", "url"),
                ("importance", "desc"),
                "New and updated claims an analyst should read first (pipeline.alerts.importance)."),
    SavedSearch("newswatch-search-cluster-status", "Claim clusters by status", "clusters",
                "_exists_:status", CLUSTER_COLUMNS, ("status_changed", "desc"),
                "Every claim cluster with its status (single source, corroborated, disputed), "
                "latest change first; status_history holds each change and its reason."),
    SavedSearch("newswatch-search-disputed-claims", "Disputed claims", "clusters",
                "status:disputed", CLUSTER_COLUMNS, ("status_changed", "desc"),
                "Claims a source denied, or that another source contradicts with a different figure."),
    SavedSearch("newswatch-search-corroborated-claims", "Corroborated claims", "clusters",
                "status:corroborated", CLUSTER_COLUMNS, ("independent_outlets", "desc"),
                "Claims carried by two or more independent outlets (syndicated copies excluded)."),
    SavedSearch("newswatch-search-off-topic-rejects", "Off-topic rejects", "articles",
                "on_topic:false", ("title", "source_name", "topic_score", "language", "canonical_url"),
                ("topic_score", "desc"),
                "Articles the on-topic gate rejected, borderline scores first, to audit the gate."),
    SavedSearch("newswatch-search-feed-health", "Feed health", "feeds", "_exists_:source_id",
                ("source_id", "last_status", "consecutive_failures", "last_success", "http_status",
                 "last_error"), ("consecutive_failures", "desc"),
                "Every feed's polling state, failing feeds first."),
    SavedSearch("newswatch-search-failing-feeds", "Failing feeds", "feeds",
                "consecutive_failures:>0", ("source_id", "last_status", "consecutive_failures",
                                            "last_success", "last_error"),
                ("consecutive_failures", "desc"),
                "Feeds whose last poll failed, with how many times in a row."),
)


def _meta(obj_type: str) -> dict[str, Any]:
    return {"coreMigrationVersion": CORE_MIGRATION_VERSION,
            "typeMigrationVersion": TYPE_MIGRATION_VERSION[obj_type], "managed": False}


def _data_view(dv: DataView, prefix: str) -> dict[str, Any]:
    return {
        "id": dv.id, "type": "index-pattern", **_meta("index-pattern"),
        "attributes": {
            "title": f"{prefix}-{dv.kind}", "name": dv.name, "timeFieldName": dv.time_field,
            "fields": "[]", "fieldFormatMap": "{}", "runtimeFieldMap": "{}", "sourceFilters": "[]",
            "typeMeta": "{}", "allowHidden": False,
        },
        "references": [],
    }


def _saved_search(s: SavedSearch) -> dict[str, Any]:
    source = {"query": {"query": s.query, "language": "lucene"}, "filter": [],
              "highlightAll": True, "version": True,
              "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"}
    return {
        "id": s.id, "type": "search", **_meta("search"),
        "attributes": {
            "title": s.title, "description": s.description, "columns": list(s.columns),
            "sort": [list(s.sort)], "grid": {}, "hideChart": False, "isTextBasedQuery": False,
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
        },
        "references": [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern",
                        "id": DATA_VIEWS[s.kind].id}],
    }


def _uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"newswatch:{name}"))


def _lens_xy(name: str, kind: str, *, x: dict[str, Any], split: dict[str, Any] | None,
             series: str, query: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Lens attributes of an XY chart counting documents; returns (attributes, layer references)."""
    layer, x_col, count_col = _uid(f"{name}:layer"), _uid(f"{name}:x"), _uid(f"{name}:count")
    columns: dict[str, Any] = {
        x_col: x,
        count_col: {"label": "Documents", "customLabel": True, "dataType": "number",
                    "operationType": "count", "isBucketed": False, "scale": "ratio",
                    "sourceField": "___records___", "params": {"emptyAsNull": True}},
    }
    order = [x_col, count_col]
    data_layer: dict[str, Any] = {"layerId": layer, "layerType": "data", "seriesType": series,
                                  "xAccessor": x_col, "accessors": [count_col], "position": "top",
                                  "showGridlines": False}
    if split is not None:
        split_col = _uid(f"{name}:split")
        columns[split_col] = split
        order.insert(0, split_col)
        data_layer["splitAccessor"] = split_col
    for col in columns.values():
        if col.get("operationType") == "terms":
            col["params"]["orderBy"] = {"type": "column", "columnId": count_col}
    refs = [{"type": "index-pattern", "id": DATA_VIEWS[kind].id,
             "name": f"indexpattern-datasource-layer-{layer}"}]
    state = {
        "visualization": {"legend": {"isVisible": True, "position": "right"}, "valueLabels": "hide",
                          "fittingFunction": "None", "preferredSeriesType": series,
                          "layers": [data_layer]},
        "query": {"query": query, "language": "lucene"}, "filters": [],
        "datasourceStates": {"formBased": {"layers": {layer: {
            "columns": columns, "columnOrder": order, "incompleteColumns": {}}}}},
        "internalReferences": [], "adHocDataViews": {},
    }
    return {"title": name, "visualizationType": "lnsXY", "type": "lens", "references": refs,
            "state": state}, refs


def _terms(field: str, label: str, size: int) -> dict[str, Any]:
    return {"label": label, "customLabel": True, "dataType": "string", "operationType": "terms",
            "scale": "ordinal", "sourceField": field, "isBucketed": True,
            "params": {"size": size, "orderDirection": "desc", "otherBucket": True,
                       "missingBucket": False, "parentFormat": {"id": "terms"}}}


def _date_histogram(field: str) -> dict[str, Any]:
    return {"label": field, "dataType": "date", "operationType": "date_histogram",
            "sourceField": field, "isBucketed": True, "scale": "interval",
            "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False}}


def _dashboard() -> dict[str, Any]:
    lens_panels = [
        ("Articles per motive over time", "articles",
         dict(x=_date_histogram("published"), split=_terms("motives", "Motive", 16),
              series="bar_stacked", query="on_topic:true"), (0, 0, 24, 15)),
        ("Claims per motive over time", "claims",
         dict(x=_date_histogram("first_seen"), split=_terms("motives", "Motive", 16),
              series="bar_stacked", query=""), (24, 0, 24, 15)),
        ("Top sources", "articles",
         dict(x=_terms("source_name", "Source", 10), split=None, series="bar_horizontal",
              query="on_topic:true"), (0, 15, 16, 15)),
        ("Motive mix per source", "articles",
         dict(x=_terms("source_name", "Source", 10), split=_terms("motives", "Motive", 16),
              series="bar_horizontal_percentage_stacked", query="on_topic:true"), (16, 15, 32, 15)),
    ]
    panels: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    for n, (title, kind, spec, (x, y, w, h)) in enumerate(lens_panels, start=1):
        attributes, refs = _lens_xy(title, kind, **spec)  # type: ignore[arg-type]
        panel_id = f"p{n}"
        panels.append({"version": PANEL_VERSION, "type": "lens", "panelIndex": panel_id,
                       "gridData": {"x": x, "y": y, "w": w, "h": h, "i": panel_id},
                       "embeddableConfig": {"attributes": attributes, "enhancements": {}},
                       "title": title})
        references += [{**r, "name": f"{panel_id}:{r['name']}"} for r in refs]
    for n, (search_id, (x, y, w, h)) in enumerate(
            [("newswatch-search-latest-new-claims", (0, 30, 48, 18)),
             ("newswatch-search-feed-health", (0, 48, 48, 12))], start=len(lens_panels) + 1):
        panel_id = f"p{n}"
        panels.append({"version": PANEL_VERSION, "type": "search", "panelIndex": panel_id,
                       "gridData": {"x": x, "y": y, "w": w, "h": h, "i": panel_id},
                       "embeddableConfig": {"enhancements": {}}, "panelRefName": f"panel_{panel_id}"})
        references.append({"name": f"{panel_id}:panel_{panel_id}", "type": "search", "id": search_id})
    return {
        "id": DASHBOARD_ID, "type": "dashboard", **_meta("dashboard"),
        "attributes": {
            "title": "newswatch overview",
            "description": "North Korean troops for Russia: articles and claims per motive over "
                           "time, top sources, motive mix per source, latest new claims, feed health.",
            "panelsJSON": json.dumps(panels),
            "optionsJSON": json.dumps({"useMargins": True, "syncColors": True, "syncCursor": True,
                                       "syncTooltips": False, "hidePanelTitles": False}),
            "timeRestore": True, "timeFrom": "now-30d", "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 300000},
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(
                {"query": {"query": "", "language": "lucene"}, "filter": []})},
            "version": 1,
        },
        "references": references,
    }


def build_objects(prefix: str = DEFAULT_PREFIX) -> list[dict[str, Any]]:
    """Every saved object, in import order (data views, searches, dashboard)."""
    return ([_data_view(dv, prefix) for dv in DATA_VIEWS.values()]
            + [_saved_search(s) for s in SAVED_SEARCHES] + [_dashboard()])


def dumps_ndjson(objects: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(o, sort_keys=True, ensure_ascii=False) + "\n" for o in objects)


def load_ndjson(path: str | Path) -> list[dict[str, Any]]:
    """Read an NDJSON file; a bad line is a ``ConfigError`` naming the file and line."""
    path = Path(path)
    objects = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not JSON: {exc.msg}", path=str(path), line=number) from exc
        if not isinstance(obj, dict) or not obj.get("id") or not obj.get("type"):
            raise ConfigError("a saved object needs an id and a type", path=str(path), line=number)
        objects.append(obj)
    return objects


def retarget(objects: Iterable[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Copies whose data views point at ``{prefix}-<kind>`` (for a non-default index prefix)."""
    out = []
    for obj in objects:
        obj = json.loads(json.dumps(obj))
        if obj["type"] == "index-pattern":
            kind = obj["attributes"]["title"].rsplit("-", 1)[-1]
            obj["attributes"]["title"] = f"{prefix}-{kind}"
        out.append(obj)
    return out


def problems(objects: list[dict[str, Any]]) -> list[str]:
    """What would make an import fail or a panel break: duplicate ids, dangling references,
    panels whose reference is missing, searches that are not Lucene. Empty when all is well."""
    found: list[str] = []
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        key = (obj["type"], obj["id"])
        if key in seen:
            found.append(f"duplicate {obj['type']} id {obj['id']}")
        seen.add(key)
    for obj in objects:
        names = set()
        for ref in obj.get("references", []):
            names.add(ref["name"])
            if (ref["type"], ref["id"]) not in seen:
                found.append(f"{obj['id']}: reference {ref['name']} -> missing {ref['type']} {ref['id']}")
        attrs = obj.get("attributes", {})
        if obj["type"] == "search":
            source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
            if source.get("query", {}).get("language") != "lucene":
                found.append(f"{obj['id']}: query language is not lucene")
            if source.get("indexRefName") not in names:
                found.append(f"{obj['id']}: indexRefName has no reference")
        if obj["type"] == "dashboard":
            for panel in json.loads(attrs["panelsJSON"]):
                pid = panel["panelIndex"]
                if "panelRefName" in panel and f"{pid}:{panel['panelRefName']}" not in names:
                    found.append(f"{obj['id']}: panel {pid} has no reference")
                lens = panel.get("embeddableConfig", {}).get("attributes")
                if lens:
                    for layer in lens["state"]["datasourceStates"]["formBased"]["layers"]:
                        if f"{pid}:indexpattern-datasource-layer-{layer}" not in names:
                            found.append(f"{obj['id']}: panel {pid} layer {layer} has no data view")
    return found
