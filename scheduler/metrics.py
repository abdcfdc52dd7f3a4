"""The daemon's counters and gauges, exposed at /metrics in Prometheus text format 0.0.4.

The daemon records what happened (crawls, feed requests, archive sizes); render() turns the current
values into the exposition format. Values live in plain dicts behind a lock because the daemon
updates them from scheduler threads while the HTTP server reads them in the reactor thread.

prometheus_client does the formatting (escaping of label values, number formatting, HELP/TYPE
lines) through a custom collector on a registry owned by each Metrics object: no process-global
registry, so tests and several daemons in one process never see each other's numbers, and no
`*_created` series that the stock Counter adds and that only a global switch turns off.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from crawler.timeutil import localize, utcnow

# The version the format is pinned to (prometheus_client's own "latest" moved to 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Crawl outcomes that count as a success for govkz_last_success_timestamp_seconds.
SUCCESS_OUTCOMES = frozenset({"ok", "success"})

PREFIX = "govkz"

# Upper bounds (seconds) of the crawl duration histogram: a quiet batch takes seconds, a
# backfill minutes, crawl_timeout (900 s by default) ends the rest.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0)
TARGET_STATES = ("ok", "failing", "never")  # scheduler.health.STATES


class TargetState(Protocol):
    """What set_targets reads of a target's state (scheduler.policy.AgencyState has it)."""

    @property
    def target(self) -> Any: ...  # a Target: str() is its "agency/lang"
    @property
    def consecutive_failures(self) -> int: ...
    @property
    def last_success(self) -> datetime | None: ...
    @property
    def next_crawl(self) -> datetime | None: ...


class Metrics:
    """What the daemon has done since it started, per agency."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock  # "now" for the schedule lag
        self._lock = threading.Lock()
        self._targets: dict[str, tuple[str, float | None, float | None]] = {}
        self._durations = [0] * (len(DURATION_BUCKETS) + 1)  # per bucket, the last is +Inf
        self._duration_sum = 0.0
        self._rejects: Counter[str] = Counter()
        self._crawls: Counter[tuple[str, str]] = Counter()
        self._requests: Counter[str] = Counter()
        self._saved: Counter[tuple[str, str]] = Counter()
        self._errors: Counter[str] = Counter()
        self._problems: Counter[tuple[str, str]] = Counter()
        self._feed_requests: Counter[tuple[str, str]] = Counter()
        self._items: dict[str, int] = {}
        self._last_success: dict[str, float] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(self))

    def record_crawl(
        self,
        agency: str,
        outcome: str,
        requests: int = 0,
        new: int = 0,
        updated: int = 0,
        errors: int = 0,
        *,
        problems: Mapping[str, int] | None = None,
        at: datetime | None = None,
    ) -> None:
        """One finished crawl of `agency`. A success outcome also moves its last-success time.
        `problems` counts its problems by kind (crawler.problems.ProblemKind values)."""
        counts = {"requests": requests, "new": new, "updated": updated, "errors": errors}
        negative = [name for name, value in counts.items() if value < 0]
        if negative:
            raise ValueError(f"counters cannot go down: {', '.join(negative)} < 0")
        with self._lock:
            self._crawls[(agency, outcome)] += 1
            self._requests[agency] += requests
            self._saved[(agency, "new")] += new
            self._saved[(agency, "updated")] += updated
            self._errors[agency] += errors
            for kind, n in (problems or {}).items():
                self._problems[(agency, kind)] += max(0, n)
            if outcome in SUCCESS_OUTCOMES:
                self._last_success[agency] = localize(at or utcnow()).timestamp()

    def record_feed_request(self, path_class: str, status: int) -> None:
        """One answered request for a feed file (path_class: atom, rss, opml, other)."""
        with self._lock:
            self._feed_requests[(path_class, str(status))] += 1

    def set_items(self, agency: str, n: int) -> None:
        """How many items the archive holds for `agency` now."""
        if n < 0:
            raise ValueError(f"an item count cannot be negative: {n}")
        with self._lock:
            self._items[agency] = n

    def set_last_success(self, agency: str, when: datetime) -> None:
        """Seed the last success time from the archive (e.g. when the daemon starts)."""
        with self._lock:
            self._last_success[agency] = localize(when).timestamp()

    def set_targets(self, states: Iterable[TargetState]) -> None:
        """The current state of every scheduled target (replaces the previous set)."""
        targets = {}
        for s in states:
            state = ("failing" if s.consecutive_failures else
                     "ok" if s.last_success else "never")
            targets[str(s.target)] = (
                state,
                localize(s.last_success).timestamp() if s.last_success else None,
                localize(s.next_crawl).timestamp() if s.next_crawl else None,
            )
        with self._lock:
            self._targets = targets

    def observe_crawl_duration(self, seconds: float) -> None:
        """One crawl (a batch in one child process) took `seconds`."""
        seconds = max(0.0, float(seconds))
        index = next((i for i, bound in enumerate(DURATION_BUCKETS) if seconds <= bound),
                     len(DURATION_BUCKETS))
        with self._lock:
            self._durations[index] += 1
            self._duration_sum += seconds

    def record_rejects(self, agency: str, n: int) -> None:
        """`n` elements of `agency`'s responses could not become items (the rejects table)."""
        if n < 0:
            raise ValueError(f"a reject count cannot be negative: {n}")
        with self._lock:
            self._rejects[agency] += n

    def render(self) -> bytes:
        """The current values in the Prometheus text exposition format (version 0.0.4)."""
        return generate_latest(self.registry)

    def _families(self) -> Iterator[Metric]:
        with self._lock:
            crawls = dict(self._crawls)
            requests = dict(self._requests)
            saved = dict(self._saved)
            errors = dict(self._errors)
            problems = dict(self._problems)
            feed_requests = dict(self._feed_requests)
            items = dict(self._items)
            last_success = dict(self._last_success)
            targets = dict(self._targets)
            durations, duration_sum = list(self._durations), self._duration_sum
            rejects = dict(self._rejects)
        now = localize(self._clock()).timestamp()

        up = GaugeMetricFamily(f"{PREFIX}_up", "1 while the daemon is running.")
        up.add_metric([], 1)
        yield up
        yield _counter("crawls", "Crawls finished, by agency and outcome.",
                       ["agency", "outcome"], crawls)
        yield _counter("crawl_requests", "HTTP requests made to gov.kz, by agency.",
                       ["agency"], requests)
        yield _counter("items_saved", "Items stored new or as a changed version, by agency.",
                       ["agency", "change"], saved)
        yield _counter("crawl_errors", "Errors reported by crawls, by agency.",
                       ["agency"], errors)
        yield _counter("crawl_problems", "Problems reported by crawls, by agency and kind "
                       "(rejected: one element that could not become an item).",
                       ["agency", "kind"], problems)
        yield _counter("feed_requests", "Requests for feed files, by path class and status.",
                       ["path_class", "code"], feed_requests)
        yield _gauge("items", "Items held in the archive, by agency.", ["agency"], items)
        yield _gauge("last_success_timestamp_seconds",
                     "Unix time of the last successful crawl, by agency.", ["agency"],
                     last_success)
        by_state = Counter(state for state, _, _ in targets.values())
        yield _gauge("targets", "Scheduled targets (agency x language) by state: ok, failing "
                     "(failed its last crawl), never (no successful crawl yet).", ["state"],
                     {state: by_state.get(state, 0) for state in TARGET_STATES})
        yield _gauge("target_last_success_timestamp_seconds",
                     "Unix time of the last successful crawl, by target (agency/lang).",
                     ["target"], {t: ts for t, (_, ts, _) in targets.items() if ts is not None})
        due = [next_at for _, _, next_at in targets.values() if next_at is not None]
        yield _gauge("schedule_lag_seconds", "Seconds the most overdue target is past its "
                     "next crawl (0: none is overdue).", [],
                     {(): max([0.0, *(now - at for at in due)])})
        yield _counter("rejects", "Elements of gov.kz responses that could not become items "
                       "(kept in the rejects table), by agency.", ["agency"], rejects)
        histogram = HistogramMetricFamily(
            f"{PREFIX}_crawl_duration_seconds", "Wall time of one crawl child process (a batch "
            "of targets due together).")
        cumulative, buckets = 0, []
        for bound, count in zip([*map(str, DURATION_BUCKETS), "+Inf"], durations, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        histogram.add_metric([], buckets, duration_sum)
        yield histogram


def _counter(name: str, doc: str, labels: list[str], values: dict) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(_label_values(key), value)
    return family


def _gauge(name: str, doc: str, labels: list[str], values: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(_label_values(key), value)
    return family


def _label_values(key: str | tuple[str, ...]) -> list[str]:  # (): a gauge without labels
    return [key] if isinstance(key, str) else list(key)


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics._families()
