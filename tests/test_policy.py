"""The scheduling policy with a controlled clock: adaptation, backoff, jitter, start-up spreads,
due order, the schedule row round trip and reading crawl summaries."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from crawler.config import Schedule
from crawler.problems import Problem, ProblemKind
from crawler.store import Archive
from crawler.store_monitor import Target
from crawler.summary import CrawlSummary
from crawler.timeutil import ALMATY
from scheduler.policy import AgencyState, CrawlOutcome, Policy

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=ALMATY)
MIN, MAX = 600, 21600
STEADY = Schedule(min_interval=MIN, max_interval=MAX, jitter=0)
JITTERY = Schedule(min_interval=MIN, max_interval=MAX, jitter=60)
MOD = Target("mod", "en")
KEY = {"agency": "mod", "lang": "en"}  # MOD as the schedule table keys it
OK_EMPTY = CrawlOutcome(ok=True, new=0, updated=0, error=None)
FAIL = CrawlOutcome.failed(["mod/en: HTTP 500 from https://example.test/ (after retries)"])
LAYOUT_AND_TIMEOUT = CrawlOutcome.failed(
    ["crawl timed out after 900 s"], timed_out=True,
    problems=[(ProblemKind.LAYOUT_CHANGED, "mod/ru: layout changed: no items")],
)


def en(agency: str) -> Target:
    return Target(agency, "en")


def policy(schedule: Schedule = STEADY, seed: int = 7) -> Policy:
    return Policy(schedule, random.Random(seed))


def seasoned(interval: int, **over: Any) -> AgencyState:
    """An agency that has been crawled successfully before."""
    fields = {"next_crawl": NOW, "last_crawl": NOW - timedelta(hours=1),
              "last_success": NOW - timedelta(hours=1)}
    return AgencyState(MOD, interval, **{**fields, **over})


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
    state = p.initial(MOD, NOW)
    outcome = CrawlOutcome(ok=True, new=250, updated=0, error=None)
    after = p.after_crawl(state, outcome, NOW)
    assert after.interval == state.interval == 3600  # sqrt(600 * 21600)
    assert after.last_success == NOW and after.last_new == 250
    assert p.after_crawl(after, outcome, NOW).interval == 1800  # now it is a rate


@pytest.mark.parametrize(
    ("interval", "failures_before", "expected_wait"),
    [
        # Retry soon: 1, 2, 4 x min_interval, whatever the learned interval...
        (1200, 0, MIN), (1200, 1, 2 * MIN), (1200, 2, 4 * MIN),
        (MAX, 0, MIN), (MAX, 2, 4 * MIN),
        # ...then double from there, or from the learned interval when that is longer.
        (1200, 3, 8 * MIN), (1200, 4, 16 * MIN), (1200, 5, 32 * MIN), (1200, 6, MAX),
        (1200, 40, MAX),
        (1200, 500, MAX), (MAX, 3, MAX), (MAX, 9, MAX),
    ],
)
def test_failures_retry_soon_then_back_off_exponentially_up_to_the_cap(
    interval: int, failures_before: int, expected_wait: int
) -> None:
    state = seasoned(interval, consecutive_failures=failures_before)
    after = policy().after_crawl(state, FAIL, NOW)
    assert wait(after) == expected_wait
    assert after.interval == interval  # the learned interval is not changed by failures
    assert after.consecutive_failures == failures_before + 1
    assert after.last_error == FAIL.error and after.last_error_at == NOW
    assert after.last_success == state.last_success
    assert after.last_crawl == NOW


@pytest.mark.parametrize("threshold", [1, 2, 3])
@pytest.mark.parametrize("interval", [MIN, 3600, MAX])
def test_a_broken_agency_reaches_the_threshold_within_two_normal_cycles(
    interval: int, threshold: int
) -> None:
    # The first failure comes at a normal crawl; the quick retries reach the incident
    # threshold before two more learned intervals have passed (jitter included).
    p = policy(JITTERY)
    state, at = seasoned(interval), NOW
    for _ in range(threshold):
        state = p.after_crawl(state, FAIL, at)
        assert state.next_crawl is not None
        at = state.next_crawl
    assert state.consecutive_failures == threshold
    # `at` is when the crawl after the threshold-th failure would run; the threshold-th
    # failure itself happened before it.
    assert state.last_crawl is not None
    assert state.last_crawl - NOW <= timedelta(seconds=max(2 * interval, 4 * MIN))


def test_retry_soon_factors_must_be_positive() -> None:
    with pytest.raises(ValueError, match="retry-soon"):
        Policy(STEADY, retry_soon=(1, 0))


def test_success_after_failures_resets_the_backoff() -> None:
    p = policy()
    state = seasoned(1200)
    for _ in range(4):
        state = p.after_crawl(state, FAIL, NOW)
    assert wait(state) == 8 * MIN
    after = p.after_crawl(state, OK_EMPTY, NOW)
    assert after.consecutive_failures == 0
    assert wait(after) == after.interval == 1800
    assert after.last_error == FAIL.error  # kept: the most recent error, with its time


@pytest.mark.parametrize("interval", [MIN, 700, 3600, MAX - 30, MAX])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_jitter_stays_within_bounds_and_never_below_min_interval(interval: int, seed: int) -> None:
    # Without quick retries a first failure waits the learned interval, +- jitter.
    p = Policy(JITTERY, random.Random(seed), retry_soon=())
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
    states = [p.initial(en(f"a{i}"), NOW, index=i, count=count) for i in range(count)]
    waits = [wait(s) for s in states]
    assert waits[0] == 0
    assert waits == sorted(waits) and len(set(waits)) == count
    assert all(0 <= w < MIN for w in waits)
    assert all(s.interval == 3600 and s.consecutive_failures == 0 for s in states)


@pytest.mark.parametrize(("index", "count"), [(-1, 5), (5, 5), (0, 0)])
def test_initial_rejects_a_slot_outside_the_count(index: int, count: int) -> None:
    with pytest.raises(ValueError):
        policy().initial(MOD, NOW, index=index, count=count)


def test_restore_keeps_a_future_next_crawl() -> None:
    state = seasoned(3600, next_crawl=NOW + timedelta(minutes=20))
    assert policy().restore(state, NOW) == state


def test_restore_caps_next_crawl_and_interval_at_the_current_limits() -> None:
    state = AgencyState(MOD, 99999, NOW + timedelta(days=3))
    restored = policy().restore(state, NOW)
    assert restored.interval == MAX and wait(restored) == MAX


@pytest.mark.parametrize("missed", [None, NOW - timedelta(days=2), NOW])
def test_restore_alone_crawls_a_missed_agency_now(missed: datetime | None) -> None:
    assert wait(policy().restore(seasoned(3600, next_crawl=missed), NOW)) == 0


def test_restart_spreads_100_overdue_agencies_over_min_interval() -> None:
    overdue = [
        AgencyState(en(f"agency-{i:03}"), 3600, NOW - timedelta(minutes=(i * 37) % 500 + 1))
        for i in range(100)
    ]
    ahead = [AgencyState(en(f"later-{i}"), 3600, NOW + timedelta(hours=i + 1)) for i in range(5)]
    states = [*ahead, *overdue]
    restored = policy().startup(states, [s.target for s in states], NOW)
    assert [s.target for s in restored] == [s.target for s in [*ahead, *overdue]]
    assert restored[:5] == ahead  # future crawls untouched
    spread = restored[5:]
    assert len({s.next_crawl for s in spread}) == 100  # no two at the same second
    assert all(0 <= wait(s) < MIN for s in spread)
    # the longest overdue goes first
    order = sorted(overdue, key=lambda s: (s.next_crawl, s.target.key))
    by_target = {s.target: s for s in spread}
    assert [wait(by_target[s.target]) for s in order] == sorted(wait(s) for s in spread)


def test_restart_is_deterministic() -> None:
    states = [AgencyState(en(f"a{i}"), 3600, NOW - timedelta(seconds=i % 3)) for i in range(30)]
    targets = [s.target for s in states]
    assert policy(seed=1).startup(states, targets, NOW) == policy(seed=2).startup(
        states, targets, NOW)


def test_startup_shares_one_spread_between_overdue_and_new_agencies() -> None:
    known = [
        AgencyState(en("old-1"), 1800, NOW - timedelta(hours=2)),
        AgencyState(en("old-2"), 1800, NOW - timedelta(hours=5)),
        AgencyState(en("soon"), 1800, NOW + timedelta(minutes=3)),
        AgencyState(en("dropped"), 1800, NOW - timedelta(hours=1)),
    ]
    names = ["new-b", "old-1", "soon", "new-a", "old-2"]
    plan = policy().startup(known, [en(name) for name in names], NOW)
    assert [s.target for s in plan] == [en(name) for name in names]
    waits = {s.target.agency: wait(s) for s in plan}
    # "soon" keeps its time; four share the spread: old-2 (most overdue), old-1, then the new
    # ones in the given order; "dropped" is no longer listed
    assert waits == {"old-2": 0, "old-1": 150, "new-b": 300, "new-a": 450, "soon": 180}
    assert {s.target.agency: s.interval for s in plan}["new-a"] == 3600


# --- the schedule row ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "last_kinds"),
    [(FAIL, ()), (LAYOUT_AND_TIMEOUT, ("layout-changed", "timeout"))],
)
def test_state_round_trips_through_the_archive(
    archive: Archive, outcome: CrawlOutcome, last_kinds: tuple[str, ...]
) -> None:
    p = policy(JITTERY)
    state = p.after_crawl(p.after_crawl(p.initial(MOD, NOW), OK_EMPTY, NOW), outcome, NOW)
    assert state.last_kinds == last_kinds  # sorted: the stored row does not depend on order
    row = state.to_row()
    assert row["last_kinds"] == (",".join(last_kinds) or None)
    assert (row["agency"], row["lang"]) == ("mod", "en")
    archive.monitor.save_schedule(state.target, **state.fields())
    stored = archive.monitor.schedule()[MOD]
    assert isinstance(stored["next_crawl"], str)
    assert stored == row  # to_row() is the row the table holds
    assert AgencyState.from_row(stored) == state


def test_a_success_keeps_the_kinds_of_the_last_failure() -> None:
    p = policy()
    failed = p.after_crawl(seasoned(3600), LAYOUT_AND_TIMEOUT, NOW)
    recovered = p.after_crawl(failed, OK_EMPTY, NOW)
    # Like last_error: what the last failure was; consecutive_failures says it is over.
    assert recovered.last_kinds == ("layout-changed", "timeout")
    assert recovered.consecutive_failures == 0
    assert p.after_crawl(recovered, FAIL, NOW).last_kinds == ()


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {**KEY, "interval": 900, "next_crawl": "2026-09-01T12:00:00+05:00",
             "last_crawl": None, "consecutive_failures": None, "last_new": None},
            AgencyState(MOD, 900, NOW),
        ),
        (  # a naive date is gov.kz local time
            {**KEY, "interval": 900, "next_crawl": "2026-09-01T12:00:00",
             "last_error": "boom", "last_error_at": "2026-09-01T07:00:00+00:00",
             "consecutive_failures": 2, "last_new": 4},
            AgencyState(MOD, 900, NOW, last_error="boom", last_error_at=NOW,
                        consecutive_failures=2, last_new=4),
        ),
        ({**KEY, "interval": 900}, AgencyState(MOD, 900, None)),
        (  # a row from before the last_kinds column, or with an empty list
            {**KEY, "interval": 900, "consecutive_failures": 1, "last_kinds": None},
            AgencyState(MOD, 900, None, consecutive_failures=1),
        ),
        ({**KEY, "interval": 900, "last_kinds": ""}, AgencyState(MOD, 900, None)),
        (
            {**KEY, "interval": 900, "last_kinds": "layout-changed,timeout"},
            AgencyState(MOD, 900, None, last_kinds=("layout-changed", "timeout")),
        ),
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
        AgencyState.from_row({**KEY, "interval": 900, "next_crawl": "soon"})


# --- reading a crawl's summary ------------------------------------------------------------------

# A timed-out request inside a crawl is a `timeout` problem, yet INCIDENT_KINDS maps it to the
# crawl-level "timeout" incident ("the crawl did not finish in time and was stopped"); only
# CrawlOutcome.timeout (the daemon's crawl_timeout) is that. See test_incidents.py.

def summary(**targets: dict[str, Any]) -> dict[str, Any]:
    """A CrawlSummary.to_dict(), one target per keyword ("mod__ru" is "mod/ru"): `problems` are
    (kind, message[, url]) recorded with TargetSummary.add, `rejects` (line, reason) recorded
    with TargetSummary.reject, any other key a counter."""
    s = CrawlSummary()
    for name, given in targets.items():
        fields = dict(given)
        t = s.target(name.replace("__", "/"))
        for kind, *text in fields.pop("problems", ()):
            t.add(kind, *text)
        for line, reason in fields.pop("rejects", ()):
            t.reject(line, reason)
        for key, value in fields.items():
            setattr(t, key, value)
    return s.to_dict()


def problem(kind: ProblemKind, target: str, message: str, url: str = "") -> dict[str, Any]:
    return Problem(kind, target, message, url).to_dict()


def test_a_clean_crawl_is_ok_with_its_counts() -> None:
    data = summary(mod__ru={"new": 3, "updated": 1, "unchanged": 40}, mod__en={"new": 2})
    assert CrawlOutcome.from_summary(data, agency="mod") == CrawlOutcome(True, 5, 1, None)


def test_target_problems_fail_the_crawl_named_problems_first() -> None:
    data = summary(
        mod__ru={"new": 1, "problems": [
            (ProblemKind.HTTP_ERROR, "HTTP 503 from https://x.test/a (after retries)"),
        ]},
        mod__en={"problems": [
            (ProblemKind.LAYOUT_CHANGED, "layout changed: id: not a positive integer: 'x'\n",
             "https://x.test/b"),
        ]},
    )  # fmt: skip
    outcome = CrawlOutcome.from_summary(data, agency="mod")
    assert not outcome.ok and outcome.new == 1
    # The problem an incident names comes first, although its target was reported second.
    assert outcome.errors == (
        "mod/en: layout changed: id: not a positive integer: 'x' "
        "(https://x.test/b)",
        "mod/ru: HTTP 503 from https://x.test/a (after retries)",
    )
    assert outcome.error == "2 errors: " + "; ".join(outcome.errors)
    assert outcome.kinds == {"layout-changed"}
    assert outcome.evidence == (("layout-changed", outcome.errors[0]),)
    assert not outcome.timed_out and not outcome.crashed


@pytest.mark.parametrize(
    ("kind", "incident_kinds"),
    [
        (ProblemKind.ACCESS_REFUSED, {"access-refused"}),
        (ProblemKind.LAYOUT_CHANGED, {"layout-changed"}),
        (ProblemKind.UNEXPECTED, {"unexpected"}),
        (ProblemKind.CRASHED, {"crashed"}),
        (ProblemKind.HTTP_ERROR, set()),  # passing, usually: "failing" covers a streak
        (ProblemKind.STORE, set()),
        (ProblemKind.TIMEOUT, set()),  # a request's; the crawl's is CrawlOutcome.timeout()
    ],
)
def test_every_failing_problem_kind_fails_its_target(
    kind: ProblemKind, incident_kinds: set[str]
) -> None:
    data = summary(mod__ru={"new": 1, "problems": [(kind, "what happened")]})
    outcome = CrawlOutcome.from_summary(data, agency="mod/ru")
    assert (outcome.ok, outcome.new) == (False, 1)
    assert outcome.errors == ("mod/ru: what happened",)
    assert outcome.kinds == incident_kinds
    assert [k for k, _ in outcome.evidence] == sorted(incident_kinds)


@pytest.mark.parametrize("agency", ["mod", "mod/ru"])
def test_a_target_with_only_rejects_is_ok(agency: str) -> None:
    data = summary(mod__ru={"found": 4, "new": 3, "rejects": [
        ("mod (ru): no id", "no id"), ("mod/7 (ru): date out of range", "date out of range"),
    ]})  # fmt: skip
    assert data["targets"][0]["rejected"] == 2
    assert [p["kind"] for p in data["targets"][0]["problems"]] == ["rejected", "rejected"]
    assert CrawlOutcome.from_summary(data, agency=agency) == CrawlOutcome(True, 3, 0, None)


def test_rejects_next_to_a_failure_are_not_errors() -> None:
    data = summary(mod__ru={"rejects": [("mod (ru): no id", "no id")], "problems": [
        (ProblemKind.HTTP_ERROR, "HTTP 500 from https://x.test/p2"),
    ]})  # fmt: skip
    outcome = CrawlOutcome.from_summary(data, agency="mod/ru")
    assert not outcome.ok
    assert outcome.errors == ("mod/ru: HTTP 500 from https://x.test/p2",)


def test_only_the_agencys_targets_count() -> None:
    data = summary(mod__ru={"new": 2}, other__ru={"new": 9, "problems": [
        (ProblemKind.HTTP_ERROR, "HTTP 500 from x"),
    ]})  # fmt: skip
    assert CrawlOutcome.from_summary(data, agency="mod") == CrawlOutcome(True, 2, 0, None)


POISONED = {  # b/ru hit a bug; a/ru, on the same crawl, did not
    "a__ru": {"new": 2},
    "a__en": {"new": 1, "problems": [(ProblemKind.LAYOUT_CHANGED, "layout changed: no list")]},
    "b__ru": {"found": 3, "new": 1, "problems": [
        (ProblemKind.UNEXPECTED, "KeyError in ArchivePipeline: 'title'", "https://x.test/b"),
    ]},
}  # fmt: skip


@pytest.mark.parametrize(
    ("agency", "ok", "new", "kinds"),
    [
        ("a/ru", True, 2, set()),
        ("a/en", False, 1, {"layout-changed"}),
        ("a", False, 3, {"layout-changed"}),
        ("b/ru", False, 1, {"unexpected"}),
        ("b", False, 1, {"unexpected"}),
    ],
)
def test_a_targets_problems_never_leak_to_another_target(
    agency: str, ok: bool, new: int, kinds: set[str]
) -> None:
    outcome = CrawlOutcome.from_summary(summary(**POISONED), agency=agency)
    assert (outcome.ok, outcome.new, outcome.kinds) == (ok, new, kinds)
    owner = agency.split("/")[0]
    assert all(line.startswith(f"{owner}/") for line in outcome.errors)
    if agency == "a/ru":
        assert outcome == CrawlOutcome(True, 2, 0, None)


@pytest.mark.parametrize("agency", ["mod", "mod/ru", "other/kk"])
def test_crawl_wide_problems_are_every_targets(agency: str) -> None:
    data = summary(
        mod__ru={"new": 2}, other__kk={"new": 1},
        feeds={"problems": [(ProblemKind.STORE, "cannot write the feeds: disk full")]},
    )
    outcome = CrawlOutcome.from_summary(data, agency=agency)
    assert not outcome.ok and outcome.kinds == frozenset()
    assert outcome.errors == ("feeds: cannot write the feeds: disk full",)


def test_crawl_wide_rejects_fail_nobody() -> None:
    data = summary(mod__ru={"new": 2}, crawl={"rejects": [("mod (ru): no id", "no id")]})
    assert CrawlOutcome.from_summary(data, agency="mod/ru") == CrawlOutcome(True, 2, 0, None)


def test_a_long_error_line_is_cut_to_one_line() -> None:
    data = summary(mod__ru={"problems": [
        (ProblemKind.HTTP_ERROR, f"HTTP 500 from https://x.test/{i}") for i in range(100)
    ]})  # fmt: skip
    outcome = CrawlOutcome.from_summary(data, agency="mod")
    assert outcome.error is not None and len(outcome.error) <= 500
    assert outcome.error.startswith("100 errors: ") and outcome.error.endswith("…")
    assert len(outcome.errors) == 100


NOTHING = "the crawl summary reports nothing for mod"


@pytest.mark.parametrize(
    ("data", "ok", "new", "error"),
    [
        ({}, False, 0, NOTHING),
        ({"targets": [], "totals": {}}, False, 0, NOTHING),
        ({"targets": [{"target": "mod/ru", "new": "7", "updated": True}]}, True, 0, None),
        ({"targets": [{"target": "mod/ru", "new": 2, "problems": None}]}, True, 2, None),
        (  # what is not a problem record is not read
            {"targets": [{"target": "mod/ru", "new": 2, "problems": ["HTTP 500", 7, None]}]},
            True, 2, None,
        ),
        (  # a kind this code does not know (a newer writer) is a failure, not ignored
            {"targets": [{"target": "mod/ru", "problems": [
                {"kind": "brand_new", "target": "mod/ru", "message": "m", "extra": 1},
            ]}]},
            False, 0, "mod/ru: m",
        ),
        (  # the problem's own target names it, not the target it was listed under
            {"targets": [{"target": "mod/ru", "problems": [
                problem(ProblemKind.HTTP_ERROR, "mod/ru", "HTTP 500", "https://x.test/"),
            ]}]},
            False, 0, "mod/ru: HTTP 500 (https://x.test/)",
        ),
        ({"targets": [{"target": "crawl"}]}, False, 0, NOTHING),
        ({"targets": ["mod/ru", None, {"target": "mod/ru", "new": 1}]}, True, 1, None),
    ],
)  # fmt: skip
def test_summaries_with_missing_or_odd_fields(
    data: dict[str, Any], ok: bool, new: int, error: str | None
) -> None:
    outcome = CrawlOutcome.from_summary(data, agency="mod")
    assert (outcome.ok, outcome.new, outcome.error) == (ok, new, error)
    if error == NOTHING:
        assert outcome.kinds == {"unexpected"}


@pytest.mark.parametrize(
    "data",
    [
        {"totals": {"new": 4, "updated": 1, "errors": 0}},
        {"totals": {"new": 1, "errors": 2}},
        {"timed_out": True, "error": "killed after 900 s"},
        {"crashed": True, "error": "exit status -9"},
        {"error": "exit status 1"},
    ],
)
def test_totals_and_top_level_keys_are_not_read(data: dict[str, Any]) -> None:
    # The daemon states a timeout or a crash itself (CrawlOutcome.timeout / crash); a summary
    # without the agency's targets reports nothing about it, whatever else it holds.
    outcome = CrawlOutcome.from_summary(data, agency="mod")
    assert (outcome.ok, outcome.new, outcome.error) == (False, 0, NOTHING)
    assert not outcome.timed_out and not outcome.crashed


@pytest.mark.parametrize(
    "extra",
    [{"error": "exit status 1"}, {"timed_out": True}, {"crashed": True},
     {"totals": {"new": 50, "errors": 3}}, {"status": "failed"}],
)
def test_top_level_keys_do_not_change_a_targets_verdict(extra: dict[str, Any]) -> None:
    data = {**summary(mod__ru={"new": 2}), **extra}
    assert CrawlOutcome.from_summary(data, agency="mod") == CrawlOutcome(True, 2, 0, None)


def test_english_error_text_is_not_read() -> None:
    # `errors` is derived from the problems; a summary's text alone never decides anything.
    data = {"targets": [{"target": "mod/ru", "new": 1, "status": "failed",
                         "errors": ["layout changed: crawl timed out: access refused"]}]}
    assert CrawlOutcome.from_summary(data, agency="mod") == CrawlOutcome(True, 1, 0, None)


@pytest.mark.parametrize(
    ("outcome", "timed_out", "crashed", "error", "kind"),
    [
        (CrawlOutcome.timeout(900, "this target had not finished"), True, False,
         "crawl timed out after 900 s: this target had not finished", "timeout"),
        (CrawlOutcome.crash("exit status -9"), False, True, "crawl crashed: exit status -9",
         "crashed"),
        (CrawlOutcome.crash(""), False, True, "crawl crashed: no detail", "crashed"),
        (CrawlOutcome.from_summary(["not", "a", "summary"], agency="mod"), False, True,
         "crawl crashed: the crawl printed list, not a summary", "crashed"),
    ],
)  # fmt: skip
def test_process_failures(
    outcome: CrawlOutcome, timed_out: bool, crashed: bool, error: str, kind: str
) -> None:
    assert not outcome.ok
    assert (outcome.timed_out, outcome.crashed, outcome.error) == (timed_out, crashed, error)
    assert outcome.kinds == {kind}
    assert outcome.evidence == ((kind, error),)
    assert outcome.errors == (error,)


def test_outcome_shortcuts_for_the_daemon() -> None:
    timeout = CrawlOutcome.timeout(900)
    assert timeout == replace(timeout, ok=False, timed_out=True)
    assert timeout.error == "crawl timed out after 900 s"
    crash = CrawlOutcome.crash("Traceback (most recent call last):\n  boom")
    assert crash.crashed and crash.error == "crawl crashed: Traceback (most recent call last): boom"


def test_failed_puts_incident_kinds_first_then_errors_then_other_problems() -> None:
    outcome = CrawlOutcome.failed(
        # a blank line is dropped, a line that repeats a problem's is not shown twice
        ["mod/ru: a line for people", " ", "mod/kk: refused"],
        problems=[
            (ProblemKind.HTTP_ERROR, "mod/ru: HTTP 500"),
            (ProblemKind.ACCESS_REFUSED, "mod/kk:\n  refused"),
        ],
    )
    assert outcome.errors == (
        "mod/kk: refused", "mod/ru: a line for people",
        "mod/ru: HTTP 500",
    )  # fmt: skip
    assert outcome.kinds == {"access-refused"}
    assert outcome.evidence == (("access-refused", "mod/kk: refused"),)


def test_an_agency_lang_key_reads_only_its_own_target() -> None:
    summary = {"targets": [
        {"target": "mod/en", "new": 2, "updated": 0, "problems": []},
        {"target": "mod/ru", "new": 0, "updated": 0,
         "problems": [problem(ProblemKind.HTTP_ERROR, "mod/ru", "HTTP 500")]},
    ]}  # fmt: skip
    assert CrawlOutcome.from_summary(summary, agency="mod/en") == CrawlOutcome(True, 2, 0, None)
    assert not CrawlOutcome.from_summary(summary, agency="mod/ru").ok
    assert not CrawlOutcome.from_summary(summary, agency="mod").ok  # both languages count
    # a key that only starts like another agency's is not that agency
    assert not CrawlOutcome.from_summary(summary, agency="mo").ok
    assert CrawlOutcome.from_summary(summary, agency="mo").error == (
        "the crawl summary reports nothing for mo"
    )
