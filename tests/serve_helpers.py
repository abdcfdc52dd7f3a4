"""`govkz-monitor serve` in a child process on a free 127.0.0.1 port, for tests that need the
real command (a browser, a feed reader) rather than build_site in a thread."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import ROOT

# The line `serve` logs once it listens: the port it took (it is started with --port 0).
SERVING = re.compile(r"serving feeds on http://127\.0\.0\.1:(\d+)/")
START_TIMEOUT = 60.0  # seconds a loaded machine may take to import and bind


@dataclass
class Server:
    port: int
    log: Path  # the child's stdout and stderr

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def start_serving(data: Path, config: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start `serve` over `data` with `config` (no GOVKZ_ variable of the caller leaks in); return
    the process and its port once it logs that it listens. A child that exits or never says so
    fails the test with its log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVKZ_")}
    env["PYTHONPATH"] = str(ROOT)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "--config", str(config), "serve",
             "--data", str(data), "--port", "0"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # so a stuck child goes down with everything it started
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            found = SERVING.search(log.read_text())
            if found:
                return proc, int(found.group(1))
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`serve` did not start (exit {proc.returncode}):\n{log.read_text()}")
            try:
                proc.wait(timeout=0.05)  # a poll interval that returns at once if the child dies
            except subprocess.TimeoutExpired:
                pass
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL to the whole session if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def serve(data: Path, workdir: Path) -> Iterator[Server]:
    """`serve` over `data` with the defaults (an empty config file in `workdir`, whatever
    ./govkz-monitor.toml says) and its log in `workdir`; stopped after the block."""
    config = workdir / "empty.toml"
    config.write_text("", encoding="utf-8")
    log = workdir / "serve.log"
    proc, port = start_serving(data, config, log)
    try:
        yield Server(port, log)
    finally:
        stop(proc)
