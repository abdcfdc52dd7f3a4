"""The archive's schema, as an ordered list of named migrations.

Each migration is a function applied once, in registration order, inside one transaction together
with its row in `_migrations` (name, applied_at): a failing migration leaves no trace and stays
pending. Never edit or reorder a released migration; append a new one.

Why not sqlite-utils' own `Migrations` (sqlite_utils.migrations, 4.x)? Read against 4.2:
* its apply() computes the pending list before taking any lock and runs each migration in
  db.atomic(), a plain deferred BEGIN. Two processes opening an old archive at once (the daemon,
  its crawl child, `serve`) both see a migration pending; the second runs it again after the
  first committed and fails ("table ... already exists"). Ours takes the write lock first
  (BEGIN IMMEDIATE) and re-checks what is applied under it.
* it records migrations in `_sqlite_migrations` (migration_set, name, applied_at): every archive
  written so far records them in `_migrations`, a public table, and would need a bridge.
* it does not refuse an archive that records migrations it does not know (written by a newer
  version); ours does, before touching anything.

Migrations may use sqlite-utils' Table methods (transform, add_column, enable_fts): since
sqlite-utils 4 they run in db.atomic(), which inside our open transaction is a savepoint, so they
no longer commit half a migration (3.x committed inside them; hence sqlite-utils>=4). Tables
whose exact CREATE text is the public schema are written as SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import quote_identifier

from crawler.errors import StoreError
from crawler.timeutil import isoformat, utcnow

Migration = Callable[[Database], None]
MIGRATIONS: list[Migration] = []
TABLE = "_migrations"


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration; its function name is its permanent name."""
    MIGRATIONS.append(fn)
    return fn


# --- transactions ------------------------------------------------------------------------------


@contextmanager
def transaction(db: Database) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises; nested, a savepoint.

    Kept instead of sqlite-utils' db.atomic() alone: atomic() opens with a plain (deferred)
    BEGIN and has no way to ask for IMMEDIATE. A deferred transaction takes the write lock only
    at its first write, and in WAL mode a block that reads and then writes while another process
    commits fails at once with SQLITE_BUSY (the busy timeout cannot help a lock upgrade).
    IMMEDIATE takes the write lock up front, so the connection's busy timeout waits for it
    instead. Inside the block, sqlite-utils' own atomic() (Table.insert/update/upsert, transform,
    ...) nests as savepoints; a nested transaction() is db.atomic() too.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    try:
        db.commit()
    except BaseException:
        db.rollback()
        raise


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextmanager
def writing(db: Database, what: str) -> Iterator[None]:
    """One transaction(); a database failure (disk full, read-only, locked) is a StoreError
    saying what could not be done."""
    try:
        with transaction(db):
            yield
    except sqlite3.Error as exc:
        raise StoreError(f"cannot {what}: {one_line(exc)}") from exc


# --- reads ------------------------------------------------------------------------------------
# The store's reads run once or twice per page of a crawl, so their fixed cost counts:
# sqlite-utils' Table.rows_where() first checks that the table exists (a query listing every
# table: in a py-spy profile of a quiet crawl, twice the cost of the read itself), and
# Database.query() wraps each statement in a SAVEPOINT to refuse SQL that returns no rows. Every
# table here exists once the archive is migrated, and these are SELECTs, so both go straight to
# Database.execute().


def query_rows(db: Database, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """The rows of a SELECT, as dicts (column name -> value)."""
    cursor = db.execute(sql, list(params))
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor]


def select_rows(db: Database, table: str, where: str | None = None, args: Iterable[Any] = (),
                *, order_by: str | None = None, limit: int | None = None,
                select: str = "*") -> list[dict[str, Any]]:
    """Table.rows_where() of a table the migrations created."""
    sql = f"SELECT {select} FROM {quote_identifier(table)}"
    if where is not None:
        sql += f" WHERE {where}"
    if order_by is not None:
        sql += f" ORDER BY {order_by}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return query_rows(db, sql, args)


# --- the runner --------------------------------------------------------------------------------


def applied(db: Database) -> list[str]:
    """Names of the migrations already applied to `db`, in the order they were applied."""
    table = db.table(TABLE)
    if not table.exists():
        return []
    return [row["name"] for row in table.rows_where(select="name", order_by="rowid")]


def pending(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    done = set(applied(db))
    return [fn.__name__ for fn in migrations if fn.__name__ not in done]


def migrate(
    db: Database,
    *,
    stop_before: str | None = None,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[str]:
    """Apply every pending migration in order (or those before `stop_before`); return their names.

    Raises StoreError when `db` records a migration this code does not know: it was written by
    a newer version, and guessing its schema could corrupt it.
    """
    names = [fn.__name__ for fn in migrations]
    if stop_before is not None and stop_before not in names:
        raise ValueError(f"unknown migration {stop_before!r}")
    already = applied(db)
    unknown = [name for name in already if name not in names]
    if unknown:
        raise StoreError(
            f"the archive was written by a newer version (unknown migrations: {', '.join(unknown)})"
        )
    if not db.table(TABLE).exists():
        db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, applied_at TEXT)")
    done: list[str] = []
    for fn in migrations:
        if fn.__name__ == stop_before:
            break
        if fn.__name__ in already:
            continue  # an up-to-date archive opens without taking the write lock
        with transaction(db):
            # Re-checked under the write lock: another process may have just applied it.
            if fn.__name__ in applied(db):
                continue
            fn(db)
            db.table(TABLE).insert({"name": fn.__name__, "applied_at": isoformat(utcnow())})
        done.append(fn.__name__)
    return done


# --- the schema --------------------------------------------------------------------------------
# Timestamps are TEXT, ISO 8601 with an explicit offset; JSON lists are TEXT. Column order is
# what Datasette shows first, so identity and dates lead.


@migration
def create_items(db: Database) -> None:
    db.execute("""
        CREATE TABLE items (
            agency TEXT NOT NULL,
            id INTEGER NOT NULL,
            lang TEXT NOT NULL,
            published TEXT,
            title TEXT NOT NULL,
            url TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            body_text TEXT NOT NULL DEFAULT '',
            body_html TEXT NOT NULL DEFAULT '',
            categories TEXT NOT NULL DEFAULT '[]',
            image TEXT,
            views INTEGER,
            incomplete INTEGER NOT NULL DEFAULT 0 CHECK (incomplete IN (0, 1)),
            source TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 1,
            updated TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (agency, id, lang)
        )""")
    db.execute("CREATE INDEX idx_items_published ON items (published)")
    db.execute("CREATE INDEX idx_items_agency_lang_published ON items (agency, lang, published)")


@migration
def create_crawls(db: Database) -> None:
    db.execute("""
        CREATE TABLE crawls (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            started TEXT NOT NULL,
            finished TEXT,
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'ok', 'partial', 'failed')),
            found INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,
            incomplete INTEGER NOT NULL DEFAULT 0,
            errors TEXT NOT NULL DEFAULT '[]',
            error_count INTEGER NOT NULL DEFAULT 0,
            strategy TEXT,
            requests INTEGER NOT NULL DEFAULT 0
        )""")


@migration
def create_item_versions(db: Database) -> None:
    db.execute("""
        CREATE TABLE item_versions (
            agency TEXT NOT NULL,
            id INTEGER NOT NULL,
            lang TEXT NOT NULL,
            version INTEGER NOT NULL,
            title TEXT NOT NULL,
            body_text TEXT NOT NULL DEFAULT '',
            body_html TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            crawl_id INTEGER REFERENCES crawls (id),
            PRIMARY KEY (agency, id, lang, version)
        )""")


@migration
def create_agencies(db: Database) -> None:
    db.execute("""
        CREATE TABLE agencies (
            slug TEXT PRIMARY KEY,
            name_kk TEXT,
            name_ru TEXT,
            name_en TEXT,
            enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
            parent TEXT,
            kind TEXT,
            first_seen TEXT NOT NULL,
            updated TEXT NOT NULL
        )""")


@migration
def create_items_fts(db: Database) -> None:
    """FTS5 over title + body_text, kept current by triggers (sqlite-utils' own layout, so
    `sqlite-utils search` and Datasette find it); existing rows are indexed here."""
    db.table("items").enable_fts(["title", "body_text"], fts_version="FTS5", create_triggers=True)
    # sqlite-utils' update trigger re-indexes a row on ANY update; every crawl touches each
    # item's last_seen, so narrow it to the indexed columns to avoid re-indexing unchanged text.
    db.execute("DROP TRIGGER items_au")
    db.execute("""
        CREATE TRIGGER items_au AFTER UPDATE OF title, body_text ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, title, body_text)
                VALUES ('delete', old.rowid, old.title, old.body_text);
            INSERT INTO items_fts (rowid, title, body_text)
                VALUES (new.rowid, new.title, new.body_text);
        END""")


@migration
def create_sync_state(db: Database) -> None:
    """Per agency and language: the newest publication date of the last completed walk of the
    news list (the spider stops paging once it is back below it; see crawler/sync.py)."""
    db.execute("""
        CREATE TABLE sync_state (
            agency TEXT NOT NULL,
            lang TEXT NOT NULL,
            high_water TEXT,
            walked_at TEXT NOT NULL,
            PRIMARY KEY (agency, lang)
        )""")


@migration
def create_samples(db: Database) -> None:
    """Responses of an unknown shape (a layout change), kept for a person to look at."""
    db.execute("""
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            agency TEXT NOT NULL,
            lang TEXT NOT NULL,
            url TEXT NOT NULL,
            status INTEGER,
            reason TEXT NOT NULL,
            body BLOB,
            seen_at TEXT NOT NULL,
            crawl_id INTEGER REFERENCES crawls (id)
        )""")
    db.execute("CREATE INDEX idx_samples_agency ON samples (agency, seen_at)")


@migration
def create_monitor(db: Database) -> None:
    """The daemon's per-agency schedule and health (survives restarts) and its incidents."""
    db.execute("""
        CREATE TABLE schedule (
            agency TEXT PRIMARY KEY,
            next_crawl TEXT,
            interval INTEGER NOT NULL,
            last_crawl TEXT,
            last_success TEXT,
            last_error TEXT,
            last_error_at TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            last_new INTEGER NOT NULL DEFAULT 0
        )""")
    db.execute("""
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            agency TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX idx_incidents_at ON incidents (at)")


@migration
def crawls_problems_and_killed(db: Database) -> None:
    """Crawls record typed problems (JSON) and rejects, the process that ran them (so a crawl
    whose process is gone can be marked `killed`), and the status `killed`. SQLite cannot alter
    a CHECK constraint, so the table is rebuilt; `skipped` becomes `rejected`."""
    db.execute("""
        CREATE TABLE crawls_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            started TEXT NOT NULL,
            finished TEXT,
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'ok', 'partial', 'failed', 'killed')),
            found INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            incomplete INTEGER NOT NULL DEFAULT 0,
            errors TEXT NOT NULL DEFAULT '[]',
            error_count INTEGER NOT NULL DEFAULT 0,
            problems TEXT NOT NULL DEFAULT '[]',
            strategy TEXT,
            requests INTEGER NOT NULL DEFAULT 0,
            pid INTEGER,
            pid_started TEXT
        )""")
    db.execute("""
        INSERT INTO crawls_new (id, kind, target, started, finished, status, found, new, updated,
                                unchanged, rejected, incomplete, errors, error_count, strategy,
                                requests)
        SELECT id, kind, target, started, finished, status, found, new, updated, unchanged,
               skipped, incomplete, errors, error_count, strategy, requests FROM crawls""")
    # Keep AUTOINCREMENT's counter: a deleted crawl's id must never be handed out again.
    db.execute("""
        UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE(
            (SELECT seq FROM sqlite_sequence WHERE name = 'crawls'), 0))
        WHERE name = 'crawls_new'""")
    db.execute("""
        INSERT INTO sqlite_sequence (name, seq)
        SELECT 'crawls_new', seq FROM sqlite_sequence WHERE name = 'crawls'
        AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'crawls_new')""")
    db.execute("DROP TABLE crawls")
    db.execute("ALTER TABLE crawls_new RENAME TO crawls")
    db.execute("CREATE INDEX idx_crawls_status ON crawls (status)")


@migration
def create_rejects(db: Database) -> None:
    """Elements of a response that could not become items, with their raw text (up to 64 KiB)
    and the reason: nothing is lost silently. One row per distinct element (`key`), with when
    it was first and last seen and by which crawl."""
    db.execute("""
        CREATE TABLE rejects (
            key TEXT PRIMARY KEY,
            agency TEXT NOT NULL,
            lang TEXT NOT NULL,
            item_id INTEGER,
            reason TEXT NOT NULL,
            url TEXT NOT NULL DEFAULT '',
            raw TEXT NOT NULL DEFAULT '',
            crawl_id INTEGER REFERENCES crawls (id),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            times INTEGER NOT NULL DEFAULT 1
        )""")
    db.execute("CREATE INDEX idx_rejects_agency ON rejects (agency, lang, last_seen)")


@migration
def create_feed_marks(db: Database) -> None:
    """Per agency and language, a counter of stored changes (`seq`, bumped in the same
    transaction as the new or edited item) and the value the feeds were last written at
    (`published_seq`). A feed is behind the archive while seq > published_seq, whatever crawl
    stored the change, so a killed crawl's items reach the feeds at the next publish."""
    db.execute("""
        CREATE TABLE feed_marks (
            agency TEXT NOT NULL,
            lang TEXT NOT NULL,
            seq INTEGER NOT NULL DEFAULT 0,
            published_seq INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (agency, lang)
        )""")
    # An archive from before: every group it holds is behind until the next publish.
    db.execute("""
        INSERT INTO feed_marks (agency, lang, seq)
        SELECT DISTINCT agency, lang, 1 FROM items""")


@migration
def schedule_problem_kinds(db: Database) -> None:
    """The problem kinds of a target's last failed crawl (comma-separated), so incidents compare
    kinds with kinds instead of reading the error text."""
    db.execute("ALTER TABLE schedule ADD COLUMN last_kinds TEXT")


@migration
def schedule_targets(db: Database) -> None:
    """The schedule is keyed by target: `agency` and `lang` columns, PRIMARY KEY (agency, lang),
    instead of one "agency/lang" text in `agency`. Rows convert: "mod/en" becomes (mod, en).

    A row whose key is not AGENCY/LANG is dropped: an agency-wide row ("mod", from before the
    daemon crawled per language) or a malformed one. The daemon never read those (it plans
    "agency/lang" targets only, so they were dead rows), and expanding one into a row per
    language would invent crawl history that never happened: those targets start afresh, as
    new ones do (spread over min_interval). An agency's items and feeds are untouched."""
    schedule = db.table("schedule")
    schedule.add_column("lang", str)
    db.execute("DELETE FROM schedule WHERE agency NOT GLOB '?*/?*' OR agency GLOB '*/*/*'")
    # In three steps, so that no step breaks the key it runs under: the language first ...
    db.execute("UPDATE schedule SET lang = substr(agency, instr(agency, '/') + 1)")
    # ... then the new key: transform() rebuilds the table (SQLite cannot change a primary
    # key in place); the defaults are restated so that they stay integers (it would quote
    # the ones it reads) ...
    schedule.transform(
        pk=("agency", "lang"), not_null={"agency", "lang"}, column_order=["agency", "lang"],
        defaults={"consecutive_failures": 0, "last_new": 0},
    )
    # ... and only then the agency: "mod/en" and "mod/ru" are both "mod" now.
    db.execute("UPDATE schedule SET agency = substr(agency, 1, instr(agency, '/') - 1)")


@migration
def agencies_discovered(db: Database) -> None:
    """`agencies.source`: how the archive learned of an agency. 'discovered' is an agency first
    seen in the site-wide news stream (its slug as its name until a refresh names it); NULL is
    one from the registry or gov.kz's directory, as every row before this migration."""
    db.execute("ALTER TABLE agencies ADD COLUMN source TEXT")


@migration
def create_site_probe(db: Database) -> None:
    """What a site was found to speak, probed once and remembered like the access strategy:
    per site (the crawls' `target`), the number of the news list's first page (0 or 1) and the
    code it takes for Kazakh ('kk' or 'kz'); NULL where not yet known."""
    db.execute("""
        CREATE TABLE site_probe (
            site TEXT PRIMARY KEY,
            page_base INTEGER,
            kk_code TEXT,
            probed_at TEXT NOT NULL
        )""")


@migration
def create_items_search(db: Database) -> None:
    """The stemmed shadow index that `search` asks (crawler/search.py): `items_search`, FTS5
    over each item's word keys (title, body) and two filter columns (agency, lang), contentless
    (the text is items'), its rowid a sort key (publication second x slot, see
    crawler.search.key_range), so newest-first top-N is a rowid walk that stops at N.
    `items_search_keys` maps a key to its item; SQLite 3.40 cannot delete a row of a
    contentless FTS5 table, so a re-indexed item leaves its old key with NULLs (a tombstone
    that no join reaches) and takes a new one. Existing items are indexed here, in batches."""
    from crawler.search import KEY_SLOTS, facet_token, index_text, key_range
    from crawler.timeutil import parse_iso

    db.execute("""
        CREATE TABLE items_search_keys (
            key INTEGER PRIMARY KEY,
            agency TEXT,
            id INTEGER,
            lang TEXT
        )""")
    db.execute("CREATE UNIQUE INDEX idx_items_search_keys_item "
               "ON items_search_keys (agency, id, lang)")
    db.execute("""
        CREATE VIRTUAL TABLE items_search USING fts5 (
            title, body, agency, lang,
            content = '', tokenize = 'unicode61 remove_diacritics 0', prefix = '2 3'
        )""")
    taken: dict[int, int] = {}  # first key of a second -> slots used (the tables start empty)
    last = 0
    while True:
        batch = db.execute(
            "SELECT rowid, agency, id, lang, title, body_text, published, first_seen FROM items "
            "WHERE rowid > ? ORDER BY rowid LIMIT 1000", [last]).fetchall()
        if not batch:
            break
        keys, texts = [], []
        for rowid, agency, item_id, lang, title, body, published, first_seen in batch:
            last = rowid
            when = parse_iso(published) or parse_iso(first_seen)
            if when is None:
                continue  # no date at all: nothing to order it by (first_seen is NOT NULL)
            first, _ = key_range(when)
            slot = taken.get(first, 0)
            if slot >= KEY_SLOTS:
                continue
            taken[first] = slot + 1
            keys.append((first + slot, agency, item_id, lang))
            texts.append((first + slot, index_text(title, lang), index_text(body or "", lang),
                          facet_token(agency), facet_token(lang)))
        db.conn.executemany("INSERT INTO items_search_keys (key, agency, id, lang) "
                            "VALUES (?, ?, ?, ?)", keys)
        db.conn.executemany("INSERT INTO items_search (rowid, title, body, agency, lang) "
                            "VALUES (?, ?, ?, ?, ?)", texts)


@migration
def create_backfill_cursor(db: Database) -> None:
    """Where a full-history backfill (`govkz-monitor backfill`, crawler/backfill.py) stands, per
    target (an agency or '*' for the site-wide list, and a language), so a killed one resumes:
    `page`, the last page of the newest-first list whose items are all stored (0: none yet) at
    `page_size`; the oldest item reached (`oldest`, `oldest_id`) and the newest one the backfill
    started from (`newest`, `newest_id`), for resuming and for the ETA; `total` when the site
    says how many items the list has; `since`, the date it walks back to (NULL: the first
    item); `started_at`, `updated_at`, and `finished_at` once it reached the end."""
    db.execute("""
        CREATE TABLE backfill_cursor (
            agency TEXT NOT NULL,
            lang TEXT NOT NULL,
            page INTEGER NOT NULL DEFAULT 0,
            page_size INTEGER NOT NULL,
            oldest TEXT,
            oldest_id INTEGER,
            newest TEXT,
            newest_id INTEGER,
            total INTEGER,
            since TEXT,
            started_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT,
            PRIMARY KEY (agency, lang)
        )""")


@migration
def archive_at_scale(db: Database) -> None:
    """What the archive needs at a million items (crawler/store.py, Archive.save_items):

    * `item_counts`: per agency and language, its items (`items`) and those a feed can show
      (`complete`: dated, not cut off), kept by triggers on `items` in every writer's own
      transaction, so the feed groups and the per-agency counts never scan `items`.
    * `idx_items_agency_published`: an agency's complete items in every language, newest
      first: the latest 50 read 50 index entries instead of sorting all of them (with `lang`
      in it, one language's feed filters on the index too).
    * `item_versions` holds a version's title and bodies only once it is superseded: the
      current version's row has NULL texts (they are the `items` row's), so a body is stored
      once, not twice. The columns become nullable (a rebuild) and current rows lose their
      copy here.
    """
    db.execute("""
        CREATE TABLE item_counts (
            agency TEXT NOT NULL,
            lang TEXT NOT NULL,
            items INTEGER NOT NULL DEFAULT 0,
            complete INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (agency, lang)
        ) WITHOUT ROWID""")  # read in key order, from the table itself: no index lookups
    db.execute("""
        INSERT INTO item_counts (agency, lang, items, complete)
        SELECT agency, lang, count(*), sum(incomplete = 0 AND published IS NOT NULL)
        FROM items GROUP BY agency, lang""")
    add = """INSERT INTO item_counts (agency, lang, items, complete)
             VALUES (new.agency, new.lang, 1, new.incomplete = 0 AND new.published IS NOT NULL)
             ON CONFLICT (agency, lang) DO UPDATE SET items = items + 1,
                 complete = complete + excluded.complete;"""
    remove = """UPDATE item_counts SET items = items - 1,
                    complete = complete - (old.incomplete = 0 AND old.published IS NOT NULL)
                WHERE agency = old.agency AND lang = old.lang;"""
    db.execute(f"CREATE TRIGGER items_count_ai AFTER INSERT ON items BEGIN {add} END")
    db.execute(f"CREATE TRIGGER items_count_ad AFTER DELETE ON items BEGIN {remove} END")
    db.execute("CREATE TRIGGER items_count_au AFTER UPDATE OF agency, lang, incomplete, "
               f"published ON items BEGIN {remove} {add} END")
    db.execute("""
        CREATE INDEX idx_items_agency_published ON items (agency, published DESC, id DESC, lang)
        WHERE incomplete = 0 AND published IS NOT NULL""")
    texts = {"title": False, "body_text": False, "body_html": False}
    db.table("item_versions").transform(not_null=texts, defaults=dict.fromkeys(texts))
    db.execute("""
        UPDATE item_versions SET title = NULL, body_text = NULL, body_html = NULL
        WHERE EXISTS (SELECT 1 FROM items AS i
                      WHERE i.agency = item_versions.agency AND i.id = item_versions.id
                        AND i.lang = item_versions.lang AND i.version = item_versions.version
                        AND i.title = item_versions.title
                        AND i.body_text = item_versions.body_text
                        AND i.body_html = item_versions.body_html)""")


@migration
def create_page_memos(db: Database) -> None:
    """What page 1 of each incremental walk (an agency or '*' for the site-wide list, and a
    language) was when it was last entirely quiet (crawler/page_memo.py): `digest` of its
    request, response bytes and extraction `version`, its `newest` and `oldest` date (ISO 8601,
    full precision), `found` (its items the list gave with a body) and `items`, a JSON list of
    [agency, id, content_hash]. A crawl whose page 1 has the same digest, and whose items are
    all still stored with those hashes, ends the walk without extracting it. Bookkeeping
    only: losing a row costs one extraction."""
    db.execute("""
        CREATE TABLE page_memos (
            agency TEXT NOT NULL,
            lang TEXT NOT NULL,
            version INTEGER NOT NULL,
            digest TEXT NOT NULL,
            newest TEXT,
            oldest TEXT,
            found INTEGER NOT NULL,
            items TEXT NOT NULL,
            stored_at TEXT NOT NULL,
            PRIMARY KEY (agency, lang)
        ) WITHOUT ROWID""")


@migration
def create_access_sessions(db: Database) -> None:
    """The k6 session a handshake gave, per site (GOVKZ_BASE_URL) and strategy, kept for the next
    crawl process (crawler/access_session.py): `secrets`, a JSON object of the k6v1 `cookies`
    (name, value, domain, path, secure, expires) or the k6v2 `headers`; `obtained_at` and
    `expires_at` (ISO 8601, UTC). Bookkeeping only: losing a row costs one handshake."""
    db.execute("""
        CREATE TABLE access_sessions (
            site TEXT NOT NULL,
            strategy TEXT NOT NULL,
            secrets TEXT NOT NULL,
            obtained_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (site, strategy)
        ) WITHOUT ROWID""")
