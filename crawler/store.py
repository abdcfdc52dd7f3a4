"""The SQLite archive: every item ever seen, its versions, the agencies and the crawl log.

The only module (with crawler/store_monitor.py and crawler/migrations.py) that knows SQL. The
schema is a public contract: people query it with sqlite-utils and Datasette (see
crawler/migrations.py). Rows are written through sqlite-utils' Table API (insert, update,
upsert) inside our transactions (migrations.transaction: BEGIN IMMEDIATE; sqlite-utils >= 4
nests its own writes there as savepoints); SQL is left for what needs it: counters bumped in
place, upserts that keep old values, RETURNING, joins, IN lists and GROUP BY.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import NotFoundError, Table

from crawler.errors import StoreError
from crawler.items import LANGS, NewsItem, Reject
from crawler.liveness import is_running, start_time
from crawler.migrations import migrate, one_line, query_rows, select_rows, writing
from crawler.problems import Problem, ProblemKind
from crawler.save_plan import (
    ITEM_COLUMNS,
    STORED_COLUMNS,
    VERSION_COLUMNS,
    SavePlan,
    SaveResult,
    content_hash,
    distinct_runs,
    plan_save,
)
from crawler.search import KEY_SLOTS, facet_token, index_text, key_range
from crawler.search import parse as parse_query
from crawler.store_monitor import Monitor, Target
from crawler.timeutil import ALMATY, isoformat, localize, require_iso, utcnow

CRAWL_STATUSES = ("running", "ok", "partial", "failed", "killed")
CRAWL_COUNTS = ("found", "new", "updated", "unchanged", "rejected", "incomplete")
AGENCY_FIELDS = ("enabled", "parent", "kind")
ITEM_ORDER = "published DESC, id DESC"
KEY_WHERE = "agency = ? AND lang = ?"
# Parameters per IN (...) query: well under SQLite's oldest limit of 999 variables.
CHUNK = 500
# An item of a JSON list of [agency, id, lang] keys (json_each AS k), joined on the primary
# key: one query for any mix of agencies and languages. (A row-value IN (VALUES ...) would
# scan `items` in SQLite 3.40.)
_KEY_JOIN = ("items.agency = json_extract(k.value, '$[0]') "
             "AND items.id = json_extract(k.value, '$[1]') "
             "AND items.lang = json_extract(k.value, '$[2]')")
_KEYS_ROWIDS = f"SELECT items.rowid FROM json_each(?) AS k JOIN items ON {_KEY_JOIN}"


def _stamp(now: datetime | None) -> str:
    """A bookkeeping timestamp (first_seen, started, ...): UTC, ISO 8601 with offset."""
    return isoformat(localize(now or utcnow()).astimezone(UTC))


def _decode_item(row: dict[str, Any]) -> dict[str, Any]:
    row["categories"] = json.loads(row["categories"] or "[]")
    row["incomplete"] = bool(row["incomplete"])
    return row


class Archive:
    """The archive on one sqlite-utils Database (one connection: use it from one thread).

    Items, versions, agencies, crawls, rejects and feed marks are its own methods; the
    bookkeeping of crawling and monitoring (walk marks, samples, schedule, incidents) is its
    component `monitor` (crawler/store_monitor.py), on the same connection.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.monitor = Monitor(db)
        self._tables: dict[str, Table] = {}

    @classmethod
    def open(cls, path: str | Path) -> Archive:
        """Open (create, upgrade) the archive at `path`; StoreError with the reason on failure."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = Database(path)
            try:
                db.enable_wal()  # readers (feeds, the HTTP server) never wait for the crawler
                # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit per
                # page costs no fsync. Every transaction stays atomic and a killed process
                # loses nothing it committed; a power cut may lose the last commits, never
                # half of one, and a walk's mark goes with its items, so the next crawl
                # fetches them again (SQLite recommends NORMAL with WAL).
                db.execute("PRAGMA synchronous = NORMAL")
                # A crawl commits a page at a time; the commit that finds the WAL over this
                # many pages checkpoints it (copy + fsync). Every 16 MB instead of SQLite's 4
                # MB: a quarter of the syncs, for a WAL file of at most about 16 MB.
                db.execute("PRAGMA wal_autocheckpoint = 4000")
                migrate(db)
                archive = cls(db)
                archive.mark_killed_crawls()
            except BaseException:
                db.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open archive {path}: {one_line(exc)}") from exc
        return archive

    def close(self) -> None:
        self.db.close()

    # --- plumbing -------------------------------------------------------------------------

    def _writing(self, what: str) -> AbstractContextManager[None]:
        """One transaction (BEGIN IMMEDIATE); a database failure is a StoreError."""
        return writing(self.db, what)

    def transaction(self, what: str) -> AbstractContextManager[None]:
        """One write transaction around several saves (a page's items, rejects and walk mark:
        crawler/pipelines.py); the saves inside nest as savepoints, so all of it is stored or,
        on a failure, none (a StoreError saying `what` could not be done)."""
        return self._writing(what)

    def _table(self, name: str) -> Table:
        # Cached: db.table() looks the name up among the views on every call.
        if name not in self._tables:
            self._tables[name] = self.db.table(name)
        return self._tables[name]

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """The rows of a query that needs SQL (DISTINCT, GROUP BY, a join)."""
        return query_rows(self.db, sql, params)

    def _where(self, table: str, where: str | None = None, args: Iterable[Any] = (), *,
               order_by: str | None = None, limit: int | None = None,
               select: str = "*") -> list[dict[str, Any]]:
        return select_rows(self.db, table, where, args, order_by=order_by, limit=limit,
                           select=select)

    def _get(self, table: str, pk: Any) -> dict[str, Any] | None:
        try:
            return self._table(table).get(pk)
        except NotFoundError:
            return None

    # --- crawls ---------------------------------------------------------------------------

    def begin_crawl(
        self, kind: str, target: str = "", *, now: datetime | None = None, pid: int | None = None
    ) -> int:
        """A `running` crawl row, with the process running it (this one unless `pid`)."""
        pid = os.getpid() if pid is None else pid
        with self._writing("record the crawl"):
            crawls = self._table("crawls").insert({
                "kind": kind, "target": target, "started": _stamp(now),
                "pid": pid, "pid_started": start_time(pid),
            })  # fmt: skip
            return crawls.last_rowid or 0

    def mark_killed_crawls(self, *, now: datetime | None = None) -> list[int]:
        """Mark `killed` every `running` crawl whose process is gone; return their ids.

        Done on every open, but never waiting: when another process holds the write lock, a
        reader must not wait for it, and the next open marks them instead."""
        running = self._where("crawls", "status = 'running'", select="id, pid, pid_started")
        gone = [row["id"] for row in running if not is_running(row["pid"], row["pid_started"])]
        if not gone:
            return []
        busy = self.db.execute("PRAGMA busy_timeout").fetchone()[0]
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            return self._mark_killed(gone, now)
        except StoreError:
            return []
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(busy)}")

    def _mark_killed(self, gone: list[int], now: datetime | None) -> list[int]:
        problem = Problem(ProblemKind.CRASHED, "crawl", "the crawl process ended without "
                          "finishing (killed, timed out or crashed)")
        killed = []
        with self._writing("record killed crawls"):
            crawls = self._table("crawls")
            for crawl_id in gone:
                row = self._get("crawls", crawl_id)
                if row is None or row["status"] != "running":
                    continue  # it finished (or went) since it was read, before the lock
                crawls.update(crawl_id, {
                    "status": "killed", "finished": _stamp(now), "error_count": 1,
                    "errors": json.dumps([problem.line()]),
                    "problems": json.dumps([problem.to_dict()]),
                })  # fmt: skip
                killed.append(crawl_id)
        return killed

    def finish_crawl(
        self,
        crawl_id: int,
        *,
        status: str,
        counts: dict[str, int],
        errors: list[str],
        problems: Iterable[Problem] = (),
        strategy: str | None = None,
        requests: int = 0,
        now: datetime | None = None,
    ) -> None:
        if status not in CRAWL_STATUSES:
            raise ValueError(f"unknown crawl status {status!r}")
        changes: dict[str, Any] = {name: int(counts.get(name, 0)) for name in CRAWL_COUNTS}
        changes |= {
            "finished": _stamp(now), "status": status, "strategy": strategy, "requests": requests,
            "errors": json.dumps(list(errors), ensure_ascii=False), "error_count": len(errors),
            "problems": json.dumps([p.to_dict() for p in problems], ensure_ascii=False),
        }  # fmt: skip
        with self._writing("record the crawl"):
            try:
                self._table("crawls").update(crawl_id, changes)
            except NotFoundError:
                raise ValueError(f"no crawl {crawl_id}") from None

    def crawls(self, limit: int = 20) -> list[dict]:
        rows = self._where("crawls", order_by="id DESC", limit=limit)
        return [{**row, "errors": json.loads(row["errors"] or "[]"),
                 "problems": [Problem.from_dict(p) for p in json.loads(row["problems"] or "[]")]}
                for row in rows]

    # --- rejects --------------------------------------------------------------------------

    def save_reject(
        self, reject: Reject, *, crawl_id: int | None = None, now: datetime | None = None
    ) -> bool:
        """Keep an element that could not become an item; True when first seen. The same
        element seen again (same agency, language, reason and raw text) updates its row."""
        digest = hashlib.sha256(
            "\0".join((reject.agency, reject.lang, reject.reason, reject.raw)).encode()
        ).hexdigest()
        stamp = _stamp(now)
        with self._writing(f"save a reject of {reject.agency}/{reject.lang}"):
            cursor = self.db.execute(
                """INSERT INTO rejects (key, agency, lang, item_id, reason, url, raw, crawl_id,
                                        first_seen, last_seen)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET last_seen = excluded.last_seen,
                       crawl_id = excluded.crawl_id, url = excluded.url, times = times + 1
                   RETURNING times""",
                [digest, reject.agency, reject.lang, reject.item_id, reject.reason, reject.url,
                 reject.raw, crawl_id, stamp, stamp],
            )
            return cursor.fetchone()[0] == 1

    def rejects(self, agency: str | None = None, limit: int = 50) -> list[dict]:
        where, args = ("agency = ?", [agency]) if agency else (None, [])
        return self._where("rejects", where, args, order_by="last_seen DESC, key", limit=limit)

    # --- items ----------------------------------------------------------------------------

    content_hash = staticmethod(content_hash)

    def save_item(
        self, item: NewsItem, *, crawl_id: int | None = None, now: datetime | None = None
    ) -> SaveResult:
        """Store `item` in one transaction: a crash never leaves half an item behind."""
        return self.save_items([item], crawl_id=crawl_id, now=now)[0]

    def save_items(
        self, items: Iterable[NewsItem], *, crawl_id: int | None = None,
        now: datetime | None = None,
    ) -> list[SaveResult]:
        """Store a page of items in one transaction (all of them or, on a failure, none: a
        crash never leaves half an item behind); their results in order. An unchanged item
        costs no write of its own: the stored hashes come in one query, and `last_seen` of the
        page's unchanged items is one statement (crawler/save_plan.py decides the rest)."""
        batch = list(items)
        if not batch:
            return []
        stamp = _stamp(now)
        first = batch[0]
        what = (f"save {first.agency}/{first.id}/{first.lang}" if len(batch) == 1
                else f"save {len(batch)} items of {first.agency}/{first.lang}")
        results: list[SaveResult] = []
        with self._writing(what):
            for run in distinct_runs(batch):
                plan = plan_save(run, self._stored([item.key for item in run]), stamp, crawl_id)
                self._write_plan(plan, stamp)
                results += plan.results
        return results

    def page_is_quiet(self, items: Iterable[NewsItem], *, agencies: Iterable[str] = ()) -> bool:
        """Whether save_items(items) would write nothing but their `last_seen`, and every
        agency of `agencies` is stored (discover_agency would add none). Read outside any
        transaction: a hint that a page needs no transaction now (crawler/pipelines.py),
        never a plan to write; a page that writes re-plans inside its own."""
        stamp = _stamp(None)
        for run in distinct_runs(list(items)):
            plan = plan_save(run, self._stored([item.key for item in run]), stamp, None)
            if not plan.only_refreshes:
                return False
        wanted = list(dict.fromkeys(agencies))
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            stored = self._where("agencies", f"slug IN ({', '.join('?' * len(chunk))})",
                                 chunk, select="slug")
            if len(stored) < len(chunk):
                return False
        return True

    def touch(self, keys: Iterable[tuple[str, int, str]], *, now: datetime | None = None) -> None:
        """Set `last_seen` of these stored items (agency, id, lang) to now: items a crawl saw
        in a list and judged unchanged by their hash alone. One statement per CHUNK of keys."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return
        stamp = _stamp(now)
        with self._writing(f"record {len(wanted)} items as seen"):
            for start in range(0, len(wanted), CHUNK):
                self.db.execute(
                    f"UPDATE items SET last_seen = ? WHERE rowid IN ({_KEYS_ROWIDS})",
                    [stamp, json.dumps(wanted[start : start + CHUNK])])

    def _stored(self, keys: list[tuple[str, int, str]]) -> dict[tuple[str, int, str], Any]:
        """The stored rows of `keys` (STORED_COLUMNS and rowid, no bodies), in one query for
        any mix of agencies and languages (a site-wide page has many)."""
        columns = ", ".join(f"items.{name}" for name in STORED_COLUMNS)
        cursor = self.db.execute(
            f"""SELECT items.rowid AS rowid, items.agency, items.id, items.lang, {columns}
                FROM json_each(?) AS k JOIN items ON {_KEY_JOIN}""", [json.dumps(keys)])
        names = [d[0] for d in cursor.description]
        rows = (dict(zip(names, values, strict=True)) for values in cursor)
        return {(row["agency"], row["id"], row["lang"]): row for row in rows}

    def _write_plan(self, plan: SavePlan, stamp: str) -> None:
        """Apply a plan inside the caller's transaction, a few executemany calls for the
        whole page. Plain sqlite3 here rather than sqlite-utils' insert_all/update: these
        run per page on every crawl, and the Table API re-derives the columns of every
        record and, for update, reads each row back (it measured several times slower on
        ingestion, tests/benchmarks); the statements are fixed and the columns known."""
        conn = self.db.conn
        if plan.superseded:
            # Before the items change: the outgoing version keeps the text it had (its row
            # held NULL texts while it was current). An archive whose rows were written
            # behind the store's back may lack that version's row: it is written whole.
            conn.executemany(
                """INSERT INTO item_versions (agency, id, lang, version, title, body_text,
                                              body_html, content_hash, seen_at)
                   SELECT agency, id, lang, version, title, body_text, body_html,
                          content_hash, updated FROM items WHERE rowid = ?
                   ON CONFLICT (agency, id, lang, version) DO UPDATE SET
                       title = excluded.title, body_text = excluded.body_text,
                       body_html = excluded.body_html
                   WHERE item_versions.title IS NULL""",
                [(rowid,) for rowid in plan.superseded])
        if plan.inserts:
            marks = ", ".join("?" * len(ITEM_COLUMNS))
            conn.executemany(f"INSERT INTO items ({', '.join(ITEM_COLUMNS)}) VALUES ({marks})",
                             plan.inserts)
        for columns, values in plan.updates.items():
            assignments = ", ".join(f"{name} = ?" for name in columns)
            conn.executemany(f"UPDATE items SET {assignments} WHERE rowid = ?", values)
        for start in range(0, len(plan.seen), CHUNK):
            chunk = plan.seen[start : start + CHUNK]
            conn.execute(f"UPDATE items SET last_seen = ? WHERE rowid IN "
                         f"({', '.join('?' * len(chunk))})", [stamp, *chunk])
        if plan.versions:
            marks = ", ".join("?" * len(VERSION_COLUMNS))
            conn.executemany(f"INSERT INTO item_versions ({', '.join(VERSION_COLUMNS)}) "
                             f"VALUES ({marks})", plan.versions)
        if plan.reindex:
            self._index_search(plan.reindex)
        if plan.behind:
            # In the items' own transaction: a change stored is a change the feeds will
            # show. Once per feed and page, by the number of its changes.
            conn.executemany(
                """INSERT INTO feed_marks (agency, lang, seq) VALUES (?, ?, ?)
                   ON CONFLICT (agency, lang) DO UPDATE SET seq = seq + excluded.seq""",
                [(agency, lang, n) for (agency, lang), n in plan.behind.items()])

    # --- feed marks -----------------------------------------------------------------------

    def feeds_behind(self) -> dict[tuple[str, str], int]:
        """{(agency, lang): seq} of the groups whose feeds are behind the archive."""
        rows = self._where("feed_marks", "seq > published_seq", select="agency, lang, seq")
        return {(row["agency"], row["lang"]): row["seq"] for row in rows}

    def feeds_published(self, marks: dict[tuple[str, str], int]) -> None:
        """Record that the feeds now show every change up to these `seq`s (from feeds_behind,
        read before writing: a change stored meanwhile keeps its group behind)."""
        with self._writing("record the published feeds"):
            for (agency, lang), seq in marks.items():
                self.db.execute(
                    """UPDATE feed_marks SET published_seq = MAX(published_seq, ?)
                       WHERE agency = ? AND lang = ?""", [seq, agency, lang],
                )

    def _get_raw(self, agency: str, item_id: int, lang: str) -> dict[str, Any] | None:
        return self._get("items", (agency, item_id, lang))

    def get_item(self, agency: str, item_id: int, lang: str) -> dict | None:
        row = self._get_raw(agency, item_id, lang)
        return _decode_item(row) if row else None

    def known_hashes(self, agency: str, lang: str, ids: Iterable[int]) -> dict[int, str]:
        """{id: content_hash} of those `ids` already stored for this agency and language."""
        wanted = list(dict.fromkeys(ids))
        found: dict[int, str] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._where("items", f"{KEY_WHERE} AND id IN ({marks})",
                               [agency, lang, *chunk], select="id, content_hash")
            found.update((row["id"], row["content_hash"]) for row in rows)
        return found

    def versions(self, agency: str, item_id: int, lang: str) -> list[dict]:
        """Every version of an item, oldest first, each with its own title and bodies: the
        current version's row holds NULL texts (they are the item's, stored once), filled in
        here from `items`."""
        return self._rows(
            """SELECT v.agency, v.id, v.lang, v.version,
                      coalesce(v.title, i.title) AS title,
                      coalesce(v.body_text, i.body_text) AS body_text,
                      coalesce(v.body_html, i.body_html) AS body_html,
                      v.content_hash, v.seen_at, v.crawl_id
               FROM item_versions AS v
               LEFT JOIN items AS i ON i.agency = v.agency AND i.id = v.id AND i.lang = v.lang
               WHERE v.agency = ? AND v.lang = ? AND v.id = ? ORDER BY v.version""",
            [agency, lang, item_id])

    def translations(self, agency: str, item_id: int) -> dict[str, str]:
        rows = self._where("items", "agency = ? AND id = ?", [agency, item_id],
                           order_by="lang", select="lang, url")
        return {row["lang"]: row["url"] for row in rows}

    # --- feeds and search -----------------------------------------------------------------

    def feed_items(
        self, agency: str | None = None, lang: str | None = None, limit: int = 50
    ) -> list[dict]:
        """Complete items (dated, not cut off), newest first."""
        where = ["incomplete = 0", "published IS NOT NULL"]
        args: list[Any] = []
        for col, value in (("agency", agency), ("lang", lang)):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        rows = self._where("items", " AND ".join(where), args, order_by=ITEM_ORDER, limit=limit)
        return [_decode_item(row) for row in rows]

    def feed_groups(self) -> list[tuple[str, str]]:
        """Every (agency, lang) with an item a feed can show (dated, not cut off), in order:
        read from `item_counts` (one row per group, kept by triggers), not from `items`."""
        # Plain tuples, not sqlite-utils' dict rows: a publish reads one per feed (9,000).
        rows = self.db.execute("SELECT agency, lang FROM item_counts WHERE complete > 0 "
                               "ORDER BY agency, lang")
        return [(agency, lang) for agency, lang in rows]

    def search(
        self,
        query: str,
        limit: int = 20,
        *,
        agency: str | None = None,
        lang: str | None = None,
        since: datetime | date | str | None = None,
    ) -> list[dict]:
        """Items matching `query` (crawler/search.py: word forms, OR, "phrases", -word,
        prefix*), newest first; only of `agency`, in `lang`, published at or after `since`.

        Each hit is the item's row (as get_item) plus `agency_name` (the archive's name of the
        agency in the hit's language, None when unknown) and `snippet` (plain text around the
        first match). A query with nothing to look for finds nothing; one that cannot be run
        (only exclusions, too long) raises crawler.search.QueryError; `since` not a date,
        ValueError. One index walk in rowid (= publication) order that stops at `limit`
        (crawler/migrations.py, create_items_search): no sort, however common the word.
        """
        parsed = parse_query(query)
        if parsed.empty or limit < 1:
            return []
        first = key_range(require_iso(since))[0] if since is not None else 0
        rows = self._rows(
            """SELECT items.*, a.name_kk AS _name_kk, a.name_ru AS _name_ru,
                      a.name_en AS _name_en
               FROM items_search
               JOIN items_search_keys AS k ON k.key = items_search.rowid
               JOIN items ON items.agency = k.agency AND items.id = k.id AND items.lang = k.lang
               LEFT JOIN agencies AS a ON a.slug = items.agency
               WHERE items_search MATCH ? AND items_search.rowid >= ?
               ORDER BY items_search.rowid DESC LIMIT ?""",
            [parsed.match(lang=lang, agency=agency), first, limit],
        )
        hits = []
        for row in rows:
            names = {code: row.pop(f"_name_{code}") for code in ("kk", "ru", "en")}
            hit = _decode_item(row)
            hit["agency_name"] = names.get(hit["lang"]) or names["en"] or names["ru"] \
                or names["kk"]
            hit["snippet"] = parsed.snippet(hit["title"], hit["body_text"], hit["lang"])
            hits.append(hit)
        return hits

    def search_stamp(self) -> int:
        """A number that grows with every new or edited item (the sum of the feed marks'
        counters, bumped in the item's own transaction): a cached search result is current
        while it is unchanged. One row per agency and language, no item is read."""
        (total,) = self.db.execute("SELECT coalesce(sum(seq), 0) FROM feed_marks").fetchone()
        return int(total)

    def _index_search(self, entries: list[tuple[NewsItem, datetime]]) -> None:
        """(Re-)index stored items in the stemmed shadow index, in the save's transaction: an
        old key of an item (if any) becomes a tombstone, it takes a new key in the second of
        its instant. Batched: the highest key taken in each second the batch needs is one
        query, then every write is one executemany."""
        conn = self.db.conn
        firsts = [key_range(when)[0] for _, when in entries]
        tops = dict(conn.execute(
            """SELECT value, (SELECT max(key) FROM items_search_keys
                              WHERE key >= value AND key < value + ?)
               FROM json_each(?)""", [KEY_SLOTS, json.dumps(sorted(set(firsts)))]))
        keys, texts = [], []
        for (item, _), first in zip(entries, firsts, strict=True):
            top = tops.get(first)
            new = first if top is None else top + 1
            if new >= first + KEY_SLOTS:
                raise StoreError(f"cannot index {item.agency}/{item.id}/{item.lang}: too many "
                                 "items in the same second")
            tops[first] = new
            keys.append((new, *item.key))
            texts.append((new, index_text(item.title, item.lang),
                          index_text(item.body_text or "", item.lang), facet_token(item.agency),
                          facet_token(item.lang)))
        conn.executemany("UPDATE items_search_keys SET agency = NULL, id = NULL, lang = NULL "
                         "WHERE agency = ? AND id = ? AND lang = ?",
                         [item.key for item, _ in entries])
        conn.executemany("INSERT INTO items_search_keys (key, agency, id, lang) "
                         "VALUES (?, ?, ?, ?)", keys)
        conn.executemany("INSERT INTO items_search (rowid, title, body, agency, lang) "
                         "VALUES (?, ?, ?, ?, ?)", texts)

    # --- agencies -------------------------------------------------------------------------

    def upsert_agency(
        self,
        slug: str,
        *,
        names: dict[str, str] | None = None,
        now: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Create or update an agency; names and fields not given (or empty names) are kept.

        `names` maps a language (kk, ru, en) to the agency's name; `fields` are enabled, parent,
        kind. Passing fewer names than before never erases the others.
        """
        unknown = set(fields) - set(AGENCY_FIELDS)
        if unknown:
            raise ValueError(f"unknown agency fields: {', '.join(sorted(unknown))}")
        if set(names or {}) - set(LANGS):
            raise ValueError(f"agency names must be keyed by language {LANGS}: {names}")
        values: dict[str, Any] = {
            f"name_{lang}": name for lang, name in (names or {}).items() if name
        }
        values |= fields
        if values.get("enabled") is None:
            values.pop("enabled", None)  # NOT NULL: "not given", never "unknown"
        else:
            values["enabled"] = int(bool(values["enabled"]))
        stamp = _stamp(now)
        with self._writing(f"save agency {slug}"):
            agencies = self._table("agencies")
            row = self._get("agencies", slug)
            if row is None:
                agencies.insert({"slug": slug, **values, "first_seen": stamp, "updated": stamp})
                return
            changes = {col: v for col, v in values.items() if row[col] != v}
            if changes:
                agencies.update(slug, {**changes, "updated": stamp})

    def agencies(self) -> list[dict]:
        rows = self._where("agencies", order_by="slug")
        return [{**row, "enabled": bool(row["enabled"])} for row in rows]

    def item_counts(self) -> dict[str, int]:
        """{agency: items in every language}, from `item_counts` (kept by triggers on
        `items`): one row per agency and language is read, no item."""
        rows = self.db.execute("SELECT agency, sum(items) AS n FROM item_counts "
                               "GROUP BY agency HAVING n > 0")
        return {agency: n for agency, n in rows}

    # --- web pages (scheduler/site_pages.py) ----------------------------------------------

    def agency(self, slug: str) -> dict | None:
        """The `agencies` row of `slug` (names, kind, enabled), or None."""
        row = self._get("agencies", slug)
        return {**row, "enabled": bool(row["enabled"])} if row else None

    def lang_counts(self, agency: str) -> dict[str, int]:
        """{lang: items} of one agency, from `item_counts` (kept by triggers on `items`)."""
        rows = self._where("item_counts", "agency = ? AND items > 0", [agency],
                           order_by="lang", select="lang, items AS n")
        return {row["lang"]: row["n"] for row in rows}

    def latest_items(self, agency: str, limit: int = 30) -> list[dict]:
        """The agency's newest complete items in every language, newest first, without bodies.

        One index range per language (agency, lang, published), merged here: a single ORDER BY
        over all of the agency's languages would sort every item it ever published."""
        found: list[dict] = []
        for lang in LANGS:
            found += self._where(
                "items", f"{KEY_WHERE} AND incomplete = 0 AND published IS NOT NULL",
                [agency, lang], order_by=ITEM_ORDER, limit=limit,
                select="agency, id, lang, title, published, url, summary, version, updated")
        found.sort(key=lambda row: (row["published"], row["id"]), reverse=True)
        return found[:limit]

    def item_languages(self, agency: str, item_id: int) -> dict[str, dict]:
        """{lang: item} of every language the archive holds item `item_id` of `agency` in
        (a prefix of the primary key)."""
        rows = self._where("items", "agency = ? AND id = ?", [agency, item_id], order_by="lang")
        return {row["lang"]: _decode_item(row) for row in rows}

    # --- health and the status page ---------------------------------------------------------

    def recent_published(self, targets: Iterable[Target], per_target: int = 31
                         ) -> dict[Target, list[datetime]]:
        """Per target, the publication dates of its newest `per_target` complete items, newest
        first (an agency's rhythm, scheduler/incidents.py). One query: a correlated subquery
        per target that reads the (agency, lang, published) index backwards."""
        wanted = [[t.agency, t.lang] for t in dict.fromkeys(targets)]
        if not wanted:
            return {}
        rows = self._rows(
            """SELECT t.agency, t.lang, (
                   SELECT json_group_array(published) FROM (
                       SELECT published FROM items AS i
                       WHERE i.agency = t.agency AND i.lang = t.lang
                         AND i.published IS NOT NULL AND i.incomplete = 0
                       ORDER BY i.published DESC LIMIT ?)) AS dates
               FROM (SELECT json_extract(value, '$[0]') AS agency,
                            json_extract(value, '$[1]') AS lang
                     FROM json_each(?)) AS t""",
            [per_target, json.dumps(wanted)],
        )
        found: dict[Target, list[datetime]] = {}
        for row in rows:
            dates = [require_iso(value) for value in json.loads(row["dates"] or "[]")]
            found[Target(row["agency"], row["lang"])] = sorted(dates, reverse=True)
        return found

    def daily_counts(self, since: date) -> dict[str, dict[date, int]]:
        """Items published on each gov.kz local day from `since` on, per agency (every
        language): {agency: {day: n}}. One grouped query over the `published` index; the
        archive keeps `published` in Almaty time, so its first 10 characters are the day."""
        rows = self._rows(
            "SELECT agency, substr(published, 1, 10) AS day, count(*) AS n FROM items "
            "WHERE published >= ? GROUP BY agency, day",
            [since.isoformat()],
        )
        found: dict[str, dict[date, int]] = {}
        for row in rows:
            try:
                day = date.fromisoformat(row["day"])
            except (TypeError, ValueError):
                continue  # not a date: nothing to draw
            found.setdefault(row["agency"], {})[day] = row["n"]
        return found

    # --- the site-wide stream (crawler/spiders/govkz.py, crawler/pipelines.py) ---------------

    def known_hashes_filed(
        self, lang: str, keys: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], str]:
        """{(agency, id): content_hash} of those (agency, id) `keys` already stored in `lang`:
        known_hashes for a page of the site-wide list, whose items belong to many agencies."""
        wanted = set(keys)
        ids = list(dict.fromkeys(item_id for _, item_id in wanted))
        found: dict[tuple[str, int], str] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._where("items", f"lang = ? AND id IN ({marks})", [lang, *chunk],
                               select="agency, id, content_hash")
            found.update(((row["agency"], row["id"]), row["content_hash"]) for row in rows
                         if (row["agency"], row["id"]) in wanted)
        return found

    def discover_agency(self, slug: str, *, now: datetime | None = None) -> bool:
        """Add an agency first seen in the news (source 'discovered', its slug as its name
        until a refresh names it); True if it was new. A known agency is left as it is."""
        stamp = _stamp(now)
        with self._writing(f"discover agency {slug}"):
            # SQL: insert unless present, in one statement (upsert_agency would rename it).
            cursor = self.db.execute(
                """INSERT INTO agencies (slug, name_kk, name_ru, name_en, source, first_seen,
                                         updated)
                   VALUES (?, ?, ?, ?, 'discovered', ?, ?) ON CONFLICT (slug) DO NOTHING""",
                [slug, slug, slug, slug, stamp, stamp],
            )
            return cursor.rowcount == 1

    # --- the daemon's batches (scheduler/batching.py) ---------------------------------------

    def recent_rates(self, since: datetime) -> dict[Target, int]:
        """Items published at or after `since`, per agency x language: how busy each target
        is, to crawl the busiest first. One grouped query over the `published` index (stored
        in Almaty time, so `since` is compared in that form)."""
        rows = self._rows(
            "SELECT agency, lang, count(*) AS n FROM items WHERE published >= ? "
            "GROUP BY agency, lang",
            [isoformat(localize(since).astimezone(ALMATY))],
        )
        found: dict[Target, int] = {}
        for row in rows:
            try:
                found[Target(row["agency"], row["lang"])] = int(row["n"])
            except ValueError:
                continue  # not a target's name (an old row): no rate to rank by
        return found

    # --- feeds: batch reads ------------------------------------------------------------------

    def translations_of(
        self, keys: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], dict[str, str]]:
        """{(agency, id): {lang: url}} for many items at once: what translations() answers for
        one, in one primary-key query per agency and chunk instead of one per item (a feed of
        50 entries asks for 50)."""
        by_agency: dict[str, list[int]] = {}
        for agency, item_id in dict.fromkeys(keys):
            by_agency.setdefault(agency, []).append(item_id)
        found: dict[tuple[str, int], dict[str, str]] = {}
        for agency, ids in by_agency.items():
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = self._where("items", f"agency = ? AND id IN ({marks})", [agency, *chunk],
                                   order_by="id, lang", select="id, lang, url")
                for row in rows:
                    found.setdefault((agency, row["id"]), {})[row["lang"]] = row["url"]
        return found
