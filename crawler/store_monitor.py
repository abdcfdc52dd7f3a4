"""The archive's bookkeeping tables for crawling and monitoring: walk marks, response samples,
the daemon's schedule and incidents. Part of the store (with store.py and migrations.py, the
only modules that know SQL): a component the Archive holds as `archive.monitor`, on the
archive's own Database (one connection, so one transaction at a time for both)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import Table

from crawler.items import PageMemo
from crawler.migrations import select_rows, writing
from crawler.timeutil import ALMATY, isoformat, localize, parse_iso, utcnow

SCHEDULE_FIELDS = (
    "next_crawl", "interval", "last_crawl", "last_success", "last_error", "last_error_at",
    "consecutive_failures", "last_new", "last_kinds",
)  # fmt: skip
DEFAULT_INTERVAL = 3600


def _iso(value: datetime | None) -> str | None:
    return isoformat(localize(value)) if value else None


def _mark_text(newest: datetime | None) -> str | None:
    """A walk's high water as `sync_state` stores it (Almaty time, so text order is time
    order)."""
    return isoformat(localize(newest).astimezone(ALMATY)) if newest else None


@dataclass(frozen=True)
class Target:
    """What the daemon schedules and crawls: one agency in one language.

    The `schedule` table keys it by two columns (agency, lang). Its string form, `key`
    ("mod/en"), is only for the edges that need text: the crawl child's `--target`, the crawl
    summary's target names, log lines, incident messages and job ids.
    """

    agency: str
    lang: str

    def __post_init__(self) -> None:
        for name, value in (("agency", self.agency), ("lang", self.lang)):
            if not isinstance(value, str) or not value or "/" in value:
                raise ValueError(f"a target's {name} must be a name without '/', not {value!r}")

    @property
    def key(self) -> str:
        return f"{self.agency}/{self.lang}"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def parse(cls, text: str) -> Target:
        """Target.parse("mod/en") == Target("mod", "en"); ValueError unless AGENCY/LANG."""
        agency, slash, lang = str(text).partition("/")
        if not slash:
            raise ValueError(f"a target is AGENCY/LANG, not {text!r}")
        return cls(agency, lang)

    @classmethod
    def of(cls, value: Target | str) -> Target:
        """A Target as is, or parsed from its string form (for callers at the edges)."""
        return value if isinstance(value, Target) else cls.parse(value)


class Monitor:
    """The bookkeeping tables of one archive (`archive.monitor`)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._tables: dict[str, Table] = {}

    def _table(self, name: str) -> Table:
        # Cached: db.table() looks the name up among the views on every call.
        if name not in self._tables:
            self._tables[name] = self.db.table(name)
        return self._tables[name]

    def _rows(self, table: str, where: str | None = None, args: Iterable[Any] = (), *,
              order_by: str | None = None, limit: int | None = None,
              select: str = "*") -> list[dict[str, Any]]:
        return select_rows(self.db, table, where, args, order_by=order_by, limit=limit,
                           select=select)

    # --- walk marks (crawler/sync.py) ------------------------------------------------------

    def high_water(self, agency: str, lang: str) -> datetime | None:
        rows = self._rows("sync_state", "agency = ? AND lang = ?", [agency, lang],
                          select="high_water")
        return parse_iso(rows[0]["high_water"]) if rows else None

    def set_high_water(
        self, agency: str, lang: str, newest: datetime | None, *, now: datetime | None = None
    ) -> None:
        """Record a completed walk. An empty list (newest None) keeps any earlier mark."""
        mark = _mark_text(newest)
        with writing(self.db, "record the walk"):
            # SQL: an upsert that keeps the old column when the new value is NULL.
            self.db.execute(
                """INSERT INTO sync_state (agency, lang, high_water, walked_at)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (agency, lang) DO UPDATE SET
                       high_water = COALESCE(excluded.high_water, high_water),
                       walked_at = excluded.walked_at""",
                [agency, lang, mark, isoformat(localize(now or utcnow()).astimezone(UTC))],
            )

    def stored_marks(self) -> dict[tuple[str, str], str | None]:
        """Every walk's stored high water as stored, by (agency, lang), in one query: what a
        crawl reads once instead of once per walk and page (None: walked, no mark yet)."""
        return {(row["agency"], row["lang"]): row["high_water"]
                for row in self._rows("sync_state", select="agency, lang, high_water")}

    def mark_unchanged(self, agency: str, lang: str, newest: datetime | None,
                       stored: Mapping[tuple[str, str], str | None] | None = None) -> bool:
        """Whether set_high_water(agency, lang, newest) would leave the mark as stored: the
        target has a row and `newest` is its high water (or None, which keeps it). Then the
        walk only needs its walked_at, which record_walks may write later.

        `stored`: stored_marks() read earlier, for the walks it has; a walk it lacks is read
        now. An earlier read can only be older than the archive, and then it says a mark is
        unchanged that another process has since moved on: not writing it then keeps the newer
        mark, which writing it would have put back."""
        if stored is not None and (agency, lang) in stored:
            return newest is None or stored[agency, lang] == _mark_text(newest)
        rows = self._rows("sync_state", "agency = ? AND lang = ?", [agency, lang],
                          select="high_water")
        return bool(rows) and (newest is None or rows[0]["high_water"] == _mark_text(newest))

    def record_walks(self, walks: dict[tuple[str, str], datetime]) -> None:
        """Record walks that left their mark unchanged (mark_unchanged), {(agency, lang):
        when walked}: only walked_at moves, and never back; the high water stays what is
        stored now (another process may have moved it since), so a late record only lags."""
        if not walks:
            return
        with writing(self.db, f"record {len(walks)} walks"):
            self.db.conn.executemany(
                "UPDATE sync_state SET walked_at = MAX(walked_at, ?) WHERE agency = ? AND lang = ?",
                [(isoformat(localize(when).astimezone(UTC)), agency, lang)
                 for (agency, lang), when in walks.items()])

    def walked_since(self, since: datetime) -> set[Target]:
        """The targets of every walk completed at or after `since`: what a crawl finished
        even when its process was killed before it could report (crawl_timeout)."""
        # walked_at is whole seconds in UTC (set_high_water), so compare it in that form.
        start = localize(since).astimezone(UTC).replace(microsecond=0)
        rows = self._rows("sync_state", "walked_at >= ?", [isoformat(start)],
                          select="agency, lang")
        return {Target(row["agency"], row["lang"]) for row in rows}

    def last_strategy(self, site: str) -> str | None:
        """The access strategy of the newest live crawl of `site` that got in (not via RSS)."""
        rows = self._rows(
            "crawls",
            "kind = 'govkz' AND target = ? AND strategy IS NOT NULL AND strategy != 'rss' "
            "AND status != 'failed'",
            [site], order_by="id DESC", limit=1, select="strategy",
        )
        return rows[0]["strategy"].split(",")[0] if rows else None

    # --- samples of unknown responses ------------------------------------------------------

    def save_sample(
        self, agency: str, lang: str, *, url: str, status: int, reason: str, body: bytes,
        crawl_id: int | None = None, now: datetime | None = None,
    ) -> int:
        with writing(self.db, "save a response sample"):
            table = self._table("samples").insert({
                "agency": agency, "lang": lang, "url": url, "status": status, "reason": reason,
                "body": body, "seen_at": _iso(now or utcnow()), "crawl_id": crawl_id,
            })  # fmt: skip
            return table.last_rowid or 0

    def samples(self, agency: str | None = None, limit: int = 20) -> list[dict]:
        where, args = ("agency = ?", [agency]) if agency else (None, [])
        return self._rows("samples", where, args, order_by="id DESC", limit=limit)

    # --- the daemon's schedule -------------------------------------------------------------

    def schedule(self) -> dict[Target, dict[str, Any]]:
        """Every row of the `schedule` table by its target (rows keep `agency` and `lang`)."""
        rows = self._rows("schedule", order_by="agency, lang")
        return {Target(row["agency"], row["lang"]): row for row in rows}

    def save_schedule(self, target: Target, **fields: Any) -> None:
        """Create or update the row of `target`: the given SCHEDULE_FIELDS are set (datetimes
        become ISO 8601), the others kept; `interval` is 3600 unless given."""
        unknown = set(fields) - set(SCHEDULE_FIELDS)
        if unknown:
            raise ValueError(f"unknown schedule field(s): {', '.join(sorted(unknown))}")
        values = {k: _iso(v) if isinstance(v, datetime) else v for k, v in fields.items()}
        values.setdefault("interval", DEFAULT_INTERVAL)
        with writing(self.db, "save the schedule"):
            # sqlite-utils >= 4: INSERT ... ON CONFLICT (agency, lang) DO UPDATE SET (given).
            self._table("schedule").upsert(
                {"agency": target.agency, "lang": target.lang, **values}, pk=("agency", "lang")
            )

    # --- incidents -------------------------------------------------------------------------

    def add_incident(
        self, agency: str, kind: str, message: str, *, now: datetime | None = None
    ) -> int:
        """A row of `incidents`; `agency` is what it is about (a target's "agency/lang")."""
        with writing(self.db, "record an incident"):
            table = self._table("incidents").insert({
                "agency": agency, "kind": kind, "message": message, "at": _iso(now or utcnow()),
            })  # fmt: skip
            return table.last_rowid or 0

    def incidents(self, limit: int = 50) -> list[dict]:
        return self._rows("incidents", order_by="id DESC", limit=limit)

    def latest_incident_kinds(self, kinds: Iterable[str]) -> dict[str, str]:
        """{agency column: kind} of the newest incident among `kinds` of everything that has
        one, e.g. whether a target's last silence incident opened or closed its silence."""
        wanted = list(dict.fromkeys(kinds))
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = self.db.query(
            f"SELECT agency, kind FROM incidents WHERE id IN (SELECT max(id) FROM incidents "
            f"WHERE kind IN ({marks}) GROUP BY agency)", wanted)
        return {row["agency"]: row["kind"] for row in rows}

    # --- what a site speaks (crawler/siteprobe.py) -----------------------------------------

    def site_probe(self, site: str) -> dict[str, Any]:
        """{"page_base": 0|1|None, "kk_code": "kk"|"kz"|None} remembered for `site`."""
        rows = self._rows("site_probe", "site = ?", [site], select="page_base, kk_code")
        return rows[0] if rows else {"page_base": None, "kk_code": None}

    def save_site_probe(self, site: str, *, page_base: int | None = None,
                        kk_code: str | None = None, now: datetime | None = None) -> None:
        """Remember what a probe of `site` found; a value not given keeps the stored one."""
        with writing(self.db, "remember the site probe"):
            self.db.execute(
                """INSERT INTO site_probe (site, page_base, kk_code, probed_at)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (site) DO UPDATE SET
                       page_base = COALESCE(excluded.page_base, page_base),
                       kk_code = COALESCE(excluded.kk_code, kk_code),
                       probed_at = excluded.probed_at""",
                [site, page_base, kk_code, _iso(now or utcnow())],
            )

    # --- access sessions kept between crawls (crawler/access_session.py) -------------------

    def access_session(self, site: str, strategy: str) -> dict[str, Any] | None:
        """The `access_sessions` row of `site` and `strategy`, if any (one SELECT of one row:
        a concurrent writer's row is read whole or not at all)."""
        rows = self._rows("access_sessions", "site = ? AND strategy = ?", [site, strategy])
        return rows[0] if rows else None

    def save_access_session(self, site: str, strategy: str, *, secrets: str,
                            obtained_at: datetime, expires_at: datetime) -> None:
        """Keep the session a handshake gave, replacing the stored one (last writer wins), in
        one statement."""
        with writing(self.db, "store the access session"):
            self.db.execute(
                """INSERT INTO access_sessions (site, strategy, secrets, obtained_at, expires_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (site, strategy) DO UPDATE SET
                       secrets = excluded.secrets, obtained_at = excluded.obtained_at,
                       expires_at = excluded.expires_at""",
                [site, strategy, secrets, isoformat(obtained_at.astimezone(UTC)),
                 isoformat(expires_at.astimezone(UTC))],
            )

    def drop_access_session(self, site: str, strategy: str, *, secrets: str) -> None:
        """Forget the stored session of `site` and `strategy` if it is still `secrets` (a newer
        one another crawl stored meanwhile is kept)."""
        with writing(self.db, "drop the access session"):
            self.db.execute(
                "DELETE FROM access_sessions WHERE site = ? AND strategy = ? AND secrets = ?",
                [site, strategy, secrets])

    # --- full-history backfill cursors (crawler/backfill.py) -------------------------------

    def backfill_cursor(self, agency: str, lang: str) -> dict[str, Any] | None:
        """The `backfill_cursor` row of one target (agency or '*', language), if any."""
        rows = self._rows("backfill_cursor", "agency = ? AND lang = ?", [agency, lang])
        return rows[0] if rows else None

    def backfill_cursors(self) -> list[dict[str, Any]]:
        return self._rows("backfill_cursor", order_by="agency, lang")

    def save_backfill_cursor(
        self, agency: str, lang: str, *, page: int, page_size: int,
        oldest: datetime | None, oldest_id: int | None, newest: datetime | None,
        newest_id: int | None, since: datetime | None, total: int | None = None,
        finished: bool = False, now: datetime | None = None,
    ) -> None:
        """Move the cursor of a target (created on its first page); `started_at` stays the
        first run's, and `finished_at` is set once the walk reached its end."""
        stamp = _iso(now or utcnow())
        with writing(self.db, "move the backfill cursor"):
            self.db.execute(
                """INSERT INTO backfill_cursor (agency, lang, page, page_size, oldest, oldest_id,
                       newest, newest_id, total, since, started_at, updated_at, finished_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (agency, lang) DO UPDATE SET
                       page = excluded.page, page_size = excluded.page_size,
                       oldest = excluded.oldest, oldest_id = excluded.oldest_id,
                       newest = excluded.newest, newest_id = excluded.newest_id,
                       total = COALESCE(excluded.total, total), since = excluded.since,
                       updated_at = excluded.updated_at, finished_at = excluded.finished_at""",
                [agency, lang, page, page_size, _iso(oldest), oldest_id, _iso(newest),
                 newest_id, total, _iso(since), stamp, stamp, stamp if finished else None],
            )

    def reset_backfill_cursor(self, agency: str, lang: str) -> None:
        """Forget where a backfill of the target stood (`backfill --restart`)."""
        with writing(self.db, "reset the backfill cursor"):
            self._table("backfill_cursor").delete_where("agency = ? AND lang = ?", [agency, lang])

    # --- many schedule rows at once (the daemon's plans and batches) ------------------------

    def save_schedules(self, rows: Iterable[tuple[Target, dict[str, Any]]]) -> None:
        """save_schedule for many targets in one transaction (a plan or a batch of thousands
        of targets costs one commit, not one each). Every row must give the same fields."""
        records = []
        for target, fields in rows:
            unknown = set(fields) - set(SCHEDULE_FIELDS)
            if unknown:
                raise ValueError(f"unknown schedule field(s): {', '.join(sorted(unknown))}")
            values = {k: _iso(v) if isinstance(v, datetime) else v for k, v in fields.items()}
            values.setdefault("interval", DEFAULT_INTERVAL)
            records.append({"agency": target.agency, "lang": target.lang, **values})
        if not records:
            return
        with writing(self.db, f"save the schedule of {len(records)} targets"):
            self._table("schedule").upsert_all(records, pk=("agency", "lang"))

    # --- page memos (crawler/page_memo.py) --------------------------------------------------

    def page_memos(
        self, walks: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], PageMemo | None]:
        """The stored memos of these walks (agency or '*', language), in one query, by walk: a
        memo whose every item is still stored with the content hash it records; None for a
        walk whose stored memo names an item edited or no longer stored since, which the
        crawl must not use; walks without one absent."""
        wanted = [list(walk) for walk in dict.fromkeys(walks)]
        if not wanted:
            return {}
        cursor = self.db.execute(
            """SELECT m.agency, m.lang, m.version, m.digest, m.newest, m.oldest, m.found,
                      m.items, NOT EXISTS (
                          SELECT 1 FROM json_each(m.items) AS k
                          LEFT JOIN items AS i ON i.agency = json_extract(k.value, '$[0]')
                               AND i.id = json_extract(k.value, '$[1]') AND i.lang = m.lang
                          WHERE i.content_hash IS NOT json_extract(k.value, '$[2]')) AS usable
               FROM json_each(?) AS w JOIN page_memos AS m
                 ON m.agency = json_extract(w.value, '$[0]')
                AND m.lang = json_extract(w.value, '$[1]')""",
            [json.dumps(wanted)])
        memos: dict[tuple[str, str], PageMemo | None] = {}
        for agency, lang, version, digest, newest, oldest, found, items, usable in cursor:
            memos[agency, lang] = PageMemo(
                agency, lang, digest, newest=parse_iso(newest), oldest=parse_iso(oldest),
                found=found, items=tuple((a, i, h) for a, i, h in json.loads(items)),
                version=version,
            ) if usable else None
        return memos

    def save_page_memo(self, memo: PageMemo, *, now: datetime | None = None) -> None:
        """Keep `memo` as its walk's (replacing any other). Dates at full precision: the walk
        rule compares them with `--since` to the microsecond."""
        with writing(self.db, "keep the page memo"):
            self.db.execute(
                """INSERT INTO page_memos (agency, lang, version, digest, newest, oldest, found,
                                           items, stored_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (agency, lang) DO UPDATE SET
                       version = excluded.version, digest = excluded.digest,
                       newest = excluded.newest, oldest = excluded.oldest,
                       found = excluded.found, items = excluded.items,
                       stored_at = excluded.stored_at""",
                [memo.agency, memo.lang, memo.version, memo.digest,
                 memo.newest.isoformat() if memo.newest else None,
                 memo.oldest.isoformat() if memo.oldest else None, memo.found,
                 json.dumps([list(item) for item in memo.items], ensure_ascii=False),
                 _iso(now or utcnow())])

    def forget_page_memo(self, agency: str, lang: str) -> None:
        """Drop the memo of a walk (its page 1 was not quiet); none stored is no write."""
        with writing(self.db, "forget the page memo"):
            self._table("page_memos").delete_where("agency = ? AND lang = ?", [agency, lang])
