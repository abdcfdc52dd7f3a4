"""Item pipelines: every spider (replay and live) ends here, in this order:

validate (drop what must never be stored) -> archive (one transaction per item) -> feeds
(rewritten once, at the end, for the agencies that changed).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from scrapy.exceptions import DropItem

from crawler.errors import GovkzError, StoreError
from crawler.items import LANGS, AgencyRecord, NewsItem, ResponseSample, SyncMark
from crawler.paths import db_path, feeds_dir
from crawler.summary import CrawlSummary, summary_for

log = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def target_of(item: NewsItem) -> str:
    """The summary line an item counts toward: its seed file, or its agency and language."""
    if item.source.startswith("snapshot:"):
        return item.source.removeprefix("snapshot:")
    return f"{item.agency}/{item.lang}"


def _describe(item: NewsItem) -> str:
    return f"{item.agency}/{item.id} {item.title[:60]!r}"


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
    """Refuse items that would corrupt the archive's identity; name each refusal."""

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, SyncMark | ResponseSample | AgencyRecord):
            return item
        if not isinstance(item, NewsItem):
            raise DropItem(f"not a NewsItem: {type(item).__name__}")
        problem = None
        if not SLUG_RE.match(item.agency):
            problem = f"bad agency slug {item.agency!r}"
        elif item.lang not in LANGS:
            problem = f"unknown language {item.lang!r}"
        elif not item.title.strip():
            problem = "empty title"
        if problem:
            self.summary.target(target_of(item)).skipped.append(f"{_describe(item)}: {problem}")
            raise DropItem(problem)
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

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, AgencyRecord):
            names = {item.lang: item.name} if item.name else None
            self.archive.upsert_agency(item.slug, names=names, parent=item.parent)
            return item
        if isinstance(item, SyncMark):
            self.archive.set_high_water(item.agency, item.lang, item.newest)
            return item
        if isinstance(item, ResponseSample):
            self.archive.save_sample(
                item.agency, item.lang, url=item.url, status=item.status, reason=item.reason,
                body=item.body, crawl_id=self.crawl_id,
            )
            return item
        target = self.summary.target(target_of(item))
        target.found += 1
        try:
            outcome = self.archive.save_item(item, crawl_id=self.crawl_id)
        except StoreError as exc:  # disk full, read-only: the item is not stored, say so
            target.errors.append(f"{_describe(item)} not stored: {exc}")
            raise DropItem(str(exc)) from None
        setattr(target, outcome.value, getattr(target, outcome.value) + 1)
        if outcome.value in ("new", "updated"):
            self.summary.changed_agencies.add(item.agency)
        if item.incomplete:
            target.incomplete.append(f"{_describe(item)}: cut off, no date; archived, not in feeds")
        return item

    def close_spider(self, spider: Any = None) -> None:
        if self.archive is None:
            return
        totals = self.summary.totals()
        errors = self.summary.errors()
        # The strategy that worked (the access middleware's state): the next crawl tries it first.
        access = getattr(self.crawler, "govkz_access", None)
        strategies = [access.worked] if access is not None and access.worked else []
        if access is not None and access.using_rss:
            strategies.append("rss")
        status = "ok" if not errors else ("partial" if totals["found"] else "failed")
        self.archive.finish_crawl(
            self.crawl_id,
            status=status,
            counts=totals,
            errors=errors,
            strategy=",".join(strategies) or None,
            requests=totals["requests"],
        )
        self.archive.close()


class FeedsPipeline(_SummaryAware):
    """After the run, rewrite the feeds of the agencies that changed (and `all` + the OPML)."""

    def close_spider(self, spider: Any = None) -> None:
        settings = self.crawler.settings
        if not settings.getbool("GOVKZ_PUBLISH_FEEDS", True):
            return
        try:
            publish(settings, agencies=self.summary.changed_agencies)
        except GovkzError as exc:
            self.summary.target("feeds").errors.append(str(exc))


def publish(settings: Any, agencies: set[str] | None = None) -> Any:
    """Write the feeds from the archive; `agencies=None` rewrites every agency's feeds."""
    from crawler.directory import load_registry
    from crawler.feeds import write_feeds
    from crawler.store import Archive

    out = feeds_dir(settings)
    archive = Archive.open(db_path(settings))
    try:
        # A first run (no feeds yet) writes everything, whatever changed.
        wanted = None if agencies is None or not (out / "index.opml").exists() else agencies
        return write_feeds(
            archive,
            out,
            base_url=settings.get("GOVKZ_PUBLIC_URL"),
            registry=load_registry(settings),
            limit=settings.getint("GOVKZ_FEED_LIMIT", 50),
            agencies=wanted,
        )
    finally:
        archive.close()
