"""The daemon's decisions with a controlled clock: start-up plans, batching, results, incidents,
timeouts and shutdown.

Nothing here sleeps or starts a process. The reactor is a twisted.internet.task.Clock that also
"spawns" fake children: the test plays the child (stdout, stderr, exit) and moves the clock, and
the daemon's own clock (a datetime) moves with it. Real CrawlProcess objects supervise the fakes,
so the argv, the timeout and the signals are the ones the daemon would use for real.
"""

from __future__ import annotations

import json
import random
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import task
from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.python.failure import Failure

from crawler.config import Config, Schedule
from crawler.runner import project_settings
from crawler.store import Archive
from crawler.store_monitor import Target
from crawler.summary import TargetSummary
from crawler.timeutil import utcnow
from scheduler.daemon import BATCH_WINDOW, Daemon

T0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
MIN, MAX, TIMEOUT = 600, 21600, 900
START_INTERVAL = 3600  # the geometric mean of MIN and MAX: where a new agency starts
T = Target.parse  # the tests name targets as the crawl child's --target does
STEADY = Schedule(min_interval=MIN, max_interval=MAX, jitter=0, crawl_timeout=TIMEOUT,
                  failure_threshold=3)


# --- the fake reactor and children ------------------------------------------------------------


class FakeChild:
    """The transport of one fake crawl child: records signals; the test decides how it ends."""

    def __init__(self, protocol: Any, args: list[str], pid: int) -> None:
        self.protocol, self.args, self.pid = protocol, args, pid
        self.signals: list[int] = []

    @property
    def targets(self) -> list[str]:
        return [self.args[i + 1] for i, a in enumerate(self.args) if a == "--target"]

    def signalProcess(self, signo: int) -> None:  # noqa: N802 (Twisted's name)
        if self.pid is None:
            raise ProcessExitedAlready()
        self.signals.append(signo)

    def exit(self, summary: Any = None, *, stdout: bytes | None = None, stderr: bytes = b"",
             code: int | None = 0, signo: int | None = None) -> None:
        """The child writes its output and ends (with `code`, or killed by `signo`)."""
        out = stdout if stdout is not None else (
            json.dumps(summary).encode() if summary is not None else b"")
        if out:
            self.protocol.outReceived(out)
        if stderr:
            self.protocol.errReceived(stderr)
        self.pid = None
        if signo is None and code == 0:
            reason = Failure(ProcessDone(0))
        else:
            reason = Failure(ProcessTerminated(exitCode=code if signo is None else None,
                                               signal=signo))
        self.protocol.processEnded(reason)


class SyncPool:
    """The reactor's thread pool, run on the clock instead: APScheduler's Twisted executor
    hands it the job, the result comes back on a later turn, as from a thread."""

    def __init__(self, clock: task.Clock) -> None:
        self.clock = clock

    def callInThreadWithCallback(self, callback: Any, func: Any, *args: Any,  # noqa: N802
                                 **kwargs: Any) -> None:
        self.clock.callLater(0, lambda: callback(True, func(*args, **kwargs)))


class FakeReactor(task.Clock):
    def __init__(self) -> None:
        super().__init__()
        self.children: list[FakeChild] = []
        self.triggers: list[tuple[str, str, Any]] = []
        self.spawn_error: OSError | None = None

    def callFromThread(self, func: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        self.callLater(0, func, *args, **kwargs)

    def addSystemEventTrigger(self, phase: str, event: str, func: Any,  # noqa: N802
                              *args: Any, **kwargs: Any) -> None:
        self.triggers.append((phase, event, func))

    def spawnProcess(self, protocol: Any, executable: str, args: list[str],  # noqa: N802
                     env: dict[str, str] | None = None, **kwargs: Any) -> FakeChild:
        if self.spawn_error is not None:
            raise self.spawn_error
        child = FakeChild(protocol, list(args), pid=1000 + len(self.children))
        protocol.makeConnection(child)
        self.children.append(child)
        return child

    def getThreadPool(self) -> SyncPool:  # noqa: N802
        return SyncPool(self)


@dataclass
class Jobs:
    """Stands in for APScheduler where a test drives the daemon without start(): the jobs
    by id, as add_job(replace_existing=True) keeps them."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    running: bool = True

    def add_job(self, func: Any, trigger: str, **kwargs: Any) -> None:
        assert kwargs["replace_existing"] is True
        self.jobs[kwargs["id"]] = {"func": func, "trigger": trigger, **kwargs}

    def remove_job(self, job_id: str) -> None:
        del self.jobs[job_id]

    def shutdown(self, wait: bool = True) -> None:
        self.running = False

    def run_date(self, key: str) -> datetime:
        return self.jobs[f"crawl:{key}"]["run_date"]


@dataclass
class Harness:
    reactor: FakeReactor
    daemon: Daemon
    now: datetime

    def advance(self, seconds: float) -> None:
        """Move both clocks: the daemon's datetime and the reactor's seconds."""
        self.now += timedelta(seconds=seconds)
        self.reactor.advance(seconds)

    @property
    def jobs(self) -> Jobs:
        return self.daemon.scheduler

    def row(self, key: str) -> dict[str, Any]:
        return self.daemon.archive.monitor.schedule()[T(key)]

    def rows(self) -> dict[str, dict[str, Any]]:
        """The schedule table by "agency/lang"."""
        return {t.key: row for t, row in self.daemon.archive.monitor.schedule().items()}

    def crawl(self, summary: Any = None, **exit: Any) -> FakeChild:
        """Start the next batch (as a due job would) and let its child end as told."""
        child = self.start_batch()
        self.advance(1)
        child.exit(summary, **exit)
        self.reactor.advance(0)
        return child

    def start_batch(self, *keys: str) -> FakeChild:
        before = len(self.reactor.children)
        for target in [T(key) for key in keys] or self.daemon.targets:
            self.daemon.enqueue(target)
        self.reactor.advance(0)
        assert len(self.reactor.children) == before + 1, "no crawl started"
        return self.reactor.children[-1]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    made: list[Daemon] = []

    def build(targets: list[str], schedule: Schedule = STEADY, *, now: datetime = T0,
              plan: bool = True, config_path: Path | None = None,
              mode: str = "per-agency") -> Harness:
        reactor = FakeReactor()
        harness = Harness(reactor, None, now)  # type: ignore[arg-type]
        settings = project_settings({"GOVKZ_DATA": str(tmp_path)})
        # The mode is forced unless a test probes (tests/test_daemon_mode.py).
        config = Config(path=config_path, langs=["en"], schedule=replace(schedule, mode=mode))
        daemon = Daemon(settings, config, targets, reactor=reactor, clock=lambda: harness.now,
                        crawl_args=["--data", str(tmp_path)], rng=random.Random(0))
        made.append(daemon)
        harness.daemon = daemon
        daemon.scheduler = Jobs()
        if plan:
            daemon.plan()
        return harness

    yield build
    for daemon in made:
        daemon.archive.close()


def target(name: str, *, new: int = 0, updated: int = 0,
           problems: list[tuple[str, str]] | None = None, requests: int = 3) -> dict[str, Any]:
    """A target of a crawl summary as CrawlSummary.to_dict() writes it; `problems` are
    (kind, message) pairs (crawler.problems.ProblemKind values)."""
    t = TargetSummary(name, found=new + updated, new=new, updated=updated, pages=1,
                      requests=requests, strategy="k6v1")
    for kind, message in problems or ():
        t.add(kind, message)
    return t.to_dict()


def summary(*targets: dict[str, Any]) -> dict[str, Any]:
    return {"targets": list(targets), "totals": {}}


def when(row: dict[str, Any], column: str) -> datetime:
    return datetime.fromisoformat(row[column])


def metric(daemon: Daemon, name: str, **labels: str) -> float | None:
    """One sample of the daemon's /metrics, or None when it has no such sample."""
    text = daemon.metrics.render().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"govkz_{name}" and sample.labels == labels:
                return sample.value
    return None


# --- plan: the first start and restarts --------------------------------------------------------


def test_first_start_spreads_every_target_over_min_interval(make: Any) -> None:
    keys = [f"agency{n}/en" for n in range(5)]
    h = make(keys)
    rows = h.rows()
    assert set(rows) == set(keys)
    starts = [when(rows[key], "next_crawl") for key in keys]
    # Evenly spaced whole seconds in [now, now + min_interval), in the given order.
    assert starts == [T0 + timedelta(seconds=n * MIN // 5) for n in range(5)]
    assert all(rows[k]["interval"] == START_INTERVAL for k in keys)
    assert all(rows[k]["consecutive_failures"] == 0 and rows[k]["last_crawl"] is None
               for k in keys)


def test_restart_keeps_future_crawls_and_spreads_overdue_ones(make: Any, tmp_path: Path) -> None:
    archive = Archive.open(tmp_path / "news.db")
    stored = {
        "soon/en": {"next_crawl": T0 + timedelta(minutes=5), "interval": 1200,
                    "consecutive_failures": 2, "last_error": "HTTP 500"},
        "far/en": {"next_crawl": T0 + timedelta(days=3), "interval": MAX},  # beyond max_interval
        "late/en": {"next_crawl": T0 - timedelta(hours=5), "interval": 900},
        "later/en": {"next_crawl": T0 - timedelta(minutes=1), "interval": 900},
        "gone/en": {"next_crawl": T0 - timedelta(hours=9), "interval": 900},  # no longer crawled
    }
    for key, row in stored.items():
        archive.monitor.save_schedule(T(key), **row)
    archive.close()

    h = make(["soon/en", "far/en", "late/en", "later/en", "new/en"])
    states = h.daemon.states
    assert set(states) == {T(k) for k in ("soon/en", "far/en", "late/en", "later/en", "new/en")}
    # A crawl still ahead is kept, with what the agency taught us.
    assert states[T("soon/en")].next_crawl == T0 + timedelta(minutes=5)
    assert (states[T("soon/en")].interval, states[T("soon/en")].consecutive_failures) == (1200, 2)
    assert states[T("far/en")].next_crawl == T0 + timedelta(seconds=MAX)
    # Missed crawls (most overdue first) and the new agency share one spread: no stampede.
    spread = [states[T(k)].next_crawl for k in ("late/en", "later/en", "new/en")]
    assert spread == [T0, T0 + timedelta(seconds=MIN // 3), T0 + timedelta(seconds=2 * MIN // 3)]
    assert states[T("late/en")].interval == 900
    # And that plan is what the archive holds now; the dropped agency's row is left alone.
    rows = h.rows()
    assert when(rows["later/en"], "next_crawl") == T0 + timedelta(seconds=MIN // 3)
    assert when(rows["gone/en"], "next_crawl") == T0 - timedelta(hours=9)


def test_a_restart_resumes_the_learned_schedule(make: Any) -> None:
    h = make(["mod/en"])
    h.crawl(summary(target("mod/en", new=4)))
    next_crawl = h.daemon.states[T("mod/en")].next_crawl
    h.daemon.archive.close()

    again = make(["mod/en", "mod/ru"], now=h.now + timedelta(minutes=10))
    assert again.daemon.states[T("mod/en")] == h.daemon.states[T("mod/en")]
    assert again.daemon.states[T("mod/en")].next_crawl == next_crawl
    # /metrics knows the agency's last success at once, not only after its next crawl.
    assert metric(again.daemon, "last_success_timestamp_seconds", agency="mod") == (
        h.daemon.states[T("mod/en")].last_success.timestamp())


# --- start: jobs and the first batch ------------------------------------------------------------


def test_start_schedules_one_job_per_target_and_crawls_the_due_ones_in_one_batch(
    make: Any,
) -> None:
    # APScheduler compares run dates with the real time, so this daemon lives an hour ago:
    # every first crawl is already due when the scheduler wakes up.
    past = utcnow().replace(microsecond=0) - timedelta(hours=1)
    keys = ["mod/en", "mfa/en", "economy/en"]
    h = make(keys, now=past, plan=False)
    h.daemon.start()
    jobs = {job.id: job for job in h.daemon.scheduler.get_jobs()}
    assert set(jobs) == {f"crawl:{k}" for k in keys} | {"heartbeat"}
    for key in keys:
        job = jobs[f"crawl:{key}"]
        assert job.next_run_time == h.daemon.states[T(key)].next_crawl
        assert (job.coalesce, job.max_instances, job.args) == (True, 1, (T(key),))
    assert ("before", "shutdown", h.daemon.stop) in h.reactor.triggers

    h.reactor.advance(0)  # the scheduler wakes up; the jobs run "in a thread", then enqueue
    assert len(h.reactor.children) == 1
    assert sorted(h.reactor.children[0].targets) == sorted(keys)
    h.daemon.stop()


# --- results ------------------------------------------------------------------------------------


def test_successful_crawls_update_the_schedule_and_adapt_the_interval(make: Any) -> None:
    h = make(["mod/en"])
    h.crawl(summary(target("mod/en", new=12)))  # the backlog: says nothing about the rate
    row = h.row("mod/en")
    assert row["interval"] == START_INTERVAL
    assert (row["consecutive_failures"], row["last_new"], row["last_error"]) == (0, 12, None)
    assert when(row, "last_success") == when(row, "last_crawl") == h.now
    assert when(row, "next_crawl") == h.now + timedelta(seconds=START_INTERVAL)
    assert h.jobs.run_date("mod/en") == when(row, "next_crawl")
    assert metric(h.daemon, "crawls_total", agency="mod", outcome="ok") == 1
    assert metric(h.daemon, "crawl_requests_total", agency="mod") == 3
    assert metric(h.daemon, "items_saved_total", agency="mod", change="new") == 12
    assert metric(h.daemon, "last_success_timestamp_seconds", agency="mod") == h.now.timestamp()

    h.advance(START_INTERVAL)
    h.crawl(summary(target("mod/en", new=1)))  # it publishes: come back sooner
    assert h.row("mod/en")["interval"] == START_INTERVAL // 2
    assert when(h.row("mod/en"), "next_crawl") == h.now + timedelta(seconds=START_INTERVAL // 2)

    h.advance(START_INTERVAL)
    h.crawl(summary(target("mod/en", updated=0)))  # nothing: come back later
    assert h.row("mod/en")["interval"] == START_INTERVAL // 2 * 3 // 2
    assert h.row("mod/en")["last_new"] == 0
    assert h.jobs.run_date("mod/en") == when(h.row("mod/en"), "next_crawl")
    assert h.daemon.archive.monitor.incidents() == []


def incident_feed(tmp_path: Path) -> Any:
    parsed = feedparser.parse((tmp_path / "feeds" / "incidents.atom").read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def test_failures_back_off_open_one_failing_incident_and_a_recovery(
    make: Any, tmp_path: Path
) -> None:
    h = make(["mod/en"])
    h.crawl(summary(target("mod/en", new=3)))
    interval = h.row("mod/en")["interval"]
    broken = summary(target("mod/en", problems=[
        ("http_error", "HTTP 500 from http://mock/api (after retries)")]))
    waits = []
    for failures in range(1, 6):
        h.advance(interval)
        h.crawl(broken)
        row = h.row("mod/en")
        assert row["consecutive_failures"] == failures
        assert row["interval"] == interval  # backoff never unlearns the interval
        assert "HTTP 500" in row["last_error"] and "\n" not in row["last_error"]
        assert when(row, "last_success") < when(row, "last_error_at") == h.now
        waits.append((when(row, "next_crawl") - h.now).total_seconds())
        assert h.jobs.run_date("mod/en") == when(row, "next_crawl")
        kinds = [i["kind"] for i in h.daemon.archive.monitor.incidents()]
        assert kinds == ([] if failures < 3 else ["failing"])  # once per streak
    # Quick retries (1, 2, 4 x min_interval), then the backoff doubles on.
    assert waits == [MIN, 2 * MIN, 4 * MIN, 8 * MIN, 16 * MIN]

    feed = incident_feed(tmp_path)
    assert [e.title for e in feed.entries] == ["mod/en: failing"]
    assert "3 crawl(s) failed in a row" in feed.entries[0].summary

    h.advance(MAX)
    h.crawl(summary(target("mod/en")))
    row = h.row("mod/en")
    assert row["consecutive_failures"] == 0
    assert when(row, "next_crawl") == h.now + timedelta(seconds=row["interval"])
    assert [i["kind"] for i in h.daemon.archive.monitor.incidents()] == ["recovered", "failing"]
    feed = incident_feed(tmp_path)
    assert [e.title for e in feed.entries] == ["mod/en: recovered", "mod/en: failing"]
    assert "after 5 failed crawl(s)" in feed.entries[0].summary


def test_a_hung_crawl_is_killed_at_the_timeout_and_recorded(make: Any) -> None:
    h = make(["mod/en", "mfa/en"])
    child = h.start_batch()
    h.advance(TIMEOUT - 1)
    assert child.signals == []
    h.advance(1)
    assert child.signals == [signal.SIGKILL]
    child.exit(signo=signal.SIGKILL)
    h.reactor.advance(0)
    # Neither finished: the child may never have reached them, so no verdict yet; they are
    # still due and crawled again at once, first in line.
    for key in ("mod/en", "mfa/en"):
        assert h.row(key)["consecutive_failures"] == 0
        assert h.row(key)["last_error"] is None
    assert h.daemon.archive.monitor.incidents() == []
    again = h.reactor.children[-1]
    assert again is not child and sorted(again.targets) == ["mfa/en", "mod/en"]
    # Left unfinished twice in a row: now it is their timeout.
    h.advance(TIMEOUT)
    again.exit(signo=signal.SIGKILL)
    h.reactor.advance(0)
    for key in ("mod/en", "mfa/en"):
        row = h.row(key)
        assert row["last_error"] == f"crawl timed out after {TIMEOUT} s: this target had not " \
            "finished"
        assert row["consecutive_failures"] == 1
    assert sorted((i["agency"], i["kind"]) for i in h.daemon.archive.monitor.incidents()) == [
        ("mfa/en", "timeout"), ("mod/en", "timeout")]
    assert h.daemon.running is None


def test_a_timed_out_batch_fails_only_the_targets_that_had_not_finished(make: Any) -> None:
    h = make(["mod/en", "mfa/en"])
    child = h.start_batch()
    # mod/en's walk completed (its mark is in the archive) before mfa/en hung.
    h.daemon.archive.monitor.set_high_water("mod", "en", None)
    h.advance(TIMEOUT)
    child.exit(signo=signal.SIGKILL)
    h.reactor.advance(0)
    assert h.row("mod/en")["consecutive_failures"] == 0
    assert h.row("mod/en")["last_success"] is not None
    assert h.row("mfa/en")["consecutive_failures"] == 1
    assert [(i["agency"], i["kind"]) for i in h.daemon.archive.monitor.incidents()] == [
        ("mfa/en", "timeout")]


def test_a_poison_target_never_marks_its_batch_mates_failing(make: Any) -> None:
    h = make(["mod/en", "mfa/en", "astana/en"], replace(STEADY, failure_threshold=1))
    h.crawl(summary(
        target("mod/en", new=2),
        target("mfa/en", new=1, problems=[("unexpected", "OverflowError: date value out of "
                                           "range"), ("rejected", "date out of range")]),
        target("astana/en", new=1, problems=[("rejected", "bad id 'abc'")]),
    ))
    assert h.row("mod/en")["consecutive_failures"] == 0
    assert h.row("astana/en")["consecutive_failures"] == 0  # a reject costs only itself
    poisoned = h.row("mfa/en")
    assert poisoned["consecutive_failures"] == 1
    assert "OverflowError" in poisoned["last_error"] and "rejected" not in poisoned["last_error"]
    assert poisoned["last_kinds"] == "unexpected"
    assert sorted((i["agency"], i["kind"]) for i in h.daemon.archive.monitor.incidents()) == [
        ("mfa/en", "failing"), ("mfa/en", "unexpected")]
    assert metric(h.daemon, "crawl_problems_total", agency="astana", kind="rejected") == 1
    assert metric(h.daemon, "crawl_problems_total", agency="mfa", kind="unexpected") == 1


@pytest.mark.parametrize(
    ("exit", "expected"),
    [
        pytest.param(
            {"stderr": b"Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                       b"RuntimeError: boom\n\n", "code": 1},
            "crawl crashed: exit code 1: RuntimeError: boom", id="traceback"),
        pytest.param({"stdout": b"not json {", "stderr": b"INFO: half done\n", "code": 0},
                     "crawl crashed: exit code 0: INFO: half done", id="garbage-stdout"),
        pytest.param({"stdout": b"[1, 2]", "code": 0},
                     "crawl crashed: exit code 0: no output", id="json-not-an-object"),
        pytest.param({"stderr": b"INFO: crawled page 3\n", "signo": signal.SIGKILL},
                     "crawl crashed: killed by signal 9: INFO: crawled page 3", id="oom-kill"),
    ],
)
def test_a_crash_is_recorded_with_a_one_line_reason(make: Any, exit: dict[str, Any],
                                                    expected: str) -> None:
    h = make(["mod/en"])
    h.crawl(**exit)
    row = h.row("mod/en")
    assert row["last_error"] == expected
    assert row["consecutive_failures"] == 1
    assert [(i["kind"], "\n" in i["message"]) for i in h.daemon.archive.monitor.incidents()] == [
        ("crashed", False)]


@pytest.mark.parametrize(
    ("general", "expected"),
    [
        ([], "the crawl summary reports nothing for mfa/en"),
        ([target("crawl", problems=[
        ("unexpected", "the crawl ended early: shutdown")])],
         "crawl: the crawl ended early: shutdown"),
    ],
)
def test_a_target_missing_from_the_summary_failed(make: Any, general: list[dict[str, Any]],
                                                 expected: str) -> None:
    h = make(["mod/en", "mfa/en"])
    h.crawl(summary(target("mod/en", new=2), *general))
    missing = h.row("mfa/en")
    assert missing["consecutive_failures"] == 1
    assert missing["last_error"] == expected
    # An error of the whole crawl (not of one target) is every target's error.
    reached = h.row("mod/en")
    assert reached["consecutive_failures"] == (1 if general else 0)
    assert reached["last_error"] == (expected if general else None)


def test_a_child_that_cannot_be_started_is_a_crash_not_a_stuck_daemon(make: Any) -> None:
    h = make(["mod/en"])
    h.reactor.spawn_error = OSError(12, "Cannot allocate memory")
    h.daemon.enqueue(T("mod/en"))
    h.reactor.advance(0)
    assert h.daemon.running is None
    row = h.row("mod/en")
    assert row["consecutive_failures"] == 1
    assert "Cannot allocate memory" in row["last_error"]
    assert when(row, "next_crawl") > h.now  # retried later, not in a loop

    h.reactor.spawn_error = None
    h.advance(START_INTERVAL)
    h.crawl(summary(target("mod/en")))
    assert h.row("mod/en")["consecutive_failures"] == 0


# --- the queue and batches ----------------------------------------------------------------------


def test_targets_due_together_share_one_child_and_none_is_queued_twice(make: Any) -> None:
    # min_interval 60 over three new targets: first crawls at +0 s, +20 s and +40 s.
    h = make(["a/en", "b/en", "c/en"],
             Schedule(min_interval=60, max_interval=3600, jitter=0, crawl_timeout=TIMEOUT))
    assert timedelta(seconds=20) <= BATCH_WINDOW < timedelta(seconds=40)
    h.daemon.enqueue(T("a/en"))
    h.daemon.enqueue(T("a/en"))
    assert list(h.daemon.queue) == [T("a/en")]
    h.reactor.advance(0)
    assert len(h.reactor.children) == 1
    first = h.reactor.children[0]
    assert first.targets == ["a/en", "b/en"]  # b is due within the batch window: it joins
    assert first.args[first.args.index("crawl") + 1:][:2] == ["--data", h.daemon.crawl_args[1]]
    assert first.args[-4:] == ["--target", "a/en", "--target", "b/en"]
    assert "--json" in first.args

    h.daemon.enqueue(T("a/en"))  # running: not queued again
    h.daemon.enqueue(T("b/en"))
    h.daemon.enqueue(T("c/en"))  # queued, but one child at a time
    h.daemon.enqueue(T("c/en"))
    h.reactor.advance(0)
    assert list(h.daemon.queue) == [T("c/en")]
    assert len(h.reactor.children) == 1

    h.advance(1)
    first.exit(summary(target("a/en"), target("b/en")))
    h.reactor.advance(0)
    assert len(h.reactor.children) == 2
    assert h.reactor.children[1].targets == ["c/en"]
    assert not h.daemon.queue


def test_the_config_file_reaches_the_crawl_child(make: Any, tmp_path: Path) -> None:
    config = tmp_path / "govkz-monitor.toml"
    h = make(["mod/en"], config_path=config)
    args = h.start_batch().args
    # --config belongs to the program, not to `crawl` (which would reject it).
    assert args[args.index("crawler.cli") + 1:][:3] == ["--config", str(config), "crawl"]


# --- stop ---------------------------------------------------------------------------------------


def test_stop_terminates_the_running_crawl_and_waits_for_it(make: Any) -> None:
    h = make(["mod/en"])
    before = h.row("mod/en")
    child = h.start_batch()
    done = h.daemon.stop()
    assert done is not None and not done.called
    assert child.signals == [signal.SIGTERM]
    h.advance(3)
    assert child.signals == [signal.SIGTERM]
    h.advance(1)  # the grace period is over
    assert child.signals == [signal.SIGTERM, signal.SIGKILL]
    child.exit(summary(target("mod/en", problems=[
        ("unexpected", "the crawl ended early: shutdown")])),
               signo=signal.SIGKILL)
    assert done.called
    # Being stopped says nothing about the agency: its row and jobs are as they were.
    assert h.row("mod/en") == before
    assert h.jobs.jobs == {}
    assert h.daemon.archive.monitor.incidents() == []
    h.daemon.enqueue(T("mod/en"))
    h.reactor.advance(0)
    assert len(h.reactor.children) == 1 and not h.daemon.queue


def test_a_child_that_stops_in_time_is_not_killed(make: Any) -> None:
    h = make(["mod/en"])
    child = h.start_batch()
    done = h.daemon.stop()
    child.exit(summary(target("mod/en", problems=[
        ("unexpected", "the crawl ended early: shutdown")])), code=1)
    h.advance(10)
    assert child.signals == [signal.SIGTERM]
    assert done.called and not h.jobs.running


def test_stop_without_a_crawl_returns_at_once(make: Any) -> None:
    h = make(["mod/en"])
    assert h.daemon.stop() is None
    assert not h.jobs.running
