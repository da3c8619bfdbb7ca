"""Bulk writes with deterministic ids and per-document error reporting.

Why not plain ``helpers.bulk``: it retries only 429 per document, raises on the first failed chunk
(or swallows everything with ``raise_on_error=False``), and lets one unserialisable document abort
the whole batch. Here:

- every document is serialised on its own (with orjson when installed), so a bad one (no id,
  not JSON) is reported as an error with its id and reason and the rest are written;
- a document refused by Elasticsearch for a mapping error (4xx) is reported with id, status, type
  and reason, the rest of the chunk is written;
- documents refused with 429, 5xx or a write block (``migrate`` blocks writes while it copies an
  index), and whole requests refused with 429/5xx, are retried with exponential backoff; when
  retries run out the call raises ``ServiceUnavailable`` so the task fails and retries later
  (writes are idempotent, so nothing is written twice);
- nothing refreshes per request: ``refresh=True`` refreshes the index once at the end;
- ``concurrency=2`` keeps two chunk requests in flight (the next chunk is serialised while the
  previous ones are indexed), so a node with several cores indexes on all of them. Every
  document's outcome is still reported, and the call returns only when every chunk is done.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ServiceUnavailable
from pipeline.es.client import mapped_errors

OP_TYPES = ("index", "create", "update")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The response carries one small object per document; asking for only what we read keeps the
# client from decoding the shard headers of every item.
_FILTER_PATH = "errors,items.*._id,items.*.status,items.*.result,items.*.error"


@dataclass
class BulkReport:
    """What a bulk write did: counts, and one entry per document that failed (id, status, reason)."""

    ok: int = 0
    created: int = 0
    updated: int = 0
    noop: int = 0
    retries: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    conflict_ids: list[str] = field(default_factory=list)  # op_type=create: ids that existed already

    @property
    def conflicts(self) -> int:
        return len(self.conflict_ids)

    def absorb(self, other: BulkReport) -> None:
        """Add the counts and errors of another report (one chunk's) to this one."""
        for name in ("ok", "created", "updated", "noop", "retries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.conflict_ids.extend(other.conflict_ids)

    @property
    def failed(self) -> int:
        return len(self.errors)

    def as_dict(self) -> dict[str, Any]:
        """Small and JSON-able (for XCom and logs): counts and at most 20 errors."""
        return {"ok": self.ok, "created": self.created, "updated": self.updated, "noop": self.noop,
                "conflicts": self.conflicts, "failed": self.failed, "retries": self.retries,
                "errors": self.errors[:20]}


@dataclass
class _Pending:
    doc_id: str
    lines: bytes  # action line + source line(s), newline-terminated


def _serialise(index: str, doc_id: str, doc: Mapping[str, Any], op_type: str,
               dumps: Callable[[Any], bytes | str]) -> _Pending:
    action = dumps({op_type: {"_index": index, "_id": doc_id}})
    if op_type == "update":
        body = dumps({"doc": dict(doc), "doc_as_upsert": True})
    else:
        body = dumps(dict(doc))
    a = action.encode() if isinstance(action, str) else action
    b = body.encode() if isinstance(body, str) else body
    return _Pending(doc_id, a + b"\n" + b + b"\n")


def _fast_dumps(default: Callable[[Any], Any]) -> Callable[[Any], bytes] | None:
    """orjson when installed (several times faster than ``json`` on article-sized documents; the
    bulk body is most of what a big ingest run serialises), with the client's own ``default`` for
    types orjson does not know (and numpy scalars and arrays, as the client's serializer does)."""
    try:
        import orjson
    except ImportError:
        return None
    # numpy values as the client's serializer writes them; non-string keys as ``json`` writes them
    options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value, default=default, option=options)

    return dumps


def _chunks(items: Iterable[_Pending], chunk_size: int, max_bytes: int) -> Iterator[list[_Pending]]:
    chunk: list[_Pending] = []
    size = 0
    for item in items:
        if chunk and (len(chunk) >= chunk_size or size + len(item.lines) > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item.lines)
    if chunk:
        yield chunk


def bulk_write(es: Any, index: str, docs: Iterable[Mapping[str, Any]], *, id_field: str = "id",
               op_type: str = "index", refresh: bool | str = False, chunk_size: int = 500,
               max_chunk_bytes: int = 10 * 1024 * 1024, max_retries: int = 5,
               initial_backoff: float = 0.5, max_backoff: float = 30.0,
               concurrency: int = 1) -> BulkReport:
    """Write ``docs`` to ``index`` (an alias is fine) with ``_id = doc[id_field]``.

    ``op_type``: ``index`` (upsert whole document), ``create`` (only if absent: an existing id
    counts as a conflict, not an error), or ``update`` (partial ``doc`` with ``doc_as_upsert``).
    ``refresh``: any true value refreshes ``index`` once after the last chunk (never per request).
    A document without ``id_field`` is reported as an error (position and reason), not written.
    ``concurrency``: chunk requests in flight at once (order between chunks is then not kept).
    Raises ``ServiceUnavailable`` when Elasticsearch keeps refusing with 429/5xx after retries.
    """
    bad: list[dict[str, Any]] = []

    def items() -> Iterator[tuple[str, Mapping[str, Any]]]:
        for position, doc in enumerate(docs):
            doc_id = doc.get(id_field) if isinstance(doc, Mapping) else None
            if doc_id is None or doc_id == "":
                bad.append({"id": None, "position": position, "status": None,
                            "type": "missing_id", "reason": f"document has no {id_field!r}"})
                continue
            yield str(doc_id), doc

    report = bulk_write_items(es, index, items(), op_type=op_type, refresh=refresh,
                              chunk_size=chunk_size, max_chunk_bytes=max_chunk_bytes,
                              max_retries=max_retries, initial_backoff=initial_backoff,
                              max_backoff=max_backoff, concurrency=concurrency)
    report.errors[:0] = bad
    return report


def bulk_write_items(es: Any, index: str, items: Iterable[tuple[str, Mapping[str, Any]]], *,
                     op_type: str = "index", refresh: bool | str = False, chunk_size: int = 500,
                     max_chunk_bytes: int = 10 * 1024 * 1024, max_retries: int = 5,
                     initial_backoff: float = 0.5, max_backoff: float = 30.0,
                     concurrency: int = 1) -> BulkReport:
    """Like ``bulk_write`` for ``(id, document)`` pairs, when the id is not a field of the document
    (a reindex copies ``_id`` and ``_source`` as they are)."""
    if op_type not in OP_TYPES:
        raise ValueError(f"op_type must be one of {OP_TYPES}, not {op_type!r}")
    from elastic_transport import SerializationError

    serializer = es.transport.serializers.get_serializer("application/json")
    dumps = _fast_dumps(serializer.default) or serializer.dumps
    report = BulkReport()

    def prepared() -> Iterator[_Pending]:
        for position, (doc_id, doc) in enumerate(items):
            try:
                yield _serialise(index, doc_id, doc, op_type, dumps)
            except (SerializationError, TypeError, ValueError) as exc:
                # An unserialisable document is bad input: report it, write the rest.
                report.errors.append({"id": doc_id, "position": position, "status": None,
                                      "type": "serialization_error", "reason": str(exc)[:300]})

    args = (op_type, max_retries, initial_backoff, max_backoff)
    chunks = _chunks(prepared(), chunk_size, max_chunk_bytes)
    if concurrency <= 1:
        for chunk in chunks:
            _send_chunk(es, index, chunk, *args, report=report)
    else:
        _send_concurrently(es, index, chunks, args, report, concurrency)
    if refresh:
        with mapped_errors(f"refresh {index}"):
            es.indices.refresh(index=index)
    return report


def _send_concurrently(es: Any, index: str, chunks: Iterator[list[_Pending]], args: tuple[Any, ...],
                       report: BulkReport, concurrency: int) -> None:
    """Up to ``concurrency`` chunks in flight; each has its own report, merged here (counters
    are not shared between threads). The first failure is raised once every chunk is done."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    def send(chunk: list[_Pending]) -> BulkReport:
        part = BulkReport()
        _send_chunk(es, index, chunk, *args, report=part)
        return part

    failure: BaseException | None = None
    with ThreadPoolExecutor(concurrency, thread_name_prefix="bulk") as pool:
        flying: deque[Future[BulkReport]] = deque()

        def collect(fut: Future[BulkReport]) -> None:
            nonlocal failure
            try:
                report.absorb(fut.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others end
                failure = failure or exc

        for chunk in chunks:
            if failure is not None:
                break
            flying.append(pool.submit(send, chunk))
            if len(flying) >= concurrency:
                wait(flying, return_when=FIRST_COMPLETED)
                for fut in [f for f in flying if f.done()]:
                    flying.remove(fut)
                    collect(fut)
        for fut in flying:
            collect(fut)
    if failure is not None:
        raise failure


def _send_chunk(es: Any, index: str, chunk: list[_Pending], op_type: str, max_retries: int,
                initial_backoff: float, max_backoff: float, *, report: BulkReport) -> None:
    from elasticsearch import ApiError

    attempt = 0
    while chunk:
        try:
            with mapped_errors(f"bulk {op_type} into {index}"):
                try:
                    resp = es.bulk(operations=[p.lines for p in chunk], filter_path=_FILTER_PATH)
                except ApiError as exc:
                    if exc.status_code in RETRY_STATUSES and attempt < max_retries:
                        raise _Retry from exc
                    raise
        except _Retry:
            attempt += 1
            report.retries += 1
            time.sleep(min(max_backoff, initial_backoff * 2 ** (attempt - 1)))
            continue
        items = resp.get("items", [])
        retry: list[_Pending] = []
        for pending, item in zip(chunk, items, strict=True):
            info = next(iter(item.values()))
            status = info.get("status", 0)
            if 200 <= status < 300:
                report.ok += 1
                result = info.get("result")
                if result == "created":
                    report.created += 1
                elif result == "updated":
                    report.updated += 1
                elif result == "noop":
                    report.noop += 1
            elif status == 409 and op_type == "create":
                report.conflict_ids.append(pending.doc_id)
            elif status in RETRY_STATUSES or _is_write_block(info):
                retry.append(pending)
            else:
                error = info.get("error", {})
                report.errors.append({
                    "id": pending.doc_id, "status": status,
                    "type": error.get("type") if isinstance(error, dict) else None,
                    "reason": _reason(error),
                })
        if retry and attempt >= max_retries:
            raise ServiceUnavailable(
                f"Elasticsearch kept refusing {len(retry)} documents of a bulk {op_type} into {index} "
                f"(429, 5xx or a write block) after {max_retries} retries (first id {retry[0].doc_id})")
        if retry:
            attempt += 1
            report.retries += 1
            time.sleep(min(max_backoff, initial_backoff * 2 ** (attempt - 1)))
        chunk = retry


def _is_write_block(info: Mapping[str, Any]) -> bool:
    """A write block is temporary (``migrate`` blocks writes while it copies an index)."""
    error = info.get("error")
    return isinstance(error, dict) and error.get("type") == "cluster_block_exception"


def _reason(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    reason = str(error.get("reason", ""))
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        reason = f"{reason}: {cause.get('reason')}"
    return reason


class _Retry(Exception):  # noqa: N818 - internal control flow, never escapes this module
    """The whole request was refused with a retryable status."""
