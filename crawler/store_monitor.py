"""The archive's bookkeeping tables for crawling and monitoring: walk marks, response samples,
the daemon's schedule and incidents. Part of the store (with store.py and migrations.py, the
only modules that know SQL); mixed into Archive so callers see one object."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crawler.timeutil import ALMATY, isoformat, localize, utcnow

SCHEDULE_FIELDS = (
    "next_crawl", "interval", "last_crawl", "last_success", "last_error", "last_error_at",
    "consecutive_failures", "last_new", "last_kinds",
)


def _iso(value: datetime | None) -> str | None:
    return isoformat(localize(value)) if value else None


class MonitorTables:
    """Methods for Archive; they rely on its `db`, `_writing`, `_rows` and `_insert`."""

    db: Any

    # --- walk marks (crawler/sync.py) ------------------------------------------------------

    def high_water(self, agency: str, lang: str) -> datetime | None:
        rows = self._rows(  # type: ignore[attr-defined]
            "SELECT high_water FROM sync_state WHERE agency = ? AND lang = ?", [agency, lang]
        )
        if not rows or not rows[0]["high_water"]:
            return None
        return datetime.fromisoformat(rows[0]["high_water"])

    def set_high_water(
        self, agency: str, lang: str, newest: datetime | None, *, now: datetime | None = None
    ) -> None:
        """Record a completed walk. An empty list (newest None) keeps any earlier mark."""
        mark = isoformat(localize(newest).astimezone(ALMATY)) if newest else None
        with self._writing("record the walk"):  # type: ignore[attr-defined]
            self.db.execute(
                """INSERT INTO sync_state (agency, lang, high_water, walked_at)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (agency, lang) DO UPDATE SET
                       high_water = COALESCE(excluded.high_water, high_water),
                       walked_at = excluded.walked_at""",
                [agency, lang, mark, isoformat(localize(now or utcnow()).astimezone(UTC))],
            )

    def walked_since(self, since: datetime) -> set[tuple[str, str]]:
        """(agency, lang) of every walk completed at or after `since`: what a crawl finished
        even when its process was killed before it could report (crawl_timeout)."""
        # walked_at is whole seconds in UTC (set_high_water), so compare it in that form.
        start = localize(since).astimezone(UTC).replace(microsecond=0)
        rows = self._rows(  # type: ignore[attr-defined]
            "SELECT agency, lang FROM sync_state WHERE walked_at >= ?", [isoformat(start)]
        )
        return {(row["agency"], row["lang"]) for row in rows}

    def last_strategy(self, site: str) -> str | None:
        """The access strategy of the newest live crawl of `site` that got in (not via RSS)."""
        rows = self._rows(  # type: ignore[attr-defined]
            """SELECT strategy FROM crawls WHERE kind = 'govkz' AND target = ?
               AND strategy IS NOT NULL AND strategy != 'rss' AND status != 'failed'
               ORDER BY id DESC LIMIT 1""", [site],
        )
        return rows[0]["strategy"].split(",")[0] if rows else None

    # --- samples of unknown responses ------------------------------------------------------

    def save_sample(
        self, agency: str, lang: str, *, url: str, status: int, reason: str, body: bytes,
        crawl_id: int | None = None, now: datetime | None = None,
    ) -> int:
        with self._writing("save a response sample"):  # type: ignore[attr-defined]
            return self._insert("samples", {  # type: ignore[attr-defined]
                "agency": agency, "lang": lang, "url": url, "status": status, "reason": reason,
                "body": body, "seen_at": _iso(now or utcnow()), "crawl_id": crawl_id,
            })

    def samples(self, agency: str | None = None, limit: int = 20) -> list[dict]:
        where, params = ("WHERE agency = ?", [agency]) if agency else ("", [])
        return self._rows(  # type: ignore[attr-defined]
            f"SELECT * FROM samples {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )

    # --- the daemon's schedule -------------------------------------------------------------

    def schedule(self) -> dict[str, dict]:
        rows = self._rows("SELECT * FROM schedule")  # type: ignore[attr-defined]
        return {row["agency"]: row for row in rows}

    def save_schedule(self, agency: str, **fields: Any) -> None:
        unknown = set(fields) - set(SCHEDULE_FIELDS)
        if unknown:
            raise ValueError(f"unknown schedule field(s): {', '.join(sorted(unknown))}")
        values = {k: _iso(v) if isinstance(v, datetime) else v for k, v in fields.items()}
        values.setdefault("interval", 3600)
        cols = ["agency", *values]
        updates = ", ".join(f"{c} = excluded.{c}" for c in values)
        with self._writing("save the schedule"):  # type: ignore[attr-defined]
            self.db.execute(
                f"INSERT INTO schedule ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON CONFLICT (agency) DO UPDATE SET {updates}",
                [agency, *values.values()],
            )

    # --- incidents -------------------------------------------------------------------------

    def add_incident(
        self, agency: str, kind: str, message: str, *, now: datetime | None = None
    ) -> int:
        with self._writing("record an incident"):  # type: ignore[attr-defined]
            return self._insert("incidents", {  # type: ignore[attr-defined]
                "agency": agency, "kind": kind, "message": message, "at": _iso(now or utcnow()),
            })

    def incidents(self, limit: int = 50) -> list[dict]:
        return self._rows(  # type: ignore[attr-defined]
            "SELECT * FROM incidents ORDER BY id DESC LIMIT ?", [limit]
        )

    def item_counts(self) -> dict[str, int]:
        rows = self._rows(  # type: ignore[attr-defined]
            "SELECT agency, count(*) AS n FROM items GROUP BY agency"
        )
        return {row["agency"]: row["n"] for row in rows}
