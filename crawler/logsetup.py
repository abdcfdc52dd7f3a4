"""Logging for the command line: our progress lines by default, Scrapy's log on request.

One handler on the root logger with a filter decides by logger name: our own loggers from
INFO, third-party ones (Scrapy, Twisted, APScheduler) from WARNING unless -v / -vv (or
--log-level). A filter rather than logger levels, because Scrapy resets its loggers' levels when
a crawl starts.

A site that cannot be reached is an expected outcome, not a bug: the spider reports it in the
summary, and Scrapy's own record of it (e.g. the robots.txt middleware logs every download
error with exc_info) keeps its one line but loses the traceback below DEBUG. Any other
exception keeps its traceback at every level.
"""

from __future__ import annotations

import logging
import sys
from functools import cache
from importlib import import_module
from pathlib import Path
from types import TracebackType

from crawler.config import LOG_LEVELS as LEVELS  # --log-level and GOVKZ_LOG_LEVEL

OURS = ("crawler", "scheduler", "govkz", "replay", "agencies")

# Exceptions that only say the network or the site failed us (the download handlers' wrappers
# and what Twisted raises underneath). Not OSError: a disk or permission error is worth a
# traceback. By name, so a class a Scrapy or Twisted release drops is skipped, not an error.
NETWORK_FAILURES = (
    "scrapy.exceptions.CannotResolveHostError",
    "scrapy.exceptions.DownloadConnectionRefusedError",
    "scrapy.exceptions.DownloadTimeoutError",
    "scrapy.exceptions.DownloadFailedError",
    "scrapy.exceptions.DownloadCancelledError",
    "scrapy.exceptions.ResponseDataLossError",
    "scrapy.core.downloader.handlers.http11.TunnelError",
    "twisted.internet.error.ConnectError",
    "twisted.internet.error.DNSLookupError",
    "twisted.internet.error.ConnectionClosed",
    "twisted.web.client.ResponseFailed",
)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


@cache
def _network_failure_types() -> tuple[type[BaseException], ...]:
    found = []
    for dotted in NETWORK_FAILURES:
        module, _, name = dotted.rpartition(".")
        try:
            found.append(getattr(import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def is_network_failure(exc_info: ExcInfo | tuple[None, None, None] | None) -> bool:
    """True if a record's exception is a download that failed, not a bug in the code."""
    if not exc_info or exc_info[1] is None:
        return False
    return isinstance(exc_info[1], _network_failure_types())


def _levels(verbosity: int, level: str | None) -> tuple[int, int]:
    """(our loggers' threshold, third-party loggers' threshold)."""
    if level is not None:
        number = logging.getLevelName(level.upper())
        if not isinstance(number, int):
            raise ValueError(f"unknown log level {level!r}; one of {', '.join(LEVELS)}")
        return number, number
    ours = logging.DEBUG if verbosity >= 2 else logging.INFO
    theirs = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    return ours, theirs


class _ByOrigin(logging.Filter):
    def __init__(self, ours: int, theirs: int) -> None:
        super().__init__()
        self.ours, self.theirs = ours, theirs

    def filter(self, record: logging.LogRecord) -> bool:
        top = record.name.split(".", 1)[0]
        return record.levelno >= (self.ours if top in OURS else self.theirs)


class _Formatter(logging.Formatter):
    """Leaves out the traceback of a network failure unless `tracebacks` (DEBUG) is set."""

    def __init__(self, fmt: str, *, tracebacks: bool) -> None:
        super().__init__(fmt)
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.tracebacks or not is_network_failure(record.exc_info):
            return super().format(record)
        # Hide the exception from this handler only: another handler (a log file a user adds)
        # still gets the whole record.
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text = saved


FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(verbosity: int, level: str | None = None, *, log_file: Path | None = None) -> None:
    """Log to stderr: `verbosity` counts -v flags; `level` (DEBUG..ERROR) overrides it.

    `log_file`: also append every record that passes the same thresholds to that file, with
    the tracebacks stderr leaves out (a log file is read later, by someone who needs them).
    Appending, never rotating: logrotate's copytruncate or journald do that. OSError when it
    cannot be opened (the CLI says so in one line)."""
    ours, theirs = _levels(verbosity, level)
    handlers: list[logging.Handler] = []
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(_Formatter(FORMAT, tracebacks=min(ours, theirs) <= logging.DEBUG))
    handlers.append(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        to_file.setFormatter(_Formatter(FORMAT, tracebacks=True))
        handlers.append(to_file)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, logging.FileHandler):
            old.close()  # a log file of an earlier configure() (tests call it repeatedly)
    for handler in handlers:
        handler.addFilter(_ByOrigin(ours, theirs))
        root.addHandler(handler)
    root.setLevel(min(ours, theirs, logging.INFO))


def drop_records_nobody_shows(logger_name: str, log_level: str | int | None) -> None:
    """Let `logger_name` create only the records some handler here can show or count.

    Scrapy's configure_logging (run by CrawlerProcess) sets its "scrapy" logger to DEBUG, so a
    crawl creates two DEBUG records per list page ("Crawled", "Scraped from") that every
    handler then throws away. The handlers `configure` installs pass nothing below the root
    logger's level, and Scrapy's LogCount counts nothing below LOG_LEVEL (`log_level`); a
    record below both reaches no one, so not creating it changes no output and no stat.
    """
    root = logging.getLogger().getEffectiveLevel()
    counted = (log_level if isinstance(log_level, int)
               else logging.getLevelName(str(log_level or "DEBUG").upper()))
    if not isinstance(counted, int):
        counted = logging.DEBUG  # a level this module does not know: keep every record
    logging.getLogger(logger_name).setLevel(min(root, counted))
