"""What every extractor returns: the items a response held, and the elements it could not use.

One bad element costs only itself (README, "Crawling gov.kz", "One bad input costs only itself"): it
becomes a Reject carrying its reason and raw text, and its neighbours are kept. Only a response of
the wrong *shape* raises LayoutChanged, before any Extracted exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from crawler.items import NewsItem, Reject


@dataclass
class Extracted:
    items: list[NewsItem] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def collect(outcomes: Iterable[NewsItem | Reject]) -> Extracted:
    """Items and rejects in page order. An item whose identity already occurred on the same
    page is dropped, the first kept: one page listing an id twice is one item, not an edit
    (the archive would otherwise record the second copy as a new version)."""
    result = Extracted()
    seen: set[tuple[str, int, str]] = set()
    for outcome in outcomes:
        if isinstance(outcome, Reject):
            result.rejects.append(outcome)
        elif outcome.key not in seen:
            seen.add(outcome.key)
            result.items.append(outcome)
    return result
