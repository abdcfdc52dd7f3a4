"""Item pipelines: every spider (replay and live) ends here, in this order:

validate (what must never be stored becomes a reject) -> archive (one transaction per item;
rejects kept in their table) -> feeds (rewritten at the end, for every feed behind the archive).

An unexpected exception in a pipeline costs only its item: it becomes an `unexpected` problem of
the item's target (the traceback goes to the log), never an `ok` crawl that lost it silently.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from scrapy.exceptions import DropItem

from crawler.config import default
from crawler.errors import GovkzError, StoreError
from crawler.items import LANGS, AgencyRecord, NewsItem, Reject, ResponseSample, SyncMark, is_slug
from crawler.paths import db_path, feeds_dir
from crawler.problems import ProblemKind
from crawler.summary import CrawlSummary, summary_for

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
        return f"{item.agency}/{item.lang}"
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
        if not isinstance(item, NewsItem):
            raise DropItem(f"not a NewsItem: {type(item).__name__}")
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
    """Store every item in the SQLite archive and keep the run's counts."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self.archive: Any = None
        self.crawl_id: int | None = None

    def open_spider(self, spider: Any = None) -> None:
        from crawler.store import Archive  # imported here: nothing opens a DB at import time

        self.archive = Archive.open(db_path(self.crawler.settings))
        spider = self.crawler.spider
        self.crawl_id = self.archive.begin_crawl(spider.name, getattr(spider, "target", ""))

    @guarded
    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, AgencyRecord):
            names = {item.lang: item.name} if item.name else None
            self.archive.upsert_agency(item.slug, names=names, parent=item.parent)
            return item
        if isinstance(item, SyncMark):
            self.archive.monitor.set_high_water(item.agency, item.lang, item.newest)
            return item
        if isinstance(item, ResponseSample):
            self.archive.monitor.save_sample(
                item.agency, item.lang, url=item.url, status=item.status, reason=item.reason,
                body=item.body, crawl_id=self.crawl_id,
            )
            return item
        if isinstance(item, Reject):
            return self._reject(item)
        target = self.summary.target(target_of(item))
        target.found += 1
        try:
            outcome = self.archive.save_item(item, crawl_id=self.crawl_id)
        except StoreError as exc:  # disk full, read-only: the item is not stored, say so
            target.add(ProblemKind.STORE, f"{_describe(item)} not stored: {exc}", item.url)
            raise DropItem(str(exc)) from None
        setattr(target, outcome.value, getattr(target, outcome.value) + 1)
        if item.incomplete:
            target.incomplete.append(f"{_describe(item)}: cut off, no date; archived, not in feeds")
        return item

    def _reject(self, reject: Reject) -> Reject:
        target = self.summary.target(target_of(reject))
        try:
            self.archive.save_reject(reject, crawl_id=self.crawl_id)
        except StoreError as exc:
            target.add(ProblemKind.STORE, f"a reject of {reject.target} not stored: {exc}")
        target.reject(reject.describe(), reject.reason, reject.url)
        log.warning("rejected %s", reject.describe())
        return reject

    def close_spider(self, spider: Any = None) -> None:
        if self.archive is None:
            return
        totals = self.summary.totals()
        # The strategy that worked (the access middleware's state): the next crawl tries it first.
        access = getattr(self.crawler, "govkz_access", None)
        strategies = [access.worked] if access is not None and access.worked else []
        if access is not None and access.using_rss:
            strategies.append("rss")
        self.archive.finish_crawl(
            self.crawl_id,
            status=self.summary.status,
            counts=totals,
            errors=self.summary.errors(),
            problems=self.summary.problems(),
            strategy=",".join(strategies) or None,
            requests=totals["requests"],
        )
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


def publish(settings: Any, *, full: bool = False) -> Any:
    """Write the feeds from the archive: those behind it (Archive.feeds_behind), whatever crawl
    stored the change; every feed when `full` or when there are no feeds yet."""
    from crawler.directory import load_registry
    from crawler.feeds import FeedReport, write_feeds
    from crawler.store import Archive

    out = feeds_dir(settings)
    archive = Archive.open(db_path(settings))
    try:
        behind = archive.feeds_behind()
        everything = full or not (out / "index.opml").exists()
        if not everything and not behind:
            return FeedReport()  # a quiet cycle: no feed is behind, so none is even rendered
        report = write_feeds(
            archive,
            out,
            base_url=settings.get("GOVKZ_PUBLIC_URL"),
            registry=load_registry(settings),
            limit=settings.getint("GOVKZ_FEED_LIMIT", default("crawl.feed_limit")),
            agencies=None if everything else {agency for agency, _ in behind},
        )
        archive.feeds_published(behind)
        return report
    finally:
        archive.close()
