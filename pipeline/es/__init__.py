"""Elasticsearch: the client, the index schema as code, and the helpers around them."""

from pipeline.es.client import build_client
from pipeline.es.schema import INDEX_SPECS, IndexSpec, ensure_indices

__all__ = ["INDEX_SPECS", "IndexSpec", "build_client", "ensure_indices"]
