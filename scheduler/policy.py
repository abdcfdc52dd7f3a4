"""When to crawl each agency next: the daemon's pure scheduling decisions.

No clock and no sleeps here: every function takes `now` (an aware datetime) and returns new
values, and randomness comes from an injected random.Random, so tests replay any history exactly.
The numbers come from crawler.config.Schedule ([schedule] in the config file).

The adaptation rule, per target (an agency in one language, crawler.store_monitor.Target; "agency"
below means a target):

* `interval` is what the agency has taught us: how often it publishes. A new agency starts at
  the geometric mean of min_interval and max_interval (1 h with the defaults).
* A successful crawl that found new or edited items halves the interval (never below
  min_interval); one that found nothing multiplies it by 1.5 (never above max_interval). The
  first successful crawl of an agency only imports its backlog, which says nothing about how
  often it publishes, so it leaves the interval alone.
* A failed crawl (errors, a timeout, a crash) leaves the learned interval alone and retries
  soon, then backs off: the first failures are retried after 1, 2 and 4 x min_interval
  (RETRY_SOON), so a passing failure costs minutes and a broken agency reaches the incident
  threshold (3 failures in a row by default) within about two normal cycles instead of hours;
  after those, the next attempt waits interval x 2^(further failures - 1), capped at
  max_interval. A success resets the failure count, so the learned interval is used again at
  once.
* Jitter: the wait gets a uniform random offset of +-jitter seconds so agencies drift apart
  instead of crawling in lockstep, then is clamped to [min_interval, max_interval]: an agency
  is never crawled sooner than min_interval after a crawl, nor left longer than max_interval.
* Start-up spreads work out: new agencies (`initial`) and agencies whose next crawl was missed
  while the daemon was down (`startup`) get evenly spaced first crawls over the next
  min_interval, in a deterministic order, so neither a big registry nor a restart crawls
  everything at once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from crawler.config import Schedule
from crawler.problems import Problem
from crawler.sanitize import truncate
from crawler.store_monitor import Target
from crawler.timeutil import isoformat, require_iso

SHRINK = 0.5  # interval factor after a crawl that found items
GROW = 1.5  # interval factor after a crawl that found nothing
BACKOFF = 2.0  # wait factor per further consecutive failure
# Waits after the 1st, 2nd, 3rd failure in a row, in min_interval units: quick retries confirm
# a breakage (or clear a passing one) long before the learned interval would come round.
RETRY_SOON = (1.0, 2.0, 4.0)
ERROR_CHARS = 500  # longest error line kept in the schedule table
MAX_BACKOFF_STEPS = 64  # beyond this the cap has long been reached; keeps the numbers small

# Problem kinds (crawler/problems.py) that incidents report on their own (scheduler/incidents.py).
INCIDENT_KINDS = {
    "layout_changed": "layout-changed",
    "access_refused": "access-refused",
    # Not "timeout": a request that timed out is no crawl timeout (CrawlOutcome.timeout()).
    "crashed": "crashed",
    "unexpected": "unexpected",
}
_DATES = ("next_crawl", "last_crawl", "last_success", "last_error_at")


def one_line(text: str, limit: int = ERROR_CHARS) -> str:
    return truncate(" ".join(str(text).split()), limit)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError(f"a timezone-aware datetime is required, got {now!r}")
    return now


def _date(value: Any, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return require_iso(value)
    except ValueError:
        raise ValueError(f"schedule.{field}: not an ISO 8601 date: {value!r}") from None


@dataclass(frozen=True)
class AgencyState:
    """One row of the archive's `schedule` table: the schedule and health of one target."""

    target: Target
    interval: int  # seconds: the learned interval (backoff never changes it)
    next_crawl: datetime | None
    last_crawl: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None  # kept after a recovery: the most recent error, with its time
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    last_new: int = 0
    last_kinds: tuple[str, ...] = ()  # incident kinds of the last failed crawl

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AgencyState:
        """A row from archive.monitor.schedule() (its `agency` and `lang` are the target): ISO
        strings (or datetimes) become aware datetimes."""
        dates = {f: _date(row.get(f), f) for f in _DATES}
        return cls(
            target=Target(row["agency"], row["lang"]),
            interval=int(row.get("interval") or 3600),
            last_error=row.get("last_error"),
            consecutive_failures=int(row.get("consecutive_failures") or 0),
            last_new=int(row.get("last_new") or 0),
            last_kinds=tuple(k for k in str(row.get("last_kinds") or "").split(",") if k),
            **dates,
        )

    def fields(self) -> dict[str, Any]:
        """The row's columns but its key: monitor.save_schedule(state.target, **state.fields())."""
        row: dict[str, Any] = {
            "interval": self.interval, "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures, "last_new": self.last_new,
            "last_kinds": ",".join(self.last_kinds) or None,
        }  # fmt: skip
        for f in _DATES:
            value = getattr(self, f)
            row[f] = isoformat(value) if value else None
        return row

    def to_row(self) -> dict[str, Any]:
        """The whole row, as the `schedule` table holds it (from_row reads it back)."""
        return {"agency": self.target.agency, "lang": self.target.lang, **self.fields()}


@dataclass(frozen=True)
class CrawlOutcome:
    """What one crawl of one target did, as the schedule and the incidents need it."""

    ok: bool
    new: int
    updated: int
    error: str | None  # one line for people (and the schedule table); None when ok
    timed_out: bool = False
    crashed: bool = False
    errors: tuple[str, ...] = ()  # every error, one line each, the incident kinds first
    kinds: frozenset[str] = frozenset()  # incident kinds (INCIDENT_KINDS values) it shows
    evidence: tuple[tuple[str, str], ...] = ()  # (incident kind, the line that shows it)

    @classmethod
    def failed(cls, errors: Iterable[str], *, new: int = 0, updated: int = 0,
               timed_out: bool = False, crashed: bool = False,
               problems: Iterable[tuple[str, str]] = ()) -> CrawlOutcome:
        """A failed crawl: `errors` are lines for people, `problems` (problem kind, line)."""
        problems = [(kind, one_line(line)) for kind, line in problems]
        named = [(INCIDENT_KINDS[k], line) for k, line in problems if k in INCIDENT_KINDS]
        if timed_out:
            named.insert(0, ("timeout", one_line(next(iter(errors), "crawl timed out"))))
        if crashed:
            named.insert(0, ("crashed", one_line(next(iter(errors), "crawl crashed"))))
        lines = [line for _, line in named]
        lines += [one_line(e) for e in errors if e and str(e).strip() and one_line(e) not in lines]
        lines += [line for _, line in problems if line not in lines]
        lines = lines or ["the crawl failed"]
        head = "; ".join(lines)
        if len(lines) > 1:
            head = f"{len(lines)} errors: {head}"
        return cls(False, new, updated, one_line(head), timed_out, crashed, tuple(lines),
                   frozenset(kind for kind, _ in named), tuple(named))

    @classmethod
    def timeout(cls, seconds: float, detail: str = "") -> CrawlOutcome:
        """The crawl process did not finish within crawl_timeout and was stopped."""
        text = f"crawl timed out after {seconds:g} s" + (f": {detail}" if detail else "")
        return cls.failed([text], timed_out=True)

    @classmethod
    def crash(cls, detail: str) -> CrawlOutcome:
        """The crawl process died or printed no usable summary."""
        return cls.failed([f"crawl crashed: {detail or 'no detail'}"], crashed=True)

    @classmethod
    def from_summary(cls, summary: Any, *, agency: str | Target) -> CrawlOutcome:
        """Read a CrawlSummary.to_dict() of a crawl of `agency` (a Target or its "agency/lang",
        or an agency, whose "agency/lang" targets are then all its own).

        Counts and problems come from the agency's targets plus the crawl-wide ones (no "/":
        "crawl", "feeds"), whose failing problems are every agency's; a target's problems of a
        kind that is no failure (a rejected element) leave it ok. A summary with no target of
        the agency and no crawl-wide one is a failure: a crawl that ran always reports."""
        if not isinstance(summary, Mapping):
            return cls.crash(f"the crawl printed {type(summary).__name__}, not a summary")
        agency = str(agency)  # a summary names its targets "agency/lang"
        targets = [t for t in summary.get("targets") or () if isinstance(t, Mapping)]

        def owned(target: Mapping[str, Any]) -> bool:
            name = str(target.get("target", ""))
            return "/" not in name or agency in (name, name.split("/")[0])

        mine = [t for t in targets if owned(t)]
        new = sum(_count(t.get("new")) for t in mine)
        updated = sum(_count(t.get("updated")) for t in mine)
        problems: list[tuple[str, str]] = []
        for t in mine:
            for raw in t.get("problems") or ():
                problem = Problem.from_dict(dict(raw)) if isinstance(raw, Mapping) else None
                if problem is not None and problem.fails:
                    problems.append((str(problem.kind), f"{problem.target}: {problem.line()}"))
        if not any("/" in str(t.get("target", "")) for t in mine) and not problems:
            problems.append(("unexpected", f"the crawl summary reports nothing for {agency}"))
        if problems:
            return cls.failed([], new=new, updated=updated, problems=problems)
        return cls(True, new, updated, None)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _ceil_second(now: datetime) -> datetime:
    # The archive stores whole seconds; rounding up keeps "at least min_interval" true there.
    whole = now.replace(microsecond=0)
    return whole + timedelta(seconds=1) if now.microsecond else whole


class Policy:
    def __init__(self, schedule: Schedule, rng: random.Random | None = None, *,
                 shrink: float = SHRINK, grow: float = GROW, backoff: float = BACKOFF,
                 retry_soon: Sequence[float] = RETRY_SOON) -> None:
        if schedule.min_interval < 1 or schedule.max_interval < schedule.min_interval:
            raise ValueError("schedule: need 1 <= min_interval <= max_interval")
        if schedule.jitter < 0 or not 0 < shrink <= 1 <= grow or backoff < 1:
            raise ValueError("schedule: need jitter >= 0, 0 < shrink <= 1 <= grow, backoff >= 1")
        if any(not factor > 0 for factor in retry_soon):
            raise ValueError("schedule: retry-soon factors must be positive")
        self.schedule = schedule
        self.rng = rng or random.Random()
        self.shrink, self.grow, self.backoff = shrink, grow, backoff
        self.retry_soon = tuple(retry_soon)

    @property
    def start_interval(self) -> int:
        lo, hi = self.schedule.min_interval, self.schedule.max_interval
        return self.clamp(round(math.sqrt(lo * hi)))

    def clamp(self, seconds: float) -> int:
        return int(min(max(round(seconds), self.schedule.min_interval), self.schedule.max_interval))

    def _spread(self, now: datetime, index: int, count: int) -> datetime:
        """Slot `index` of `count` evenly spaced whole seconds in [now, now + min_interval)
        (distinct seconds as long as count <= min_interval)."""
        if not 0 <= index < count:
            raise ValueError(f"index {index} is not in 0..{count - 1}")
        offset = index * self.schedule.min_interval // count
        return _ceil_second(_aware(now)) + timedelta(seconds=offset)

    def initial(self, target: Target, now: datetime, *, index: int = 0, count: int = 1
                ) -> AgencyState:
        """The state of a target seen for the first time: its first crawl is slot `index` of
        `count` spread over the next min_interval."""
        return AgencyState(target, self.start_interval, self._spread(now, index, count))

    def after_crawl(self, state: AgencyState, outcome: CrawlOutcome, now: datetime
                    ) -> AgencyState:
        """The state after a crawl that ended at `now` (see the module docstring)."""
        stamp = _aware(now).replace(microsecond=0)
        interval = self.clamp(state.interval)
        if outcome.ok:
            if state.last_success is None:
                pass  # the backlog of a first crawl is not a publishing rate
            elif outcome.new or outcome.updated:
                interval = self.clamp(interval * self.shrink)
            else:
                interval = self.clamp(interval * self.grow)
            failures, wait = 0, float(interval)
            last: dict[str, Any] = {"last_success": stamp}
        else:
            failures = state.consecutive_failures + 1
            wait = self.failure_wait(interval, failures)
            last = {"last_error": outcome.error or "the crawl failed", "last_error_at": stamp,
                    "last_kinds": tuple(sorted(outcome.kinds))}
        return replace(
            state, interval=interval, next_crawl=self._next(now, wait), last_crawl=stamp,
            consecutive_failures=failures, last_new=outcome.new, **last,
        )

    def failure_wait(self, interval: int, failures: int) -> float:
        """Seconds before the next attempt after `failures` failed crawls in a row (>= 1), before
        jitter and clamping: retry soon (RETRY_SOON x min_interval, never slower than plain
        backoff), then back off (x BACKOFF per further failure) from the learned interval or
        from the last quick retry, whichever is longer, so the waits never shrink."""
        if failures < 1:
            raise ValueError(f"failures must be at least 1, not {failures}")
        quick = len(self.retry_soon)
        if failures <= quick:
            soon = self.schedule.min_interval * self.retry_soon[failures - 1]
            return min(soon, float(interval) * self.backoff ** (failures - 1))
        steps = min(failures - quick, MAX_BACKOFF_STEPS)
        last_quick = self.failure_wait(interval, quick) if quick else 0.0
        return max(interval * self.backoff ** (steps - 1), last_quick * self.backoff ** steps)

    def _next(self, now: datetime, wait: float) -> datetime:
        j = self.schedule.jitter
        offset = self.rng.randint(-j, j) if j else 0
        return _ceil_second(now) + timedelta(seconds=self.clamp(min(wait, 1e12) + offset))

    def restore(self, state: AgencyState, now: datetime, *, index: int = 0, count: int = 1
                ) -> AgencyState:
        """One stored state after a daemon (re)start. A next crawl still ahead is kept (but
        never later than max_interval from now); a missed one becomes slot `index` of `count`
        over the next min_interval. The interval is clamped in case the limits changed."""
        state = replace(state, interval=self.clamp(state.interval))
        latest = _ceil_second(_aware(now)) + timedelta(seconds=self.schedule.max_interval)
        if state.next_crawl is not None and state.next_crawl > now:
            return replace(state, next_crawl=min(state.next_crawl, latest))
        return replace(state, next_crawl=self._spread(now, index, count))

    def startup(self, known: Iterable[AgencyState], targets: Iterable[Target], now: datetime
                ) -> list[AgencyState]:
        """The plan when the daemon starts: one state per target in `targets` (that order),
        restored when known, initial when new. Overdue and new targets share one spread over
        the next min_interval: most overdue first (ties by "agency/lang"), then new ones in the
        given order. Known targets that are not listed (disabled, removed) are left out."""
        _aware(now)
        by_target = {s.target: s for s in known}
        wanted = list(dict.fromkeys(targets))
        waiting = [by_target[t] for t in wanted if t in by_target]
        waiting = [s for s in waiting if not self._ahead(s, now)]
        waiting.sort(key=lambda s: (s.next_crawl is not None, s.next_crawl or now, s.target.key))
        queue = [s.target for s in waiting] + [t for t in wanted if t not in by_target]
        slot = {target: i for i, target in enumerate(queue)}
        out = []
        for target in wanted:
            if target not in by_target:
                out.append(self.initial(target, now, index=slot[target], count=len(queue)))
            elif target in slot:
                out.append(self.restore(by_target[target], now, index=slot[target],
                                        count=len(queue)))
            else:
                out.append(self.restore(by_target[target], now))
        return out

    @staticmethod
    def _ahead(state: AgencyState, now: datetime) -> bool:
        return state.next_crawl is not None and state.next_crawl > now
