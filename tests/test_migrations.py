"""The archive's schema: created and upgraded only by ordered, named, transactional migrations."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from crawler import migrations
from crawler.errors import StoreError
from crawler.migrations import MIGRATIONS, applied, migrate, pending
from crawler.store import Archive

NAMES = [fn.__name__ for fn in MIGRATIONS]


def schema(db: Database) -> dict[str, Any]:
    """Everything the migrations create, as sqlite-utils sees it (bookkeeping rows excluded)."""
    return {
        "tables": {name: db[name].schema for name in db.table_names()},
        "indexes": {name: sorted(i.name for i in db[name].indexes) for name in db.table_names()},
        "triggers": sorted((t.name, t.sql) for t in db.triggers),
    }


def item_row(**over: Any) -> dict[str, Any]:
    row = {
        "agency": "mod", "id": 7, "lang": "ru", "published": "2026-08-31T10:30:00+05:00",
        "title": "Министр обороны провёл совещание", "url": "https://www.gov.kz/x",
        "body_text": "Учения", "content_hash": "h", "updated": "2026-09-01T06:00:00+00:00",
        "first_seen": "2026-09-01T06:00:00+00:00", "last_seen": "2026-09-01T06:00:00+00:00",
    }  # fmt: skip
    return row | over


@pytest.fixture
def db() -> Database:
    database = Database(memory=True)
    yield database
    database.close()


def test_an_empty_database_gets_every_migration_in_order(db: Database) -> None:
    assert pending(db) == NAMES
    assert migrate(db) == NAMES
    assert applied(db) == NAMES
    assert pending(db) == []
    for row in db[migrations.TABLE].rows:
        assert datetime.fromisoformat(row["applied_at"]).utcoffset() is not None


def test_migrating_again_is_a_no_op(db: Database) -> None:
    migrate(db)
    before = (schema(db), list(db[migrations.TABLE].rows))
    assert migrate(db) == []
    assert (schema(db), list(db[migrations.TABLE].rows)) == before


def test_reopening_a_file_archive_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    Archive.open(path).close()
    first = Database(path)
    before = (schema(first), list(first[migrations.TABLE].rows))
    first.close()

    archive = Archive.open(path)
    assert (schema(archive.db), list(archive.db[migrations.TABLE].rows)) == before
    archive.close()


def test_opening_an_up_to_date_archive_needs_no_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    Archive.open(path).close()
    crawler = sqlite3.connect(path, timeout=0)
    crawler.execute("BEGIN IMMEDIATE")  # a crawl is writing
    try:
        reader = Archive.open(path)
        assert reader.feed_items() == []
        reader.close()
    finally:
        crawler.rollback()
        crawler.close()


@pytest.mark.parametrize("stop_before", NAMES)
def test_upgrading_from_every_earlier_version_gives_the_same_schema(
    db: Database, stop_before: str
) -> None:
    fresh = Database(memory=True)
    migrate(fresh)

    migrate(db, stop_before=stop_before)
    assert applied(db) == NAMES[: NAMES.index(stop_before)]
    assert migrate(db) == NAMES[NAMES.index(stop_before) :]

    assert schema(db) == schema(fresh)
    assert applied(db) == NAMES


def test_upgrading_from_the_previous_version_keeps_and_indexes_old_rows(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    old = Database(path)
    migrate(old, stop_before=NAMES[-1])
    old["items"].insert(item_row())
    old.close()

    archive = Archive.open(path)

    assert applied(archive.db) == NAMES
    assert archive.get_item("mod", 7, "ru")["title"] == "Министр обороны провёл совещание"
    assert [row["id"] for row in archive.search("министр")] == [7]
    archive.close()


def test_a_failing_migration_leaves_no_trace_and_stays_pending(db: Database) -> None:
    # SQL rather than Table.create(): sqlite-utils 3.x commits inside its own methods.
    def first(db: Database) -> None:
        db.execute("CREATE TABLE first (id INTEGER PRIMARY KEY)")

    def broken(db: Database) -> None:
        db.execute("CREATE TABLE half (id INTEGER PRIMARY KEY)")
        raise RuntimeError("bad migration")

    with pytest.raises(RuntimeError, match="bad migration"):
        migrate(db, migrations=[first, broken])

    assert db["first"].exists() and not db["half"].exists()
    assert applied(db) == ["first"]
    assert pending(db, [first, broken]) == ["broken"]


def test_a_migration_unknown_to_this_code_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    newer = Database(path)
    migrate(newer)
    newer[migrations.TABLE].insert({"name": "from_a_newer_version", "applied_at": "x"})
    newer.close()

    with pytest.raises(StoreError, match="from_a_newer_version"):
        Archive.open(path)


def test_stop_before_must_name_a_migration(db: Database) -> None:
    with pytest.raises(ValueError, match="unknown migration"):
        migrate(db, stop_before="no_such_migration")


def test_migration_names_are_unique() -> None:
    assert len(set(NAMES)) == len(NAMES)


# --- the public schema (people query it with sqlite-utils and Datasette) ------------------


@pytest.fixture
def migrated(db: Database) -> Database:
    migrate(db)
    return db


@pytest.mark.parametrize(
    ("table", "pks", "columns"),
    [
        (
            "items",
            ["agency", "id", "lang"],
            {
                "agency": str, "id": int, "lang": str, "url": str, "title": str,
                "published": str, "body_text": str, "body_html": str, "categories": str,
                "first_seen": str, "last_seen": str, "summary": str, "image": str,
                "views": int, "incomplete": int, "source": str, "content_hash": str,
                "version": int, "updated": str,
            },
        ),
        (
            "item_versions",
            ["agency", "id", "lang", "version"],
            {
                "agency": str, "id": int, "lang": str, "version": int, "title": str,
                "body_text": str, "body_html": str, "content_hash": str, "seen_at": str,
                "crawl_id": int,
            },
        ),
        (
            "agencies",
            ["slug"],
            {
                "slug": str, "name_kk": str, "name_ru": str, "name_en": str, "enabled": int,
                "parent": str, "kind": str, "first_seen": str, "updated": str,
            },
        ),
        (
            "crawls",
            ["id"],
            {
                "id": int, "kind": str, "target": str, "started": str, "finished": str,
                "status": str, "found": int, "new": int, "updated": int, "unchanged": int,
                "skipped": int, "errors": str, "error_count": int, "strategy": str,
                "requests": int,
            },
        ),
    ],
)  # fmt: skip
def test_tables_have_the_public_columns_and_keys(
    migrated: Database, table: str, pks: list[str], columns: dict[str, type]
) -> None:
    assert migrated[table].pks == pks
    have = migrated[table].columns_dict
    assert {name: have.get(name) for name in columns} == columns


def test_items_are_indexed_for_feeds(migrated: Database) -> None:
    indexed = {tuple(index.columns) for index in migrated["items"].indexes}
    assert {("published",), ("agency", "lang", "published")} <= indexed


def test_items_have_full_text_search_kept_current_by_triggers(migrated: Database) -> None:
    assert migrated["items"].detect_fts() == "items_fts"
    assert "fts5" in migrated["items_fts"].schema.lower()
    assert {"items_ai", "items_ad", "items_au"} <= {t.name for t in migrated["items"].triggers}
    migrated["items"].insert(item_row())
    assert [row["id"] for row in migrated["items"].search("совещание")] == [7]


def test_defaults_fill_what_a_sparse_insert_leaves_out(migrated: Database) -> None:
    migrated["agencies"].insert({"slug": "mod", "first_seen": "t", "updated": "t"})
    migrated["crawls"].insert({"kind": "crawl", "started": "t"})
    migrated["items"].insert(item_row())

    assert migrated["agencies"].get("mod")["enabled"] == 1
    crawl = next(iter(migrated["crawls"].rows))
    assert (crawl["id"], crawl["status"], crawl["errors"]) == (1, "running", "[]")
    assert crawl["found"] == crawl["error_count"] == 0
    assert "AUTOINCREMENT" in migrated["crawls"].schema
    item = migrated["items"].get(("mod", 7, "ru"))
    assert (item["categories"], item["incomplete"], item["version"]) == ("[]", 0, 1)
