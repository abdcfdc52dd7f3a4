"""Run one spider in this process with the project's settings, and return its summary.

The Twisted reactor cannot be restarted, so a process runs one crawl; the daemon runs each crawl
in a child process of its own (as Scrapyd does) and reads the summary back as JSON.
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from scrapy.settings import Settings

from crawler import logsetup
from crawler.config import resolve, scrapy_settings
from crawler.problems import ProblemKind
from crawler.summary import CrawlSummary, summary_for


def project_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """The Settings of defaults < file < environment < `overrides` (setting names to values, as
    `-s` takes them), for code that has no Config at hand (tests, tools); the CLI derives its
    Settings from the Config it resolved (crawler.config.scrapy_settings)."""
    return scrapy_settings(resolve(sets={k: v for k, v in (overrides or {}).items()
                                         if v is not None}))


def run_spider(spider: type | str, settings: Settings, **spider_args: Any) -> CrawlSummary:
    from scrapy.crawler import CrawlerProcess

    preload_download_handlers()
    # The CLI has configured logging already; Scrapy must not add a second root handler.
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
    process = CrawlerProcess(settings)
    logsetup.drop_records_nobody_shows("scrapy", settings.get("LOG_LEVEL"))
    crawler = process.create_crawler(spider)
    process.crawl(crawler, **spider_args)
    with collector_tuned_for_one_crawl():
        process.start()
    summary = summary_for(crawler)
    reason = (crawler.stats.get_value("finish_reason") if crawler.stats else None) or "unknown"
    if reason != "finished":
        kind = ProblemKind.TIMEOUT if "timeout" in reason else ProblemKind.UNEXPECTED
        summary.target("crawl").add(kind, f"the crawl ended early: {reason}")
    errors = crawler.stats.get_value("log_count/ERROR", 0) if crawler.stats else 0
    if errors and not summary.targets:
        # Scrapy logged an error and the crawl reached no target (e.g. its start failed).
        # Errors of a target are that target's problems (crawler/contain.py, the errbacks):
        # charging them to the whole crawl would fail every healthy target beside it.
        summary.target("crawl").add(ProblemKind.UNEXPECTED,
                                    f"{errors} unexpected error(s), see the log")
    logging.getLogger(__name__).debug("crawl finished: %s", reason)
    return summary


def preload_download_handlers() -> None:
    """Import Scrapy's HTTP download handler with a cheap caller lookup.

    Importing it defines three deprecated aliases through Scrapy's `create_deprecated_class`,
    which calls `inspect.stack()` only to name the module that defines each alias. With its
    default context, `inspect.stack()` reads the source of every frame on the stack and looks
    each file up among the loaded modules, in every crawl process. Without source context it
    returns the same frames (the alias keeps its module name): the import measured 187 ms of CPU
    plain and 97 ms so, 40 frames deep. Done before the crawler exists, in the one thread there
    is.
    """
    import inspect
    import sys

    module = "scrapy.core.downloader.handlers.http11"
    if module in sys.modules:
        return
    stack = inspect.stack
    inspect.stack = partial(stack, 0)
    try:
        importlib.import_module(module)
    finally:
        inspect.stack = stack


# Young-generation threshold while the reactor runs (Python's default is 700): see below.
CRAWL_GC_THRESHOLD = (10_000, 10, 10)


@contextmanager
def collector_tuned_for_one_crawl() -> Iterator[None]:
    """Python's cyclic garbage collector, set for the one crawl this process runs.

    By the time the reactor starts, the process holds what lives until it exits: modules,
    classes, settings, the crawler and its components. Left as they are, every full collection
    traverses all of them again (a quiet crawl of 300 lists ran two, ~90 ms of CPU between
    them); frozen, the collector only looks at what the crawl allocates. The larger young
    threshold makes collections rarer, not weaker: reference counting still frees everything
    acyclic at once, and the crawl's cyclic garbage (Twisted failures, response chains) is
    still collected, a few thousand allocations later. Both are undone afterwards, so a
    longer-lived caller (a test) keeps Python's defaults.
    """
    saved = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*CRAWL_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


def die_with_parent() -> None:
    """Linux: ask the kernel to SIGTERM this process when its parent dies.

    A crawl child of the daemon must not outlive a daemon that was SIGKILLed: a restarted
    daemon would otherwise crawl the same agency while the orphan still does. Only for children
    the daemon starts (it sets GOVKZ_DIE_WITH_PARENT); a no-op elsewhere.

    GOVKZ_DIE_WITH_PARENT is process plumbing between the daemon and its children
    (scheduler/crawlproc.py), not configuration: no file, flag or operator sets it, so it is
    read here and not in crawler/config.py.
    """
    import ctypes
    import os
    import signal
    import sys

    if not os.environ.get("GOVKZ_DIE_WITH_PARENT") or not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
