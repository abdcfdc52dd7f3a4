"""The item pipeline that moves backfill cursors: a BackfillMark (crawler/backfill.py) becomes
the target's `backfill_cursor` row. First in the chain (the validator would drop a mark as "not
a NewsItem"), and a mark reaches it only after the items it covers went through the whole
chain: the spider yields it after them, and the chain is synchronous, in order.
"""

from __future__ import annotations

from typing import Any

from scrapy.exceptions import DropItem

from crawler.backfill import BackfillMark
from crawler.errors import StoreError
from crawler.paths import db_path
from crawler.problems import ProblemKind
from crawler.summary import summary_for

# Its place in ITEM_PIPELINES: before ValidateItemPipeline (100).
PRIORITY = 50


class CursorPipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.archive: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> CursorPipeline:
        return cls(crawler)

    def open_spider(self, spider: Any = None) -> None:
        from crawler.store import Archive  # imported here: nothing opens a DB at import time

        self.archive = Archive.open(db_path(self.crawler.settings))

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, BackfillMark):
            return item
        try:
            self.archive.monitor.save_backfill_cursor(
                item.agency, item.lang, page=item.page, page_size=item.page_size,
                oldest=item.oldest, oldest_id=item.oldest_id, newest=item.newest,
                newest_id=item.newest_id, since=item.since, total=item.total,
                finished=item.finished,
            )
        except StoreError as exc:  # the cursor stays behind: the next run re-reads pages
            summary_for(self.crawler).target(f"{item.agency}/{item.lang}").add(
                ProblemKind.STORE, f"backfill cursor not moved: {exc}")
        # Consumed here: nothing after this pipeline knows marks. Quietly, as it is no loss.
        raise DropItem("backfill cursor moved", log_level="DEBUG")

    def close_spider(self, spider: Any = None) -> None:
        if self.archive is not None:
            self.archive.close()
