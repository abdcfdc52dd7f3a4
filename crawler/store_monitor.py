"""The archive's bookkeeping tables for crawling and monitoring: walk marks, response samples,
the daemon's schedule and incidents. Part of the store (with store.py and migrations.py, the
only modules that know SQL): a component the Archive holds as `archive.monitor`, on the
archive's own Database (one connection, so one transaction at a time for both)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import Table

from crawler.migrations import writing
from crawler.timeutil import ALMATY, isoformat, localize, parse_iso, utcnow

SCHEDULE_FIELDS = (
    "next_crawl", "interval", "last_crawl", "last_success", "last_error", "last_error_at",
    "consecutive_failures", "last_new", "last_kinds",
)  # fmt: skip
DEFAULT_INTERVAL = 3600


def _iso(value: datetime | None) -> str | None:
    return isoformat(localize(value)) if value else None


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
        return list(self._table(table).rows_where(
            where, list(args), order_by=order_by, limit=limit, select=select))

    # --- walk marks (crawler/sync.py) ------------------------------------------------------

    def high_water(self, agency: str, lang: str) -> datetime | None:
        rows = self._rows("sync_state", "agency = ? AND lang = ?", [agency, lang],
                          select="high_water")
        return parse_iso(rows[0]["high_water"]) if rows else None

    def set_high_water(
        self, agency: str, lang: str, newest: datetime | None, *, now: datetime | None = None
    ) -> None:
        """Record a completed walk. An empty list (newest None) keeps any earlier mark."""
        mark = isoformat(localize(newest).astimezone(ALMATY)) if newest else None
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
