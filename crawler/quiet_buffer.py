"""What quiet pages leave to write later: the `last_seen` refresh of their items, the walks that
left their mark unchanged and the page memos they made (crawler/pipelines.py, ArchivePipeline).

A quiet re-crawl changes nothing a reader depends on: `last_seen`, `walked_at` and the memos
are bookkeeping, and none of it may only lag (a memo describes items already stored). So a
quiet page opens no transaction of its own; its bookkeeping waits here and is written in the
next transaction that writes anyway (a page with a change, the end of the crawl), or on its
own once the buffer is big or old enough. A crash loses at most what waits here, and only makes
it lag: the next crawl writes it again. Nothing here knows SQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from crawler.items import PageMemo
from crawler.timeutil import utcnow

Key = tuple[str, int, str]

# Keys waiting before they are written on their own: a bounded memory and a bounded loss.
MAX_KEYS = 5000
# Seconds the oldest entry may wait. A daemon's batch killed at its crawl_timeout is judged
# by the walks it recorded (Monitor.walked_since): a walk waiting here when the kill comes
# counts as not reached, so the wait is kept short beside any timeout.
MAX_AGE = 30.0


@dataclass
class QuietBuffer:
    max_keys: int = MAX_KEYS
    max_age: float = MAX_AGE
    clock: Callable[[], float] = time.monotonic
    # Items seen, by the second they were seen (their last_seen to be), oldest first.
    seen: dict[datetime, list[Key]] = field(default_factory=dict)
    # Walks that kept their mark, (agency, lang) -> when the walk ended.
    walks: dict[tuple[str, str], datetime] = field(default_factory=dict)
    # The page memo of each walk whose quiet page 1 made one, the newest (crawler/page_memo.py).
    memos: dict[tuple[str, str], PageMemo] = field(default_factory=dict)
    keys: int = 0
    since: float | None = None  # clock() when the oldest entry arrived

    @property
    def empty(self) -> bool:
        return not (self.seen or self.walks or self.memos)

    def add(self, keys: Iterable[Key], walks: Iterable[tuple[str, str]],
            now: datetime | None = None, *, memo: PageMemo | None = None) -> None:
        """Keep a quiet page's seen `keys`, finished `walks` (agency, lang) and `memo`, as of
        `now`."""
        when = (now or utcnow()).replace(microsecond=0)
        wanted = list(keys)
        if wanted:
            self.seen.setdefault(when, []).extend(wanted)
            self.keys += len(wanted)
        for walk in walks:
            self.walks[walk] = when
        if memo is not None:
            self.memos[memo.agency, memo.lang] = memo
        if self.since is None and not self.empty:
            self.since = self.clock()

    def due(self) -> bool:
        """Whether the buffer should be written now, on its own: too many keys or too old."""
        if self.since is None:
            return False
        return self.keys >= self.max_keys or self.clock() - self.since >= self.max_age

    def clear(self) -> None:
        self.seen, self.walks, self.memos, self.keys, self.since = {}, {}, {}, 0, None
