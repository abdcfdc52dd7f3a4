"""The harness: results, side-by-side timing (alternating, median), sizes, scenario registry.

A scenario group is a function taking the Bench and returning Results; it declares the result
names it produces so `--only` can select a group by any of them.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    """One row of the table. `on` says whether `target` applies to the ratio or the value;
    `op` how they compare. A scenario that could not run has value None and a `note`."""

    name: str
    value: float | None
    baseline: float | None
    unit: str
    target: float | None = None
    op: str = "<="
    on: str = "ratio"
    ratio: float | None = None
    note: str = ""
    check: bool | None = None  # a pass/fail decided by the scenario itself (a query plan)

    def __post_init__(self) -> None:
        if self.ratio is None and self.value is not None and self.baseline:
            self.ratio = self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        verdicts = [] if self.check is None else [self.check]
        measured = self.ratio if self.on == "ratio" else self.value
        if self.target is not None and measured is not None:
            verdicts.append(_compare(measured, self.op, self.target))
        return all(verdicts) if verdicts else None

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "baseline": self.baseline, "ratio": self.ratio,
                "target": self.target, "unit": self.unit, "on": self.on, "op": self.op,
                "pass": self.passed, "note": self.note}


def _compare(measured: float, op: str, target: float) -> bool:
    # Ratios are printed to two decimals; "1.00" must pass a target of 1.00.
    measured = round(measured, 2) if op in ("<=", ">=", "==") else measured
    return {"<=": measured <= target, ">=": measured >= target, "<": measured < target,
            "==": measured == target}[op]


def not_available(name: str, unit: str, reason: str, **target: Any) -> Result:
    return Result(name, None, None, unit, note=f"n/a: {reason}", **target)


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs: --quick or the issue's full sizes."""

    crawl_agencies: int  # agencies the mock serves in the crawl scenarios
    polite_agencies: int  # agencies of the quiet re-crawl at the default politeness
    concurrency: int
    latency_ms: int
    repeats: int  # repeats of a cheap measurement (median)
    heavy_repeats: int  # repeats of one that takes many seconds
    ingest_items: int
    query_items: int
    query_agencies: int
    feed_items: int
    feed_agencies: int
    serve_requests: int
    serve_clients: int
    daemon_cycles: tuple[int, int]  # RSS read after the first and after the second count

    def scaled(self, factor: float) -> Sizes:
        """These sizes with every item and request count multiplied by `factor`."""
        if factor == 1.0:
            return self
        counts = ("crawl_agencies", "polite_agencies", "ingest_items", "query_items",
                  "query_agencies", "feed_items", "feed_agencies", "serve_requests")
        changes: dict[str, Any] = {name: max(1, int(getattr(self, name) * factor))
                                   for name in counts}
        first, second = self.daemon_cycles
        changes["daemon_cycles"] = (max(1, int(first * factor)), max(2, int(second * factor)))
        return replace(self, **changes)


QUICK = Sizes(crawl_agencies=100, polite_agencies=10, concurrency=16, latency_ms=20, repeats=5,
              heavy_repeats=3, ingest_items=3_000, query_items=100_000, query_agencies=300,
              feed_items=12_000, feed_agencies=40, serve_requests=6_000, serve_clients=4,
              daemon_cycles=(10, 25))
FULL = Sizes(crawl_agencies=3_000, polite_agencies=50, concurrency=16, latency_ms=20, repeats=5,
             heavy_repeats=1, ingest_items=50_000, query_items=1_000_000, query_agencies=3_000,
             feed_items=1_000_000, feed_agencies=3_000, serve_requests=60_000, serve_clients=4,
             daemon_cycles=(10, 500))


@dataclass
class Bench:
    sizes: Sizes
    tmp: Path
    quick: bool
    plans: list[str] = field(default_factory=list)  # EXPLAIN QUERY PLAN text, printed last
    cache: dict[str, Any] = field(default_factory=dict)  # data shared between groups

    def dir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def side_by_side(project: Callable[[], float], baseline: Callable[[], float],
                 repeats: int) -> tuple[float, float]:
    """Medians of `repeats` runs of each, alternating which goes first (so a machine that
    speeds up or slows down during the run favours neither)."""
    ours: list[float] = []
    theirs: list[float] = []
    for n in range(max(1, repeats)):
        if n % 2 == 0:
            ours.append(project())
            theirs.append(baseline())
        else:
            theirs.append(baseline())
            ours.append(project())
    return statistics.median(ours), statistics.median(theirs)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    return statistics.median(timed(fn) for _ in range(max(1, repeats)))


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: the repository importable, no stray GOVKZ_ values
    of the caller's shell (the benchmarks pass everything as flags)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVKZ_")}
    # An installed project has its bytecode cached (pip writes it; a first run does): without
    # this, every crawl child of a shell with PYTHONDONTWRITEBYTECODE set compiles the
    # project's ~50 modules from source again, a start-up cost no deployment pays.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


Group = Callable[[Bench], Iterable[Result]]
GROUPS: dict[str, tuple[tuple[str, ...], Group]] = {}


def group(name: str, results: tuple[str, ...]) -> Callable[[Group], Group]:
    """Register a scenario group producing the named results."""
    def register(fn: Group) -> Group:
        GROUPS[name] = (results, fn)
        return fn
    return register


def rss_kb(pid: int | str = "self") -> int:
    """Resident set size of a process (Linux /proc), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")

