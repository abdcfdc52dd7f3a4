"""Logging for the command line: our progress lines by default, Scrapy's log on request.

One handler on the root logger with a filter decides by logger name: our own loggers from
INFO, third-party ones (Scrapy, Twisted, APScheduler) from WARNING unless -v / -vv. A filter
rather than logger levels, because Scrapy resets its loggers' levels when a crawl starts.
"""

from __future__ import annotations

import logging
import sys

OURS = ("crawler", "scheduler", "govkz", "replay", "agencies")


class _ByOrigin(logging.Filter):
    def __init__(self, verbosity: int) -> None:
        super().__init__()
        self.ours = logging.DEBUG if verbosity >= 2 else logging.INFO
        self.theirs = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)

    def filter(self, record: logging.LogRecord) -> bool:
        top = record.name.split(".", 1)[0]
        return record.levelno >= (self.ours if top in OURS else self.theirs)


def configure(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_ByOrigin(verbosity))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
