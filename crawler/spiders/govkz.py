"""The live spider: each agency's press news from gov.kz's JSON API, newest first; or, in
site-wide mode, the one list of every agency's news, each item filed under its agency.

It only routes: which page to ask for next is decided by crawler/sync.py, how to be let in by
crawler/middlewares.py + crawler/access.py, what a response means by crawler/extract/*.
Usage: `govkz-monitor crawl --agency mod --lang en` or `scrapy crawl govkz -a agencies=mod`;
site-wide: `govkz-monitor crawl --site-wide --lang ru` or `scrapy crawl govkz -a site_wide=1`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.backfill import Cursor, HistoryWalk, PageWalk, Step
from crawler.errors import LayoutChanged
from crawler.extract.api import (
    detail_url,
    list_url,
    parse_news_detail,
    parse_news_list,
    parse_site_news_detail,
    parse_site_news_list,
)
from crawler.extract.graphql import (
    NEWS_FIELDS,
    SITE_NEWS_FIELDS,
    graphql_url,
    news_query,
    parse_graphql_page,
)
from crawler.extract.rss import parse_official_rss, rss_url
from crawler.failures import describe_failure, failed_request
from crawler.items import LANGS, NewsItem, NewsPage, PageMemo, ResponseSample, SyncMark
from crawler.middlewares import SourceChanged, UseRssFallback
from crawler.page_memo import memo_hit, page_digest, quiet_memo
from crawler.paths import db_path
from crawler.problems import ProblemKind
from crawler.summary import TargetSummary, summary_for
from crawler.sync import SITE_WIDE, PagingPlan, item_key
from crawler.timeutil import parse_iso, require_iso


def flag(value: str | bool | None) -> bool:
    """A spider argument meant as a switch: `-a site_wide=1` (also true, yes, on)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def split_list(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [v.strip() for v in value if v and v.strip()]


@dataclass
class Walk:
    """The state of one agency × language during a crawl; agency SITE_WIDE: the walk of the
    site-wide list in that language."""

    agency: str
    lang: str
    plan: PagingPlan
    newest: datetime | None = None
    pending_details: int = 0
    paging_done: bool = False
    failed: bool = False
    items: list[NewsItem] = field(default_factory=list)
    # A full-history backfill (crawler/backfill.py) instead of the incremental stop rule.
    history: HistoryWalk | None = None

    @property
    def name(self) -> str:
        return f"{self.agency}/{self.lang}"

    @property
    def site_wide(self) -> bool:
        return self.agency == SITE_WIDE


class GovkzSpider(scrapy.Spider):
    name = "govkz"

    def __init__(
        self,
        agencies: str | list[str] | None = None,
        langs: str | list[str] | None = None,
        backfill: str | int | None = None,
        since: str | datetime | None = None,
        targets: str | list[str] | None = None,
        site_wide: str | bool | None = None,
        full_history: str | bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Explicit "agency/lang" pairs (the daemon's batches) instead of agencies x langs.
        self.pairs = [tuple(t.split("/", 1)) for t in split_list(targets)]
        self.agency_slugs = split_list(agencies)
        self.langs = split_list(langs)
        self.backfill = int(backfill) if backfill not in (None, "") else None
        self.since = require_iso(since) if isinstance(since, str) else since
        # One walk of the site-wide list per language instead of one per agency x language;
        # also a target "*/LANG" among `targets` (the daemon's form).
        self.site_wide = flag(site_wide)
        # `govkz-monitor backfill`: walk each target to its first item (or --since), resuming
        # from its stored cursor, with no incremental stop and no GOVKZ_MAX_PAGES bound.
        self.full_history = flag(full_history)
        self.walks: dict[str, Walk] = {}
        # Page 1 of each incremental walk as it was when last entirely quiet, by (agency,
        # lang); None: stored but unusable (crawler/page_memo.py).
        self.memos: dict[tuple[str, str], PageMemo | None] = {}

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
        agencies = self.agency_slugs or (
            [] if self.pairs or self.site_wide else self._enabled_agencies())
        for lang in langs + [lang for _, lang in self.pairs]:
            if lang not in LANGS:
                raise ValueError(f"unknown language {lang!r} (use {', '.join(LANGS)})")
        from crawler.store import Archive

        self.archive = Archive.open(db_path(settings))
        pairs = self.pairs or [(agency, lang) for agency in agencies for lang in langs]
        if self.site_wide:
            pairs = [(SITE_WIDE, lang) for lang in langs] + list(self.pairs)
        if not self.full_history:  # one query for every walk; a backfill walks without them
            self.memos = self.archive.monitor.page_memos((a, lang) for a, lang in pairs)
        marks = self.archive.monitor.stored_marks()  # one query for every walk's high water
        for agency, lang in pairs:
            walk = Walk(agency, lang, self._plan(parse_iso(marks.get((agency, lang)))))
            self.walks[walk.name] = walk
            if self.full_history:
                row = self.archive.monitor.backfill_cursor(agency, lang)
                walk.history = HistoryWalk(agency, lang, self.page_size, since=self.since,
                                           cursor=Cursor.from_row(row) if row else None)
            yield self.list_request(walk, walk.history.start_page if walk.history else 1)

    def _enabled_agencies(self) -> list[str]:
        """The [agencies] section, as the settings carry it (`scrapy crawl govkz` without
        `-a agencies=`; the CLI always names the agencies)."""
        from crawler.config import agencies_from_settings
        from crawler.directory import crawl_targets, load_registry

        return crawl_targets(load_registry(self.settings), agencies_from_settings(self.settings))

    def _plan(self, high_water: datetime | None) -> PagingPlan:
        settings = self.settings
        backfill = self.backfill or settings.getint("GOVKZ_BACKFILL_PAGES")
        return PagingPlan(
            backfill_pages=backfill,
            max_pages=settings.getint("GOVKZ_MAX_PAGES"),
            since=self.since,
            high_water=high_water,
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
        agency = None if walk.site_wide else walk.agency  # no projects= filter: every agency
        access = getattr(self.crawler, "govkz_access", None)
        if access is not None and access.using_graphql:
            return self.graphql_request(walk, agency, page)
        url = list_url(self.site, agency, page, self.page_size, since=walk.plan.since)
        return self._api_request(url, walk, self.parse_list, page=page)

    def graphql_request(self, walk: Walk, agency: str | None, page: int) -> scrapy.Request:
        """The same page through GraphQL `news` (access strategy "graphql"); parse_list reads
        its answer. `page` counts from 1, `lang` is ours: crawler/siteprobe.py rewrites both
        for a site that pages from 0 or names Kazakh "kz" (meta govkz_graphql)."""
        self._target(walk).requests += 1
        fields = NEWS_FIELDS if agency else SITE_NEWS_FIELDS
        query = {"page": page, "size": self.page_size, "lang": walk.lang, "agency": agency,
                 "fields": fields}
        return scrapy.http.JsonRequest(
            graphql_url(self.site), data=news_query(page, self.page_size, walk.lang, fields,
                                                    agency=agency),
            headers={"Accept-Language": walk.lang}, meta={"govkz_graphql": query},
            callback=self.parse_list, errback=self.request_failed,
            cb_kwargs={"walk": walk, "page": page}, dont_filter=True,
        )

    # --- callbacks ----------------------------------------------------------------------------

    def parse_list(self, response: Response, walk: Walk, page: int) -> Iterator[Any]:
        target = self._target(walk)
        target.pages += 1
        # Page 1 of an incremental walk: the same bytes as when it was last quiet end the
        # walk as that page did, without extracting it (crawler/page_memo.py).
        digest = (self._page_digest(walk, response)
                  if page == 1 and walk.history is None else None)
        memo = self.memos.get((walk.agency, walk.lang))
        if digest is not None and memo is not None and memo_hit(memo, digest, walk.plan):
            yield from self._quiet_by_memo(walk, memo)
            return
        graphql = bool(response.meta.get("govkz_graphql"))
        try:
            if graphql:  # the same page, asked through GraphQL (access strategy "graphql")
                found = parse_graphql_page(response.body, lang=walk.lang, site=self.site,
                                           agency=None if walk.site_wide else walk.agency,
                                           url=response.url)
            elif walk.site_wide:
                found = parse_site_news_list(response.body, lang=walk.lang, site=self.site,
                                             url=response.url)
            else:
                found = parse_news_list(response.body, agency=walk.agency, lang=walk.lang,
                                        site=self.site, url=response.url)
        except LayoutChanged as exc:
            yield from self.layout_changed(walk, response, exc)
            return
        items = found.items
        # The page's items and rejects, stored by the pipelines in one transaction (rejects
        # counted there; the walk goes on).
        batch = NewsPage(rejects=list(found.rejects))
        if found.rejects and not items:
            batch.forget_memo = self._stale_memo(walk) if digest is not None else None
            yield batch
            # Not one element readable: no poison item but a changed layout (a renamed field).
            reason = f"news list: every element rejected, e.g. {found.rejects[0].reason}"
            yield from self.layout_changed(walk, response, LayoutChanged(reason))
            return
        if page == 1:
            walk.newest = PagingPlan.newest(items)
        known = self._known(walk, items)
        hashes = {item_key(i): self.archive.content_hash(i) for i in items}
        details: dict[int, list[str]] = {}  # id -> the agencies it is filed under
        for item in items:
            # GraphQL is the source itself: a null body stays empty (no API to ask details).
            if item.body_html or item.body_text or graphql:  # the list carried the body
                batch.items.append(item)
            elif item_key(item) in known:
                # A body-less list entry we already hold: judged by its id alone, so a quiet
                # re-crawl costs no detail request (only its last_seen is refreshed).
                hashes[item_key(item)] = known[item_key(item)]
                batch.seen.append(item.key)
            else:
                details.setdefault(item.id, []).append(item.agency)
        step = walk.history.listed(page, items, rejected=len(found.rejects),
                                   details=len(details)) if walk.history else None
        more, why = (walk.plan.next_page(page, items, known, hashes, rejected=len(found.rejects))
                     if step is None else (False, step.why))
        if digest is not None:  # recorded with the page's items, or forgotten with them
            batch.memo = quiet_memo(walk.agency, walk.lang, digest, items, known, hashes,
                                    rejected=len(found.rejects), details=len(details),
                                    more=more, found=len(batch.items))
            if batch.memo is None:
                batch.forget_memo = self._stale_memo(walk)
        if details or step is not None:  # stored before what the requests and marks bring
            yield from [batch] if not batch.empty else []
            batch = NewsPage()
        for item_id, agencies in details.items():  # one request per id, whatever it is filed under
            walk.pending_details += 1
            yield self._api_request(detail_url(self.site, item_id), walk, self.parse_detail,
                                    item_id=item_id, agencies=agencies,
                                    **({"history_page": step.page} if step else {}))
        if step is not None:
            yield from self._history_step(walk, page, step, len(items), len(found.rejects))
            return
        # At debug level: one line per page is thousands per cycle at gov.kz scale (and a
        # measurable share of a quiet crawl's CPU); the summary counts pages per target.
        self.logger.debug("%s page %d: %d items, %d rejected; %s", walk.name, page, len(items),
                          len(found.rejects), why)
        if more:
            if not batch.empty:
                yield batch
            yield self.list_request(walk, page + 1)
        else:
            walk.paging_done = True
            yield from self._finish(walk, batch)

    def _page_digest(self, walk: Walk, response: Response) -> str:
        """What page 1 was (crawler/page_memo.py): the request as it went out (after the
        access and site-probe middlewares rewrote it) and the response as it came."""
        request = response.request
        assert request is not None  # a callback's response always has its request
        return page_digest(
            agency=walk.agency, lang=walk.lang, site=self.site, method=request.method,
            url=request.url, request_body=request.body,
            accept_language=request.headers.get("Accept-Language") or b"",
            status=response.status, response_url=response.url, response_body=response.body)

    def _quiet_by_memo(self, walk: Walk, memo: PageMemo) -> Iterator[Any]:
        """Page 1 recognised by its memo: the walk ends as the full path ends a quiet page 1
        (its items seen, its mark), and the summary counts what that path counts: the items
        the list gave with a body found and unchanged (body-less known ones neither)."""
        target = self._target(walk)
        target.found += memo.found
        target.unchanged += memo.found
        walk.newest = memo.newest
        walk.paging_done = True
        self.logger.debug("%s page 1: %d items, unchanged bytes (page memo); walk ends",
                          walk.name, len(memo.items))
        yield from self._finish(walk, NewsPage(seen=memo.keys))

    def _stale_memo(self, walk: Walk) -> tuple[str, str] | None:
        """The walk whose stored memo a page 1 that was not quiet makes stale, if it has one."""
        key = (walk.agency, walk.lang)
        if key not in self.memos:
            return None
        del self.memos[key]  # forgotten once, whatever asks the page again
        return key

    def _history_step(self, walk: Walk, page: int, step: Step, items: int,
                      rejected: int) -> Iterator[Any]:
        """A backfill's page: its cursor marks after its items, then the page its HistoryWalk
        chose (crawler/backfill.py), or the end."""
        yield from step.marks
        # At debug level: a backfill has thousands of pages; its progress display sums them.
        self.logger.debug("%s page %d: %d items, %d rejected; backfill: %s", walk.name, page,
                          items, rejected, step.why)
        if step.problem:
            walk.failed = True
            self._target(walk).add(ProblemKind.LAYOUT_CHANGED, step.problem)
        elif step.next_page is not None:
            yield self.list_request(walk, step.next_page)
            return
        walk.paging_done = True
        yield from self._maybe_finish(walk)

    def _known(self, walk: Walk, items: list[NewsItem]) -> dict[tuple[str, int], str]:
        """The stored content hashes of a page's items, by item_key (crawler/sync.py)."""
        if walk.site_wide:
            return self.archive.known_hashes_filed(walk.lang, [item_key(i) for i in items])
        known = self.archive.known_hashes(walk.agency, walk.lang, [i.id for i in items])
        return {(walk.agency, item_id): digest for item_id, digest in known.items()}

    def parse_detail(self, response: Response, walk: Walk, item_id: int,
                     agencies: list[str], history_page: PageWalk | None = None) -> Iterator[Any]:
        walk.pending_details -= 1
        try:
            if walk.site_wide:
                found = parse_site_news_detail(response.body, agencies=agencies, lang=walk.lang,
                                               site=self.site, expected_id=item_id,
                                               url=response.url)
            else:
                found = parse_news_detail(response.body, agency=walk.agency, lang=walk.lang,
                                          site=self.site, expected_id=item_id, url=response.url)
        except LayoutChanged as exc:
            yield from self.layout_changed(walk, response, exc)
            return
        batch = NewsPage(list(found.items), list(found.rejects))
        if walk.history is not None and history_page is not None:  # after the items: stored
            yield batch
            batch = NewsPage()
            yield from walk.history.detail_done(history_page)
        yield from self._finish(walk, batch)

    def _finish(self, walk: Walk, batch: NewsPage) -> Iterator[Any]:
        """The response's batch, then what ends the walk if it ends here: an incremental
        walk's SyncMark rides in the batch (recorded in its transaction, after its items, so a
        quiet page is one write transaction); a backfill's final mark follows it (its own
        pipeline, crawler/backfill_pipeline.py)."""
        ending = list(self._maybe_finish(walk))
        batch.marks += [mark for mark in ending if isinstance(mark, SyncMark)]
        if not batch.empty:
            yield batch
        yield from (mark for mark in ending if not isinstance(mark, SyncMark))

    def _maybe_finish(self, walk: Walk) -> Iterator[Any]:
        # The mark moves only when the walk ended normally and every item of it was yielded.
        if walk.paging_done and walk.pending_details == 0 and not walk.failed:
            if walk.history is None:
                yield SyncMark(walk.agency, walk.lang, walk.newest)
            elif (final := walk.history.finish()) is not None:
                # A backfill moves its cursor, never the incremental walks' mark: the top of
                # the list it saw may be old by now.
                yield final

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
        yield NewsPage(list(found.items), list(found.rejects))
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
        request = failed_request(failure)
        walk: Walk = request.cb_kwargs["walk"]
        if failure.check(SourceChanged):  # API <-> GraphQL: ask for the same page anew
            if "page" in request.cb_kwargs:
                yield self.list_request(walk, request.cb_kwargs["page"])
            else:  # a detail the API can no longer give: the next crawl walks here again
                walk.pending_details -= 1
                walk.failed = True
                self.logger.info("%s: detail %s dropped: %s", walk.name, request.url,
                                 failure.getErrorMessage())
            return
        if failure.check(UseRssFallback) and walk.site_wide:
            # The official RSS is per agency: there is nothing to fall back to for every agency.
            if not walk.failed:
                walk.failed = True
                self._target(walk).add(
                    ProblemKind.ACCESS_REFUSED,
                    "every API access strategy was refused (the site-wide list has no RSS "
                    "fallback; crawl per agency instead)", request.url)
            return
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
        request = failed_request(failure)
        walk: Walk = request.cb_kwargs["walk"]
        _, message = describe_failure(failure)
        self._target(walk).add(
            ProblemKind.ACCESS_REFUSED,
            "every access strategy was refused and the official RSS failed too: " + message,
            request.url,
        )

