"""The ordered writer of a run: decided batches written to Elasticsearch in order, in one thread.

Order matters: a batch's articles first (one bulk ``create``, never overwriting later stages'
fields), then outlet merges (which may touch articles an earlier bulk created), and only then
the feed states, since a state says "everything up to this body is indexed". The main thread
meanwhile decides the next batch, so Elasticsearch indexing overlaps parsing. Batches that
queued up while a group was written are written together as the next group: with a request per
feed, Elasticsearch spent about twice the CPU of the same documents in requests of 500, and on a
small machine CPU is what the parsers and the node share.

A failed group fails every group after it without writing (the run stops, and the states of
unwritten feeds are not advanced).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.ingest import articles as store
from pipeline.ingest.documents import rejected_stub
from pipeline.ingest.poll import Poll
from pipeline.settings import Settings

BULK_CONCURRENCY = 2  # article chunk requests in flight: both cores of a small node index
# Bulk item statuses that retrying cannot fix (a mapping refusal; None: could not be serialised).
PERMANENT_ERROR_STATUSES = frozenset({400, None})


@dataclass
class Commit:
    """The writes of one polled feed, applied in order by the writer thread.

    ``merges``: (article id, outlets, links, GUID keys) to add to an existing article."""

    poll: Poll
    docs: list[dict[str, Any]] = field(default_factory=list)
    merges: list[tuple[str, list[str], list[str], list[str]]] = field(default_factory=list)


class OrderedWriter:
    """One writer thread; ``submit`` queues a batch and returns the future of its writes."""

    def __init__(self, settings: Settings, es: Any, now: datetime) -> None:
        self.settings, self.es, self.now = settings, es, now
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="writer")
        self._queue: deque[tuple[list[Commit], Future[list[Poll]]]] = deque()
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self.pending_docs = 0  # queued, not yet written (the main thread's back-pressure)
        self.busy_s = 0.0
        self.groups = 0

    def submit(self, commits: list[Commit]) -> Future[list[Poll]]:
        """Queue one decided batch; the future is done once its articles and states are written."""
        done: Future[list[Poll]] = Future()
        with self._lock:
            self._queue.append((commits, done))
            self.pending_docs += sum(len(c.docs) for c in commits)
        self._thread.submit(self._write_queued)
        return done

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    def _write_queued(self) -> None:
        """Write every batch queued so far as one group (in queue order), then complete their
        futures; an earlier group's failure fails the rest without writing (the run stops)."""
        with self._lock:
            group = list(self._queue)
            self._queue.clear()
        if not group:
            return  # an earlier call took these batches along
        started = time.perf_counter()
        commits = [c for batch, _ in group for c in batch]
        try:
            if self._failure is not None:
                raise self._failure
            self.write(commits)
        except BaseException as exc:  # noqa: BLE001 - handed to the futures, raised by the main thread
            self._failure = self._failure or exc
            for _, done in group:
                done.set_exception(exc)
        else:
            for batch, done in group:
                done.set_result([c.poll for c in batch])
        finally:
            with self._lock:
                self.pending_docs -= sum(len(c.docs) for c in commits)
            self.groups += 1
            self.busy_s += time.perf_counter() - started

    def write(self, commits: list[Commit]) -> list[Poll]:
        """Articles, then merges, then feed states of ``commits``, now, in this thread."""
        from pipeline.errors import ServiceError
        from pipeline.es.bulk import bulk_write

        owner = {doc["id"]: c for c in commits for doc in c.docs}
        docs = [doc for c in commits for doc in c.docs]
        failed: set[str] = set()  # not created by this run: index errors, and conflicts merged
        errors: set[str] = set()
        if docs:
            report = bulk_write(
                self.es, self.settings.index("articles"), docs, op_type="create", concurrency=BULK_CONCURRENCY
            )
            by_id = {doc["id"]: doc for doc in docs}
            rejected = []
            for err in report.errors:
                failed.add(str(err["id"]))
                errors.add(str(err["id"]))
                owner[str(err["id"])].poll.result.article_errors.append(
                    {"id": str(err["id"]), "error": f"{err['type']}: {err['reason']}"}
                )
                if err.get("status") in PERMANENT_ERROR_STATUSES:
                    rejected.append(rejected_stub(by_id[str(err["id"])], err))
            if rejected:
                # Elasticsearch will refuse these again at every poll: keep each as a small
                # "rejected" document holding the original (stored, not indexed), so nothing is
                # lost and the feed moves on instead of failing until it is disabled.
                kept = bulk_write(self.es, self.settings.index("articles"), rejected, op_type="create")
                still = {str(e["id"]) for e in kept.errors if e.get("status") != 409}
                for stub in rejected:
                    if stub["id"] not in still:
                        errors.discard(stub["id"])
                        for entry in owner[stub["id"]].poll.result.article_errors:
                            if entry["id"] == stub["id"]:
                                entry["kept_as"] = "rejected"
            if report.conflict_ids:
                # Someone else (a concurrent run, or a run that crashed after its bulk) created these
                # ids first: theirs is kept and ours becomes an outlet merge (one read-modify-write
                # per conflicting id, not per document of the batch).
                for doc in (by_id[i] for i in dict.fromkeys(report.conflict_ids)):
                    if doc["id"] not in failed and store.add_to_article(
                        self.es,
                        self.settings,
                        doc["id"],
                        outlets=doc["outlets"],
                        links=doc["links"],
                        guid_keys=doc["guid_keys"],
                    ):
                        failed.add(doc["id"])
                        owner[doc["id"]].poll.result.duplicates += 1
        for commit in commits:
            result, source = commit.poll.result, commit.poll.source
            lost = [d for d in commit.docs if d["id"] in errors]
            if lost:
                # Not advancing the feed state makes the next poll retry these entries.
                result.status, result.error_kind = "error", "index_error"
                result.error = f"{len(lost)} of {len(commit.docs)} articles could not be indexed"
            for doc in commit.docs:
                if doc["id"] in failed:
                    continue
                if doc.get("duplicate_of"):
                    # indexed (nothing is lost) but not a new story: counted with the duplicates
                    result.near_duplicates += 1
                    commit.merges.append((doc["duplicate_of"], [source.outlet], [], []))
                else:
                    result.new_articles += 1
                result.article_ids.append(doc["id"])
            for aid, outlets, links, guid_keys in commit.merges:
                store.add_to_article(
                    self.es, self.settings, aid, outlets=outlets, links=links, guid_keys=guid_keys
                )
        states = [self._state(c.poll) for c in commits]
        saved = bulk_write(self.es, self.settings.index("feeds"), states, id_field="source_id")
        if saved.errors:
            raise ServiceError(f"feed state could not be saved: {saved.errors[:3]}")
        return [c.poll for c in commits]

    def _state(self, poll: Poll) -> dict[str, Any]:
        result, source, state, fetch = poll.result, poll.source, poll.state, poll.fetch
        state.final_url = result.final_url
        state.warnings = result.warnings or None
        if result.status == "error":
            state.record_failure(
                now=self.now,
                source=source,
                status="error",
                error=result.error or "",
                error_kind=result.error_kind,
                http_status=result.http_status,
                poll_ms=result.elapsed_ms,
                retry_after=fetch.retry_after if fetch else None,
            )
        else:
            assert fetch is not None
            state.record_success(
                now=self.now,
                source=source,
                status=result.status,
                http_status=result.http_status,
                etag=fetch.headers.get("etag"),
                last_modified=fetch.headers.get("last-modified"),
                body_hash=fetch.body_hash,
                entries=result.entries,
                new_articles=result.new_articles,
                bozo=result.bozo,
                bozo_message=result.bozo_message,
                poll_ms=result.elapsed_ms,
            )
        return state.as_doc()
