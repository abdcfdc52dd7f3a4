"""`govkz-monitor backfill`: walk whole histories back to the first item (or --since), at the
configured polite rate, resumable from the archive's backfill cursors (crawler/backfill.py).

It runs the live spider in full-history mode in this process (as `crawl` does), with the cursor
pipeline and the progress extension added, then prints a summary per target from the run's
counts and the cursors it left.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crawler.backfill import Cursor
from crawler.backfill_pipeline import PRIORITY, CursorPipeline
from crawler.config import Config, scrapy_settings
from crawler.paths import db_path
from crawler.problems import ProblemKind
from crawler.progress import SETTING, BackfillProgress
from crawler.summary import CrawlSummary, TargetSummary
from crawler.sync import SITE_WIDE
from crawler.timeutil import isoformat

EXIT_OK, EXIT_FAILED = 0, 1


@dataclass(frozen=True)
class Plan:
    """The targets of one `backfill` run: those to walk, and those already finished."""

    walk: list[tuple[str, str]]
    finished: list[Cursor]


def plan(targets: list[tuple[str, str]], cursors: dict[tuple[str, str], Cursor],
         since: datetime | None) -> Plan:
    """A target is walked unless a finished backfill already went back as far as `since`."""
    done = [cursors[t] for t in targets if t in cursors and cursors[t].covers(since)]
    finished = {(c.agency, c.lang) for c in done}
    return Plan([t for t in targets if t not in finished], done)


def load_cursors(settings: Any, targets: list[tuple[str, str]], *,
                 restart: bool) -> dict[tuple[str, str], Cursor]:
    """The stored cursors of `targets` (forgotten first with `restart`)."""
    from crawler.store import Archive

    archive = Archive.open(db_path(settings))
    try:
        if restart:
            for agency, lang in targets:
                archive.monitor.reset_backfill_cursor(agency, lang)
        found = {}
        for agency, lang in targets:
            row = archive.monitor.backfill_cursor(agency, lang)
            if row is not None:
                found[(agency, lang)] = Cursor.from_row(row)
        return found
    finally:
        archive.close()


def backfill_settings(config: Config, worked_last: str | None) -> Any:
    """The crawl's Settings: the configuration's (download delay, concurrency, AutoThrottle as
    configured), plus the cursor pipeline and the progress extension."""
    settings = scrapy_settings(config)
    pipelines = dict(settings.getdict("ITEM_PIPELINES"))
    pipelines[f"{CursorPipeline.__module__}.{CursorPipeline.__name__}"] = PRIORITY
    extensions = dict(settings.getdict("EXTENSIONS"))
    extensions[f"{BackfillProgress.__module__}.{BackfillProgress.__name__}"] = 500
    settings.set("ITEM_PIPELINES", pipelines, priority="cmdline")
    settings.set("EXTENSIONS", extensions, priority="cmdline")
    settings.set(SETTING, True, priority="cmdline")
    if config.crawl.access == "auto" and not settings.get("GOVKZ_ACCESS_FIRST"):
        settings.set("GOVKZ_ACCESS_FIRST", worked_last, priority="cmdline")
    return settings


def _date(value: datetime | None) -> str | None:
    return isoformat(value) if value else None


def report(summary: CrawlSummary, cursors: dict[tuple[str, str], Cursor],
           targets: list[tuple[str, str]], already: list[Cursor]) -> list[dict[str, Any]]:
    """Per target: what this run did (pages, items new/updated/unchanged, rejects), the dates
    its cursor reached (newest and oldest), and whether its backfill is finished."""
    rows = []
    for agency, lang in targets:
        name = f"{agency}/{lang}"
        counts = summary.targets.get(name) or TargetSummary(name)
        cursor = cursors.get((agency, lang))
        rows.append({
            "target": name, "walked": not any(c.target == name for c in already),
            "finished": bool(cursor and cursor.finished_at),
            "pages": counts.pages, "requests": counts.requests, "found": counts.found,
            "new": counts.new, "updated": counts.updated, "unchanged": counts.unchanged,
            "rejected": counts.rejected, "cursor_page": cursor.page if cursor else 0,
            "newest": _date(cursor.newest) if cursor else None,
            "oldest": _date(cursor.oldest) if cursor else None,
            "since": _date(cursor.since) if cursor else None,
            "finished_at": _date(cursor.finished_at) if cursor else None,
            "errors": list(counts.errors),
        })  # fmt: skip
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        state = "finished" if row["finished"] else "NOT finished"
        if not row["walked"]:
            state = (f"finished already ({row['finished_at'][:10]}; "
                     "--restart walks it again), nothing to do")
        span = ""
        if row["newest"] or row["oldest"]:
            span = f"; from {(row['newest'] or '?')[:10]} back to {(row['oldest'] or '?')[:10]}"
            if row["since"]:
                span += f" (--since {row['since'][:10]})"
            elif row["finished"]:
                span += " (the first item)"
        lines.append(
            f"{row['target']}: {state}; {row['pages']} pages, {row['found']} items: "
            f"{row['new']} new, {row['updated']} updated, {row['unchanged']} unchanged, "
            f"{row['rejected']} rejected{span}; cursor at page {row['cursor_page']}")
        lines += [f"    ERROR: {error}" for error in row["errors"]]
    done = sum(row["finished"] for row in rows)
    lines.append(f"backfill: {done} of {len(rows)} target(s) finished")
    return "\n".join(lines)


def run_backfill(config: Config, *, targets: list[tuple[str, str]], since: datetime | None,
                 restart: bool, as_json: bool) -> int:
    from crawler.commands import check_archive
    from crawler.runner import die_with_parent, run_spider
    from crawler.spiders.govkz import GovkzSpider

    die_with_parent()
    settings = scrapy_settings(config)
    worked_last = check_archive(settings)
    todo = plan(targets, load_cursors(settings, targets, restart=restart), since)
    summary = CrawlSummary()
    if todo.walk:
        what = ", ".join(f"{a}/{lang}" for a, lang in todo.walk[:6])
        what += f" and {len(todo.walk) - 6} more" if len(todo.walk) > 6 else ""
        print(f"backfilling {what} from {config.crawl.base_url}"
              + (f" back to {since:%Y-%m-%d}" if since else " back to the first item"),
              file=sys.stderr)
        summary = run_spider(
            GovkzSpider, backfill_settings(config, worked_last),
            targets=[f"{agency}/{lang}" for agency, lang in todo.walk],
            since=since, full_history=True,
        )
    after = load_cursors(settings, targets, restart=False)
    unexplained(summary, todo.walk, after)
    rows = report(summary, after, targets, todo.finished)
    if as_json:
        print(json.dumps({"status": summary.status, "targets": rows,
                          "errors": summary.errors()}, ensure_ascii=False, indent=2))
    else:
        print(render(rows))
        for error in summary.errors():  # problems of no target of ours (e.g. the feeds)
            if not any(error.startswith(f"{row['target']}:") for row in rows):
                print(f"ERROR: {error}")
    return EXIT_OK if summary.ok else EXIT_FAILED


def unexplained(summary: CrawlSummary, walked: list[tuple[str, str]],
                cursors: dict[tuple[str, str], Cursor]) -> None:
    """A walked target left unfinished with no failure of its own is a failure too: the
    crawl ended (interrupted, or a walk lost its way) before the end of the list, and an exit
    0 would say the history is complete."""
    for agency, lang in walked:
        cursor = cursors.get((agency, lang))
        target = summary.target(f"{agency}/{lang}")
        if not (cursor and cursor.finished_at) and target.ok:
            target.add(ProblemKind.UNEXPECTED, "the backfill ended before the end of the list "
                       "without an error saying why; the next run resumes from its cursor")


def targets_of(agencies: list[str], langs: list[str], *, site_wide: bool) -> list[tuple[str, str]]:
    if site_wide:
        return [(SITE_WIDE, lang) for lang in langs]
    return [(agency, lang) for agency in agencies for lang in langs]
