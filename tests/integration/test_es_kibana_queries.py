"""Every saved search's Lucene query, run by Elasticsearch as ``query_string`` against the real
mappings and known SAMPLE documents, returns exactly the documents its title promises."""

from __future__ import annotations

import json

import pytest

from pipeline import kibana
from pipeline.es.schema import drop_prefix
from tests.es_samples import SAVED_SEARCH_EXPECTED, load_samples

SEARCHES = [o for o in kibana.build_objects() if o["type"] == "search"]
VIEWS = {o["id"]: o["attributes"]["title"].removeprefix("newswatch-")
         for o in kibana.build_objects() if o["type"] == "index-pattern"}


@pytest.fixture(scope="module")
def loaded(es, base_settings):
    """One prefix for the module: 14 queries against the same sample documents."""
    import uuid
    from dataclasses import replace

    settings = replace(base_settings, index_prefix=f"test-kq-{uuid.uuid4().hex[:8]}")
    load_samples(es, settings)
    yield settings
    drop_prefix(es, settings.index_prefix)


def test_every_saved_search_has_an_expectation():
    assert {o["id"] for o in SEARCHES} == set(SAVED_SEARCH_EXPECTED)


@pytest.mark.parametrize("obj", SEARCHES, ids=[o["id"] for o in SEARCHES])
def test_saved_search_returns_exactly_the_expected_ids(es, loaded, obj):
    source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert source["query"]["language"] == "lucene"
    kind = VIEWS[obj["references"][0]["id"]]
    resp = es.search(index=loaded.index(kind), size=100,
                     query={"query_string": {"query": source["query"]["query"]}})
    assert {h["_id"] for h in resp["hits"]["hits"]} == SAVED_SEARCH_EXPECTED[obj["id"]]
    # the saved sort field is sortable in the real mapping (Discover sorts by it)
    field, order = obj["attributes"]["sort"][0]
    es.search(index=loaded.index(kind), size=1, sort=[{field: {"order": order}}],
              query={"query_string": {"query": source["query"]["query"]}})


def test_dashboard_lens_queries_and_aggregations_run(es, loaded):
    """The Lens panels' queries and terms/date_histogram fields work on the real mappings."""
    [dash] = [o for o in kibana.build_objects() if o["type"] == "dashboard"]
    refs = {r["name"]: r["id"] for r in dash["references"]}
    for panel in json.loads(dash["attributes"]["panelsJSON"]):
        if panel["type"] != "lens":
            continue
        state = panel["embeddableConfig"]["attributes"]["state"]
        for layer_id, layer in state["datasourceStates"]["formBased"]["layers"].items():
            kind = VIEWS[refs[f"{panel['panelIndex']}:indexpattern-datasource-layer-{layer_id}"]]
            aggs = {}
            for n, col in enumerate(layer["columns"].values()):
                if col["operationType"] == "terms":
                    aggs[f"c{n}"] = {"terms": {"field": col["sourceField"], "size": col["params"]["size"]}}
                elif col["operationType"] == "date_histogram":
                    aggs[f"c{n}"] = {"date_histogram": {"field": col["sourceField"],
                                                        "calendar_interval": "day"}}
            query = state["query"]["query"]
            resp = es.search(index=loaded.index(kind), size=0, aggs=aggs,
                             query={"query_string": {"query": query}} if query else {"match_all": {}})
            for agg in resp["aggregations"].values():
                assert agg["buckets"], (panel["title"], agg)
