"""When to stop paging a news list, an agency's or the site-wide one (pure: no requests, no
storage).

gov.kz lists news newest first with no total count, so a crawl walks pages until it reaches what
it already has. The archive remembers, per agency and language, the newest publication date at
the end of the last *completed* walk (the high-water mark). A walk killed half-way leaves the old
mark, so the next walk goes on past the items it already stored until it reaches the old mark:
nothing between is lost.

The site-wide list (every agency's news, newest first) is walked by the same rule; its mark is
kept under the agency key SITE_WIDE, which no agency slug can be (crawler/items.py SLUG_RE), so
the archive's agencies and feeds never see it as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crawler.config import Crawl
from crawler.items import NewsItem

# The agency key of the site-wide stream: its walk mark (sync_state), its crawl target
# ("*/ru" in summaries, the daemon's schedule) and the agency of its rejects and samples.
SITE_WIDE = "*"
# NewsItem.source of an item filed from the site-wide list (the per-agency walk's is "api").
SITE_WIDE_SOURCE = "api:site-wide"


def item_key(item: NewsItem) -> tuple[str, int]:
    """What `next_page` compares an item by: one id may be filed under two agencies."""
    return (item.agency, item.id)


@dataclass(frozen=True)
class PagingPlan:
    # The defaults are the configuration's (crawler/config.py), written there once.
    backfill_pages: int = Crawl.backfill  # depth of a first walk (or a forced one, --backfill)
    max_pages: int = Crawl.max_pages  # hard bound on one walk, whatever happens
    since: datetime | None = None  # walk back to this date instead of backfill_pages
    high_water: datetime | None = None  # newest date of the last completed walk
    forced_backfill: bool = False  # --backfill given explicitly: walk at least that deep

    def next_page(
        self, page: int, items: list[NewsItem], known: dict[tuple[str, int], str],
        hashes: dict[tuple[str, int], str], *, rejected: int = 0,
    ) -> tuple[bool, str]:
        """Whether to fetch page+1 after `page` gave `items`, and why (for the log).

        `known` maps the item_key of stored items to their content hash; `hashes` the same for
        `items` as fetched.
        `rejected` elements of the page (crawler/items.py Reject) count as known items: the
        page was not the end of the list, and they never hold a walk back.
        """
        all_known = all(known.get(item_key(i)) == hashes.get(item_key(i)) for i in items)
        return self.decide(page, count=len(items), rejected=rejected,
                           oldest=self.oldest(items), all_known=all_known)

    def decide(self, page: int, *, count: int, rejected: int, oldest: datetime | None,
               all_known: bool) -> tuple[bool, str]:
        """next_page from what it needs of the page: how many items and rejects it had, its
        oldest date, and whether every item was stored with the same hash. Also the rule a
        page memo's hit is judged by (crawler/page_memo.py), so the two can never differ."""
        if not count and not rejected:
            return False, "end of list"
        if page >= self.max_pages:
            return False, f"max pages ({self.max_pages}) reached"
        if self.since is not None:
            if oldest is not None and oldest <= self.since:
                return False, "reached --since date"
            return True, "walking back to --since date"
        if self.forced_backfill and page < self.backfill_pages:
            return True, "backfill"
        if self.high_water is None:
            if page < self.backfill_pages:
                return True, "first walk: backfill"
            return False, f"first walk: backfilled {self.backfill_pages} page(s)"
        # The mark is stored to the second (timeutil.isoformat); gov.kz dates may carry
        # milliseconds, which must not make the last walk's newest item look unreached.
        reached = oldest is not None and oldest.replace(microsecond=0) <= self.high_water
        if all_known and reached:
            return False, "caught up"
        if not all_known:
            return True, "new or edited items on this page"
        return True, "not yet back at the last walk's newest item"

    @staticmethod
    def newest(items: list[NewsItem]) -> datetime | None:
        dated = [i.published for i in items if i.published is not None]
        return max(dated) if dated else None

    @staticmethod
    def oldest(items: list[NewsItem]) -> datetime | None:
        dated = [i.published for i in items if i.published is not None]
        return min(dated) if dated else None
