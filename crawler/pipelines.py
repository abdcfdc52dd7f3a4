"""Item pipelines: every spider (replay and live) ends here, in this order:

validate (what must never be stored becomes a reject) -> archive (one transaction per page:
a NewsPage's items, rejects, seen items and walk mark together; rejects kept in their table)
-> feeds (rewritten at the end, for every feed behind the archive).

An unexpected exception in a pipeline costs only its item: it becomes an `unexpected` problem of
the item's target (the traceback goes to the log), never an `ok` crawl that lost it silently. A
page that meets one is stored again item by item, so its other items are kept.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from scrapy.exceptions import DropItem

from crawler.errors import GovkzError, StoreError
from crawler.items import (
    LANGS,
    AgencyRecord,
    NewsItem,
    NewsPage,
    Reject,
    ResponseSample,
    SyncMark,
    is_slug,
)
from crawler.paths import db_path
from crawler.problems import ProblemKind
from crawler.quiet_buffer import QuietBuffer
from crawler.save_plan import SaveResult
from crawler.summary import CrawlSummary, TargetSummary, summary_for
from crawler.sync import SITE_WIDE, SITE_WIDE_SOURCE

log = logging.getLogger(__name__)



def target_of(item: Any) -> str:
    """The summary line an item counts toward: its seed file, or its agency and language."""
    if isinstance(item, Reject):
        if item.url.startswith("file:"):
            return Path(unquote(urlparse(item.url).path)).name
        return item.target
    if isinstance(item, NewsItem):
        if item.source.startswith("snapshot:"):
            return item.source.removeprefix("snapshot:")
        if item.source == SITE_WIDE_SOURCE:  # filed under its agency, counted for its walk
            return f"{SITE_WIDE}/{item.lang}"
        return f"{item.agency}/{item.lang}"
    if isinstance(item, NewsPage):  # the target of its first item or reject
        first = next(iter([*item.items, *item.rejects]), None)
        return target_of(first) if first is not None else "crawl"
    agency, lang = getattr(item, "agency", None), getattr(item, "lang", None)
    return f"{agency}/{lang}" if agency and lang else "crawl"


def _describe(item: NewsItem) -> str:
    return f"{item.agency}/{item.id} {item.title[:60]!r}"


def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """process_item that turns an unexpected exception into a problem of the item's target."""

    @functools.wraps(method)
    def wrapper(self: _SummaryAware, item: Any, spider: Any = None) -> Any:
        try:
            return method(self, item, spider)
        except DropItem:
            raise
        except Exception as exc:  # noqa: BLE001 - the containment boundary: named, logged
            log.exception("unexpected error in %s on %s", type(self).__name__, target_of(item))
            self.summary.target(target_of(item)).add(
                ProblemKind.UNEXPECTED, f"{type(exc).__name__} in {type(self).__name__}: {exc}"
            )
            raise DropItem(f"unexpected {type(exc).__name__}") from None

    return wrapper


class _SummaryAware:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> Any:
        return cls(crawler)

    @property
    def summary(self) -> CrawlSummary:
        return summary_for(self.crawler)


class ValidateItemPipeline(_SummaryAware):
    """Items that would corrupt the archive's identity become rejects (kept, with the reason)."""

    @guarded
    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, SyncMark | ResponseSample | AgencyRecord | Reject):
            return item
        if isinstance(item, NewsPage):  # each item checked; a refused one joins the rejects
            checked = [self.check(news) for news in item.items]
            item.items = [news for news in checked if isinstance(news, NewsItem)]
            item.rejects += [news for news in checked if isinstance(news, Reject)]
            return item
        if not isinstance(item, NewsItem):
            raise DropItem(f"not a NewsItem: {type(item).__name__}")
        return self.check(item)

    @staticmethod
    def check(item: NewsItem) -> NewsItem | Reject:
        """The item, or the reject it becomes."""
        problem = None
        if not is_slug(item.agency):
            problem = f"bad agency slug {item.agency!r}"
        elif item.lang not in LANGS:
            problem = f"unknown language {item.lang!r}"
        elif not item.title.strip():
            problem = "empty title"
        if problem:
            raw = json.dumps({"agency": item.agency, "id": item.id, "lang": item.lang,
                              "title": item.title, "url": item.url}, ensure_ascii=False)
            return Reject(item.agency, item.lang, problem, raw=raw, url=item.url,
                          item_id=item.id)
        return item


class ArchivePipeline(_SummaryAware):
    """Store every item in the SQLite archive and keep the run's counts.

    A quiet page (every item unchanged, no reject, no agency to discover, its walk's mark
    where it is) opens no transaction: its `last_seen` refresh and walk wait in `quiet`
    (crawler/quiet_buffer.py) for the next transaction that writes anyway, at the latest the
    one that finishes the crawl."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self.archive: Any = None
        self.crawl_id: int | None = None
        self.agencies_seen: set[str] = set()  # of the site-wide stream, during this crawl
        self.quiet = QuietBuffer()
        self.marks: dict[tuple[str, str], str | None] = {}

    def open_spider(self, spider: Any = None) -> None:
        from crawler.store import Archive  # imported here: nothing opens a DB at import time

        self.archive = Archive.open(db_path(self.crawler.settings))
        spider = self.crawler.spider
        self.crawl_id = self.archive.begin_crawl(spider.name, getattr(spider, "target", ""))
        # The walks' marks as they stand, read once for the quiet checks (Monitor.mark_unchanged);
        # a mark this crawl writes is dropped from it and read afresh.
        self.marks = self.archive.monitor.stored_marks()

    @guarded
    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, AgencyRecord):
            names = {item.lang: item.name} if item.name else None
            self.archive.upsert_agency(item.slug, names=names, parent=item.parent)
            return item
        if isinstance(item, SyncMark):
            self.archive.monitor.set_high_water(item.agency, item.lang, item.newest)
            self.marks.pop((item.agency, item.lang), None)
            return item
        if isinstance(item, ResponseSample):
            self.archive.monitor.save_sample(
                item.agency, item.lang, url=item.url, status=item.status, reason=item.reason,
                body=item.body, crawl_id=self.crawl_id,
            )
            return item
        if isinstance(item, Reject):
            return self._reject(item)
        if isinstance(item, NewsPage):
            return self._page(item)
        self._page(NewsPage([item]))
        return item

    def _page(self, page: NewsPage) -> NewsPage:
        """Store a page in one transaction: the bookkeeping quiet pages left waiting, its
        rejects, items, seen items, the agencies the site-wide stream names for the first
        time in this crawl, then its walk mark (after the items: a crash never moves a mark
        past an item not stored). A quiet page only waits (_quiet). On a store failure
        nothing of it is stored and each item says so; on an unexpected exception it is
        stored again item by item, so only what fails is lost."""
        if page.empty:
            return page
        counted = [(news, self.summary.target(target_of(news))) for news in page.items]
        for _, target in counted:
            target.found += 1
        discover = list(dict.fromkeys(
            news.agency for news in page.items
            if news.source == SITE_WIDE_SOURCE and news.agency not in self.agencies_seen))
        if self._quiet(page, discover):
            self.quiet.add([*page.seen, *(news.key for news in page.items)],
                           [(mark.agency, mark.lang) for mark in page.marks], memo=page.memo)
            self.agencies_seen.update(discover)
            self._count(page, counted, [SaveResult.UNCHANGED] * len(counted), new=[])
            if self.quiet.due():
                self._flush_quiet()
            return page
        archive = self.archive
        try:
            with archive.transaction(f"store a page of {target_of(page)}"):
                # First: what the page writes is newer than what waited.
                self._write_quiet()
                for reject in page.rejects:
                    archive.save_reject(reject, crawl_id=self.crawl_id)
                outcomes = archive.save_items(page.items, crawl_id=self.crawl_id)
                archive.touch(page.seen)
                new = [slug for slug in discover if archive.discover_agency(slug)]
                for mark in page.marks:
                    archive.monitor.set_high_water(mark.agency, mark.lang, mark.newest)
                    self.marks.pop((mark.agency, mark.lang), None)
                if page.memo is not None:  # after the items it describes (crawler/page_memo.py)
                    archive.monitor.save_page_memo(page.memo)
                if page.forget_memo is not None:
                    archive.monitor.forget_page_memo(*page.forget_memo)
        except StoreError as exc:  # disk full, read-only: nothing is stored, say so
            for news, target in counted:
                target.add(ProblemKind.STORE, f"{_describe(news)} not stored: {exc}", news.url)
            for reject in page.rejects:
                self.summary.target(target_of(reject)).add(
                    ProblemKind.STORE, f"a reject of {reject.target} not stored: {exc}")
                self._count_reject(reject)
            raise DropItem(str(exc)) from None
        except Exception:  # noqa: BLE001 - contained below, item by item, and logged
            self._flush_quiet()  # on its own, so the page is not failed again by it
            if len(page.items) + len(page.rejects) <= 1:
                raise  # nothing else to save: guarded() names it
            log.exception("unexpected error storing a page of %s; storing it item by item",
                          target_of(page))
            for _, target in counted:
                target.found -= 1
            self._one_by_one(page)
            return page
        self.quiet.clear()
        self.agencies_seen.update(discover)
        self._count(page, counted, outcomes, new)
        return page

    def _count(self, page: NewsPage, counted: list[tuple[NewsItem, TargetSummary]],
               outcomes: list[SaveResult], new: list[str]) -> None:
        """The summary's counts of a stored page, `new` the agencies it discovered."""
        for (news, target), outcome in zip(counted, outcomes, strict=True):
            setattr(target, outcome.value, getattr(target, outcome.value) + 1)
            if news.agency in new and news.source == SITE_WIDE_SOURCE:
                new.remove(news.agency)
                target.discovered += 1
                log.info("discovered agency %s in the site-wide news", news.agency)
            if news.incomplete:
                target.incomplete.append(
                    f"{_describe(news)}: cut off, no date; archived, not in feeds")
        for reject in page.rejects:
            self._count_reject(reject)

    def _quiet(self, page: NewsPage, discover: list[str]) -> bool:
        """Whether storing `page` would only refresh `last_seen` and walk times: no reject,
        no new or changed item, no agency to discover, no mark that moves. Read outside a
        transaction, so it only decides that nothing needs writing now; a page that writes
        is planned again inside its transaction."""
        if page.rejects or page.forget_memo:  # a memo to keep waits; one to drop goes now
            return False
        try:
            monitor = self.archive.monitor
            if not all(monitor.mark_unchanged(mark.agency, mark.lang, mark.newest, self.marks)
                       for mark in page.marks):
                return False
            return bool(self.archive.page_is_quiet(page.items, agencies=discover))
        except Exception:  # noqa: BLE001 - a read that fails decides nothing: store as usual
            log.warning("cannot tell whether a page of %s is quiet; storing it",
                        target_of(page), exc_info=True)
            return False

    def _write_quiet(self) -> None:
        """Inside the caller's transaction: the bookkeeping that waited, oldest first, each
        key's last_seen the second it was seen."""
        for when, keys in self.quiet.seen.items():
            self.archive.touch(keys, now=when)
        self.archive.monitor.record_walks(self.quiet.walks)
        for memo in self.quiet.memos.values():  # its items are stored: a memo only lags
            self.archive.monitor.save_page_memo(memo)

    def _flush_quiet(self) -> None:
        """The bookkeeping that waited, in a transaction of its own. It is only bookkeeping:
        when it cannot be written it is dropped (logged), and the next crawl refreshes it."""
        if self.quiet.empty:
            return
        try:
            with self.archive.transaction("record the quiet pages"):
                self._write_quiet()
        except Exception as exc:  # noqa: BLE001 - a lost refresh only lags; never fails a page
            log.warning("cannot record %d items as seen: %s", self.quiet.keys, exc)
        self.quiet.clear()

    def _one_by_one(self, page: NewsPage) -> None:
        """A page that met an unexpected exception, stored one element at a time, each
        contained on its own (guarded): the old one-transaction-per-item path."""
        for element in [*page.rejects, *page.items]:
            with contextlib.suppress(DropItem):
                self.process_item(element)
        if page.seen or page.marks:
            with contextlib.suppress(DropItem):
                self.process_item(NewsPage(seen=page.seen, marks=page.marks))

    def _reject(self, reject: Reject) -> Reject:
        target = self.summary.target(target_of(reject))
        try:
            self.archive.save_reject(reject, crawl_id=self.crawl_id)
        except StoreError as exc:
            target.add(ProblemKind.STORE, f"a reject of {reject.target} not stored: {exc}")
        self._count_reject(reject)
        return reject

    def _count_reject(self, reject: Reject) -> None:
        self.summary.target(target_of(reject)).reject(reject.describe(), reject.reason,
                                                      reject.url)
        log.warning("rejected %s", reject.describe())

    def close_spider(self, spider: Any = None) -> None:
        if self.archive is None:
            return
        totals = self.summary.totals()
        # The strategy that worked (the access middleware's state): the next crawl tries it first.
        access = getattr(self.crawler, "govkz_access", None)
        strategies = [access.worked] if access is not None and access.worked else []
        if access is not None and access.using_rss:
            strategies.append("rss")
        finish = functools.partial(
            self.archive.finish_crawl,
            self.crawl_id,
            status=self.summary.status,
            counts=totals,
            errors=self.summary.errors(),
            problems=self.summary.problems(),
            strategy=",".join(strategies) or None,
            requests=totals["requests"],
        )
        try:  # a quiet crawl: the crawl row's begin, then this one transaction
            with self.archive.transaction("record the crawl"):
                self._write_quiet()
                finish()
        except StoreError as exc:
            if self.quiet.empty:
                raise
            log.warning("cannot record %d items as seen: %s", self.quiet.keys, exc)
            self.quiet.clear()
            finish()  # the crawl's record matters more than the bookkeeping
        self.quiet.clear()
        self.archive.close()


class FeedsPipeline(_SummaryAware):
    """After the run, rewrite every feed that is behind the archive (and `all` + the OPML)."""

    def close_spider(self, spider: Any = None) -> None:
        settings = self.crawler.settings
        if not settings.getbool("GOVKZ_PUBLISH_FEEDS", True):
            return
        try:
            publish(settings)
        except (GovkzError, OSError) as exc:
            self.summary.target("feeds").add(ProblemKind.STORE, f"cannot write the feeds: {exc}")


def publish(settings: Any, *, full: bool = False,
            targets: Iterable[tuple[str, str]] | None = None) -> Any:
    """Write the feeds from the archive: those behind it, whatever crawl stored the change, and
    those the enabled agencies (or `targets`, (agency, lang) pairs) lack; every feed when
    `full` or when there are no feeds yet (crawler/feed_publish.py)."""
    from crawler.feed_publish import publish as publish_feeds

    return publish_feeds(settings, full=full, targets=targets)
