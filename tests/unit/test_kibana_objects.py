"""The Kibana NDJSON is valid, consistent and what the code generates (no Kibana needed)."""

from __future__ import annotations

import json

import pytest

from pipeline import kibana
from pipeline.errors import ConfigError
from pipeline.es.schema import INDEX_SPECS
from pipeline.taxonomy import REQUIRED_IDS


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return kibana.load_ndjson(kibana.NDJSON_PATH)


def test_every_line_is_one_json_object_with_id_type_and_migration_versions(objects):
    lines = kibana.NDJSON_PATH.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(objects) == 25
    for obj in objects:
        assert obj["coreMigrationVersion"] == kibana.CORE_MIGRATION_VERSION
        major = int(obj["typeMigrationVersion"].split(".")[0])
        assert major <= int(kibana.KIBANA_VERSION.split(".")[0]) + 1  # migratable forward, not future
        assert isinstance(obj["attributes"], dict)


def test_committed_file_is_what_the_code_generates(objects):
    assert kibana.dumps_ndjson(kibana.build_objects()) == kibana.NDJSON_PATH.read_text(encoding="utf-8"), \
        "run `newswatch kibana export` after changing pipeline/kibana.py"


def test_ids_are_unique_and_every_reference_resolves(objects):
    keys = [(o["type"], o["id"]) for o in objects]
    assert len(keys) == len(set(keys))
    assert kibana.problems(objects) == []


def test_problems_catches_a_dangling_reference_and_a_duplicate(objects):
    broken = json.loads(json.dumps(objects))
    broken[5]["references"][0]["id"] = "no-such-data-view"
    broken.append(broken[0])
    found = kibana.problems(broken)
    assert any("missing index-pattern no-such-data-view" in p for p in found)
    assert any(p.startswith("duplicate index-pattern") for p in found)


def test_data_views_match_the_aliases_and_time_fields_exist_in_the_mappings(objects):
    views = {o["attributes"]["title"]: o["attributes"] for o in objects if o["type"] == "index-pattern"}
    assert set(views) == {"newswatch-articles", "newswatch-claims", "newswatch-alerts", "newswatch-feeds",
                          "newswatch-clusters"}
    for title, attrs in views.items():
        spec = INDEX_SPECS[title.removeprefix("newswatch-")]
        assert spec.properties[attrs["timeFieldName"]]["type"] == "date"


def test_retarget_points_data_views_at_another_prefix(objects):
    moved = kibana.retarget(objects, "acme")
    titles = sorted(o["attributes"]["title"] for o in moved if o["type"] == "index-pattern")
    assert titles == ["acme-alerts", "acme-articles", "acme-claims", "acme-clusters", "acme-feeds"]
    assert objects[0]["attributes"]["title"].startswith("newswatch-")  # the original is untouched


def test_one_saved_search_per_top_level_motive_plus_the_named_ones(objects):
    titles = {o["attributes"]["title"] for o in objects if o["type"] == "search"}
    assert set(kibana.MOTIVES) == set(REQUIRED_IDS)
    for motive in REQUIRED_IDS:
        assert f"Motive: {kibana.MOTIVES[motive]}" in titles
    for name in ("Claim clusters by status", "Disputed claims", "Corroborated claims",
                 "Most important claims", "New claims in the last 24 hours", "Claims with figures",
                 "Updated claims",
                 "Off-topic rejects"):
        assert name in titles


def test_saved_search_columns_and_sort_fields_exist_in_the_mapping(objects):
    views = {o["id"]: o["attributes"]["title"].removeprefix("newswatch-")
             for o in objects if o["type"] == "index-pattern"}
    for obj in (o for o in objects if o["type"] == "search"):
        props = INDEX_SPECS[views[obj["references"][0]["id"]]].properties
        for field in obj["attributes"]["columns"] + [obj["attributes"]["sort"][0][0]]:
            head, _, sub = field.partition(".")
            assert head in props, (obj["id"], field)
            if sub:
                assert sub in props[head]["properties"], (obj["id"], field)


def test_dashboard_has_the_promised_panels_on_existing_fields(objects):
    [dash] = [o for o in objects if o["type"] == "dashboard"]
    panels = json.loads(dash["attributes"]["panelsJSON"])
    titles = [p.get("title") for p in panels if p["type"] == "lens"]
    assert titles == ["Articles per motive over time", "Claims per motive over time", "Top sources",
                      "Motive mix per source"]
    refs = {r["name"]: r["id"] for r in dash["references"]}
    searches = [refs[f"{p['panelIndex']}:{p['panelRefName']}"] for p in panels if p["type"] == "search"]
    assert searches == ["newswatch-search-latest-new-claims", "newswatch-search-feed-health"]
    views = {o["id"]: o["attributes"]["title"].removeprefix("newswatch-")
             for o in objects if o["type"] == "index-pattern"}
    for panel in (p for p in panels if p["type"] == "lens"):
        for layer_id, layer in panel["embeddableConfig"]["attributes"]["state"]["datasourceStates"][
                "formBased"]["layers"].items():
            kind = views[refs[f"{panel['panelIndex']}:indexpattern-datasource-layer-{layer_id}"]]
            props = INDEX_SPECS[kind].properties
            for column in layer["columns"].values():
                if column["sourceField"] != "___records___":
                    assert column["sourceField"] in props, (panel["title"], column["sourceField"])
            assert set(layer["columnOrder"]) == set(layer["columns"])
    # panels do not overlap on the 48-column grid
    cells = set()
    for p in panels:
        g = p["gridData"]
        assert g["x"] + g["w"] <= 48
        new = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not (cells & new), p["panelIndex"]
        cells |= new


def test_load_ndjson_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.ndjson"
    path.write_text('{"id": "a", "type": "search", "attributes": {}}\n{not json\n')
    with pytest.raises(ConfigError) as err:
        kibana.load_ndjson(path)
    assert err.value.line == 2 and str(path) in str(err.value)
