"""How many due targets one crawl child takes, and in which order (pure: no clock, no I/O).

A batch must end well inside `crawl_timeout`, at any size of gov.kz (3,000 agencies x 3
languages are ~9,000 walks), or the daemon would kill it and learn nothing. So a batch holds what
fits in its time budget:

* each target costs an estimated number of requests: a quiet re-crawl of a known target one list
  page, plus about k / page size pages for the k new items its last crawl found; a first walk
  its backfill pages. A batch adds a few requests of its own (robots.txt, the access handshake,
  the site probe: BATCH_REQUESTS);
* a request costs `download_delay` seconds, or what crawls here were seen to take per request
  if that is more (Pace; Scrapy waits download_delay between two requests to the host whatever
  the concurrency, and AutoThrottle or a slow site may wait longer);
* the budget is SAFETY x crawl_timeout, less the child's start-up.

Order: first the site-wide streams (one cheap request each), then targets that were due before
and did not get their turn (left out of a full batch, or not reached by a batch that timed out),
then the busiest targets (items published recently, from the archive), then by name. A batch
always takes at least one target, so a single huge estimate cannot stall the queue.

A batch killed by crawl_timeout says nothing about a target the child never reached, so those
are not failures: `judge_unfinished` carries them over (they stay due and go first), and fails
only a target that is evidently the one holding the batch up: left unfinished alone, or left
unfinished a second time in a row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from crawler.store_monitor import Target
from scheduler.mode import is_stream
from scheduler.policy import AgencyState

SAFETY = 0.5  # share of crawl_timeout a batch is planned to use
STARTUP_SECONDS = 10.0  # a child's start before its first request (Python, Scrapy, the archive)
BATCH_REQUESTS = 6  # a batch's own requests: robots.txt, handshakes, the site probe
MAX_TARGETS = 1000  # targets per child: its command line stays short
INITIAL_SECONDS_PER_REQUEST = 0.1  # before any crawl was measured (a round trip to the host)
MIN_SECONDS_PER_REQUEST = 0.001  # a pace never learned below this (an instant local mock)
LEARN_WEIGHT = 0.5  # weight of the newest measurement in the learned pace
MIN_LEARN_REQUESTS = 10  # a crawl smaller than this says too little about the pace
RATE_DAYS = 7  # "busy": items published in this many recent days


def estimate_requests(state: AgencyState | None, *, page_size: int, backfill: int) -> int:
    """Requests one walk of a target is expected to make (state None: never scheduled)."""
    if state is None or state.last_success is None:
        return max(1, backfill)  # a first walk goes `backfill` pages deep
    return 1 + math.ceil(max(0, state.last_new) / max(1, page_size))


def budget_seconds(crawl_timeout: float) -> float:
    """Seconds of requests one batch is planned to take."""
    return max(0.0, crawl_timeout * SAFETY - STARTUP_SECONDS)


@dataclass
class Pace:
    """Seconds per request, learned from finished crawls (the daemon keeps one)."""

    learned: float = INITIAL_SECONDS_PER_REQUEST

    def seconds_per_request(self, download_delay: float) -> float:
        return max(download_delay, self.learned, MIN_SECONDS_PER_REQUEST)

    def learn(self, seconds: float, requests: int) -> None:
        """A crawl that finished took `seconds` for `requests`. The start-up is taken off as
        the budget leaves it out (STARTUP_SECONDS): counted per request, it would make small
        batches look slow, and so plan ever smaller ones."""
        if requests < MIN_LEARN_REQUESTS or seconds <= 0:
            return
        seen = max((seconds - STARTUP_SECONDS) / requests, MIN_SECONDS_PER_REQUEST)
        self.learned = LEARN_WEIGHT * seen + (1 - LEARN_WEIGHT) * self.learned

    def slow_down(self) -> None:
        """A batch timed out: the estimate was wrong, plan the next ones half as big."""
        self.learned *= 2


def order(due: Iterable[Target], *, carried: Iterable[Target] = (),
          rates: Mapping[Target, int] | None = None) -> list[Target]:
    """The due targets in the order batches take them (see the module's doc)."""
    waited = set(carried)
    rates = rates or {}
    unique = list(dict.fromkeys(due))
    return sorted(unique, key=lambda t: (not is_stream(t), t not in waited, -rates.get(t, 0),
                                         t.key))


@dataclass(frozen=True)
class Batch:
    targets: list[Target]
    left: list[Target]  # due, but no room: they stay due and go first next time
    requests: int  # the estimate for `targets`
    seconds: float  # the estimated duration of `targets`


def take(ordered: Sequence[Target], states: Mapping[Target, AgencyState], *,
         budget: float, seconds_per_request: float, page_size: int, backfill: int,
         max_targets: int = MAX_TARGETS) -> Batch:
    """The longest prefix of `ordered` whose estimate fits in `budget` seconds (at least one
    target, at most `max_targets`)."""
    if not ordered:
        return Batch([], [], 0, 0.0)
    requests = BATCH_REQUESTS
    taken = 0
    for target in ordered[:max_targets]:
        cost = estimate_requests(states.get(target), page_size=page_size, backfill=backfill)
        if taken and (requests + cost) * seconds_per_request > budget:
            break
        requests += cost
        taken += 1
    return Batch(list(ordered[:taken]), list(ordered[taken:]), requests,
                 requests * seconds_per_request)


@dataclass(frozen=True)
class Unfinished:
    """What to do with the targets a timed-out batch had not finished."""

    carry: list[Target] = field(default_factory=list)  # no verdict: due again, first
    fail: list[Target] = field(default_factory=list)  # a timeout failure


def judge_unfinished(unfinished: Sequence[Target], *,
                     strikes: Mapping[Target, int]) -> Unfinished:
    """Targets of a timed-out batch whose walk had not completed. `strikes`: how many timed-out
    batches in a row each was left unfinished by before this one."""
    if len(unfinished) == 1:
        return Unfinished(fail=list(unfinished))  # everything else finished: this one held it
    carry = [t for t in unfinished if not strikes.get(t)]
    fail = [t for t in unfinished if strikes.get(t)]
    return Unfinished(carry, fail)
