"""Logging for the command line: our progress lines by default, Scrapy's log on request.

Scrapy resets its loggers' levels when a crawl starts (logging.config.dictConfig), so the
levels are applied again by the runner after that (`apply_levels`).
"""

from __future__ import annotations

import logging
import sys

_verbosity = 0
OURS = ("crawler", "scheduler", "govkz", "replay")
THEIRS = ("scrapy", "py.warnings", "twisted", "protego", "apscheduler")


def configure(verbosity: int) -> None:
    global _verbosity
    _verbosity = verbosity
    logging.basicConfig(
        level=logging.DEBUG if verbosity >= 2 else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    apply_levels()


def apply_levels() -> None:
    ours = logging.DEBUG if _verbosity >= 2 else logging.INFO
    theirs = {0: logging.WARNING, 1: logging.INFO}.get(_verbosity, logging.DEBUG)
    for name in OURS:
        logging.getLogger(name).setLevel(ours)
    for name in THEIRS:
        logging.getLogger(name).setLevel(theirs)
