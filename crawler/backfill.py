"""Full-history backfill: where a walk back to the first item (or a date) stands, and how a
killed one resumes without losing or repeating anything (pure: no requests, no storage).

A backfill walks a newest-first list (one agency's, or the site-wide one, '*') page by page to
its end. After each page whose items are all stored, the archive's `backfill_cursor` row of the
target moves (a BackfillMark, yielded after the page's items, so the cursor never runs ahead
of what is stored): the last complete page and the oldest item reached.

Resuming at the stored page number alone could skip items: news published at the top between
two runs push every item down, so page N now starts with items that were on page N-1 (more
than a page of them and the stored page is entirely old ground; items deleted meanwhile pull
the list up instead). So a run resumes RESUME_OVERLAP pages before the cursor and first looks
for its anchor: a page that reaches back to the cursor (it holds the oldest item reached, or
something newer). Pages holding only older items mean the list moved up: it steps back a page
until it finds the anchor (page 1 always is one). From the anchor on it walks forward as a
fresh walk would; pages that hold only items newer than the cursor are passed through (stored
again idempotently: new items arrived at the top) and the walk goes on from there. Items are
written idempotently by the archive, so pages read twice cost requests, never duplicates.

At the bottom, the walk goes back to page 1 and down to the newest item the backfill started
from (usually one page): what was published while it ran, or between its runs, is stored too,
so a finished backfill holds the whole list as it is then. Only then is it `finished`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.items import NewsItem
from crawler.timeutil import parse_iso

# Pages read again before the stored cursor when a backfill resumes.
RESUME_OVERLAP = 2
# gov.kz's ids count up from about 1 (≈1.3 M ids for ≈1.27 M items): with no total and no
# --since, the share of the id range walked estimates how far a backfill is.
ID_FLOOR = 0


def _key(item: NewsItem) -> tuple[datetime, int] | None:
    return (item.published, item.id) if item.published is not None else None


@dataclass(frozen=True)
class Cursor:
    """A `backfill_cursor` row: where a backfill of one target stood when it last moved."""

    agency: str
    lang: str
    page: int
    page_size: int
    oldest: datetime | None = None
    oldest_id: int | None = None
    newest: datetime | None = None
    newest_id: int | None = None
    total: int | None = None
    since: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Cursor:
        dates = {name: parse_iso(row.get(name)) for name in
                 ("oldest", "newest", "since", "started_at", "updated_at", "finished_at")}
        return cls(row["agency"], row["lang"], int(row["page"]), int(row["page_size"]),
                   oldest_id=row.get("oldest_id"), newest_id=row.get("newest_id"),
                   total=row.get("total"), **dates)

    @property
    def target(self) -> str:
        return f"{self.agency}/{self.lang}"

    def covers(self, since: datetime | None) -> bool:
        """Whether a finished backfill already walked back as far as `since` asks (None: to
        the first item)."""
        if self.finished_at is None:
            return False
        return self.since is None or (since is not None and self.since <= since)

    def resume_page(self, page_size: int) -> int:
        """The page a run resumes at: RESUME_OVERLAP pages before the first one not stored,
        counted at `page_size` (the cursor may have been written at another)."""
        complete = self.page * self.page_size // page_size
        return max(1, complete + 1 - RESUME_OVERLAP)


@dataclass(frozen=True)
class BackfillMark:
    """The cursor of a target moves to `page` (every item up to it stored), or, `finished`,
    the backfill reached the end of the list (or its --since date)."""

    agency: str
    lang: str
    page: int
    page_size: int
    oldest: datetime | None
    oldest_id: int | None
    newest: datetime | None
    newest_id: int | None
    since: datetime | None
    finished: bool = False
    total: int | None = None


@dataclass(eq=False)
class PageWalk:
    """One fetched list page: complete once its detail requests (items listed without a body)
    have answered. Detail requests carry it, so a page fetched twice is counted apart."""

    page: int
    items: int
    pending: int
    oldest: tuple[datetime, int] | None
    newest: tuple[datetime, int] | None

    @property
    def complete(self) -> bool:
        return self.pending <= 0


@dataclass
class Step:
    """What the spider does after a list page of a backfill: yield `marks` (after the page's
    items), give `page` to its detail requests, then ask for `next_page` (None: the walk is
    over; `problem`: it cannot go on)."""

    page: PageWalk
    marks: list[BackfillMark]
    next_page: int | None
    why: str
    problem: str | None = None


@dataclass
class HistoryWalk:
    """The backfill of one target in one crawl: resumed from its cursor (None: a first run)."""

    agency: str
    lang: str
    page_size: int
    since: datetime | None = None
    cursor: Cursor | None = None
    start_page: int = 1
    anchored: bool = False
    done_through: int = 0  # every page up to here is complete (after the anchor)
    oldest: tuple[datetime, int] | None = None
    newest: tuple[datetime, int] | None = None
    total: int | None = None
    pages_walked: int = 0  # list pages read in this run
    topping: bool = False  # the history is walked; now the top, down to `newest`
    top: tuple[datetime, int] | None = None  # the newest item of the walk from the top
    caught_up: bool = False  # the walk from the top reached `newest`
    _top: list[PageWalk] = field(default_factory=list)  # its pages waiting for details
    _pages: dict[int, PageWalk] = field(default_factory=dict)
    _previous_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        cursor = self.cursor
        if cursor is None or cursor.page == 0:
            self.start_page, self.anchored = 1, True
            return
        self.start_page = cursor.resume_page(self.page_size)
        self.anchored = self.start_page == 1
        if cursor.oldest is not None and cursor.oldest_id is not None:
            self.oldest = (cursor.oldest, cursor.oldest_id)
        if cursor.newest is not None and cursor.newest_id is not None:
            self.newest = (cursor.newest, cursor.newest_id)
        self.total = cursor.total
        # Shown as the position until the anchor, where the run's own pages start counting.
        # Resumed at the top (a cursor within RESUME_OVERLAP pages of it), page 1 is the
        # anchor: counted from the cursor, pages 1.. would wait forever below `done_through`
        # and the walk never finish.
        self.done_through = 0 if self.anchored else \
            cursor.page * cursor.page_size // self.page_size

    @property
    def target(self) -> str:
        return f"{self.agency}/{self.lang}"

    def _reaches_cursor(self, page: int, keys: list[tuple[datetime, int]]) -> bool:
        """The page is an anchor: nothing stored lies between it and the cursor. Decided by
        date, with ties (items migrated in 2019-21 share a midnight) counted only when the
        cursor's own item is on the page: their order on the site is not known."""
        if page == 1 or self.cursor is None or self.cursor.oldest is None:
            return True
        oldest = self.cursor.oldest
        return any(d > oldest or i == self.cursor.oldest_id for d, i in keys)

    def listed(self, page: int, items: list[NewsItem], *, rejected: int = 0,
               details: int = 0, total: int | None = None) -> Step:
        """A list page was read and its items handed on; `details` of them wait for their
        detail answer. Returns what to do next."""
        self.pages_walked += 1
        self.total = total if total is not None else self.total
        keys = [k for k in map(_key, items) if k is not None]
        state = PageWalk(page, len(items), details, min(keys) if keys else None,
                         max(keys) if keys else None)
        if self.topping:
            return self._top_up(state, keys)
        if not self.anchored:
            if not self._reaches_cursor(page, keys):
                # Only older items (or none): the list moved up since the cursor was written.
                return self._ask(state, page - 1, "resuming: the list moved up, stepping back")
            self.anchored = True
            self._pages.clear()  # pages read before the anchor are read again from it on
            self.done_through = page - 1
        if page == 1 and state.newest is not None and self.newest is None:
            self.newest = state.newest  # the top of the list when this backfill started
        if items or rejected:  # the empty page past the end is no page of the history
            self._pages[page] = state
        marks = self._advance()
        ids = frozenset(i.id for i in items)
        if ids and ids == self._previous_ids:
            return Step(state, marks, None, "the list repeats itself",
                        problem=f"page {page} repeats page {page - 1}: the site ignores the "
                        "page number, so the backfill stops here")
        self._previous_ids = ids
        if not items and not rejected:
            return self._bottom(state, marks, "end of list")
        if self.since is not None and state.oldest is not None and state.oldest[0] <= self.since:
            return self._bottom(state, marks, "reached --since date")
        why = "walking back" if state.oldest is None or self.oldest is None or \
            state.oldest <= self.oldest else "passing items newer than the cursor"
        return self._ask(state, page + 1, why, marks)

    def _bottom(self, state: PageWalk, marks: list[BackfillMark], why: str) -> Step:
        """The history is walked; back to the top for what was published meanwhile (above
        the newest item this backfill started from), unless the list is empty."""
        if self.newest is None:
            return Step(state, marks, None, why)
        self.topping = True
        return Step(state, marks, 1, f"{why}; back to the top for items published since")

    def _top_up(self, state: PageWalk, keys: list[tuple[datetime, int]]) -> Step:
        """A page of the walk from the top down to the backfill's newest item."""
        if not state.complete:
            self._top.append(state)
        if state.page == 1 and state.newest is not None:
            self.top = state.newest
        assert self.newest is not None  # topping only with one (_bottom)
        newest = self.newest
        reached = not keys or any(d < newest[0] or i == newest[1] for d, i in keys)
        if reached:
            self.caught_up = True
            return Step(state, [], None, "caught up with the top")
        return self._ask(state, state.page + 1, "items published since the backfill began")

    def _ask(self, state: PageWalk, page: int, why: str,
             marks: list[BackfillMark] | None = None) -> Step:
        return Step(state, marks or [], page, why)

    def detail_done(self, state: PageWalk) -> list[BackfillMark]:
        """One detail request of the page `state` answered (its items handed on)."""
        state.pending -= 1
        if state in self._top and state.complete:
            self._top.remove(state)
        return self._advance() if self._pages.get(state.page) is state else []

    def _advance(self) -> list[BackfillMark]:
        moved = False
        while (state := self._pages.get(self.done_through + 1)) is not None and state.complete:
            self.done_through = state.page
            del self._pages[state.page]
            if state.oldest is not None and (self.oldest is None or state.oldest < self.oldest):
                self.oldest = state.oldest
            moved = True
        return [self.mark()] if moved else []

    def finish(self) -> BackfillMark | None:
        """The final mark of a walk that ended normally, once every page is complete."""
        if not self.anchored or self._pages or self._top or self.topping and not self.caught_up:
            return None
        if self.top is not None:
            self.newest = max(self.newest, self.top) if self.newest else self.top
        return self.mark(finished=True)

    def mark(self, *, finished: bool = False) -> BackfillMark:
        oldest, newest = self.oldest or (None, None), self.newest or (None, None)
        return BackfillMark(self.agency, self.lang, self.done_through, self.page_size,
                            oldest[0], oldest[1], newest[0], newest[1], self.since,
                            finished=finished, total=self.total)

    def fraction(self) -> float | None:
        """How much of the walk is done (0..1), estimated; None when nothing tells."""
        return fraction_done(self.done_through * self.page_size, total=self.total,
                             newest=self.newest, oldest=self.oldest, since=self.since)


def fraction_done(walked: int, *, total: int | None, newest: tuple[datetime, int] | None,
                  oldest: tuple[datetime, int] | None, since: datetime | None) -> float | None:
    """The share of a backfill done: from the list's total when the site gives one, else from
    the dates walked toward --since, else from the ids walked toward ID_FLOOR."""
    if total:
        return min(1.0, walked / total)
    if newest is None or oldest is None:
        return None
    if since is not None:
        span = (newest[0] - since).total_seconds()
        done = (newest[0] - oldest[0]).total_seconds()
    else:
        span, done = newest[1] - ID_FLOOR, newest[1] - oldest[1]
    if span <= 0:
        return 1.0
    return max(0.0, min(1.0, done / span))
