"""When a walk stops paging (crawler/sync.py PagingPlan.next_page): pure cases."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from crawler.items import NewsItem
from crawler.sync import PagingPlan, item_key
from crawler.timeutil import ALMATY

MARK = datetime(2026, 5, 1, 12, 0, 0, tzinfo=ALMATY)  # the last complete walk's newest item


def item(n: int, published: datetime) -> NewsItem:
    return NewsItem("mod", n, "en", f"https://www.gov.kz/n/{n}", f"news {n}", published)


def page_of(*published: datetime) -> list[NewsItem]:
    return [item(n + 1, when) for n, when in enumerate(published)]


def all_known(items: list[NewsItem]) -> tuple[dict, dict]:
    hashes = {item_key(i): f"h{i.id}" for i in items}
    return dict(hashes), hashes


@pytest.mark.parametrize("published, more", [
    # The page reaches back to the mark and holds nothing new: the walk is caught up ...
    ((MARK, MARK - timedelta(hours=1)), False),
    # ... also when gov.kz sends the mark's item with milliseconds the mark does not keep.
    ((MARK + timedelta(milliseconds=250),), False),
    # A page of known items all newer than the mark: not back at the last walk yet.
    ((MARK + timedelta(seconds=1), MARK + timedelta(seconds=2)), True),
])
def test_a_known_page_stops_the_walk_once_it_reaches_the_mark(
    published: tuple[datetime, ...], more: bool
) -> None:
    items = page_of(*published)
    known, hashes = all_known(items)
    go_on, _ = PagingPlan(high_water=MARK).next_page(1, items, known, hashes)
    assert go_on is more


def test_a_new_or_edited_item_walks_on() -> None:
    items = page_of(MARK, MARK - timedelta(hours=1))
    known, hashes = all_known(items)
    known[item_key(items[0])] = "an older hash"
    assert PagingPlan(high_water=MARK).next_page(1, items, known, hashes)[0] is True


@pytest.mark.parametrize("page, more", [(1, True), (2, False)])
def test_a_first_walk_backfills_its_depth(page: int, more: bool) -> None:
    items = page_of(MARK)
    known, hashes = all_known(items)
    assert PagingPlan(backfill_pages=2).next_page(page, items, known, hashes)[0] is more
