"""What is live on the cluster compared with the code: one row per index kind."""

from __future__ import annotations

from typing import Any

from pipeline.es.client import mapped_errors
from pipeline.es.schema import INDEX_SPECS, IndexSpec, alias_target, version_of_index
from pipeline.settings import Settings


def index_status(es: Any, settings: Settings, specs: dict[str, IndexSpec] | None = None
                 ) -> list[dict[str, Any]]:
    """``state`` is ``missing``, ``ok``, ``needs_migrate`` (code is newer) or ``newer_than_code``;
    ``write_blocked`` flags an index an interrupted migration left read-only."""
    rows = []
    for kind, spec in (specs or INDEX_SPECS).items():
        alias = spec.alias(settings)
        with mapped_errors(f"inspect {alias}"):
            index = alias_target(es, alias)
            live = docs = None
            blocked = False
            if index is not None:
                meta = es.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {})
                live = version_of_index(index, meta)
                docs = int(es.count(index=index)["count"])
                flags = es.indices.get_settings(index=index)[index]["settings"]["index"]
                # A write block left behind by an interrupted migration: re-running migrate clears it.
                blocked = str(flags.get("blocks", {}).get("write", "false")) == "true"
        if index is None:
            state = "missing"
        elif live == spec.version:
            state = "ok"
        elif live is not None and live > spec.version:
            state = "newer_than_code"
        else:
            state = "needs_migrate"
        rows.append({"kind": kind, "alias": alias, "index": index, "live_version": live,
                     "code_version": spec.version, "docs": docs, "state": state,
                     "write_blocked": blocked})
    return rows
