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
from collections.abc import Iterator, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crawler.timeutil import localize, utcnow

# The version the format is pinned to (prometheus_client's own "latest" moved to 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Crawl outcomes that count as a success for govkz_last_success_timestamp_seconds.
SUCCESS_OUTCOMES = frozenset({"ok", "success"})

PREFIX = "govkz"


class Metrics:
    """What the daemon has done since it started, per agency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
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


def _label_values(key: str | tuple[str, ...]) -> list[str]:
    return [key] if isinstance(key, str) else list(key)


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics._families()
