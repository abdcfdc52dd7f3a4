"""Containment: an unexpected exception in a spider callback costs only its target.

Scrapy logs such an exception and moves on, and the crawl would end `ok` having lost the rest of
that page. This spider middleware turns it into an `unexpected` problem of the target the request
belongs to (the spider's `problem_target(request)`, "crawl" otherwise), with the traceback in the
log only, so the crawl row, the summary and the daemon see a failed target instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError

from crawler.problems import ProblemKind
from crawler.summary import summary_for

log = logging.getLogger(__name__)


class UnexpectedErrorsMiddleware:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> UnexpectedErrorsMiddleware:
        return cls(crawler)

    def process_spider_exception(
        self, response: Any, exception: Exception, spider: Any = None
    ) -> Iterable[Any] | None:
        if isinstance(exception, HttpError | IgnoreRequest):
            return None  # Scrapy's own routing (HttpErrorMiddleware, errbacks) handles these
        spider = self.crawler.spider
        request = response.request
        choose = getattr(spider, "problem_target", None)
        target = choose(request) if choose is not None else "crawl"
        # WARNING, not ERROR: the problem is recorded; the traceback is for the developer.
        log.warning("unexpected %s on %s (%s)", type(exception).__name__, target, response.url,
                    exc_info=exception)
        summary_for(self.crawler).target(target).add(
            ProblemKind.UNEXPECTED, f"{type(exception).__name__}: {exception}", response.url
        )
        return []  # handled: nothing more comes of this response
