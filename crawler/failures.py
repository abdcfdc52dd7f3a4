"""What a failed request was and what went wrong with it, for the spiders' errbacks.

Scrapy attaches the request to the Failure it hands an errback (`failure.request`) at run time;
the typed accessor here keeps that one dynamic attribute in one place.
"""

from __future__ import annotations

from typing import cast

import scrapy
from scrapy.exceptions import DownloadTimeoutError
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import TimeoutError as TwistedTimeoutError
from twisted.python.failure import Failure

from crawler.middlewares import AccessRefused
from crawler.problems import ProblemKind


def failed_request(failure: Failure) -> scrapy.Request:
    """The request an errback's failure belongs to (set by Scrapy's downloader)."""
    return cast(scrapy.Request, failure.request)  # type: ignore[attr-defined]


def describe_failure(failure: Failure) -> tuple[ProblemKind, str]:
    """The kind and one line for a failed request: what went wrong, never a traceback."""
    # The URL travels beside the message (Problem.url), so it is not repeated in it.
    if failure.check(HttpError):
        status = cast(HttpError, failure.value).response.status
        return ProblemKind.HTTP_ERROR, f"HTTP {status}" + (" (after retries)" * (status >= 500))
    if failure.check(AccessRefused):
        return ProblemKind.ACCESS_REFUSED, f"access refused: {failure.getErrorMessage()}"
    # Scrapy >= 2.13 raises its own DownloadTimeoutError; Twisted's is kept for older paths.
    if failure.check(DownloadTimeoutError, TwistedTimeoutError):
        return ProblemKind.TIMEOUT, "timed out"
    name = failure.type.__name__ if failure.type is not None else "error"
    return ProblemKind.HTTP_ERROR, f"{name}: {failure.getErrorMessage()}"
