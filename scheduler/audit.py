"""Site-wide mode's slow audit: every enabled agency x language walked about once per
`audit_interval` (a day by default), spread out (pure: no clock, no I/O).

The stream (the site-wide list, newest first) shows new items; what it cannot show is an edit
to an older item or an item dated in the past, so each agency's own list is still walked, once
a day instead of every few minutes. Spread evenly over the period in slots at least `min_gap`
apart (more than the daemon's batch window, so two slots never fall into one batch), each slot
holding as few targets as the period allows: 9,000 targets over a day at a minute apart are 7
per slot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from crawler.store_monitor import Target


def slots(count: int, period: timedelta, min_gap: timedelta) -> int:
    """How many distinct times `count` audits get within `period`."""
    if count <= 0:
        return 0
    most = max(1, math.floor(period / min_gap)) if min_gap > timedelta(0) else count
    return min(count, most)


def spread(targets: Sequence[Target], start: datetime, period: timedelta, *,
           min_gap: timedelta) -> dict[Target, datetime]:
    """A first audit time for each of `targets`, in [start, start + period): in the given order,
    evenly over the period, slots `min_gap` apart or more, at most ceil(n / slots) per slot."""
    unique = list(dict.fromkeys(targets))
    n = slots(len(unique), period, min_gap)
    if n == 0:
        return {}
    step = period / n
    return {target: start + step * (i * n // len(unique)) for i, target in enumerate(unique)}


def per_slot(count: int, period: timedelta, min_gap: timedelta) -> int:
    """The most audits `spread` puts at one time."""
    n = slots(count, period, min_gap)
    return math.ceil(count / n) if n else 0


def keep(next_crawl: datetime | None, now: datetime, period: timedelta) -> bool:
    """Whether a stored next audit still stands (ahead, within one period) or needs a slot."""
    return next_crawl is not None and now < next_crawl <= now + period
