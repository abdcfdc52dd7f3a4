"""`govkz-monitor run` for real: the daemon process against the mock gov.kz on 127.0.0.1.

The mock runs in a thread of the test process, so a test can publish on it while the daemon
runs; the daemon runs in a session of its own, so a finalizer can kill it together with its crawl
children whatever happens. Nothing waits on time: every wait polls something the daemon shows
(its log, /status.json, a feed, the archive) until a deadline.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import feedparser
import pytest
from cli_helpers import ROOT

from crawler.mockgov import Fault, MockServer, MockSite, serve_in_thread
from crawler.store import Archive
from crawler.timeutil import ALMATY, utcnow

AGENCIES = {"mod": "Ministry of Defence", "mfa": "Ministry of Foreign Affairs"}
BACKLOG = 3  # items per agency before the daemon starts
DEADLINE = 30.0  # seconds: the longest any one wait may take
POLL = 0.05  # seconds between two looks at what the daemon shows
T = TypeVar("T")


# --- the mock and the daemon processes --------------------------------------------------------


@pytest.fixture
def mock() -> Iterator[MockServer]:
    site = MockSite(access="k6v1")
    start = datetime(2026, 11, 1, 9, 0, tzinfo=ALMATY)
    for slug, name in AGENCIES.items():
        site.add_agency(slug, names={"en": name})
        for n in range(BACKLOG):
            site.publish(slug, title={"en": f"{name}: briefing {n}"},
                         body={"en": f"<p>{slug} body {n}</p>"}, created=start + timedelta(hours=n))
    with serve_in_thread(site) as server:
        yield server


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def until(self, check: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
        """Poll `check` until it returns something truthy; fail at the deadline or when the
        daemon exits, with its log."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if self.proc.poll() is not None:
                pytest.fail(f"the daemon exited ({self.proc.returncode}) while waiting for "
                            f"{what}; its log:\n{self.text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {timeout:g} s; the daemon's log:\n"
                            f"{self.text()[-4000:]}")
            try:
                self.proc.wait(timeout=POLL)  # returns early if the daemon dies
            except subprocess.TimeoutExpired:
                pass

    def port(self) -> int:
        found = self.until(
            lambda: re.search(r"serving feeds on http://127\.0\.0\.1:(\d+)/", self.text()),
            "HTTP server")
        return int(found.group(1))


@pytest.fixture
def daemons(tmp_path: Path, mock: MockServer) -> Iterator[Callable[[], Running]]:
    config = tmp_path / "govkz-monitor.toml"
    config.write_text(f"""
[crawl]
base_url = "{mock.url}"
langs = ["en"]
download_delay = 0.0

[agencies]
enabled = {json.dumps(sorted(AGENCIES))}

[schedule]
min_interval = 1
max_interval = 3
jitter = 0
crawl_timeout = 60
mode = "per-agency"

[server]
port = 0
""", encoding="utf-8")
    # Only the config file speaks: GOVKZ_* variables would override it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVKZ_")}
    env["PYTHONPATH"] = str(ROOT)
    started: list[Running] = []

    def start() -> Running:
        log = tmp_path / f"daemon-{len(started) + 1}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "crawler.cli", "--config", str(config), "run",
                 "--data", str(tmp_path / "data"), "-s", "AUTOTHROTTLE_ENABLED=0"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        started.append(Running(proc, log))
        return started[-1]

    yield start
    for running in started:  # the daemon and any crawl child it left behind
        try:
            os.killpg(running.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        running.proc.wait(timeout=10)


# --- reading what the daemon serves -----------------------------------------------------------


def get(port: int, path: str, headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def agencies_status(port: int) -> dict[str, dict[str, Any]]:
    status, _, body = get(port, "/status.json")
    assert status == 200, body
    return {a["slug"]: a for a in json.loads(body)["agencies"]}


def feed_titles(port: int, slug: str) -> list[str]:
    status, _, body = get(port, f"/feeds/{slug}/en.atom")
    if status == 404:
        return []
    assert status == 200, body
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    ids = [e.id for e in parsed.entries]
    assert len(ids) == len(set(ids)), f"duplicate entries in {slug}/en.atom: {ids}"
    return [e.title for e in parsed.entries]


def all_crawled(port: int, *, after: datetime | None = None) -> bool:
    """Both agencies crawled successfully (since `after`) with their backlog."""
    status = agencies_status(port)
    return all(
        status[slug]["state"] == "ok" and status[slug]["items"] >= BACKLOG
        and (after is None or datetime.fromisoformat(status[slug]["last_success"]) > after)
        for slug in AGENCIES
    )


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def schedule_rows(db: Path) -> dict[str, dict[str, Any]]:
    """The schedule table by "agency/lang" (its rows key each target by two columns)."""
    archive = Archive.open(db)
    try:
        rows = archive.monitor.schedule()
    finally:
        archive.close()
    assert all((row["agency"], row["lang"]) == (t.agency, t.lang) for t, row in rows.items())
    return {target.key: row for target, row in rows.items()}


def item_counts(db: Path) -> dict[str, int]:
    archive = Archive.open(db)
    try:
        return archive.item_counts()
    finally:
        archive.close()


# --- the tests --------------------------------------------------------------------------------


def test_a_new_item_reaches_the_served_feed_and_sigterm_stops_cleanly(
    daemons: Callable[[], Running], mock: MockServer, tmp_path: Path
) -> None:
    daemon = daemons()
    port = daemon.port()
    daemon.until(lambda: all_crawled(port), "first crawl of both agencies")
    assert len(feed_titles(port, "mod")) == BACKLOG

    fresh = "Ministry of Defence: a new item after the first crawl"
    item_id = mock.site.publish("mod", title={"en": fresh}, body={"en": "<p>Fresh.</p>"})
    titles = daemon.until(lambda: (t := feed_titles(port, "mod")) and fresh in t and t,
                          "new item in /feeds/mod/en.atom")
    assert titles[0] == fresh  # newest first
    assert len(titles) == BACKLOG + 1
    assert "mfa" not in titles[0].lower()

    # A reader polling the feed is told nothing changed.
    status, headers, _ = get(port, "/feeds/mod/en.atom")
    assert status == 200 and headers["etag"]
    status, _, body = get(port, "/feeds/mod/en.atom", {"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")

    # Stop it while a crawl hangs in a request: the child is terminated, killed after the
    # grace period, and the daemon still exits cleanly and in time.
    db = tmp_path / "data" / "news.db"
    mock.site.faults.add(Fault("hang", seconds=30, agency="mfa"))
    assert mock.site.faults.await_waiting(1, timeout=DEADLINE), daemon.text()[-4000:]
    before = schedule_rows(db)  # the crawl in progress cannot end before the signal
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=10) == 0, daemon.text()[-4000:]
    mock.site.faults.clear()
    assert daemon.text().rstrip().endswith("stopped")
    assert integrity(db) == "ok"
    after = schedule_rows(db)
    # Being stopped is no verdict on an agency: no failure recorded.
    assert [row["consecutive_failures"] for row in after.values()] == [0, 0]
    assert after["mfa/en"]["last_crawl"] == before["mfa/en"]["last_crawl"]
    assert item_counts(db) == {"mod": BACKLOG + 1, "mfa": BACKLOG}
    archive = Archive.open(db)
    try:
        assert archive.get_item("mod", item_id, "en")["title"] == fresh
    finally:
        archive.close()


def test_a_killed_daemon_restarts_where_it_stopped(
    daemons: Callable[[], Running], mock: MockServer, tmp_path: Path
) -> None:
    db = tmp_path / "data" / "news.db"
    first = daemons()
    port = first.port()
    # Crawled at least twice with nothing new: the learned interval grew to max_interval (3 s);
    # a schedule started afresh would begin at 2 s.
    first.until(lambda: all_crawled(port), "first crawl of both agencies")
    first.until(lambda: db.exists() and all(
        row["interval"] == 3 and row["last_success"] for row in schedule_rows(db).values()),
        "learned intervals")

    # Hold the next crawl inside a request to the mock, then kill the daemon and its child at
    # once (as systemd kills a service's control group).
    mock.site.faults.add(Fault("hang", seconds=30, agency="mod"))
    assert mock.site.faults.await_waiting(1, timeout=DEADLINE), first.text()[-4000:]
    before = schedule_rows(db)
    killed_at = utcnow()
    os.killpg(first.proc.pid, signal.SIGKILL)
    assert first.proc.wait(timeout=10) == -signal.SIGKILL
    mock.site.faults.clear()

    second = daemons()
    port = second.port()
    assert set(agencies_status(port)) == set(AGENCIES)
    second.until(lambda: all_crawled(port, after=killed_at), "a crawl after the restart")
    after = schedule_rows(db)
    assert set(after) == set(before) == {f"{slug}/en" for slug in AGENCIES}
    for key, row in after.items():
        assert row["interval"] == before[key]["interval"] == 3, (key, row)
        assert datetime.fromisoformat(row["last_success"]) > datetime.fromisoformat(
            before[key]["last_success"])
        assert row["consecutive_failures"] == 0
    assert item_counts(db) == {slug: BACKLOG for slug in AGENCIES}  # nothing stored twice
    assert len(feed_titles(port, "mod")) == BACKLOG
    assert integrity(db) == "ok"
