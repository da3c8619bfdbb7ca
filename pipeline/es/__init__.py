"""Elasticsearch: the client, the index schema as code, and the helpers around them.

``pipeline.es.migrate.migrate`` (schema migrations) and ``pipeline.es.status`` are imported from
their modules.
"""

from pipeline.es.bulk import BulkReport, bulk_write, bulk_write_items
from pipeline.es.client import build_client, mapped_errors, settings_from_connection, settings_from_url
from pipeline.es.schema import INDEX_SPECS, IndexSpec, alias_target, ensure_indices

__all__ = [
    "INDEX_SPECS",
    "BulkReport",
    "IndexSpec",
    "alias_target",
    "build_client",
    "bulk_write",
    "bulk_write_items",
    "ensure_indices",
    "mapped_errors",
    "settings_from_connection",
    "settings_from_url",
]
