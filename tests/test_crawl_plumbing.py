"""The crawl process's plumbing around Scrapy: the garbage collector set for one crawl, Scrapy's
DEBUG records not created where nobody shows them, and what must stay as it is (cookies for the
k6v1 handshake, Scrapy's per-response debug lines under -vv)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from crawl_helpers import NEWS, crawl, fill

from crawler import logsetup
from crawler.mockgov import MockSite, serve_in_thread
from crawler.runner import CRAWL_GC_THRESHOLD, collector_tuned_for_one_crawl, project_settings

# --- the garbage collector during the one crawl ----------------------------------------------


@pytest.mark.parametrize("fails", [False, True])
def test_the_collector_is_tuned_for_the_crawl_and_restored_after(fails: bool) -> None:
    before_threshold, before_frozen = gc.get_threshold(), gc.get_freeze_count()
    kept = [object() for _ in range(10)]  # something alive when the crawl starts
    with pytest.raises(RuntimeError) if fails else nullcontext():
        with collector_tuned_for_one_crawl():
            assert gc.get_threshold() == CRAWL_GC_THRESHOLD
            assert gc.get_freeze_count() > before_frozen
            if fails:
                raise RuntimeError("the crawl died")
    assert gc.get_threshold() == before_threshold
    assert gc.get_freeze_count() == before_frozen
    assert len(kept) == 10


def test_cycles_made_during_the_crawl_are_still_collected() -> None:
    class Node:
        other: Node | None = None

    with collector_tuned_for_one_crawl():
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2  # the collector still runs and finds the crawl's own cycles


# --- Scrapy's records below every threshold are not created ------------------------------------


@pytest.fixture
def scratch_logger() -> Iterator[logging.Logger]:
    """A logger of its own and the root's level, both restored after the test."""
    root = logging.getLogger()
    saved_root = root.level
    logger = logging.getLogger("plumbing-test.scrapy")
    yield logger
    root.setLevel(saved_root)
    logger.setLevel(logging.NOTSET)


@pytest.mark.parametrize(("root_level", "log_level", "expected"), [
    (logging.INFO, "INFO", logging.INFO),  # the default: DEBUG records dropped
    (logging.DEBUG, "INFO", logging.DEBUG),  # -vv: the handlers show DEBUG, so it is kept
    (logging.WARNING, "INFO", logging.INFO),  # LogCount still counts INFO records
    (logging.INFO, "DEBUG", logging.DEBUG),  # LOG_LEVEL=DEBUG: LogCount counts them
    (logging.INFO, logging.WARNING, logging.INFO),  # a number, as Scrapy also accepts
    (logging.INFO, None, logging.DEBUG),  # unknown: keep every record
    (logging.INFO, "LOUD", logging.DEBUG),
])
def test_records_below_every_threshold_are_not_created(
        scratch_logger: logging.Logger, root_level: int, log_level: str | int | None,
        expected: int) -> None:
    logging.getLogger().setLevel(root_level)
    scratch_logger.setLevel(logging.DEBUG)  # what Scrapy's configure_logging does
    logsetup.drop_records_nobody_shows(scratch_logger.name, log_level)
    assert scratch_logger.level == expected


@pytest.mark.usefixtures("root_logging")
def test_a_dropped_record_is_one_no_handler_would_have_shown(
        scratch_logger: logging.Logger) -> None:
    logsetup.configure(0)  # the CLI's default: third-party loggers from WARNING, root at INFO
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    # Like Scrapy's LogCount handler at LOG_LEVEL=INFO; root_logging takes it away again.
    logging.getLogger().addHandler(Keep(level=logging.INFO))
    scratch_logger.setLevel(logging.DEBUG)
    logsetup.drop_records_nobody_shows(scratch_logger.name, "INFO")
    scratch_logger.debug("Crawled (200)")
    scratch_logger.info("Spider opened")
    scratch_logger.error("it broke")
    assert [r.getMessage() for r in seen] == ["Spider opened", "it broke"]


# --- what the crawl keeps ----------------------------------------------------------------------


def test_cookies_stay_on() -> None:
    from scrapy.utils.conf import build_component_list

    settings = project_settings()
    assert settings.getbool("COOKIES_ENABLED")
    assert ("scrapy.downloadermiddlewares.cookies.CookiesMiddleware"
            in build_component_list(settings.getwithbase("DOWNLOADER_MIDDLEWARES")))


@pytest.mark.parametrize("verbose", [False, True])
def test_a_k6v1_crawl_sends_its_cookie_and_logs_as_asked(tmp_path: Path, verbose: bool) -> None:
    site = MockSite(access="k6v1")
    fill(site, "mod", 7)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, verbose=verbose)
    assert result.code == 0, result.output
    assert result.target("mod/en")["new"] == 7
    accepted = site.log.entries(path=NEWS, status=200)
    assert accepted and all("cookie" in e.headers for e in accepted)
    # Scrapy's per-response DEBUG line shows under -vv and only there.
    assert ("Crawled (200)" in result.process.stderr) is verbose
