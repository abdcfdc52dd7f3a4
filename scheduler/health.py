"""Whether the monitor is doing its job: the verdict /healthz answers with.

Pure: the scheduler's liveness, the targets' states and the newest success in, a Health out.
A process that answers HTTP is not yet a healthy monitor; it is one when

* its scheduler runs and its job loop is turning (the daemon's heartbeat job ran lately),
* at most half of its targets are failing, and
* something was crawled successfully within 2 x max_interval (counted from the daemon's start
  when that is later, so a restart after a long downtime gets one full round first).

`govkz-monitor serve` has no scheduler: it says so ("serve-only", 200) rather than claim the
crawls are fine or fail a probe that only checks the feeds are served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

HEARTBEAT = 60  # seconds between two runs of the daemon's heartbeat job
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT)  # a job loop this quiet has stopped turning
OK, FAIL, SERVE_ONLY = "ok", "fail", "serve-only"
STATES = ("ok", "failing", "never")  # of a target, as the status page and /metrics count them


@dataclass(frozen=True)
class Liveness:
    """What the daemon says about its scheduler."""

    running: bool  # the APScheduler scheduler is started and not shut down
    started: datetime  # when the daemon started
    heartbeat: datetime | None = None  # the last run of the heartbeat job; None: not yet


@dataclass(frozen=True)
class Health:
    status: str  # OK, FAIL or SERVE_ONLY
    reason: str  # one line for people
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> int:
        return 503 if self.status == FAIL else 200

    @property
    def healthy(self) -> bool:
        return self.status != FAIL

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, **self.details}

    @classmethod
    def of(cls, value: Health | tuple[bool, str]) -> Health:
        """A Health, or the (healthy, detail) pair of a provider that predates it."""
        if isinstance(value, Health):
            return value
        healthy, detail = value
        return cls(OK if healthy else FAIL, str(detail))


def target_state(consecutive_failures: int, last_success: datetime | None) -> str:
    """One of STATES: failing now, succeeded before, or never crawled successfully."""
    if consecutive_failures:
        return "failing"
    return "ok" if last_success else "never"


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def judge(liveness: Liveness | None, counts: Mapping[str, int], newest_success: datetime | None,
          now: datetime, *, max_interval: int) -> Health:
    """The verdict. `counts`: targets by state (STATES); `newest_success`: the latest success of
    any target; `liveness` None: no scheduler in this process (`serve`)."""
    counts = {state: int(counts.get(state, 0)) for state in STATES}
    total = sum(counts.values())
    details: dict[str, Any] = {"targets": counts}
    summary = f"{counts['ok']} ok, {counts['failing']} failing, {counts['never']} never of {total}"
    if liveness is None:
        return Health(SERVE_ONLY, "no scheduler in this process (govkz-monitor serve): serving "
                      f"the feeds, crawls are not judged; targets {summary}", details)
    if not liveness.running:
        return Health(FAIL, "the scheduler is not running", details)
    beat = liveness.heartbeat or liveness.started
    if now - beat > STALE_AFTER:
        return Health(FAIL, f"the scheduler's job loop has not run for "
                      f"{int((now - beat).total_seconds())} s", details)
    if total and counts["failing"] * 2 > total:
        return Health(FAIL, f"most targets are failing: {counts['failing']} of {total}", details)
    since = max(newest_success, liveness.started) if newest_success else liveness.started
    limit = timedelta(seconds=2 * max_interval)
    if total and now - since > limit:
        what = (f"since {newest_success.isoformat(timespec='seconds')}" if newest_success
                else "since the daemon started")
        return Health(FAIL, f"no successful crawl for {_hours(now - since)} ({what}; the limit "
                      f"is 2 x max_interval = {_hours(limit)})", details)
    return Health(OK, f"scheduler running; targets {summary}", details)
