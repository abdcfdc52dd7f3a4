"""What the status pages and /healthz show, read from the archive (the daemon persists every
decision there, so `serve` alone shows the same as the running daemon), plus, under `run`, the
daemon's own liveness (scheduler/health.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.agencies import AgencyRegistry
from crawler.config import Config, current
from crawler.items import GOVKZ_SITE, press_page_url
from crawler.store import Archive
from crawler.store_monitor import Target
from crawler.sync import SITE_WIDE
from crawler.timeutil import ALMATY, require_iso, utcnow
from scheduler.health import FAIL, Health, judge, target_state
from scheduler.status_page import DEFAULT_MODE, SPARK_DAYS, AgencyStatus, Overview

log = logging.getLogger(__name__)

INCIDENTS_SHOWN = 10
SITE_WIDE_NAME = "gov.kz site-wide news list (every agency)"


def _when(value: str | None) -> datetime | None:
    return require_iso(value) if value else None


def _latest(values: list[datetime | None]) -> datetime | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def press_site(base_url: str) -> str:
    """Where people read an agency's press page: the configured site when it is gov.kz (or a
    www. variant), else gov.kz itself (a mirror or the mock has no pages for people)."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host == "gov.kz" or host.endswith(".gov.kz"):
        return f"{parts.scheme}://{parts.netloc}".rstrip("/")
    return GOVKZ_SITE


class ArchiveStatus:
    """StatusProvider over the archive's `schedule` table, item counts and the feeds dir.

    `daemon`: the running Daemon (scheduler/daemon.py) under `run`, None under `serve`; its
    liveness, start time, configuration and `mode` (if it has one) feed the summary and
    /healthz. `config`: the configuration without a daemon (default: this process's)."""

    def __init__(self, archive: Archive, registry: AgencyRegistry, feeds: Path,
                 targets: Iterable[Target | str] | None = None, *, daemon: Any = None,
                 config: Config | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.archive = archive
        self.registry = registry
        self.feeds = feeds
        # What the daemon crawls (Targets, or "agency/lang" from the command line); None:
        # whatever the schedule holds.
        self.targets = None if targets is None else [Target.of(t) for t in targets]
        self.daemon = daemon
        self._config = config
        self.now = clock or (daemon.now if daemon is not None else utcnow)
        self.serving_since = self.now()

    @property
    def config(self) -> Config:
        if self._config is not None:
            return self._config
        return self.daemon.config if self.daemon is not None else current()

    # --- per agency -----------------------------------------------------------------------

    def _rows(self) -> dict[Target, dict[str, Any]]:
        """The schedule rows of the targets shown (an empty row for one not scheduled yet)."""
        schedule = self.archive.monitor.schedule()
        targets = self.targets if self.targets is not None else list(schedule)
        # In site-wide mode the daemon also crawls one stream per language ("*/ru").
        streams = list(getattr(self.daemon, "stream_targets", None) or ())
        targets = streams + [t for t in targets if t not in streams]
        return {target: schedule.get(target, {}) for target in targets}

    def agencies_status(self) -> list[AgencyStatus]:
        rows = self._rows()
        counts = self.archive.item_counts()
        days = self._days()
        daily = self.archive.daily_counts(days[0])
        by_agency: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for target, row in rows.items():
            by_agency.setdefault(target.agency, []).append((target.lang, row))
        for agency in counts:  # archived agencies no longer crawled still show
            by_agency.setdefault(agency, [])
        site = press_site(self.config.crawl.base_url)
        return [self._status(agency, langs, counts.get(agency, 0),
                             [daily.get(agency, {}).get(day, 0) for day in days], site)
                for agency, langs in sorted(by_agency.items())]

    def _status(self, agency: str, rows: list[tuple[str, dict[str, Any]]], items: int,
                daily: list[int], site: str) -> AgencyStatus:
        failing = [r for _, r in rows if r.get("consecutive_failures")]
        # The most recent error of a target that is failing now (ISO UTC strings sort by time).
        last = max(failing, key=lambda r: r.get("last_error_at") or "", default=None)
        nexts = [when for _, r in rows if (when := _when(r.get("next_crawl"))) is not None]
        langs = [lang for lang, _ in rows]
        stream = agency == SITE_WIDE  # the site-wide list: every agency, no press page
        return AgencyStatus(
            slug=agency,
            name=SITE_WIDE_NAME if stream else self.registry.name(agency, "en"),
            enabled=bool(rows),
            langs=langs,
            last_success=_latest([_when(r.get("last_success")) for _, r in rows]),
            last_error=last.get("last_error") if last else None,
            last_error_at=_when(last.get("last_error_at")) if last else None,
            items=items,
            next_crawl=min(nexts) if nexts else None,
            consecutive_failures=max((r["consecutive_failures"] for r in failing), default=0),
            feeds=self._feeds(agency),
            press=[] if stream else [(lang, press_page_url(agency, lang, site))
                                     for lang in langs or ["ru"]],
            daily=daily,
        )

    def _feeds(self, agency: str) -> list[str]:
        names = [f"{agency}.atom", f"{agency}.rss"]
        folder = self.feeds / agency
        if folder.is_dir():
            names += sorted(f"{agency}/{p.name}" for p in folder.iterdir()
                            if p.suffix in (".atom", ".rss"))
        return [n for n in names if (self.feeds / n).is_file()]

    # --- the summary and health -----------------------------------------------------------

    def _days(self) -> list[Any]:
        today = self.now().astimezone(ALMATY).date()
        return [today - timedelta(days=n) for n in range(SPARK_DAYS - 1, -1, -1)]

    @staticmethod
    def _counts(rows: Mapping[Target, Mapping[str, Any]]) -> dict[str, int]:
        counts = {"ok": 0, "failing": 0, "never": 0}
        for row in rows.values():
            state = target_state(int(row.get("consecutive_failures") or 0),
                                 _when(row.get("last_success")))
            counts[state] += 1
        return counts

    def health(self) -> Health:
        try:
            rows = self._rows()
        except Exception as exc:  # noqa: BLE001 - any failure to read means unhealthy
            return Health(FAIL, f"archive unreadable: {exc}")
        liveness = self.daemon.liveness() if self.daemon is not None else None
        newest = _latest([_when(r.get("last_success")) for r in rows.values()])
        return judge(liveness, self._counts(rows), newest, self.now(),
                     max_interval=self.config.schedule.max_interval)

    def overview(self) -> Overview:
        rows = self._rows()
        days = self._days()
        per_day: dict[Any, int] = {}
        for counts in self.archive.daily_counts(days[-7]).values():
            for day, n in counts.items():
                per_day[day] = per_day.get(day, 0) + n
        site = self.config.crawl.base_url.rstrip("/")
        return Overview(
            targets=self._counts(rows),
            items_today=per_day.get(days[-1], 0),
            items_week=sum(per_day.get(day, 0) for day in days[-7:]),
            health=self.health(),
            mode=str(getattr(self.daemon, "mode", None) or DEFAULT_MODE),
            mode_reason=getattr(self.daemon, "mode_reason", None),
            access=self.archive.monitor.last_strategy(site),
            last_cycle=_latest([_when(r.get("last_crawl")) for r in rows.values()]),
            started=getattr(self.daemon, "started_at", None),
            serving_since=self.serving_since,
            incidents=self.archive.monitor.incidents(limit=INCIDENTS_SHOWN),
            days=days,
        )
