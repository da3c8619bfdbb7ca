"""Schema migrations: move each alias to the index of its spec's current version, losing nothing.

Why client-side: the node we run on has no ``_reindex`` API (the minimal distribution), and a
client-side copy works the same on every cluster. For each kind whose live index is older than
its ``IndexSpec.version``:

1. put the new template and create ``{alias}-v{new}`` (a leftover of a failed earlier attempt,
   which no alias points to, is dropped and recreated so counts can be compared exactly);
2. block writes on the old index, so nothing written during the copy is left behind: writers get
   a ``cluster_block_exception``, which ``bulk_write`` retries with backoff;
3. copy every document (``helpers.scan`` + bulk with the same ``_id``; dense vectors included,
   which Elasticsearch 9 leaves out of ``_source`` unless asked);
4. verify the counts, then switch the alias in one ``update_aliases`` call (remove + add);
5. keep the old index read-only as a backup, or delete it (``delete_old=True``).

On any failure before the switch the alias stays on the old index and writes are unblocked, so a
re-run starts again cleanly. Running ``migrate`` twice does nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.errors import ConfigError, ServiceError
from pipeline.es.bulk import bulk_write_items
from pipeline.es.client import mapped_errors
from pipeline.es.schema import INDEX_SPECS, IndexSpec, alias_target, ensure_indices, version_of_index
from pipeline.settings import Settings

Transform = Callable[[str, dict[str, Any]], dict[str, Any]]


class MigrationError(ServiceError):
    """A copy did not verify; the alias was left where it was and nothing was deleted."""


@dataclass
class KindMigration:
    kind: str
    alias: str
    # created | up_to_date | added_fields | migrated | newer_than_code | would_* (dry run)
    action: str
    index: str
    from_index: str | None = None
    from_version: int | None = None
    to_version: int = 0
    copied: int = 0
    source_count: int | None = None
    old_index_deleted: bool = False
    added_fields: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class MigrationReport:
    kinds: list[KindMigration] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(k.action in ("created", "added_fields", "migrated") for k in self.kinds)

    def by_kind(self) -> dict[str, KindMigration]:
        return {k.kind: k for k in self.kinds}

    def as_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "kinds": [asdict(k) for k in self.kinds]}


def migrate(es: Any, settings: Settings, *, specs: Mapping[str, IndexSpec] | None = None,
            kinds: list[str] | None = None, delete_old: bool = False, dry_run: bool = False,
            transform: Transform | None = None, chunk_size: int = 1000) -> MigrationReport:
    """Bring every alias to its spec's version. Idempotent; see the module docstring.

    ``specs`` defaults to ``INDEX_SPECS`` (tests pass a copy with a bumped version);
    ``transform(kind, source) -> source`` may reshape documents on the way (renamed fields).
    """
    specs = dict(specs or INDEX_SPECS)
    unknown = [k for k in kinds or [] if k not in specs]
    if unknown:
        raise ConfigError(f"unknown index kinds {unknown}; known: {', '.join(specs)}", field="kinds")
    report = MigrationReport()
    for kind in kinds or list(specs):
        spec = specs[kind]
        alias = spec.alias(settings)
        with mapped_errors(f"inspect {alias}"):
            current = alias_target(es, alias)
        target = spec.index_name(settings)
        if current is None:
            if not dry_run:
                ensure_indices(es, settings, [kind], specs=specs)
            report.kinds.append(KindMigration(kind, alias, "would_create" if dry_run else "created",
                                              target, to_version=spec.version))
            continue
        with mapped_errors(f"read the mapping of {current}"):
            meta = es.indices.get_mapping(index=current)[current]["mappings"].get("_meta", {})
        version = version_of_index(current, meta)
        entry = KindMigration(kind, alias, "up_to_date", current, from_index=current,
                              from_version=version, to_version=spec.version)
        report.kinds.append(entry)
        if version == spec.version:
            _add_new_fields(es, settings, spec, current, entry, meta, dry_run)
            continue
        if version is not None and version > spec.version:
            entry.action = "newer_than_code"
            continue
        entry.index = target
        if dry_run:
            entry.action = "would_migrate"
            with mapped_errors(f"count {current}"):
                entry.source_count = int(es.count(index=current)["count"])
            continue
        _copy_and_switch(es, settings, spec, current, target, entry, delete_old, transform,
                         chunk_size)
    return report


def _add_new_fields(es: Any, settings: Settings, spec: IndexSpec, index: str, entry: KindMigration,
                    live_meta: dict[str, Any], dry_run: bool) -> None:
    """Same version, new fields in the spec: add them in place (no copy needed).

    Adding a field is the one mapping change Elasticsearch accepts on a live index. Changing a
    field's type is not, and the error says to bump the spec's version so ``migrate`` reindexes.
    """
    with mapped_errors(f"read the mapping of {index}"):
        live = es.indices.get_mapping(index=index)[index]["mappings"].get("properties", {})
    missing = sorted(set(spec.properties) - set(live))
    changed = sorted(k for k in set(spec.properties) & set(live)
                     if _type(spec.properties[k]) != _type(live[k]))
    if changed:
        raise MigrationError(
            f"{index}: the type of {changed} differs from the {spec.kind} spec "
            f"({', '.join(f'{k}: {_type(live[k])} -> {_type(spec.properties[k])}' for k in changed)}); "
            f"a live field cannot change type: bump the version of the {spec.kind} spec so migrate "
            "reindexes")
    entry.added_fields = missing
    if dry_run:
        entry.action = "would_add_fields" if missing else entry.action
        return
    from elasticsearch import BadRequestError

    try:
        with mapped_errors(f"put template {entry.alias}"):
            es.indices.put_index_template(name=entry.alias, body=spec.template_body(settings))
        if missing:
            es.indices.put_mapping(index=index, properties={k: spec.properties[k] for k in missing},
                                   meta=live_meta or None)
            entry.action = "added_fields"
    except BadRequestError as exc:
        raise MigrationError(f"cannot add {missing} to {index} in place ({exc.message}): bump the "
                             f"version of the {spec.kind} spec so migrate reindexes") from exc


def _type(mapping: dict[str, Any]) -> str:
    return str(mapping.get("type") or "object")  # an object mapping has "properties", no "type"


def _copy_and_switch(es: Any, settings: Settings, spec: IndexSpec, old: str, new: str,
                     entry: KindMigration, delete_old: bool, transform: Transform | None,
                     chunk_size: int) -> None:
    alias = entry.alias
    with mapped_errors(f"prepare {new}"):
        es.indices.put_index_template(name=alias, body=spec.template_body(settings))
        if es.indices.exists(index=new):
            # No alias points here (the alias is on ``old``): a leftover of a failed attempt.
            es.indices.delete(index=new)
        es.indices.create(index=new)
        es.indices.put_settings(index=old, settings={"index.blocks.write": True})
    switched = False
    try:
        with mapped_errors(f"count {old}"):
            es.indices.refresh(index=old)
            entry.source_count = int(es.count(index=old)["count"])
        bulk = bulk_write_items(es, new, _scan(es, old, spec.kind, transform),
                                chunk_size=chunk_size, refresh=True)
        entry.copied = bulk.ok
        entry.errors = bulk.errors
        with mapped_errors(f"count {new}"):
            copied = int(es.count(index=new)["count"])
        if bulk.errors or copied != entry.source_count:
            raise MigrationError(
                f"copy of {old} into {new} did not verify ({copied} of {entry.source_count} "
                f"documents, {len(bulk.errors)} errors, first: {bulk.errors[:1]}); "
                f"the alias {alias} still points to {old}")
        with mapped_errors(f"switch alias {alias}"):
            es.indices.update_aliases(actions=[
                {"remove": {"index": old, "alias": alias}},
                {"add": {"index": new, "alias": alias, "is_write_index": True}},
            ])
        switched = True
        entry.action = "migrated"
    finally:
        if not switched:
            with mapped_errors(f"unblock {old}"):
                es.indices.put_settings(index=old, settings={"index.blocks.write": False})
    if delete_old:
        with mapped_errors(f"delete {old}"):
            es.indices.delete(index=old)
        entry.old_index_deleted = True


def _scan(es: Any, index: str, kind: str, transform: Transform | None
          ) -> Iterator[tuple[str, dict[str, Any]]]:
    from elasticsearch import helpers

    with mapped_errors(f"scan {index}"):
        for hit in helpers.scan(es, index=index, size=1000, preserve_order=False,
                                query={"query": {"match_all": {}},
                                       "_source": {"exclude_vectors": False}}):
            source = hit.get("_source", {})
            yield hit["_id"], transform(kind, source) if transform else source
