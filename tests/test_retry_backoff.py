"""Retries back off: the delay function, and BackoffRetryMiddleware driven without a crawl.

The middleware's wait is replaced by a recorder, so these tests never sleep and never need a
reactor; the crawl-level test against the mock is in test_crawl_faults.py.
"""

from __future__ import annotations

import asyncio
import runpy
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import Response
from scrapy.utils.test import get_crawler
from twisted.internet.error import ConnectionLost

from crawler import middlewares, settings
from crawler.middlewares import BackoffRetryMiddleware, backoff_delay, retry_delay

URL = "http://127.0.0.1:1/api/v1/public/content-manager/news?page=1"


# --- the delay functions ----------------------------------------------------------------------
@pytest.mark.parametrize(("attempt", "seconds"), [
    (1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0), (6, 60.0), (7, 60.0), (10_000, 60.0),
])
def test_backoff_doubles_from_the_base_up_to_the_cap(attempt: int, seconds: float) -> None:
    assert backoff_delay(attempt, base=2.0, cap=60.0) == seconds


def test_backoff_is_increasing_until_capped() -> None:
    delays = [backoff_delay(n, base=0.01, cap=0.1) for n in range(1, 9)]
    assert delays[:4] == [0.01, 0.02, 0.04, 0.08]
    assert delays[4:] == [0.1] * 4
    assert all(a <= b for a, b in zip(delays, delays[1:], strict=False))


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_attempts_count_from_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="count from 1"):
        backoff_delay(attempt)


@pytest.mark.parametrize(("retry_after", "seconds"), [
    (None, 4.0),  # no header: the backoff of attempt 2
    (7.0, 7.0),  # the server's word, even above the backoff cap
    (0.0, 0.0),
    (500.0, 120.0),  # capped
])
def test_retry_after_wins_capped(retry_after: float | None, seconds: float) -> None:
    assert retry_delay(2, retry_after, base=2.0, cap=60.0, retry_after_cap=120.0) == seconds


def test_the_settings_default_to_2_s_doubling_up_to_60_s(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOVKZ_RETRY_BACKOFF_BASE", "GOVKZ_RETRY_BACKOFF_MAX"):
        monkeypatch.delenv(name, raising=False)
    fresh = runpy.run_path(settings.__file__)  # as if no environment variable were set
    assert (fresh["GOVKZ_RETRY_BACKOFF_BASE"], fresh["GOVKZ_RETRY_BACKOFF_MAX"]) == (2.0, 60.0)
    assert [backoff_delay(n) for n in (1, 2, 6)] == [2.0, 4.0, 60.0]  # the same defaults


def test_the_backoff_middleware_replaces_scrapys() -> None:
    chain = settings.DOWNLOADER_MIDDLEWARES
    assert chain["scrapy.downloadermiddlewares.retry.RetryMiddleware"] is None
    assert chain["crawler.middlewares.BackoffRetryMiddleware"] == 550  # the stock one's place


# --- the middleware ---------------------------------------------------------------------------
@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(middlewares, "sleep", record)
    return recorded


def make_middleware(**overrides: Any) -> BackoffRetryMiddleware:
    crawler = get_crawler(settings_dict={
        "RETRY_TIMES": 3, "RETRY_HTTP_CODES": [500, 503], "GOVKZ_RETRY_BACKOFF_BASE": 0.5,
        "GOVKZ_RETRY_BACKOFF_MAX": 1.5, "GOVKZ_RETRY_AFTER_MAX": 20.0, **overrides,
    })
    crawler.spider = crawler._create_spider("backoff")
    return BackoffRetryMiddleware.from_crawler(crawler)


def answer(request: Request, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(request.url, status=status, headers=headers or {}, request=request)


def test_each_retry_of_a_5xx_waits_longer_until_the_cap(waits: list[float]) -> None:
    mw = make_middleware()
    request, results = Request(URL), []
    for _ in range(4):
        result = asyncio.run(mw.process_response(request, answer(request, 500)))
        results.append(result)
        if isinstance(result, Request):
            request = result
    assert waits == mw.delays == [0.5, 1.0, 1.5]  # 0.5 * 2**n, capped at 1.5
    assert [type(r).__name__ for r in results] == ["Request", "Request", "Request", "Response"]
    assert results[-1].status == 500  # retries used up: the answer goes on to the spider
    assert request.meta["retry_times"] == 3
    stats = mw.crawler.stats
    assert stats.get_value("govkz/retry/backoff") == 3
    assert stats.get_value("govkz/retry/backoff_seconds") == 3.0
    assert stats.get_value("retry/count") == 3  # Scrapy's own retry stats still count


def test_a_retry_after_on_a_503_is_honoured_and_capped(
    waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    slowed: list[float] = []  # a Retry-After slows the host's download slot too
    monkeypatch.setattr(middlewares, "_slow_down_slot", lambda _c, _r, wait: slowed.append(wait))
    mw = make_middleware()
    request = Request(URL)
    first = asyncio.run(mw.process_response(request, answer(request, 503, {"Retry-After": "7"})))
    second = asyncio.run(mw.process_response(first, answer(first, 503, {"Retry-After": "3600"})))
    third = asyncio.run(mw.process_response(second, answer(second, 503)))  # no header again
    assert isinstance(third, Request)
    assert waits == [*slowed, 1.5] and slowed == [7.0, 20.0]  # 1.5: retry 3, backoff capped


def test_connection_failures_back_off_too(waits: list[float]) -> None:
    mw = make_middleware()
    request = Request(URL)
    first = asyncio.run(mw.process_exception(request, ConnectionLost()))
    second = asyncio.run(mw.process_exception(first, ConnectionLost()))
    assert isinstance(second, Request) and second.meta["retry_times"] == 2
    assert waits == [0.5, 1.0]


def test_what_is_not_retried_does_not_wait(waits: list[float]) -> None:
    mw = make_middleware()
    request = Request(URL)
    ok = answer(request, 200)
    assert asyncio.run(mw.process_response(request, ok)) is ok
    not_found = answer(request, 404)
    assert asyncio.run(mw.process_response(request, not_found)) is not_found
    unretried = Request(URL, meta={"dont_retry": True})
    failed = answer(unretried, 500)
    assert asyncio.run(mw.process_response(unretried, failed)) is failed
    assert asyncio.run(mw.process_exception(request, ValueError("not a network error"))) is None
    assert waits == []


def test_max_retry_times_in_meta_is_respected(waits: list[float]) -> None:
    mw = make_middleware()
    request = Request(URL, meta={"max_retry_times": 0})
    failed = answer(request, 500)
    assert asyncio.run(mw.process_response(request, failed)) is failed
    assert waits == []
