"""The scheduling policy with a controlled clock: adaptation, backoff, jitter, start-up spreads,
due order, the schedule row round trip and reading crawl summaries."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from crawler.config import Schedule
from crawler.store import Archive
from crawler.summary import CrawlSummary
from crawler.timeutil import ALMATY
from scheduler.policy import AgencyState, CrawlOutcome, Policy

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=ALMATY)
MIN, MAX = 600, 21600
STEADY = Schedule(min_interval=MIN, max_interval=MAX, jitter=0)
JITTERY = Schedule(min_interval=MIN, max_interval=MAX, jitter=60)
OK_EMPTY = CrawlOutcome(ok=True, new=0, updated=0, error=None)
FAIL = CrawlOutcome.failed(["mod/en: HTTP 500 from https://example.test/ (after retries)"])


def policy(schedule: Schedule = STEADY, seed: int = 7) -> Policy:
    return Policy(schedule, random.Random(seed))


def seasoned(interval: int, **over: Any) -> AgencyState:
    """An agency that has been crawled successfully before."""
    fields = {"next_crawl": NOW, "last_crawl": NOW - timedelta(hours=1),
              "last_success": NOW - timedelta(hours=1)}
    return AgencyState("mod", interval, **{**fields, **over})


def wait(state: AgencyState) -> int:
    assert state.next_crawl is not None
    return int((state.next_crawl - NOW).total_seconds())


# --- adaptation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "new", "updated", "expected"),
    [
        (3600, 5, 0, 1800),  # items found: halve
        (3600, 0, 2, 1800),  # edits count as activity too
        (1000, 1, 0, MIN),  # floor
        (MIN, 3, 1, MIN),
        (3600, 0, 0, 5400),  # nothing: x1.5
        (20000, 0, 0, MAX),  # cap
        (MAX, 0, 0, MAX),
        (50, 0, 0, MIN * 1.5),  # an interval out of bounds (limits changed) is clamped first
    ],
)
def test_interval_adapts_to_what_a_crawl_found(
    interval: int, new: int, updated: int, expected: int
) -> None:
    outcome = CrawlOutcome(ok=True, new=new, updated=updated, error=None)
    after = policy().after_crawl(seasoned(interval), outcome, NOW)
    assert after.interval == expected
    assert wait(after) == expected  # no jitter configured
    assert (after.last_crawl, after.last_success, after.last_new) == (NOW, NOW, new)
    assert after.consecutive_failures == 0


def test_first_success_imports_a_backlog_and_keeps_the_interval() -> None:
    p = policy()
    state = p.initial("mod", NOW)
    outcome = CrawlOutcome(ok=True, new=250, updated=0, error=None)
    after = p.after_crawl(state, outcome, NOW)
    assert after.interval == state.interval == 3600  # sqrt(600 * 21600)
    assert after.last_success == NOW and after.last_new == 250
    assert p.after_crawl(after, outcome, NOW).interval == 1800  # now it is a rate


@pytest.mark.parametrize(
    ("failures_before", "expected_wait"),
    [(0, 1200), (1, 2400), (2, 4800), (3, 9600), (4, 19200), (5, MAX), (40, MAX), (500, MAX)],
)
def test_failures_back_off_exponentially_up_to_the_cap(
    failures_before: int, expected_wait: int
) -> None:
    state = seasoned(1200, consecutive_failures=failures_before)
    after = policy().after_crawl(state, FAIL, NOW)
    assert wait(after) == expected_wait
    assert after.interval == 1200  # the learned interval is not changed by failures
    assert after.consecutive_failures == failures_before + 1
    assert after.last_error == FAIL.error and after.last_error_at == NOW
    assert after.last_success == state.last_success
    assert after.last_crawl == NOW


def test_success_after_failures_resets_the_backoff() -> None:
    p = policy()
    state = seasoned(1200)
    for _ in range(4):
        state = p.after_crawl(state, FAIL, NOW)
    assert wait(state) == 9600
    after = p.after_crawl(state, OK_EMPTY, NOW)
    assert after.consecutive_failures == 0
    assert wait(after) == after.interval == 1800
    assert after.last_error == FAIL.error  # kept: the most recent error, with its time


@pytest.mark.parametrize("interval", [MIN, 700, 3600, MAX - 30, MAX])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_jitter_stays_within_bounds_and_never_below_min_interval(interval: int, seed: int) -> None:
    p = policy(JITTERY, seed)
    waits = [wait(p.after_crawl(seasoned(interval), FAIL, NOW)) for _ in range(300)]
    assert min(waits) >= max(MIN, interval - 60)
    assert max(waits) <= min(MAX, interval + 60)
    assert len(set(waits)) > 20  # it really spreads


def test_jitter_is_reproducible_with_a_seed() -> None:
    runs = [
        [wait(policy(JITTERY, 42).after_crawl(seasoned(3600), OK_EMPTY, NOW)) for _ in range(3)]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_sub_second_now_still_waits_at_least_min_interval_in_whole_seconds() -> None:
    now = NOW + timedelta(microseconds=250_000)
    after = policy().after_crawl(seasoned(MIN), OK_EMPTY, now)
    assert after.next_crawl is not None and after.next_crawl.microsecond == 0
    assert after.next_crawl - now >= timedelta(seconds=MIN * 1.5)
    assert after.last_crawl == NOW


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        policy().after_crawl(seasoned(3600), OK_EMPTY, datetime(2026, 9, 1, 12, 0))


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule(min_interval=0, max_interval=10),
        Schedule(min_interval=100, max_interval=50),
        Schedule(min_interval=10, max_interval=50, jitter=-1),
    ],
)
def test_impossible_schedules_are_refused(schedule: Schedule) -> None:
    with pytest.raises(ValueError):
        Policy(schedule)


# --- start-up -----------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 7, 10, 100, 600])
def test_initial_staggers_first_crawls_over_min_interval(count: int) -> None:
    p = policy()
    states = [p.initial(f"a{i}", NOW, index=i, count=count) for i in range(count)]
    waits = [wait(s) for s in states]
    assert waits[0] == 0
    assert waits == sorted(waits) and len(set(waits)) == count
    assert all(0 <= w < MIN for w in waits)
    assert all(s.interval == 3600 and s.consecutive_failures == 0 for s in states)


@pytest.mark.parametrize(("index", "count"), [(-1, 5), (5, 5), (0, 0)])
def test_initial_rejects_a_slot_outside_the_count(index: int, count: int) -> None:
    with pytest.raises(ValueError):
        policy().initial("mod", NOW, index=index, count=count)


def test_restore_keeps_a_future_next_crawl() -> None:
    state = seasoned(3600, next_crawl=NOW + timedelta(minutes=20))
    assert policy().restore(state, NOW) == state


def test_restore_caps_next_crawl_and_interval_at_the_current_limits() -> None:
    state = AgencyState("mod", 99999, NOW + timedelta(days=3))
    restored = policy().restore(state, NOW)
    assert restored.interval == MAX and wait(restored) == MAX


@pytest.mark.parametrize("missed", [None, NOW - timedelta(days=2), NOW])
def test_restore_alone_crawls_a_missed_agency_now(missed: datetime | None) -> None:
    assert wait(policy().restore(seasoned(3600, next_crawl=missed), NOW)) == 0


def test_restart_spreads_100_overdue_agencies_over_min_interval() -> None:
    overdue = [
        AgencyState(f"agency-{i:03}", 3600, NOW - timedelta(minutes=(i * 37) % 500 + 1))
        for i in range(100)
    ]
    ahead = [AgencyState(f"later-{i}", 3600, NOW + timedelta(hours=i + 1)) for i in range(5)]
    states = [*ahead, *overdue]
    restored = policy().startup(states, [s.agency for s in states], NOW)
    assert [s.agency for s in restored] == [s.agency for s in [*ahead, *overdue]]
    assert restored[:5] == ahead  # future crawls untouched
    spread = restored[5:]
    assert len({s.next_crawl for s in spread}) == 100  # no two at the same second
    assert all(0 <= wait(s) < MIN for s in spread)
    # the longest overdue goes first
    order = sorted(overdue, key=lambda s: (s.next_crawl, s.agency))
    by_agency = {s.agency: s for s in spread}
    assert [wait(by_agency[s.agency]) for s in order] == sorted(wait(s) for s in spread)


def test_restart_is_deterministic() -> None:
    states = [AgencyState(f"a{i}", 3600, NOW - timedelta(seconds=i % 3)) for i in range(30)]
    names = [s.agency for s in states]
    assert policy(seed=1).startup(states, names, NOW) == policy(seed=2).startup(states, names, NOW)


def test_startup_shares_one_spread_between_overdue_and_new_agencies() -> None:
    known = [
        AgencyState("old-1", 1800, NOW - timedelta(hours=2)),
        AgencyState("old-2", 1800, NOW - timedelta(hours=5)),
        AgencyState("soon", 1800, NOW + timedelta(minutes=3)),
        AgencyState("dropped", 1800, NOW - timedelta(hours=1)),
    ]
    plan = policy().startup(known, ["new-b", "old-1", "soon", "new-a", "old-2"], NOW)
    assert [s.agency for s in plan] == ["new-b", "old-1", "soon", "new-a", "old-2"]
    waits = {s.agency: wait(s) for s in plan}
    # "soon" keeps its time; four share the spread: old-2 (most overdue), old-1, then the new
    # ones in the given order; "dropped" is no longer listed
    assert waits == {"old-2": 0, "old-1": 150, "new-b": 300, "new-a": 450, "soon": 180}
    assert {s.agency: s.interval for s in plan}["new-a"] == 3600


# --- the schedule row ---------------------------------------------------------------------------


def test_state_round_trips_through_the_archive() -> None:
    p = policy(JITTERY)
    state = p.after_crawl(p.after_crawl(p.initial("mod", NOW), OK_EMPTY, NOW), FAIL, NOW)
    archive = Archive.memory()
    row = state.to_row()
    archive.save_schedule(row.pop("agency"), **row)
    stored = archive.schedule()["mod"]
    assert isinstance(stored["next_crawl"], str)
    assert AgencyState.from_row(stored) == state


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"agency": "mod", "interval": 900, "next_crawl": "2026-09-01T12:00:00+05:00",
             "last_crawl": None, "consecutive_failures": None, "last_new": None},
            AgencyState("mod", 900, NOW),
        ),
        (  # a naive date is gov.kz local time
            {"agency": "mod", "interval": 900, "next_crawl": "2026-09-01T12:00:00",
             "last_error": "boom", "last_error_at": "2026-09-01T07:00:00+00:00",
             "consecutive_failures": 2, "last_new": 4},
            AgencyState("mod", 900, NOW, last_error="boom", last_error_at=NOW,
                        consecutive_failures=2, last_new=4),
        ),
        ({"agency": "mod", "interval": 900}, AgencyState("mod", 900, None)),
    ],
)
def test_state_from_row(row: dict[str, Any], expected: AgencyState) -> None:
    state = AgencyState.from_row(row)
    assert state == expected
    assert all(
        d is None or d.tzinfo is not None
        for d in (state.next_crawl, state.last_crawl, state.last_success, state.last_error_at)
    )


def test_a_corrupt_date_in_a_row_is_named() -> None:
    with pytest.raises(ValueError, match="next_crawl"):
        AgencyState.from_row({"agency": "mod", "interval": 900, "next_crawl": "soon"})


# --- reading a crawl's summary ------------------------------------------------------------------


def summary(**targets: dict[str, Any]) -> dict[str, Any]:
    s = CrawlSummary()
    for name, fields in targets.items():
        t = s.target(name.replace("__", "/"))
        for key, value in fields.items():
            setattr(t, key, value)
    return s.to_dict()


def test_a_clean_crawl_is_ok_with_its_counts() -> None:
    data = summary(mod__ru={"new": 3, "updated": 1, "unchanged": 40}, mod__en={"new": 2})
    assert CrawlOutcome.from_summary(data, agency="mod") == CrawlOutcome(True, 5, 1, None)


def test_target_errors_fail_the_crawl_named_problems_first() -> None:
    data = summary(
        mod__ru={"new": 1, "errors": ["HTTP 503 from https://x.test/a (after retries)"]},
        mod__en={"errors": ["layout changed: id: not a positive integer: 'x'\n(https://x.test/b)"]},
    )
    outcome = CrawlOutcome.from_summary(data, agency="mod")
    assert not outcome.ok and outcome.new == 1
    assert outcome.errors == (
        "mod/en: layout changed: id: not a positive integer: 'x' (https://x.test/b)",
        "mod/ru: HTTP 503 from https://x.test/a (after retries)",
    )
    assert outcome.error == "2 errors: " + "; ".join(outcome.errors)
    assert not outcome.timed_out and not outcome.crashed


def test_only_the_agencys_targets_count() -> None:
    data = summary(mod__ru={"new": 2}, other__ru={"new": 9, "errors": ["HTTP 500 from x"]})
    assert CrawlOutcome.from_summary(data, agency="mod") == CrawlOutcome(True, 2, 0, None)


def test_a_long_error_line_is_cut_to_one_line() -> None:
    data = summary(mod__ru={"errors": [f"HTTP 500 from https://x.test/{i}" for i in range(100)]})
    outcome = CrawlOutcome.from_summary(data, agency="mod")
    assert outcome.error is not None and len(outcome.error) <= 500
    assert outcome.error.startswith("100 errors: ") and outcome.error.endswith("…")
    assert len(outcome.errors) == 100


@pytest.mark.parametrize(
    ("data", "ok", "new", "error"),
    [
        ({"totals": {"new": 4, "updated": 1, "errors": 0}}, True, 4, None),
        ({"totals": {"new": 1, "errors": 2}}, False, 1, "2 error(s), not detailed"),
        ({}, False, 0, "the crawl summary reports nothing for mod"),
        ({"targets": [], "totals": {}}, False, 0, "the crawl summary reports nothing for mod"),
        ({"targets": [{"target": "mod/ru", "new": "7", "updated": True}]}, True, 0, None),
        ({"targets": [{"target": "mod/ru", "new": 2}], "error": "exit status 1"}, False, 2,
         "exit status 1"),
    ],
)
def test_summaries_with_missing_or_odd_fields(
    data: dict[str, Any], ok: bool, new: int, error: str | None
) -> None:
    outcome = CrawlOutcome.from_summary(data, agency="mod")
    assert (outcome.ok, outcome.new, outcome.error) == (ok, new, error)


@pytest.mark.parametrize(
    ("data", "timed_out", "crashed", "error"),
    [
        ({"timed_out": True, "error": "killed after 900 s"}, True, False,
         "crawl timed out: killed after 900 s"),
        ({"crashed": True, "error": "exit status -9"}, False, True,
         "crawl crashed: exit status -9"),
        ({"crashed": True}, False, True, "crawl crashed: no detail"),
        (["not", "a", "summary"], False, True,
         "crawl crashed: the crawl printed list, not a summary"),
    ],
)
def test_process_failures(data: Any, timed_out: bool, crashed: bool, error: str) -> None:
    outcome = CrawlOutcome.from_summary(data, agency="mod")
    assert not outcome.ok
    assert (outcome.timed_out, outcome.crashed, outcome.error) == (timed_out, crashed, error)


def test_outcome_shortcuts_for_the_daemon() -> None:
    timeout = CrawlOutcome.timeout(900)
    assert timeout == replace(timeout, ok=False, timed_out=True)
    assert timeout.error == "crawl timed out after 900 s"
    crash = CrawlOutcome.crash("Traceback (most recent call last):\n  boom")
    assert crash.crashed and crash.error == "crawl crashed: Traceback (most recent call last): boom"


def test_an_agency_lang_key_reads_only_its_own_target() -> None:
    summary = {"targets": [
        {"target": "mod/en", "new": 2, "updated": 0, "errors": []},
        {"target": "mod/ru", "new": 0, "updated": 0, "errors": ["HTTP 500"]},
    ]}
    assert CrawlOutcome.from_summary(summary, agency="mod/en") == CrawlOutcome(True, 2, 0, None)
    assert not CrawlOutcome.from_summary(summary, agency="mod/ru").ok
    assert not CrawlOutcome.from_summary(summary, agency="mod").ok  # both languages count
