"""Downloader middlewares: how requests get into gov.kz's API, and how to wait when told to.

AccessMiddleware applies the access strategy of crawler/access.py to every API request
(meta["govkz_api"]), doing the handshake the site's web client does before the first one and
again when a session is refused; RetryAfterMiddleware honours 429 Retry-After.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from datetime import UTC, datetime
from typing import Any

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.access import (
    AccessState,
    handshake_request,
    is_refusal,
    parse_k6_headers,
    token_headers,
)
from crawler.errors import GovkzError

log = logging.getLogger(__name__)

MAX_ACCESS_RETRIES = 8  # resends of one request across re-handshakes and strategy changes


class UseRssFallback(IgnoreRequest):
    """Every header strategy was refused: the spider should read the official RSS instead."""


class AccessRefused(IgnoreRequest):
    """Every strategy, RSS included, was refused."""


class AccessMiddleware:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.site = crawler.settings.get("GOVKZ_BASE_URL").rstrip("/")
        self.state = AccessState.from_setting(
            crawler.settings.get("GOVKZ_ACCESS", "auto"),
            prefer=crawler.settings.get("GOVKZ_ACCESS_FIRST") or None,
            laps=1,  # the site may switch scheme while we try them: go round once more
        )
        self._lock: asyncio.Lock | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> AccessMiddleware:
        mw = cls(crawler)
        crawler.govkz_access = mw.state  # the spider reports it in the summary
        return mw

    async def process_request(self, request: Request, spider: Any = None) -> None:
        if not request.meta.get("govkz_api"):
            return None
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one handshake at a time; the others wait for its result
            while self.state.needs_handshake:
                await self._handshake()
        self._check_usable()
        for name, value in self.state.headers.items():
            request.headers[name] = value
        request.meta["govkz_ticket"] = self.state.ticket
        return None

    def _check_usable(self) -> None:
        if self.state.failed:
            raise AccessRefused(str(self.state.denied("gov.kz API")))
        if self.state.using_rss:
            raise UseRssFallback("every API access strategy was refused; using the RSS")

    async def _handshake(self) -> None:
        strategy = str(self.state.strategy)
        self.crawler.stats.inc_value(f"govkz/access/handshake/{strategy}")
        if strategy == "token":
            self.state.on_handshake(token_headers())
            return
        spec = handshake_request(strategy, self.site)
        if spec is None:  # plain: nothing to do
            self.state.on_handshake()
            return
        request = Request(
            spec.url, method=spec.method, headers=spec.headers, body=spec.body,
            meta={"govkz_handshake": True, "handle_httpstatus_all": True}, dont_filter=True,
        )
        try:
            response = await self.crawler.engine.download_async(request)
        except Exception as exc:  # network failure: this strategy's endpoint is unusable
            self.state.on_handshake_failed(f"{type(exc).__name__}: {exc}")
            return
        if response.status != 200:
            self.state.on_handshake_failed(f"HTTP {response.status}")
            return
        try:
            headers = parse_k6_headers(response.body) if strategy == "k6v2" else {}
        except GovkzError as exc:
            self.state.on_handshake_failed(str(exc))
            return
        self.state.on_handshake(headers)
        log.info("access: %s handshake done", strategy)

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        if not request.meta.get("govkz_api"):
            return response
        if not is_refusal(response.status, response.body):
            if 200 <= response.status < 300:
                self.state.on_success()
            return response
        self.crawler.stats.inc_value("govkz/access/refused")
        action = self.state.on_refused(request.meta.get("govkz_ticket"))
        log.info("access: %s refused (HTTP %s): %s", request.url, response.status, action)
        # A refusal of a request sent in an older session ("retry") is not this request's
        # failure (AccessState does not count it either): concurrent requests race for a
        # short-lived grant and some always lose, and counting those made a busy crawl give up
        # on requests whose session was fine. Such resends stay bounded: a new session starts
        # only after a counted refusal, and those move to the next strategy unless requests
        # keep succeeding in between, i.e. unless the crawl makes progress.
        tries = request.meta.get("govkz_access_tries", 0) + (action != "retry")
        if action in ("retry", "rehandshake", "next") and tries <= MAX_ACCESS_RETRIES:
            retry = request.replace(dont_filter=True)
            retry.meta["govkz_access_tries"] = tries
            return retry
        self._check_usable()
        raise AccessRefused(f"refused {tries} times: {self.state.describe()}")


def retry_after_seconds(value: bytes | str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryAfterMiddleware:
    """On 429, wait what Retry-After asks (bounded) and try again, a few times at most.

    Scrapy's RetryMiddleware retries at once and ignores Retry-After, so 429 is left out of
    RETRY_HTTP_CODES and handled here. The wait also slows the whole download slot, so the
    other requests to the host back off too.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.max_wait = crawler.settings.getfloat("GOVKZ_RETRY_AFTER_MAX", 120.0)
        self.max_tries = crawler.settings.getint("GOVKZ_RETRY_AFTER_TIMES", 3)

    @classmethod
    def from_crawler(cls, crawler: Any) -> RetryAfterMiddleware:
        return cls(crawler)

    async def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        if response.status != 429:
            return response
        tries = request.meta.get("govkz_429_tries", 0) + 1
        if tries > self.max_tries:
            return response  # HttpError reaches the spider: the target fails with a reason
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        wait = min(self.max_wait, 10.0 * tries if wait is None else wait)
        self.crawler.stats.inc_value("govkz/retry_after")
        log.warning("429 from %s: waiting %.0f s (try %d)", request.url, wait, tries)
        self._slow_down(request, wait)
        await asyncio.sleep(wait)
        retry = request.replace(dont_filter=True)
        retry.meta["govkz_429_tries"] = tries
        return retry

    def _slow_down(self, request: Request, wait: float) -> None:
        downloader = self.crawler.engine.downloader
        key = request.meta.get("download_slot") or downloader.get_slot_key(request)
        slot = downloader.slots.get(key)
        if slot is not None:
            slot.delay = max(slot.delay, min(wait, self.max_wait))
