"""The archive's schema: created and upgraded only by ordered, named, transactional migrations."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from crawler import migrations
from crawler.errors import StoreError
from crawler.migrations import MIGRATIONS, applied, migrate, pending, transaction
from crawler.problems import ProblemKind
from crawler.store import Archive
from crawler.store_monitor import Target
from scheduler.policy import AgencyState

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
    # From before the stemmed search index: the store fills it, so rows inserted behind the
    # store's back after it exists are not in it; an upgrade indexes the rows it finds.
    migrate(old, stop_before="create_items_search")
    old["items"].insert(item_row())
    old.close()

    archive = Archive.open(path)

    assert applied(archive.db) == NAMES
    assert archive.get_item("mod", 7, "ru")["title"] == "Министр обороны провёл совещание"
    assert [row["id"] for row in archive.search("министр")] == [7]
    archive.close()


@pytest.mark.parametrize("how", ["sql", "table-methods"])
def test_a_failing_migration_leaves_no_trace_and_stays_pending(db: Database, how: str) -> None:
    # Table methods too: since sqlite-utils 4 they nest in the migration's transaction as
    # savepoints (3.x committed inside them, which is why the project needs sqlite-utils>=4).
    def first(db: Database) -> None:
        db.execute("CREATE TABLE first (id INTEGER PRIMARY KEY)")

    def broken(db: Database) -> None:
        if how == "sql":
            db.execute("CREATE TABLE half (id INTEGER PRIMARY KEY)")
        else:
            db.table("half").create({"id": int, "name": str}, pk="id")
            db.table("half").insert({"id": 1, "name": "x"})
            db.table("first").add_column("extra", str)
            db.table("first").transform(pk="id", column_order=["extra"])
        raise RuntimeError("bad migration")

    with pytest.raises(RuntimeError, match="bad migration"):
        migrate(db, migrations=[first, broken])

    assert db["first"].exists() and not db["half"].exists()
    assert list(db["first"].columns_dict) == ["id"]
    assert applied(db) == ["first"]
    assert pending(db, [first, broken]) == ["broken"]


def test_a_transaction_takes_the_write_lock_before_its_first_write(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    Archive.open(path).close()
    db = Database(path)
    other = sqlite3.connect(path, timeout=0)
    try:
        with transaction(db):
            db.execute("SELECT count(*) FROM items").fetchone()  # a read, no write yet
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released on commit
        other.rollback()
    finally:
        other.close()
        db.close()


def test_a_nested_transaction_is_a_savepoint(db: Database) -> None:
    migrate(db)
    with transaction(db):
        db.table("incidents").insert({"agency": "a", "kind": "k", "message": "kept", "at": "t"})
        with pytest.raises(RuntimeError), transaction(db):
            db.table("incidents").insert(
                {"agency": "a", "kind": "k", "message": "undone", "at": "t"})
            raise RuntimeError("inner")
        assert db.conn.in_transaction  # the outer one goes on
    assert [row["message"] for row in db["incidents"].rows] == ["kept"]


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
                "rejected": int, "incomplete": int, "errors": str, "error_count": int,
                "problems": str, "strategy": str, "requests": int, "pid": int,
                "pid_started": str, "skipped": None,
            },
        ),
        (
            "rejects",
            ["key"],
            {
                "key": str, "agency": str, "lang": str, "item_id": int, "reason": str,
                "url": str, "raw": str, "crawl_id": int, "first_seen": str, "last_seen": str,
                "times": int,
            },
        ),
        (
            "feed_marks",
            ["agency", "lang"],
            {"agency": str, "lang": str, "seq": int, "published_seq": int},
        ),
        (
            "schedule",
            ["agency", "lang"],
            {
                "agency": str, "lang": str, "next_crawl": str, "interval": int, "last_crawl": str,
                "last_success": str, "last_error": str, "last_error_at": str,
                "consecutive_failures": int, "last_new": int, "last_kinds": str,
            },
        ),
    ],
)  # fmt: skip
def test_tables_have_the_public_columns_and_keys(
    migrated: Database, table: str, pks: list[str], columns: dict[str, type | None]
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
    assert crawl["found"] == crawl["error_count"] == crawl["rejected"] == 0
    assert (crawl["problems"], crawl["pid"], crawl["pid_started"]) == ("[]", None, None)
    assert "AUTOINCREMENT" in migrated["crawls"].schema
    item = migrated["items"].get(("mod", 7, "ru"))
    assert (item["categories"], item["incomplete"], item["version"]) == ("[]", 0, 1)


# --- upgrading the rows of an older archive ------------------------------------------------


def old_crawl(db: Database, **over: Any) -> int:
    """A crawl row as the archive held it before crawls_problems_and_killed."""
    row = {
        "kind": "crawl", "target": "mod/ru", "started": "2026-09-01T06:00:00+00:00",
        "finished": "2026-09-01T06:05:00+00:00", "status": "partial", "found": 9, "new": 4,
        "updated": 1, "unchanged": 2, "skipped": 2, "incomplete": 1,
        "errors": json.dumps(["mod/ru: HTTP 500"]), "error_count": 1, "strategy": "k6",
        "requests": 30,
    }  # fmt: skip
    return db.execute(
        f"INSERT INTO crawls ({', '.join(row | over)}) VALUES ({', '.join('?' * len(row | over))})",
        list((row | over).values()),
    ).lastrowid


@pytest.fixture
def before_crawls_problems(db: Database) -> Database:
    migrate(db, stop_before="crawls_problems_and_killed")
    assert "skipped" in db["crawls"].columns_dict
    return db


def test_the_crawls_rebuild_keeps_old_rows(before_crawls_problems: Database) -> None:
    db = before_crawls_problems
    crawl = old_crawl(db)
    db["item_versions"].insert({
        "agency": "mod", "id": 7, "lang": "ru", "version": 1, "title": "t", "content_hash": "h",
        "seen_at": "2026-09-01T06:01:00+00:00", "crawl_id": crawl,
    })  # fmt: skip

    migrate(db)

    [row] = Archive(db).crawls()
    assert row == {
        "id": crawl, "kind": "crawl", "target": "mod/ru", "started": "2026-09-01T06:00:00+00:00",
        "finished": "2026-09-01T06:05:00+00:00", "status": "partial", "found": 9, "new": 4,
        "updated": 1, "unchanged": 2, "rejected": 2, "incomplete": 1,
        "errors": ["mod/ru: HTTP 500"], "error_count": 1, "problems": [], "strategy": "k6",
        "requests": 30, "pid": None, "pid_started": None,
    }  # fmt: skip
    assert "skipped" not in db["crawls"].columns_dict
    assert next(iter(db["item_versions"].rows))["crawl_id"] == crawl
    assert Archive(db).begin_crawl("crawl") == crawl + 1


def test_the_crawls_rebuild_never_reuses_the_id_of_a_deleted_crawl(
    before_crawls_problems: Database,
) -> None:
    db = before_crawls_problems
    old_crawl(db)
    deleted = old_crawl(db)
    db["samples"].insert(
        {
            "agency": "mod",
            "lang": "ru",
            "url": "u",
            "reason": "r",
            "seen_at": "t",
            "crawl_id": deleted,
        }
    )
    db.execute("DELETE FROM crawls WHERE id = ?", [deleted])  # pruned by hand, say
    migrate(db)
    # A new crawl must not inherit the samples (item versions, rejects) of the deleted one.
    assert Archive(db).begin_crawl("crawl") > deleted


@pytest.mark.parametrize(
    ("status", "accepted"),
    [("running", True), ("ok", True), ("partial", True), ("failed", True), ("killed", True),
     ("bogus", False), ("", False), ("KILLED", False)],
)  # fmt: skip
def test_the_rebuilt_crawls_table_checks_its_status(
    before_crawls_problems: Database, status: str, accepted: bool
) -> None:
    db = before_crawls_problems
    crawl = old_crawl(db, status="ok")
    migrate(db)
    update = "UPDATE crawls SET status = ? WHERE id = ?"
    if accepted:
        db.execute(update, [status, crawl])
        assert db["crawls"].get(crawl)["status"] == status
    else:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            db.execute(update, [status, crawl])
        assert db["crawls"].get(crawl)["status"] == "ok"


def test_an_old_running_crawl_is_killed_when_the_upgraded_archive_opens(tmp_path: Path) -> None:
    # A row left running by an older version has no pid: its process cannot be found again.
    path = tmp_path / "news.db"
    old = Database(path)
    migrate(old, stop_before="crawls_problems_and_killed")
    running = old_crawl(old, status="running", finished=None)
    done = old_crawl(old, status="ok")
    old.close()

    archive = Archive.open(path)
    rows = {row["id"]: row for row in archive.crawls()}
    assert rows[done]["status"] == "ok" and rows[done]["problems"] == []
    assert rows[running]["status"] == "killed"
    assert [p.kind for p in rows[running]["problems"]] == [ProblemKind.CRASHED]
    archive.close()


def test_old_items_put_every_group_behind_its_feeds(db: Database) -> None:
    migrate(db, stop_before="create_feed_marks")
    for agency, lang, item_id, published in [
        ("mod", "ru", 1, "2026-08-31T10:30:00+05:00"), ("mod", "ru", 2, None),
        ("mod", "kk", 1, "2026-08-31T10:30:00+05:00"), ("mvd", "en", 5, None),
    ]:  # fmt: skip
        db["items"].insert(
            item_row(
                agency=agency,
                lang=lang,
                id=item_id,
                published=published,
                incomplete=int(published is None),
            )
        )

    migrate(db)

    archive = Archive(db)
    behind = archive.feeds_behind()
    assert behind == {("mod", "ru"): 1, ("mod", "kk"): 1, ("mvd", "en"): 1}
    archive.feeds_published(behind)
    assert archive.feeds_behind() == {}


def test_an_archive_without_items_starts_with_no_feed_marks(db: Database) -> None:
    migrate(db, stop_before="create_feed_marks")
    migrate(db)
    assert Archive(db).feeds_behind() == {}
    assert db["feed_marks"].count == 0


def test_an_old_schedule_row_reads_with_no_previous_kinds(db: Database) -> None:
    migrate(db, stop_before="schedule_problem_kinds")
    db["schedule"].insert({
        "agency": "mod/ru", "interval": 1800, "consecutive_failures": 2,
        "last_error": "mod/ru: layout changed: x", "next_crawl": "2026-09-01T12:00:00+05:00",
    })  # fmt: skip
    migrate(db)
    row = Archive(db).monitor.schedule()[Target("mod", "ru")]
    assert row["last_kinds"] is None
    state = AgencyState.from_row(row)
    assert (state.last_kinds, state.consecutive_failures, state.interval) == ((), 2, 1800)


# --- the schedule keyed by target (schedule_targets) ---------------------------------------


# Rows as the archive held them before schedule_targets, by their key.
OLD_SCHEDULE: dict[str, dict[str, Any]] = {
    "mod/en": {"interval": 1800, "next_crawl": "2026-09-01T12:00:00+05:00",
               "last_success": "2026-09-01T06:00:00+00:00", "consecutive_failures": 2,
               "last_error": "mod/en: HTTP 500", "last_error_at": "2026-09-01T06:30:00+00:00",
               "last_new": 3, "last_kinds": "layout-changed"},
    "mod/ru": {"interval": 900, "next_crawl": "2026-09-01T13:00:00+05:00"},
    "akimat-astana/kk": {"interval": 3600},
    # An agency-wide row (from before per-language targets) and malformed keys: dropped.
    "mfa": {"interval": 600, "consecutive_failures": 9},
    "a/b/c": {"interval": 600},
    "/en": {"interval": 600},
    "mvd/": {"interval": 600},
}  # fmt: skip


@pytest.fixture
def before_schedule_targets(db: Database) -> Database:
    migrate(db, stop_before="schedule_targets")
    assert db.table("schedule").pks == ["agency"]
    for key, row in OLD_SCHEDULE.items():
        db.table("schedule").insert({"agency": key, **row})
    return db


def test_the_schedule_migration_splits_each_target_key(before_schedule_targets: Database) -> None:
    db = before_schedule_targets
    migrate(db)

    assert db.table("schedule").pks == ["agency", "lang"]
    assert list(db.table("schedule").columns_dict)[:3] == ["agency", "lang", "next_crawl"]
    rows = {(row["agency"], row["lang"]): row for row in db.table("schedule").rows}
    assert set(rows) == {("mod", "en"), ("mod", "ru"), ("akimat-astana", "kk")}
    for key in ("mod/en", "mod/ru", "akimat-astana/kk"):
        agency, lang = key.split("/")
        row = rows[(agency, lang)]
        assert {k: row[k] for k in OLD_SCHEDULE[key]} == OLD_SCHEDULE[key]  # nothing else lost
    # Columns an old row left out still get their defaults.
    assert (rows[("mod", "ru")]["consecutive_failures"], rows[("mod", "ru")]["last_new"]) == (0, 0)
    assert rows[("mod", "ru")]["last_kinds"] is None


def test_the_upgraded_schedule_reads_as_states(before_schedule_targets: Database) -> None:
    migrate(before_schedule_targets)
    schedule = Archive(before_schedule_targets).monitor.schedule()
    assert list(schedule) == [Target("akimat-astana", "kk"), Target("mod", "en"),
                              Target("mod", "ru")]
    state = AgencyState.from_row(schedule[Target("mod", "en")])
    assert state.target == Target("mod", "en")
    assert (state.interval, state.consecutive_failures, state.last_new) == (1800, 2, 3)
    assert state.last_kinds == ("layout-changed",) and state.last_error == "mod/en: HTTP 500"


def test_the_upgraded_schedule_keys_targets(before_schedule_targets: Database) -> None:
    db = before_schedule_targets
    migrate(db)
    monitor = Archive(db).monitor
    mod_en = Target("mod", "en")
    monitor.save_schedule(mod_en, interval=1200)  # an update, not a second row
    monitor.save_schedule(Target("mfa", "en"), interval=600)  # mfa/en starts afresh
    rows = monitor.schedule()
    assert (rows[mod_en]["interval"], rows[mod_en]["consecutive_failures"]) == (1200, 2)
    assert rows[Target("mfa", "en")]["consecutive_failures"] == 0
    assert len(rows) == 4
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO schedule (agency, lang, interval) VALUES ('mod', NULL, 1)")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO schedule (agency, lang, interval) VALUES ('mod', 'en', 1)")


def test_an_archive_of_the_previous_version_opens_with_its_schedule(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    old = Database(path)
    migrate(old, stop_before="schedule_targets")
    old.table("schedule").insert({"agency": "mod/en", **OLD_SCHEDULE["mod/en"]})
    old.table("schedule").insert({"agency": "mfa", **OLD_SCHEDULE["mfa"]})
    old.close()

    archive = Archive.open(path)
    assert applied(archive.db) == NAMES
    assert list(archive.monitor.schedule()) == [Target("mod", "en")]
    # What `status --json` prints: keyed "agency/lang", JSON-friendly.
    schedule = {t.key: row for t, row in archive.monitor.schedule().items()}
    assert list(schedule) == ["mod/en"] and schedule["mod/en"]["lang"] == "en"
    json.dumps(schedule)
    archive.close()
