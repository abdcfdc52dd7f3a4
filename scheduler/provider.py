"""What the status pages show, read from the archive (the daemon persists every decision there,
so `serve` alone shows the same as the running daemon)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.agencies import AgencyRegistry
from crawler.store import Archive
from crawler.store_monitor import Target
from crawler.timeutil import require_iso
from scheduler.status_page import AgencyStatus

log = logging.getLogger(__name__)


def _when(value: str | None) -> datetime | None:
    return require_iso(value) if value else None


def _latest(values: list[datetime | None]) -> datetime | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


class ArchiveStatus:
    """StatusProvider over the archive's `schedule` table, item counts and the feeds dir."""

    def __init__(self, archive: Archive, registry: AgencyRegistry, feeds: Path,
                 targets: Iterable[Target | str] | None = None) -> None:
        self.archive = archive
        self.registry = registry
        self.feeds = feeds
        # What the daemon crawls (Targets, or "agency/lang" from the command line); None:
        # whatever the schedule holds.
        self.targets = None if targets is None else [Target.of(t) for t in targets]

    def agencies_status(self) -> list[AgencyStatus]:
        schedule = self.archive.monitor.schedule()
        counts = self.archive.item_counts()
        targets = self.targets if self.targets is not None else list(schedule)
        by_agency: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for target in targets:
            by_agency.setdefault(target.agency, []).append(
                (target.lang, schedule.get(target, {})))
        for agency in counts:  # archived agencies no longer crawled still show
            by_agency.setdefault(agency, [])
        return [self._status(agency, rows, counts.get(agency, 0))
                for agency, rows in sorted(by_agency.items())]

    def _status(self, agency: str, rows: list[tuple[str, dict[str, Any]]],
                items: int) -> AgencyStatus:
        failing = [r for _, r in rows if r.get("consecutive_failures")]
        # The most recent error of a target that is failing now (ISO UTC strings sort by time).
        last = max(failing, key=lambda r: r.get("last_error_at") or "", default=None)
        nexts = [when for _, r in rows if (when := _when(r.get("next_crawl"))) is not None]
        return AgencyStatus(
            slug=agency,
            name=self.registry.name(agency, "en"),
            enabled=bool(rows),
            langs=[lang for lang, _ in rows],
            last_success=_latest([_when(r.get("last_success")) for _, r in rows]),
            last_error=last.get("last_error") if last else None,
            last_error_at=_when(last.get("last_error_at")) if last else None,
            items=items,
            next_crawl=min(nexts) if nexts else None,
            consecutive_failures=max((r["consecutive_failures"] for r in failing), default=0),
            feeds=self._feeds(agency),
        )

    def _feeds(self, agency: str) -> list[str]:
        names = [f"{agency}.atom", f"{agency}.rss"]
        folder = self.feeds / agency
        if folder.is_dir():
            names += sorted(f"{agency}/{p.name}" for p in folder.iterdir()
                            if p.suffix in (".atom", ".rss"))
        return [n for n in names if (self.feeds / n).is_file()]

    def health(self) -> tuple[bool, str]:
        try:
            self.archive.item_counts()
        except Exception as exc:  # noqa: BLE001 - any failure to read means unhealthy
            return False, f"archive unreadable: {exc}"
        return True, "ok"
