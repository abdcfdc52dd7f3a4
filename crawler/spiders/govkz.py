"""The live spider: each agency's press news from gov.kz's JSON API, newest first.

It only routes: which page to ask for next is decided by crawler/sync.py, how to be let in by
crawler/middlewares.py + crawler/access.py, what a response means by crawler/extract/*.
Usage: `govkz-monitor crawl --agency mod --lang en` or `scrapy crawl govkz -a agencies=mod`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import scrapy
from scrapy.exceptions import DownloadTimeoutError
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import TimeoutError as TwistedTimeoutError
from twisted.python.failure import Failure

from crawler.errors import LayoutChanged
from crawler.extract.api import (
    detail_url,
    list_url,
    parse_news_detail,
    parse_news_list,
)
from crawler.extract.rss import parse_official_rss, rss_url
from crawler.items import LANGS, NewsItem, ResponseSample, SyncMark
from crawler.middlewares import AccessRefused, UseRssFallback
from crawler.paths import db_path
from crawler.problems import ProblemKind
from crawler.summary import TargetSummary, summary_for
from crawler.sync import PagingPlan
from crawler.timeutil import require_iso


def split_list(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [v.strip() for v in value if v and v.strip()]


@dataclass
class Walk:
    """The state of one agency × language during a crawl."""

    agency: str
    lang: str
    plan: PagingPlan
    newest: datetime | None = None
    pending_details: int = 0
    paging_done: bool = False
    failed: bool = False
    items: list[NewsItem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.agency}/{self.lang}"


class GovkzSpider(scrapy.Spider):
    name = "govkz"

    def __init__(
        self,
        agencies: str | list[str] | None = None,
        langs: str | list[str] | None = None,
        backfill: str | int | None = None,
        since: str | datetime | None = None,
        targets: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Explicit "agency/lang" pairs (the daemon's batches) instead of agencies x langs.
        self.pairs = [tuple(t.split("/", 1)) for t in split_list(targets)]
        self.agency_slugs = split_list(agencies)
        self.langs = split_list(langs)
        self.backfill = int(backfill) if backfill not in (None, "") else None
        self.since = require_iso(since) if isinstance(since, str) else since
        self.walks: dict[str, Walk] = {}

    @property
    def target(self) -> str:
        """What the `crawls` row names: the site (the access strategy is remembered per site)."""
        return str(self.settings.get("GOVKZ_BASE_URL")).rstrip("/")

    # --- planning -----------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        settings = self.settings
        self.site = settings.get("GOVKZ_BASE_URL").rstrip("/")
        # Every GOVKZ_ setting is in the settings, derived from the resolved configuration
        # (crawler/config.py): no default is re-applied here.
        self.page_size = settings.getint("GOVKZ_PAGE_SIZE")
        langs = self.langs or split_list(settings.get("GOVKZ_LANGS"))
        agencies = self.agency_slugs or ([] if self.pairs else self._enabled_agencies())
        for lang in langs + [lang for _, lang in self.pairs]:
            if lang not in LANGS:
                raise ValueError(f"unknown language {lang!r} (use {', '.join(LANGS)})")
        from crawler.store import Archive

        self.archive = Archive.open(db_path(settings))
        pairs = self.pairs or [(agency, lang) for agency in agencies for lang in langs]
        for agency, lang in pairs:
            walk = Walk(agency, lang, self._plan(agency, lang))
            self.walks[walk.name] = walk
            yield self.list_request(walk, 1)

    def _enabled_agencies(self) -> list[str]:
        """The [agencies] section, as the settings carry it (`scrapy crawl govkz` without
        `-a agencies=`; the CLI always names the agencies)."""
        from crawler.config import agencies_from_settings
        from crawler.directory import crawl_targets, load_registry

        return crawl_targets(load_registry(self.settings), agencies_from_settings(self.settings))

    def _plan(self, agency: str, lang: str) -> PagingPlan:
        settings = self.settings
        backfill = self.backfill or settings.getint("GOVKZ_BACKFILL_PAGES")
        return PagingPlan(
            backfill_pages=backfill,
            max_pages=settings.getint("GOVKZ_MAX_PAGES"),
            since=self.since,
            high_water=self.archive.monitor.high_water(agency, lang),
            forced_backfill=self.backfill is not None,
        )

    def closed(self, reason: str) -> None:
        access = getattr(self.crawler, "govkz_access", None)
        for walk in self.walks.values():
            target = self._target(walk)
            if access is not None and not target.strategy:
                target.strategy = access.describe()
        if getattr(self, "archive", None) is not None:
            self.archive.close()

    # --- requests -----------------------------------------------------------------------------

    def _target(self, walk: Walk) -> TargetSummary:
        return summary_for(self.crawler).target(walk.name)

    def _api_request(self, url: str, walk: Walk, callback: Any, **kwargs: Any) -> scrapy.Request:
        self._target(walk).requests += 1
        return scrapy.Request(
            url,
            headers={"Accept": "application/json", "Accept-Language": walk.lang},
            meta={"govkz_api": True},
            callback=callback,
            errback=self.request_failed,
            cb_kwargs={"walk": walk, **kwargs},
            dont_filter=True,
        )

    def list_request(self, walk: Walk, page: int) -> scrapy.Request:
        url = list_url(self.site, walk.agency, page, self.page_size, since=walk.plan.since)
        return self._api_request(url, walk, self.parse_list, page=page)

    # --- callbacks ----------------------------------------------------------------------------

    def parse_list(self, response: Response, walk: Walk, page: int) -> Iterator[Any]:
        target = self._target(walk)
        target.pages += 1
        try:
            found = parse_news_list(response.body, agency=walk.agency, lang=walk.lang,
                                    site=self.site, url=response.url)
        except LayoutChanged as exc:
            yield from self.layout_changed(walk, response, exc)
            return
        items = found.items
        yield from found.rejects  # stored and counted by the pipelines; the walk goes on
        if found.rejects and not items:
            # Not one element readable: no poison item but a changed layout (a renamed field).
            reason = f"news list: every element rejected, e.g. {found.rejects[0].reason}"
            yield from self.layout_changed(walk, response, LayoutChanged(reason))
            return
        if page == 1:
            walk.newest = PagingPlan.newest(items)
        known = self.archive.known_hashes(walk.agency, walk.lang, [i.id for i in items])
        hashes = {i.id: self.archive.content_hash(i) for i in items}
        for item in items:
            if item.body_html or item.body_text:  # the list carried the body
                yield item
            elif item.id in known:
                # A body-less list entry we already hold: judged by its id alone, so a quiet
                # re-crawl costs no detail request.
                hashes[item.id] = known[item.id]
            else:
                walk.pending_details += 1
                yield self._api_request(detail_url(self.site, item.id), walk, self.parse_detail,
                                        item_id=item.id)
        more, why = walk.plan.next_page(page, items, known, hashes, rejected=len(found.rejects))
        self.logger.info("%s page %d: %d items, %d rejected; %s", walk.name, page, len(items),
                         len(found.rejects), why)
        if more:
            yield self.list_request(walk, page + 1)
        else:
            walk.paging_done = True
            yield from self._maybe_finish(walk)

    def parse_detail(self, response: Response, walk: Walk, item_id: int) -> Iterator[Any]:
        walk.pending_details -= 1
        try:
            found = parse_news_detail(response.body, agency=walk.agency, lang=walk.lang,
                                      site=self.site, expected_id=item_id, url=response.url)
        except LayoutChanged as exc:
            yield from self.layout_changed(walk, response, exc)
            return
        yield from found.items
        yield from found.rejects
        yield from self._maybe_finish(walk)

    def _maybe_finish(self, walk: Walk) -> Iterator[Any]:
        # The mark moves only when the walk ended normally and every item of it was yielded.
        if walk.paging_done and walk.pending_details == 0 and not walk.failed:
            yield SyncMark(walk.agency, walk.lang, walk.newest)

    def parse_rss(self, response: Response, walk: Walk) -> Iterator[Any]:
        target = self._target(walk)
        target.pages += 1
        target.strategy = "rss (API refused)"
        try:
            found = parse_official_rss(response.body, agency=walk.agency, lang=walk.lang,
                                       site=self.site, url=response.url)
        except LayoutChanged as exc:
            yield from self.layout_changed(walk, response, exc)
            return
        yield from found.items
        yield from found.rejects
        # RSS shows only the newest items: not a complete walk, so the mark stays put.

    # --- failures -----------------------------------------------------------------------------

    def problem_target(self, request: scrapy.Request) -> str:
        """The target an unexpected exception on `request` is charged to (crawler/contain.py);
        the walk stops there, so its mark stays put and the next crawl goes over it again."""
        walk = request.cb_kwargs.get("walk")
        if isinstance(walk, Walk):
            walk.failed = True
            return walk.name
        return "crawl"

    def layout_changed(self, walk: Walk, response: Response, exc: LayoutChanged) -> Iterator[Any]:
        walk.failed = True
        self._target(walk).add(ProblemKind.LAYOUT_CHANGED, exc.reason, response.url)
        yield ResponseSample(walk.agency, walk.lang, response.url, response.status, exc.reason,
                             response.body[:65536])

    def request_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request
        walk: Walk = request.cb_kwargs["walk"]
        if failure.check(UseRssFallback):
            if not walk.failed:
                walk.failed = True  # the API walk is over; the RSS gives what it can
                yield scrapy.Request(
                    rss_url(self.site, walk.agency, walk.lang), callback=self.parse_rss,
                    errback=self.rss_failed, cb_kwargs={"walk": walk}, dont_filter=True,
                )
            return
        walk.failed = True
        kind, message = describe_failure(failure)
        self._target(walk).add(kind, message, request.url)

    def rss_failed(self, failure: Failure) -> None:
        walk: Walk = failure.request.cb_kwargs["walk"]
        _, message = describe_failure(failure)
        self._target(walk).add(
            ProblemKind.ACCESS_REFUSED,
            "every access strategy was refused and the official RSS failed too: " + message,
            failure.request.url,
        )


def describe_failure(failure: Failure) -> tuple[ProblemKind, str]:
    """The kind and one line for a failed request: what went wrong, never a traceback."""
    # The URL travels beside the message (Problem.url), so it is not repeated in it.
    if failure.check(HttpError):
        status = failure.value.response.status
        return ProblemKind.HTTP_ERROR, f"HTTP {status}" + (" (after retries)" * (status >= 500))
    if failure.check(AccessRefused):
        return ProblemKind.ACCESS_REFUSED, f"access refused: {failure.getErrorMessage()}"
    # Scrapy >= 2.13 raises its own DownloadTimeoutError; Twisted's is kept for older paths.
    if failure.check(DownloadTimeoutError, TwistedTimeoutError):
        return ProblemKind.TIMEOUT, "timed out"
    return ProblemKind.HTTP_ERROR, f"{failure.type.__name__}: {failure.getErrorMessage()}"
