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
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import NotFoundError, Table

from crawler.errors import StoreError
from crawler.items import LANGS, NewsItem, Reject
from crawler.liveness import is_running, start_time
from crawler.migrations import migrate, one_line, writing
from crawler.problems import Problem, ProblemKind
from crawler.store_monitor import Monitor, Target
from crawler.timeutil import ALMATY, isoformat, localize, utcnow

CRAWL_STATUSES = ("running", "ok", "partial", "failed", "killed")
CRAWL_COUNTS = ("found", "new", "updated", "unchanged", "rejected", "incomplete")
AGENCY_FIELDS = ("enabled", "parent", "kind")
ITEM_ORDER = "published DESC, id DESC"
KEY_WHERE = "agency = ? AND lang = ?"
FTS_ORDER = f"items_fts.rank, {ITEM_ORDER}"
# Parameters per IN (...) query: well under SQLite's oldest limit of 999 variables.
CHUNK = 500


class SaveResult(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def _stamp(now: datetime | None) -> str:
    """A bookkeeping timestamp (first_seen, started, ...): UTC, ISO 8601 with offset."""
    return isoformat(localize(now or utcnow()).astimezone(UTC))


def _published(value: datetime | None) -> str | None:
    # gov.kz local time for every item, so that string order is time order (except for the
    # hour repeated when Almaty moved from UTC+6 to UTC+5 on 2024-03-01).
    return isoformat(localize(value).astimezone(ALMATY)) if value else None


def _merge(old: list[str], new: list[str]) -> list[str]:
    """Ordered union: the old categories first, then the new ones not seen before."""
    return list(dict.fromkeys([*old, *new]))


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
                migrate(db)
                archive = cls(db)
                archive.mark_killed_crawls()
            except BaseException:
                db.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open archive {path}: {one_line(exc)}") from exc
        return archive

    @classmethod
    def memory(cls) -> Archive:
        """A migrated in-memory archive, for tests."""
        db = Database(memory=True)
        migrate(db)
        return cls(db)

    def close(self) -> None:
        self.db.close()

    # --- plumbing -------------------------------------------------------------------------

    def _writing(self, what: str) -> AbstractContextManager[None]:
        """One transaction (BEGIN IMMEDIATE); a database failure is a StoreError."""
        return writing(self.db, what)

    def _table(self, name: str) -> Table:
        # Cached: db.table() looks the name up among the views on every call.
        if name not in self._tables:
            self._tables[name] = self.db.table(name)
        return self._tables[name]

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """The rows of a query that needs SQL (DISTINCT, GROUP BY, a join)."""
        return list(self.db.query(sql, list(params)))

    def _where(self, table: str, where: str | None = None, args: Iterable[Any] = (), *,
               order_by: str | None = None, limit: int | None = None,
               select: str = "*") -> list[dict[str, Any]]:
        return list(self._table(table).rows_where(
            where, list(args), order_by=order_by, limit=limit, select=select))

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

    @staticmethod
    def content_hash(item: NewsItem) -> str:
        """SHA-256 of what a reader sees change: title, body_html and body_text."""
        digest = hashlib.sha256()
        for part in (item.title, item.body_html, item.body_text):
            digest.update(part.encode())
            digest.update(b"\0")  # a separator, so ("ab", "") and ("a", "b") differ
        return digest.hexdigest()

    def save_item(
        self, item: NewsItem, *, crawl_id: int | None = None, now: datetime | None = None
    ) -> SaveResult:
        """Store `item` in one transaction: a crash never leaves half an item behind."""
        stamp = _stamp(now)
        digest = self.content_hash(item)
        with self._writing(f"save {item.agency}/{item.id}/{item.lang}"):
            row = self._get_raw(item.agency, item.id, item.lang)
            if row is None:
                self._insert_new(item, digest, stamp, crawl_id)
                self._feed_behind(item)
                return SaveResult.NEW
            key = (item.agency, item.id, item.lang)
            items = self._table("items")
            if item.incomplete and not row["incomplete"]:
                # A cut-off copy of an item we hold complete: never downgrade it.
                items.update(key, {"last_seen": stamp})
                return SaveResult.UNCHANGED
            changes = self._metadata_changes(row, item)
            changes["last_seen"] = stamp
            result = SaveResult.UNCHANGED
            if row["incomplete"] and not item.incomplete:
                changes |= {"published": _published(item.published), "incomplete": 0}
                result = SaveResult.UPDATED
            if digest != row["content_hash"]:
                version = row["version"] + 1
                changes |= {
                    "title": item.title, "body_text": item.body_text, "body_html": item.body_html,
                    "summary": item.summary or row["summary"], "content_hash": digest,
                    "source": item.source or row["source"], "version": version, "updated": stamp,
                }  # fmt: skip
                self._insert_version(item, version, digest, stamp, crawl_id)
                result = SaveResult.UPDATED
            items.update(key, changes)
            if result is SaveResult.UPDATED:
                self._feed_behind(item)
            return result

    def _feed_behind(self, item: NewsItem) -> None:
        # In the item's own transaction: a change stored is a change the feeds will show.
        self.db.execute(
            """INSERT INTO feed_marks (agency, lang, seq) VALUES (?, ?, 1)
               ON CONFLICT (agency, lang) DO UPDATE SET seq = seq + 1""",
            [item.agency, item.lang],
        )

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

    @staticmethod
    def _metadata_changes(row: dict[str, Any], item: NewsItem) -> dict[str, Any]:
        """What a re-seen item adds without changing its content: views, categories, gaps."""
        changes: dict[str, Any] = {}
        if item.views is not None and item.views != row["views"]:
            changes["views"] = item.views
        old = json.loads(row["categories"] or "[]")
        merged = _merge(old, item.categories)
        if merged != old:
            changes["categories"] = json.dumps(merged, ensure_ascii=False)
        if not row["image"] and item.image:
            changes["image"] = item.image
        if not row["summary"] and item.summary:
            changes["summary"] = item.summary
        return changes

    def _insert_new(self, item: NewsItem, digest: str, stamp: str, crawl_id: int | None) -> None:
        self._table("items").insert({
            "agency": item.agency, "id": item.id, "lang": item.lang,
            "published": _published(item.published), "title": item.title, "url": item.url,
            "summary": item.summary, "body_text": item.body_text, "body_html": item.body_html,
            "categories": json.dumps(_merge([], item.categories), ensure_ascii=False),
            "image": item.image, "views": item.views, "incomplete": int(item.incomplete),
            "source": item.source, "content_hash": digest, "version": 1,
            "updated": stamp, "first_seen": stamp, "last_seen": stamp,
        })  # fmt: skip
        self._insert_version(item, 1, digest, stamp, crawl_id)

    def _insert_version(
        self, item: NewsItem, version: int, digest: str, stamp: str, crawl_id: int | None
    ) -> None:
        self._table("item_versions").insert({
            "agency": item.agency, "id": item.id, "lang": item.lang, "version": version,
            "title": item.title, "body_text": item.body_text, "body_html": item.body_html,
            "content_hash": digest, "seen_at": stamp, "crawl_id": crawl_id,
        })  # fmt: skip

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
        return self._where("item_versions", f"{KEY_WHERE} AND id = ?", [agency, lang, item_id],
                           order_by="version")

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
        rows = self._rows(
            "SELECT DISTINCT agency, lang FROM items WHERE incomplete = 0 "
            "AND published IS NOT NULL ORDER BY agency, lang"
        )
        return [(row["agency"], row["lang"]) for row in rows]

    def search(self, query: str, limit: int = 20) -> list[dict]:
        """Items whose title or body contains every word of `query`, best match first.

        sqlite-utils' quote_fts() quotes each word, so FTS5 syntax in user input (AND, NOT, *,
        :, parentheses) is literal; a "quoted phrase" stays a phrase, and an unbalanced quote
        is closed. A query with no word left finds nothing.
        """
        match = self.db.quote_fts(query)
        if not match:
            return []
        items = self._table("items")
        columns = [column.name for column in items.columns]  # not the rowid search() adds
        rows = items.search(match, order_by=FTS_ORDER, columns=columns, limit=limit)
        return [_decode_item(row) for row in rows]

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
        rows = self._rows("SELECT agency, count(*) AS n FROM items GROUP BY agency")
        return {row["agency"]: row["n"] for row in rows}

    # --- for callers outside the store's owners: archive.monitor, as it was spelled --------
    # crawler/commands.py (last_strategy), scheduler/commands.py (schedule, incidents),
    # tests/test_crawl_faults.py (high_water, samples), tests/test_status_browser.py
    # (save_schedule). New code calls archive.monitor.

    def high_water(self, agency: str, lang: str) -> datetime | None:
        return self.monitor.high_water(agency, lang)

    def samples(self, agency: str | None = None, limit: int = 20) -> list[dict]:
        return self.monitor.samples(agency, limit)

    def last_strategy(self, site: str) -> str | None:
        return self.monitor.last_strategy(site)

    def schedule(self) -> dict[str, dict[str, Any]]:
        """The schedule by target key ("agency/lang"; JSON-friendly): monitor.schedule()."""
        return {target.key: row for target, row in self.monitor.schedule().items()}

    def save_schedule(self, target: Target | str, **fields: Any) -> None:
        self.monitor.save_schedule(Target.of(target), **fields)

    def incidents(self, limit: int = 50) -> list[dict]:
        return self.monitor.incidents(limit)
