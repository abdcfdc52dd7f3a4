"""Progress of a backfill, from inside its crawl: a Scrapy extension reading the spider's walks
(their HistoryWalk, crawler/backfill.py) and the run's summary (crawler/summary.py).

On a terminal (stderr a TTY) a rich progress bar per target: pages done of the estimated
total, items, pages per second and the time left; otherwise one log line a minute per target.
The estimate comes from the list's total when the site gives one, else from the dates walked
toward --since, else from the ids walked toward the first one (HistoryWalk.fraction).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.backfill import HistoryWalk
from crawler.summary import TargetSummary, summary_for

log = logging.getLogger(__name__)

LOG_EVERY = 60.0  # seconds between two progress lines without a terminal
REFRESH_EVERY = 1.0  # seconds between two updates of the progress bars
SETTING = "GOVKZ_BACKFILL_PROGRESS"  # set by `govkz-monitor backfill` (crawler/backfill_command)


def duration(seconds: float) -> str:
    """'3 h 12 min', '4 min 5 s', '12 s'."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def estimate(history: HistoryWalk, elapsed: float) -> dict[str, Any]:
    """What the display shows of one walk: pages done (of ~total), share, rate, time left."""
    done = history.done_through
    fraction = history.fraction()
    total = round(done / fraction) if fraction and done else None
    if history.topping or fraction is not None and fraction >= 1.0:
        fraction, total = 1.0, done  # walked to the bottom: only the top is left
    rate = history.pages_walked / elapsed if elapsed > 0 else 0.0
    left = None
    if total is not None and rate > 0:
        left = max(0, total - done) / rate
    return {"done": done, "total": total, "fraction": fraction, "rate": rate, "left": left,
            "oldest": history.oldest[0] if history.oldest else None}


def progress_line(name: str, history: HistoryWalk, counts: TargetSummary | None,
                  elapsed: float) -> str:
    """One line for a log: `*/ru: page 1,234 of ~12,700 (9.7%), 61,700 items (3,210 new),
    0.98 pages/s, back to 2025-03-02, about 3 h 1 min left`."""
    e = estimate(history, elapsed)
    parts = [f"page {e['done']:,}" + (f" of ~{e['total']:,}" if e["total"] else "")
             + (f" ({e['fraction']:.1%})" if e["fraction"] is not None else "")]
    if counts is not None:
        parts.append(f"{counts.found:,} items ({counts.new:,} new)")
    parts.append(f"{e['rate']:.2f} pages/s")
    if e["oldest"] is not None:
        parts.append(f"back to {e['oldest']:%Y-%m-%d}")
    if e["left"] is not None:
        parts.append(f"about {duration(e['left'])} left")
    return f"{name}: " + ", ".join(parts)


class BackfillProgress:
    """The extension (EXTENSIONS, enabled by the setting GOVKZ_BACKFILL_PROGRESS)."""

    def __init__(self, crawler: Any, *, tty: bool) -> None:
        self.crawler = crawler
        self.tty = tty
        self.started = time.monotonic()
        self.loop: task.LoopingCall | None = None
        self.bars: Any = None  # rich.progress.Progress on a terminal
        self.tasks: dict[str, Any] = {}
        self._streams: list[tuple[logging.StreamHandler, Any]] = []

    @classmethod
    def from_crawler(cls, crawler: Any) -> BackfillProgress:
        if not crawler.settings.getbool(SETTING):
            raise NotConfigured
        extension = cls(crawler, tty=sys.stderr.isatty())
        crawler.signals.connect(extension.opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.closed, signal=signals.spider_closed)
        return extension

    def walks(self) -> dict[str, HistoryWalk]:
        spider = self.crawler.spider
        return {name: walk.history for name, walk in getattr(spider, "walks", {}).items()
                if walk.history is not None}

    def opened(self, spider: Any = None) -> None:
        self.started = time.monotonic()
        if self.tty:
            self._start_bars()
        self.loop = task.LoopingCall(self.tick)
        self.loop.start(REFRESH_EVERY if self.tty else LOG_EVERY, now=False)

    def tick(self) -> None:
        elapsed = time.monotonic() - self.started
        summary = summary_for(self.crawler)
        for name, history in self.walks().items():
            counts = summary.targets.get(name)
            if self.bars is None:
                log.info("backfill %s", progress_line(name, history, counts, elapsed))
            else:
                self._update_bar(name, history, counts, elapsed)

    def closed(self, spider: Any = None) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if self.bars is not None:
            self.tick()
            self.bars.stop()
            for handler, stream in self._streams:
                handler.setStream(stream)
            self.bars = None

    # --- the terminal ---------------------------------------------------------------------

    def _start_bars(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.bars = Progress(
            TextColumn("{task.description}"), BarColumn(),
            TextColumn("{task.fields[pages]}"), TextColumn("{task.fields[items]}"),
            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[left]}"),
            console=Console(stderr=True), refresh_per_second=2,
        )
        stderr = sys.stderr
        self.bars.start()
        # Log records go above the bars instead of through them: the root logger's stderr
        # handlers write to rich's redirected stderr while the bars are shown.
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and handler.stream is stderr:
                self._streams.append((handler, handler.setStream(sys.stderr)))

    def _update_bar(self, name: str, history: HistoryWalk, counts: TargetSummary | None,
                    elapsed: float) -> None:
        e = estimate(history, elapsed)
        fields = {
            "pages": f"page {e['done']:,}" + (f"/~{e['total']:,}" if e["total"] else ""),
            "items": f"{counts.found if counts else 0:,} items "
                     f"({counts.new if counts else 0:,} new)",
            "rate": f"{e['rate']:.2f} pages/s",
            "left": f"~{duration(e['left'])} left" if e["left"] is not None else "",
        }
        if name not in self.tasks:
            self.tasks[name] = self.bars.add_task(name, total=e["total"], completed=e["done"],
                                                  **fields)
        else:
            self.bars.update(self.tasks[name], total=e["total"], completed=e["done"], **fields)
