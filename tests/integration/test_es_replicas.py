"""Replicas follow ``NEWSWATCH_ES_REPLICAS`` on the real node: by default a range Elasticsearch
keeps within the data nodes (none on this single node, so the indices stay green), a fixed count
when one is given, applied to indices that already exist without reindexing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.errors import ConfigError
from pipeline.es.schema import ensure_indices, replica_settings


def _index_settings(es, settings, kind: str = "articles") -> dict:
    resp = es.indices.get_settings(index=settings.index(kind))
    (doc,) = resp.values()
    return doc["settings"]["index"]


def _with_replicas(settings, value: str):
    return replace(settings, elasticsearch=replace(settings.elasticsearch, replicas=value))


def test_default_replicas_expand_with_the_nodes_and_keep_one_node_green(es, settings):
    assert settings.elasticsearch.replicas == "0-1"
    ensure_indices(es, settings)
    index = _index_settings(es, settings)
    assert index["auto_expand_replicas"] == "0-1"
    assert index["number_of_replicas"] == "0"  # one data node: a replica could never be placed
    health = es.cluster.health(index=settings.index("*"), wait_for_status="green", timeout="30s")
    assert health["status"] == "green"


def test_a_fixed_count_reaches_existing_indices_and_the_range_comes_back(es, settings):
    ensure_indices(es, settings)
    first = es.indices.get_alias(name=settings.index("claims"))
    ensure_indices(es, _with_replicas(settings, "1"))
    index = _index_settings(es, settings, "claims")
    assert index["number_of_replicas"] == "1" and index.get("auto_expand_replicas") in (None, "false")
    assert es.indices.get_alias(name=settings.index("claims")) == first  # same index: no reindex
    ensure_indices(es, settings)
    back = _index_settings(es, settings, "claims")
    assert back["auto_expand_replicas"] == "0-1" and back["number_of_replicas"] == "0"


@pytest.mark.parametrize("value", ["two", "1-0", "-1", "0-1-2", ""])
def test_a_bad_replica_value_names_the_variable(value):
    with pytest.raises(ConfigError, match="NEWSWATCH_ES_REPLICAS"):
        replica_settings(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("0", {"number_of_replicas": 0, "auto_expand_replicas": "false"}),
    ("2", {"number_of_replicas": 2, "auto_expand_replicas": "false"}),
    ("0-1", {"auto_expand_replicas": "0-1"}),
    (" 1-All ", {"auto_expand_replicas": "1-all"}),
])
def test_replica_values(value, expected):
    assert replica_settings(value) == expected
