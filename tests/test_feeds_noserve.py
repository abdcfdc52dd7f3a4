"""`govkz-monitor run --no-serve`: the daemon crawls and publishes (feeds and their .gz copies)
but listens nowhere, for a deployment where nginx serves DATA/feeds/."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from cli_helpers import ROOT, run_cli

from crawler.mockgov import MockServer, MockSite, serve_in_thread
from crawler.timeutil import ALMATY

DEADLINE = 60.0  # seconds the first crawl and publish may take on a loaded machine


@pytest.fixture
def mock() -> Iterator[MockServer]:
    site = MockSite(access="k6v1")
    site.add_agency("mod", names={"en": "Ministry of Defence"})
    start = datetime(2026, 11, 1, 9, 0, tzinfo=ALMATY)
    for n in range(2):
        site.publish("mod", title={"en": f"Briefing {n}"}, body={"en": f"<p>Body {n}</p>"},
                     created=start + timedelta(hours=n))
    with serve_in_thread(site) as server:
        yield server


@pytest.mark.parametrize("flag", [["--port", "9000"], ["--bind", "127.0.0.1"]])
def test_no_serve_with_server_options_is_a_usage_error(tmp_path: Path, flag: list[str]) -> None:
    done = run_cli("run", "--no-serve", *flag, "--data", str(tmp_path / "data"), timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--no-serve" in lines[0], done.stderr
    assert not (tmp_path / "data").exists()  # refused before anything started


def test_the_daemon_publishes_without_serving(tmp_path: Path, mock: MockServer) -> None:
    config = tmp_path / "govkz-monitor.toml"
    config.write_text(f"""
[crawl]
base_url = "{mock.url}"
langs = ["en"]
download_delay = 0.0

[agencies]
enabled = ["mod"]

[schedule]
min_interval = 1
max_interval = 3
jitter = 0
crawl_timeout = 60
""", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVKZ_")}
    env["PYTHONPATH"] = str(ROOT)
    data = tmp_path / "data"
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "--config", str(config), "run", "--no-serve",
             "--data", str(data), "-s", "AUTOTHROTTLE_ENABLED=0"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    feed = data / "feeds" / "mod" / "en.atom"
    try:
        deadline = time.monotonic() + DEADLINE
        titles: list[str] = []
        while len(titles) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no feed with both items (exit {proc.poll()}); the log:\n"
                            f"{log.read_text(errors='replace')[-4000:]}")
            try:
                proc.wait(timeout=0.1)  # returns early only if the daemon dies
            except subprocess.TimeoutExpired:
                pass
            if feed.exists():
                titles = [e.title for e in feedparser.parse(feed.read_bytes()).entries]
        assert sorted(titles) == ["Briefing 0", "Briefing 1"]
        gz = feed.with_name(feed.name + ".gz")
        assert gzip.decompress(gz.read_bytes()) == feed.read_bytes()
        text = log.read_text(errors="replace")
        assert "not serving" in text and "serving feeds on" not in text
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text(errors="replace")[-2000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
