"""Downloader middlewares: how requests get into gov.kz's API, and how to wait when told to.

AccessMiddleware applies the access strategy of crawler/access.py to every API request
(meta["govkz_api"]), doing the handshake the site's web client does before the first one and
again when a session is refused; a k6 session that let requests in is kept in the archive for
the next crawl process, which starts with it instead of a handshake
(crawler/access_session.py); RetryAfterMiddleware honours 429 Retry-After;
BackoffRetryMiddleware (in place of Scrapy's RetryMiddleware) waits before each retry of a 5xx
or a failed connection, exponentially and capped, or what the answer's Retry-After asks.

Every wait is non-blocking (a reactor timer, see ``sleep``): only the request that waits is
held back, the rest of the crawl goes on. Both retry middlewares choose the wait with
``retry_delay``, so a Retry-After means the same on a 429 and on a 503.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from datetime import UTC, datetime
from typing import Any

from scrapy import Request, signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.response import response_status_message

from crawler import session_jar
from crawler.access import (
    AccessState,
    handshake_request,
    is_graphql_refusal,
    is_refusal,
    parse_k6_headers,
    token_headers,
)
from crawler.access_session import (
    SESSION_STRATEGIES,
    SessionKeeper,
    StoredSession,
    parse_set_cookies,
)
from crawler.config import default
from crawler.errors import GovkzError
from crawler.paths import db_path
from crawler.timeutil import utcnow

log = logging.getLogger(__name__)

# Resends of one request across re-handshakes and strategy changes: enough for every header
# strategy twice (a first round and the lap, 7 counted refusals each) before GraphQL.
MAX_ACCESS_RETRIES = 16


class UseRssFallback(IgnoreRequest):
    """Every header strategy was refused: the spider should read the official RSS instead."""


class AccessRefused(IgnoreRequest):
    """Every strategy, RSS included, was refused."""


class SourceChanged(IgnoreRequest):
    """The strategy in use reads news from the other source (GraphQL instead of the JSON API,
    or back): the spider should build this page's request again (GovkzSpider.list_request)."""


class AccessMiddleware:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.site = crawler.settings.get("GOVKZ_BASE_URL").rstrip("/")
        self.state = AccessState.from_setting(
            crawler.settings.get("GOVKZ_ACCESS", default("crawl.access")),
            prefer=crawler.settings.get("GOVKZ_ACCESS_FIRST") or None,
            laps=1,  # the site may switch scheme while we try them: go round once more
        )
        self._lock: asyncio.Lock | None = None
        data = crawler.settings.get("GOVKZ_DATA")
        self.sessions = SessionKeeper(db_path(crawler.settings), self.site) if data else None
        self._looked_up: set[str] = set()  # strategies whose stored session was asked for
        self._restored: StoredSession | None = None  # an earlier crawl's session, in use
        self._seeded: frozenset[tuple[str, str]] | None = None  # its cookies in the jar
        # A handshake's session (and its ticket), kept once a news request got in with it.
        self._obtained: tuple[int, StoredSession] | None = None
        self._prefetched: tuple[str, StoredSession | None] | None = None  # prefetch_session

    @classmethod
    def from_crawler(cls, crawler: Any) -> AccessMiddleware:
        mw = cls(crawler)
        crawler.govkz_access = mw.state  # the spider reports it in the summary
        crawler.signals.connect(mw.prefetch_session, signal=signals.spider_opened)
        return mw

    def prefetch_session(self) -> None:
        """Read the stored session of the first strategy when the spider opens: the first news
        requests wait for robots.txt, and the archive read then no longer adds to that wait."""
        strategy = str(self.state.strategy)
        if self.sessions is not None and strategy in SESSION_STRATEGIES:
            self._prefetched = (strategy, self.sessions.load(strategy))

    async def process_request(self, request: Request, spider: Any = None) -> None:
        graphql = bool(request.meta.get("govkz_graphql"))
        if not request.meta.get("govkz_api") and not graphql:
            return None
        if self._lock is None:
            self._lock = asyncio.Lock()
        # The lock only while a handshake is due or under way (a waiter must not go out with
        # the old session); in an open session a request goes straight on.
        if self.state.needs_handshake or self._lock.locked():
            async with self._lock:  # one handshake at a time; the others wait for its result
                while self.state.needs_handshake:
                    if not self._restore():
                        await self._handshake()
        self._check_usable()
        if graphql != self.state.using_graphql:
            raise SourceChanged(f"access: now using {self.state.strategy}")
        for name, value in self.state.headers.items():
            request.headers[name] = value
        request.meta["govkz_ticket"] = self.state.ticket
        self._session_cookies(request)
        return None

    def _restore(self) -> bool:
        """Start the current strategy with the session an earlier crawl kept for this site, if
        one may still be sent: looked up once per strategy and crawl."""
        strategy = str(self.state.strategy)
        if (self.sessions is None or strategy not in SESSION_STRATEGIES
                or strategy in self._looked_up):
            return False
        self._looked_up.add(strategy)
        prefetched, self._prefetched = self._prefetched, None
        session = prefetched[1] if prefetched and prefetched[0] == strategy \
            else self.sessions.load(strategy)
        if session is None:
            return False
        self.state.on_restored(session.headers)
        self._restored = session
        self.crawler.stats.inc_value(f"govkz/access/stored_session/{strategy}")
        log.info("access: %s session of an earlier crawl reused (obtained %s, expires %s)",
                 strategy, session.obtained_at.isoformat(timespec="seconds"),
                 session.expires_at.isoformat(timespec="seconds"))
        return True

    def _session_cookies(self, request: Request) -> None:
        # A stored k6v1 session's cookies go into the crawl's cookie jar at its first news
        # request (the cookie middleware, 700, after this one, sends them from then on); they
        # come out when the site refuses the session (process_response).
        restored = self._restored if self.state.using_stored_session else None
        if restored is not None and restored.cookies and self._seeded is None:
            self._seeded = session_jar.seed(self.crawler, request, restored.cookies)

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
        now = utcnow()
        cookies = parse_set_cookies(response.headers.getlist("Set-Cookie"), now)
        self._obtained = (self.state.ticket, StoredSession.obtained(
            self.site, strategy, now=now, headers=headers, cookies=cookies))
        log.info("access: %s handshake done", strategy)

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        graphql = bool(request.meta.get("govkz_graphql"))
        if not request.meta.get("govkz_api") and not graphql:
            return response
        refused = is_graphql_refusal if graphql else is_refusal
        ticket = request.meta.get("govkz_ticket")
        if not refused(response.status, response.body):
            if 200 <= response.status < 300:
                self.state.on_success()
                self._keep_session(ticket)
            return response
        self.crawler.stats.inc_value("govkz/access/refused")
        stored = self._restored if self.state.using_stored_session and (
            ticket is None or ticket == self.state.ticket) else None
        action = self.state.on_refused(ticket)
        if stored is not None and self.sessions is not None:
            # The site no longer takes the kept session: forget it (the handshake that
            # follows keeps its own once a request gets in with it).
            self._restored = None
            session_jar.unseed(self.crawler, self._seeded or frozenset())
            self._seeded = None
            self.sessions.drop(stored)
            self.crawler.stats.inc_value("govkz/access/stored_session/refused")
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

    def _keep_session(self, ticket: int | None) -> None:
        """Store the handshake's session once a news request got in with it: what the next
        crawl process starts with."""
        if self._obtained is None or ticket != self._obtained[0]:
            return
        session, self._obtained = self._obtained[1], None
        if self.sessions is not None:
            self.sessions.save(session)


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


def backoff_delay(attempt: int, base: float = 2.0, cap: float = 60.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1: the first retry): ``base``, then
    twice as long each time, never more than ``cap``."""
    if attempt < 1:
        raise ValueError(f"retry attempts count from 1, not {attempt}")
    # The exponent is bounded so a huge attempt number cannot overflow the float.
    return max(0.0, min(cap, base * 2.0 ** min(attempt - 1, 64)))


def retry_delay(attempt: int, retry_after: float | None = None, *, base: float = 2.0,
                cap: float = 60.0, retry_after_cap: float = 120.0) -> float:
    """The wait before a retry: what the server's Retry-After asked (never more than
    ``retry_after_cap``), else the exponential backoff of ``backoff_delay``."""
    if retry_after is not None:
        return max(0.0, min(retry_after, retry_after_cap))
    return backoff_delay(attempt, base, cap)


async def sleep(seconds: float) -> None:
    """Wait without blocking the reactor (works with the asyncio reactor and without it)."""
    if seconds <= 0:
        return
    # Imported here: importing the reactor at module level would install the default one
    # before Scrapy installs the asyncio reactor the settings ask for.
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await maybe_deferred_to_future(deferLater(reactor, seconds))


def _slow_down_slot(crawler: Any, request: Request, wait: float) -> None:
    # A Retry-After is about the host, not one URL: the other requests to it back off too.
    downloader = crawler.engine.downloader
    key = request.meta.get("download_slot") or downloader.get_slot_key(request)
    slot = downloader.slots.get(key)
    if slot is not None:
        slot.delay = max(slot.delay, wait)


class RetryAfterMiddleware:
    """On 429, wait what Retry-After asks (bounded) and try again, a few times at most.

    429 is left out of RETRY_HTTP_CODES and handled here, with its own try count
    (GOVKZ_RETRY_AFTER_TIMES): a rate limit is not a server error. The wait is chosen as for a
    5xx (``retry_delay``) and also slows the whole download slot, so the other requests to the
    host back off too.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.max_wait = crawler.settings.getfloat(
            "GOVKZ_RETRY_AFTER_MAX", default("crawl.retry_after_max"))
        self.max_tries = crawler.settings.getint("GOVKZ_RETRY_AFTER_TIMES", 3)
        self.base = crawler.settings.getfloat(
            "GOVKZ_RETRY_BACKOFF_BASE", default("crawl.retry_backoff_base"))
        self.cap = crawler.settings.getfloat(
            "GOVKZ_RETRY_BACKOFF_MAX", default("crawl.retry_backoff_max"))

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
        # Without a Retry-After, the same exponential backoff as a 5xx retry.
        wait = retry_delay(tries, retry_after_seconds(response.headers.get("Retry-After")),
                           base=self.base, cap=self.cap, retry_after_cap=self.max_wait)
        self.crawler.stats.inc_value("govkz/retry_after")
        log.warning("429 from %s: waiting %g s (try %d)", request.url, wait, tries)
        _slow_down_slot(self.crawler, request, wait)
        await sleep(wait)
        retry = request.replace(dont_filter=True)
        retry.meta["govkz_429_tries"] = tries
        return retry


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware (same settings, meta keys, stats and give-up rules), waiting
    before each retry instead of retrying at once.

    Retry n waits GOVKZ_RETRY_BACKOFF_BASE * 2**(n-1) seconds, at most GOVKZ_RETRY_BACKOFF_MAX;
    an answer with Retry-After (a 503 from a site in maintenance) waits what it asks, at most
    GOVKZ_RETRY_AFTER_MAX, and slows its download slot as a 429 does. Replaces
    ``scrapy.downloadermiddlewares.retry.RetryMiddleware`` in DOWNLOADER_MIDDLEWARES.
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.base = settings.getfloat(
            "GOVKZ_RETRY_BACKOFF_BASE", default("crawl.retry_backoff_base"))
        self.cap = settings.getfloat(
            "GOVKZ_RETRY_BACKOFF_MAX", default("crawl.retry_backoff_max"))
        self.retry_after_cap = settings.getfloat(
            "GOVKZ_RETRY_AFTER_MAX", default("crawl.retry_after_max"))
        self.delays: list[float] = []  # every wait chosen, in order (stats, tests)

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry = self._retry_request(request, response_status_message(response.status))
        if retry is None:
            return response  # retries used up: the error reaches the spider
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        await self._wait(retry, f"HTTP {response.status}", retry_after)
        return retry

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception, spider: Any = None
    ) -> Request | Response | None:
        if (not isinstance(exception, self.exceptions_to_retry)
                or request.meta.get("dont_retry", False)):
            return None
        retry = self._retry_request(request, exception)
        if retry is None:
            return None
        await self._wait(retry, type(exception).__name__, None)
        return retry

    def _retry_request(self, request: Request, reason: str | Exception) -> Request | None:
        # What RetryMiddleware._retry does, through Scrapy's public get_retry_request().
        meta = request.meta
        spider = self.crawler.spider
        if spider is None:  # only while the crawler is not running: nothing to retry for
            return None
        return get_retry_request(
            request,
            spider=spider,
            reason=reason,
            max_retry_times=meta.get("max_retry_times", self.max_retry_times),
            priority_adjust=meta.get("priority_adjust", self.priority_adjust),
            give_up_log_level=meta.get("give_up_log_level", self.give_up_log_level),
        )

    async def _wait(self, retry: Request, reason: str, retry_after: float | None) -> None:
        attempt = retry.meta["retry_times"]
        delay = retry_delay(attempt, retry_after, base=self.base, cap=self.cap,
                            retry_after_cap=self.retry_after_cap)
        self.delays.append(delay)
        stats = self.crawler.stats
        stats.inc_value("govkz/retry/backoff")
        # Stats counters are typed int; the waited seconds are a float total.
        stats.set_value("govkz/retry/backoff_seconds",
                        stats.get_value("govkz/retry/backoff_seconds", 0.0) + delay)
        stats.max_value("govkz/retry/backoff_max_seconds", delay)
        log.info("backoff: retry %d of %s in %g s (%s%s)", attempt, retry.url, delay, reason,
                 ", Retry-After" if retry_after is not None else "")
        if retry_after is not None:
            _slow_down_slot(self.crawler, retry, delay)
        await sleep(delay)
