"""Bulk writes with deterministic ids and per-document error reporting.

A mapping error for one document is reported with its id and reason and does not drop the rest
of the batch; 429s are retried with backoff by ``streaming_bulk``; a node that is down raises
``ServiceUnavailable`` so the calling task fails and retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.es.client import mapped_errors


@dataclass
class BulkReport:
    ok: int = 0
    created: int = 0
    updated: int = 0
    noop: int = 0
    conflicts: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.errors)


def bulk_write(es: Any, index: str, docs: Iterable[Mapping[str, Any]], *, id_field: str = "id",
               op_type: str = "index", refresh: bool | str = False, chunk_size: int = 500,
               max_retries: int = 5) -> BulkReport:
    """Write ``docs`` to ``index`` (an alias is fine) with ``_id = doc[id_field]``.

    ``op_type``: ``index`` (upsert whole document), ``create`` (only if absent: an existing id
    counts as a conflict, not an error), or ``update`` (partial ``doc`` with ``doc_as_upsert``).
    """
    from elasticsearch import helpers

    def actions() -> Iterable[dict[str, Any]]:
        for doc in docs:
            action: dict[str, Any] = {"_op_type": op_type, "_index": index, "_id": str(doc[id_field])}
            if op_type == "update":
                action["doc"] = dict(doc)
                action["doc_as_upsert"] = True
            else:
                action["_source"] = dict(doc)
            yield action

    report = BulkReport()
    with mapped_errors(f"bulk {op_type} into {index}"):
        for ok, item in helpers.streaming_bulk(
            es, actions(), chunk_size=chunk_size, max_retries=max_retries, initial_backoff=1,
            max_backoff=30, raise_on_error=False, raise_on_exception=True, refresh=refresh,
        ):
            info = next(iter(item.values()))
            if ok:
                report.ok += 1
                result = info.get("result")
                if result == "created":
                    report.created += 1
                elif result == "updated":
                    report.updated += 1
                elif result == "noop":
                    report.noop += 1
            elif info.get("status") == 409 and op_type == "create":
                report.conflicts += 1
            else:
                error = info.get("error", {})
                report.errors.append({
                    "id": info.get("_id"),
                    "status": info.get("status"),
                    "type": error.get("type") if isinstance(error, dict) else None,
                    "reason": error.get("reason") if isinstance(error, dict) else str(error),
                })
    return report
