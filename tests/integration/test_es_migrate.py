"""``migrate``: a mapping version change reindexes client-side and switches the alias, losing nothing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.es.bulk import bulk_write
from pipeline.es.migrate import MigrationError, migrate
from pipeline.es.schema import INDEX_SPECS, KW, alias_target, ensure_indices


def _bumped(kind: str, **extra_properties) -> dict:
    """A test-local copy of the specs with ``kind`` one version up (and maybe a new field)."""
    specs = dict(INDEX_SPECS)
    spec = specs[kind]
    specs[kind] = replace(spec, version=spec.version + 1,
                          properties={**spec.properties, **extra_properties})
    return specs


def _sources(es, index):
    from elasticsearch import helpers

    return {h["_id"]: h["_source"] for h in helpers.scan(
        es, index=index, query={"_source": {"exclude_vectors": False}})}


def _load(es, settings, n_articles=600, n_claims=40):
    ensure_indices(es, settings, ["articles", "claims"] if n_claims else ["articles"])
    articles = [{"id": f"a{i:05d}", "title": f"Sample article {i}", "published": "2025-02-01T00:00:00Z",
                 "motives": ["hard_currency"] if i % 3 == 0 else [], "on_topic": i % 2 == 0,
                 "motive_scores": {"hard_currency": 0.5}} for i in range(n_articles)]
    rng = np.random.default_rng(1)
    claims = [{"id": f"c{i}", "text": f"Sample claim {i}", "novelty": "new",
               "embedding": rng.normal(size=384).round(4).tolist()} for i in range(n_claims)]
    assert bulk_write(es, settings.index("articles"), articles, refresh=True).ok == n_articles
    if n_claims:
        assert bulk_write(es, settings.index("claims"), claims, refresh=True).ok == n_claims


def test_version_bump_copies_every_document_and_switches_the_alias(es, settings):
    _load(es, settings)
    before = {k: _sources(es, settings.index(k)) for k in ("articles", "claims")}
    specs = _bumped("articles", reviewed_by=KW)
    specs = {**specs, "claims": _bumped("claims")["claims"]}

    report = migrate(es, settings, specs=specs, kinds=["articles", "claims", "feeds"], chunk_size=250)

    kinds = report.by_kind()
    assert kinds["articles"].action == "migrated" and kinds["claims"].action == "migrated"
    assert kinds["articles"].copied == kinds["articles"].source_count == 600
    assert kinds["feeds"].action == "created"
    for kind in ("articles", "claims"):
        alias = settings.index(kind)
        assert alias_target(es, alias) == f"{alias}-v2"
        assert _sources(es, alias) == before[kind]  # every document, unchanged, embeddings included
        old = f"{alias}-v1"
        assert es.indices.exists(index=old)  # kept as a backup by default ...
        block = es.indices.get_settings(index=old)[old]["settings"]["index"]["blocks"]["write"]
        assert block == "true"  # ... read-only
    mapping = es.indices.get_mapping(index=settings.index("articles"))
    [(index, body)] = mapping.items()
    assert index.endswith("-v2") and body["mappings"]["properties"]["reviewed_by"]["type"] == "keyword"
    # writes through the alias now land in the new index
    assert bulk_write(es, settings.index("articles"), [{"id": "late", "reviewed_by": "x"}]).ok == 1

    again = migrate(es, settings, specs=specs, kinds=["articles", "claims", "feeds"])
    assert {k.action for k in again.kinds} == {"up_to_date"} and not again.changed


def test_delete_old_and_dry_run(es, settings):
    _load(es, settings, n_articles=30, n_claims=0)
    specs = _bumped("articles")
    dry = migrate(es, settings, specs=specs, kinds=["articles"], dry_run=True)
    assert dry.by_kind()["articles"].action == "would_migrate"
    assert dry.by_kind()["articles"].source_count == 30
    assert alias_target(es, settings.index("articles")).endswith("-v1")
    report = migrate(es, settings, specs=specs, kinds=["articles"], delete_old=True)
    assert report.by_kind()["articles"].old_index_deleted
    assert not es.indices.exists(index=f"{settings.index('articles')}-v1")
    assert es.count(index=settings.index("articles"))["count"] == 30


def test_a_copy_that_does_not_verify_leaves_the_alias_and_writes_alone(es, settings):
    _load(es, settings, n_articles=10, n_claims=0)

    def break_one(kind, source):
        return {**source, "published": "garbage"} if source["id"] == "a00004" else source

    with pytest.raises(MigrationError, match="did not verify") as err:
        migrate(es, settings, specs=_bumped("articles"), kinds=["articles"], transform=break_one)
    assert "a00004" in str(err.value)
    alias = settings.index("articles")
    assert alias_target(es, alias) == f"{alias}-v1"
    # the old index takes writes again, and a fixed re-run completes from scratch
    assert bulk_write(es, alias, [{"id": "after", "title": "Sample"}], refresh=True).ok == 1
    report = migrate(es, settings, specs=_bumped("articles"), kinds=["articles"])
    assert report.by_kind()["articles"].copied == 11
    assert es.count(index=alias)["count"] == 11


def test_an_index_newer_than_the_code_is_left_alone(es, settings):
    ensure_indices(es, settings, ["feeds"], specs=_bumped("feeds"))
    report = migrate(es, settings, kinds=["feeds"])
    assert report.by_kind()["feeds"].action == "newer_than_code"
    assert alias_target(es, settings.index("feeds")).endswith("-v2")


def test_cli_migrate_creates_then_reports_up_to_date(settings, monkeypatch, capsys):
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
    assert main(["es", "migrate"]) == 0
    out = capsys.readouterr().out
    assert out.count("created") == len(INDEX_SPECS)
    assert main(["es", "migrate", "--kinds", "articles,claims"]) == 0
    assert capsys.readouterr().out.count("up_to_date") == 2
    assert main(["es", "status"]) == 0
    assert capsys.readouterr().out.count(" ok ") == len(INDEX_SPECS)
    assert main(["es", "migrate", "--kinds", "bogus"]) == 2


def test_documents_written_during_a_migration_are_not_lost(es, settings):
    """A writer keeps writing through the alias while the copy runs: every accepted id survives."""
    import threading

    _load(es, settings, n_articles=2000, n_claims=0)
    alias = settings.index("articles")
    written: list[str] = []
    done, first = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def writer():
        n = 0
        try:
            while not done.is_set() or n < 50:
                batch = [{"id": f"live{n + i}", "title": "Sample live write"} for i in range(5)]
                report = bulk_write(es, alias, batch, initial_backoff=0.05, max_retries=12)
                assert report.errors == []
                written.extend(d["id"] for d in batch)
                first.set()
                n += 5
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            failures.append(exc)
            first.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert first.wait(timeout=30)  # at least one batch reaches the old index before the copy
    try:
        report = migrate(es, settings, specs=_bumped("articles"), kinds=["articles"], chunk_size=250)
    finally:
        done.set()
        thread.join(timeout=60)
    assert failures == []
    assert report.by_kind()["articles"].action == "migrated"
    es.indices.refresh(index=alias)
    ids = set(_sources(es, alias))
    assert len(written) >= 50
    assert set(written) <= ids
    assert len(ids) == 2000 + len(written)
    # the writes really interleaved with the copy: some reached the old index before the block,
    # some were held back by it and landed in the new index after the switch
    in_old = {i for i in _sources(es, f"{alias}-v1") if i.startswith("live")}
    assert in_old and len(in_old) < len(written)


def test_a_new_field_without_a_version_bump_is_added_in_place(es, settings):
    ensure_indices(es, settings, ["alerts"])
    specs = dict(INDEX_SPECS)
    specs["alerts"] = replace(specs["alerts"], properties={**specs["alerts"].properties, "channel": KW})
    alias = settings.index("alerts")
    assert bulk_write(es, alias, [{"id": "x", "channel": "email"}]).failed == 1  # strict: unknown field

    dry = migrate(es, settings, specs=specs, kinds=["alerts"], dry_run=True)
    assert dry.by_kind()["alerts"].action == "would_add_fields"
    report = migrate(es, settings, specs=specs, kinds=["alerts"])
    entry = report.by_kind()["alerts"]
    assert (entry.action, entry.added_fields, entry.index) == ("added_fields", ["channel"], f"{alias}-v1")
    assert bulk_write(es, alias, [{"id": "x", "channel": "email"}]).ok == 1
    mapping = es.indices.get_mapping(index=alias)[f"{alias}-v1"]["mappings"]
    assert mapping["_meta"]["newswatch_version"] == 1  # the version marker survives
    assert migrate(es, settings, specs=specs, kinds=["alerts"]).by_kind()["alerts"].action == "up_to_date"

    # a type change of a live field cannot be done in place: the error says to bump the version
    specs["alerts"] = replace(specs["alerts"], properties={**specs["alerts"].properties,
                                                           "attempts": KW, "retry_of": KW})
    with pytest.raises(MigrationError, match="bump the version"):
        migrate(es, settings, specs=specs, kinds=["alerts"])
