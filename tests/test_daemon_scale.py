"""Per-agency mode at any size: batches that fit in crawl_timeout, busiest first, and a target
that did not get its turn is no failure.

The batching rules are pure functions; the daemon's planning and judging are driven with the
fake reactor and children of tests/test_daemon.py over 3,000 agencies x 3 languages; one
end-to-end test runs `govkz-monitor run` against a mock of 3,000 agencies whose site-wide list
is refused. Outcomes only: no assertion on timing.
"""

# ruff: noqa: F811 - the `make` fixture, imported, is a test's parameter
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT

# `make` is tests/test_daemon.py's fixture (a fake reactor and children): tests name it.
from test_daemon import STEADY, T, make, summary, target  # noqa: F401

from crawler.config import Schedule
from crawler.items import NewsItem
from crawler.mockgov import MockSite, serve_in_thread
from crawler.mockgov.faults import refuse_site_wide
from crawler.store_monitor import Target
from crawler.sync import SITE_WIDE
from scheduler import batching
from scheduler.policy import AgencyState

SLUGS = [f"test-agency-{n:03d}" for n in range(1, 3001)]
LANGS3 = ("ru", "kk", "en")


# --- the rules (pure) ---------------------------------------------------------------------------


def state(key: str, *, success: bool = True, new: int = 0) -> AgencyState:
    from datetime import UTC, datetime

    when = datetime(2026, 9, 1, tzinfo=UTC) if success else None
    return AgencyState(T(key), 3600, None, last_success=when, last_new=new)


@pytest.mark.parametrize(("known", "new", "page_size", "backfill", "expected"), [
    (True, 0, 50, 2, 1),  # a quiet walk: one page
    (True, 1, 50, 2, 2),
    (True, 50, 50, 2, 2),
    (True, 120, 50, 2, 4),
    (False, 0, 50, 2, 2),  # a first walk: its backfill
    (False, 0, 50, 5, 5),
])
def test_requests_per_target(known: bool, new: int, page_size: int, backfill: int,
                             expected: int) -> None:
    s = state("mod/en", success=known, new=new)
    assert batching.estimate_requests(s, page_size=page_size, backfill=backfill) == expected
    if not known:
        assert batching.estimate_requests(None, page_size=page_size,
                                          backfill=backfill) == expected


@pytest.mark.parametrize(("timeout", "delay", "count"), [
    (900, 1.0, 9000), (900, 2.0, 9000), (120, 0.5, 500), (60, 1.0, 3), (20, 1.0, 10),
])
def test_a_batch_fits_its_budget_and_takes_at_least_one(timeout: int, delay: float,
                                                        count: int) -> None:
    keys = [f"{SLUGS[n % 3000]}/{LANGS3[n // 3000]}" for n in range(count)]
    states = {T(k): state(k) for k in keys}
    budget = batching.budget_seconds(timeout)
    batch = batching.take([T(k) for k in keys], states, budget=budget,
                          seconds_per_request=delay, page_size=50, backfill=2)
    assert batch.targets + batch.left == [T(k) for k in keys]  # nothing lost, order kept
    assert len(batch.targets) >= 1
    assert len(batch.targets) <= batching.MAX_TARGETS
    if len(batch.targets) > 1:
        assert batch.seconds <= budget
    if batch.left and len(batch.targets) < batching.MAX_TARGETS:
        # The next one would not have fitted.
        assert (batch.requests + 1) * delay > budget
    assert batch.requests == batching.BATCH_REQUESTS + len(batch.targets)


def test_order_streams_then_waiting_then_busiest_then_by_name() -> None:
    due = [T("b/en"), T("a/en"), T("c/en"), Target(SITE_WIDE, "ru"), T("d/en"), T("e/en")]
    ordered = batching.order(due, carried=[T("e/en"), T("d/en")],
                             rates={T("c/en"): 5, T("d/en"): 1, T("b/en"): 9})
    assert ordered == [Target(SITE_WIDE, "ru"), T("d/en"), T("e/en"), T("b/en"), T("c/en"),
                       T("a/en")]


@pytest.mark.parametrize(("unfinished", "strikes", "carry", "fail"), [
    (["a/en"], {}, [], ["a/en"]),  # alone: it held the batch up
    (["a/en", "b/en"], {}, ["a/en", "b/en"], []),  # maybe never reached: no verdict
    (["a/en", "b/en"], {"a/en": 1}, ["b/en"], ["a/en"]),  # a second time: a timeout
    ([], {}, [], []),
])
def test_unfinished_targets_of_a_timed_out_batch(unfinished: list[str], strikes: dict[str, int],
                                                 carry: list[str], fail: list[str]) -> None:
    verdict = batching.judge_unfinished([T(k) for k in unfinished],
                                        strikes={T(k): n for k, n in strikes.items()})
    assert (verdict.carry, verdict.fail) == ([T(k) for k in carry], [T(k) for k in fail])


def test_the_pace_learns_from_crawls_and_halves_after_a_timeout() -> None:
    pace = batching.Pace()
    assert pace.seconds_per_request(1.0) == 1.0  # never faster than the configured delay
    assert pace.seconds_per_request(0.0) == batching.INITIAL_SECONDS_PER_REQUEST
    pace.learn(batching.STARTUP_SECONDS + 30.0, 10)  # 3 s a request: a slow site
    assert pace.seconds_per_request(1.0) > 1.0
    pace.learn(1.0, 5)  # too small a crawl to say anything
    assert pace.seconds_per_request(1.0) > 1.0
    # A small batch that took about its start-up is no sign of a slow site.
    quick = batching.Pace()
    for _ in range(5):
        quick.learn(batching.STARTUP_SECONDS, 20)
    assert quick.seconds_per_request(0.0) < batching.INITIAL_SECONDS_PER_REQUEST / 10
    pace = batching.Pace()
    before = pace.learned
    pace.slow_down()
    assert pace.learned == 2 * before


# --- the daemon over 3,000 agencies x 3 languages -------------------------------------------------


def play(h: Any, *, walked_share: float | None = None) -> tuple[Any, list[str]]:
    """Let the running child end: every target ok with one request, or (walked_share) killed
    at the timeout after that share of its targets completed their walks."""
    child = h.reactor.children[-1]
    keys = child.targets
    if walked_share is None:
        h.advance(1)
        child.exit(summary(*[target(k, requests=1) for k in keys]))
    else:
        for key in keys[: int(len(keys) * walked_share)]:
            agency, lang = key.split("/")
            h.daemon.archive.monitor.set_high_water(agency, lang, None)
        h.advance(h.daemon.config.schedule.crawl_timeout)
        child.exit(signo=signal.SIGKILL)
    h.reactor.advance(0)
    return child, keys


def test_per_agency_mode_crawls_9000_targets_in_batches_that_fit_and_fails_none(
        make: Any) -> None:
    keys = [f"{slug}/{lang}" for slug in SLUGS for lang in LANGS3]
    schedule = replace(STEADY, crawl_timeout=900)
    h = make(keys, schedule)
    d = h.daemon
    # A killed batch publishes the feeds of every target (9,000 x 3 files): not this test's
    # subject (tests/test_daemon.py covers it), so it is only counted here.
    published: list[int] = []
    d.publish_feeds = lambda: published.append(1)  # type: ignore[method-assign]
    # The busiest agency (items published this week) is crawled first.
    busy = T("test-agency-2999/kk")
    for n in range(3):
        d.archive.save_item(NewsItem("test-agency-2999", 100 + n, "kk", f"https://x/{n}",
                                     f"title {n}", h.now - timedelta(days=1)))
    h.advance(STEADY.min_interval)  # every first crawl is due
    for key in keys:
        d.enqueue(T(key))
    h.reactor.advance(0)
    budget = batching.budget_seconds(schedule.crawl_timeout)
    seen: list[str] = []
    batches = 0
    timed_out_once = False
    while h.reactor.children and d.running is not None:
        child = h.reactor.children[-1]
        batches += 1
        if batches == 1:
            assert child.targets[0] == busy.key
        # What the daemon planned fits: its estimate at the configured delay.
        estimate = batching.BATCH_REQUESTS + sum(
            batching.estimate_requests(d.states.get(T(k)), page_size=50, backfill=2)
            for k in child.targets)
        assert len(child.targets) == 1 or estimate * 1.0 <= budget
        if batches == 3 and not timed_out_once:
            # One batch is killed at the timeout with half its walks done: the rest were not
            # reached, which is no failure: they go first in the next batch.
            timed_out_once = True
            _, killed = play(h, walked_share=0.5)
            left = killed[len(killed) // 2:]
            now_rows = h.rows()
            assert all(now_rows[k]["consecutive_failures"] == 0 for k in killed)
            assert all(now_rows[k]["last_success"] is None for k in left)
            nxt = h.reactor.children[-1].targets
            assert nxt[: len(left)] == sorted(left, key=lambda k: T(k).key) or \
                set(nxt[: len(left)]) <= set(left)
            seen += killed[: len(killed) // 2]
            continue
        _, done = play(h)
        seen += done
    assert timed_out_once and batches > 10 and published == [1]
    rows = h.rows()
    assert sorted(set(seen)) == sorted(keys)  # every target got its turn
    assert all(rows[k]["last_success"] is not None for k in keys)
    assert not [k for k in keys if rows[k]["consecutive_failures"]]  # no healthy one failed
    assert d.archive.monitor.incidents() == []
    assert not d.queue and d.carried == set()


def test_targets_left_out_of_a_full_batch_stay_due_and_go_first(make: Any) -> None:
    keys = [f"{slug}/en" for slug in SLUGS[:400]]
    h = make(keys, Schedule(min_interval=600, max_interval=21600, jitter=0, crawl_timeout=120))
    h.advance(600)
    for key in keys:
        h.daemon.enqueue(T(key))
    h.reactor.advance(0)
    first = h.reactor.children[-1].targets
    assert 0 < len(first) < len(keys)
    left = [k for k in keys if k not in first]
    assert [t.key for t in h.daemon.queue] == left and h.daemon.carried == {T(k) for k in left}
    # A target due later is queued after those that waited.
    rows = h.rows()
    assert all(rows[k]["consecutive_failures"] == 0 and rows[k]["last_error"] is None
               for k in left)
    play(h)
    second = h.reactor.children[-1].targets
    assert second == left[: len(second)]


# --- end to end: 3,000 agencies, site-wide list refused -------------------------------------------

DEADLINE = 420.0  # seconds: the whole walk of 3,000 agencies on a loaded 2-core machine


def test_run_per_agency_over_3000_agencies_without_a_timeout_or_a_failed_target(
        tmp_path: Path) -> None:
    site = MockSite.synthetic(3000, 1, access="k6v1")
    site.faults.add(refuse_site_wide())
    with serve_in_thread(site) as mock:
        config = tmp_path / "govkz-monitor.toml"
        config.write_text(f"""
[crawl]
base_url = "{mock.url}"
langs = ["en"]
download_delay = 0.0
backfill = 1

[agencies]
enabled = {json.dumps(SLUGS)}

[schedule]
min_interval = 30
max_interval = 7200
jitter = 0
crawl_timeout = 60

[server]
port = 0
""", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVKZ_")}
        env["PYTHONPATH"] = str(ROOT)
        log = tmp_path / "daemon.log"
        db = tmp_path / "data" / "news.db"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "crawler.cli", "--config", str(config), "run",
                 "--data", str(tmp_path / "data"), "-s", "AUTOTHROTTLE_ENABLED=0"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)

        def rows() -> list[tuple[Any, ...]]:
            if not db.exists():
                return []
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                    return conn.execute("SELECT agency, lang, last_success, "
                                        "consecutive_failures FROM schedule").fetchall()
            except sqlite3.OperationalError:
                return []  # not created yet

        try:
            deadline = time.monotonic() + DEADLINE
            while True:
                got = rows()
                if len(got) == 3000 and all(r[2] for r in got):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    done = sum(1 for r in got if r[2])
                    pytest.fail(f"{done} of 3000 targets crawled; the daemon's log:\n"
                                f"{log.read_text()[-4000:]}")
                try:
                    proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
            text = log.read_text()
            assert "per-agency mode (probe: the site-wide list failed: HTTP 400)" in text
            assert re.search(r"batch of \d+ targets .*wait their turn", text)  # it batched
            assert "timed out" not in text
            assert not [r for r in rows() if r[3]]  # not one healthy target marked failed
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                kinds = [k for (k,) in conn.execute("SELECT kind FROM incidents")]
                stored = conn.execute("SELECT count(DISTINCT agency) FROM items").fetchone()[0]
            assert kinds == []
            assert stored == 3000  # every agency's item, by its own walk
            assert site.count("/api/v1/public/content-manager/news", agency="test-agency-777",
                              lang="en") == 1
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
