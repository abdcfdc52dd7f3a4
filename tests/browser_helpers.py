"""Headless Chromium driven over the DevTools protocol, for the tests of the served pages.

Chromium runs with --remote-debugging-pipe: DevTools messages are NUL-terminated JSON on its
file descriptors 3 (in) and 4 (out), so no WebSocket client is needed. A visit records every
console message, log entry (CSP refusals, failed loads) and uncaught exception of its page, the
document's scroll width at the emulated screen width (a page wider than the screen overflows),
the DOM after the page's scripts ran and, if asked, a screenshot: written under the test's
tmp_path and, when GOVKZ_TEST_ARTIFACTS is set, copied to its pages/ folder.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.access(
    "/usr/bin/chromium", os.X_OK) else None)
# pytestmark of a browser test module: without Chromium there is nothing to drive.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium; .ci/run does)",
)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--remote-debugging-pipe",
)
WIDTHS = (1280, 400)  # a desktop and a phone
DEADLINE = 60.0  # seconds one DevTools answer may take on a loaded machine
PNG = b"\x89PNG\r\n\x1a\n"


class DevTools:
    """One headless Chromium and its DevTools pipe."""

    def __init__(self, profile: Path) -> None:
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()

        def wire() -> None:  # in the child: the pipe ends on fds 3 and 4, inheritable
            first = fcntl.fcntl(to_browser, fcntl.F_DUPFD, 10)
            second = fcntl.fcntl(from_browser, fcntl.F_DUPFD, 10)
            os.dup2(first, 3)
            os.dup2(second, 4)

        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=wire, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # so a hung browser goes down with its helper processes
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        reply = self._until(lambda m: m.get("id") == self._next)
        assert "error" not in reply, (method, reply["error"])
        return reply["result"]

    def wait_for(self, event: str, session: str) -> dict:
        for seen in self.events:
            if seen.get("method") == event and seen.get("sessionId") == session:
                return seen
        return self._until(lambda m: m.get("method") == event and m.get("sessionId") == session)

    def _until(self, wanted: Callable[[dict], bool]) -> dict:
        deadline = time.monotonic() + DEADLINE
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return message
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer in time"
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                assert chunk, "Chromium closed its DevTools pipe"
                self._buffer += chunk

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        os.close(self._in)
        os.close(self._out)


@dataclass
class Visit:
    width: int
    scroll_width: int  # the document's; over `width`, the page overflows the screen
    h1: str
    dom: str  # the document after its scripts ran
    problems: list[str] = field(default_factory=list)  # console, log entries, exceptions
    screenshot: Path | None = None


def problems_of(events: list[dict[str, Any]], session: str) -> list[str]:
    """One line per console message, log entry and uncaught exception of one page."""
    found = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        params = event.get("params", {})
        if event["method"] == "Runtime.consoleAPICalled":
            found.append(f"console.{params['type']}: {params.get('args')}")
        elif event["method"] == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            found.append(f"exception: {details.get('text')} "
                         f"{details.get('exception', {}).get('description', '')}")
        elif event["method"] == "Log.entryAdded":
            entry = params["entry"]
            found.append(f"{entry['level']} ({entry['source']}): {entry['text']}")
    return found


def visit(browser: DevTools, url: str, width: int, shot: Path | None = None) -> Visit:
    """Load `url` in a new tab of `width` px (a phone at 400 px and less) and measure it; with
    `shot`, a full-page screenshot there (see keep)."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget",
                           {"targetId": target, "flatten": True})["sessionId"]
    try:
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width <= 400,
        }, session=session)
        navigated = browser.call("Page.navigate", {"url": url}, session=session)
        assert "errorText" not in navigated, navigated
        browser.wait_for("Page.loadEventFired", session)

        def evaluate(expression: str) -> Any:
            result = browser.call("Runtime.evaluate",
                                  {"expression": expression, "returnByValue": True},
                                  session=session)
            return result["result"].get("value")

        page = Visit(width, evaluate("document.documentElement.scrollWidth"),
                     evaluate("(document.querySelector('h1') || {}).textContent || ''"),
                     evaluate("document.documentElement.outerHTML"))
        if shot is not None:
            height = min(int(evaluate("document.documentElement.scrollHeight")), 8000)
            image = browser.call("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            }, session=session)
            shot.write_bytes(base64.b64decode(image["data"]))
            keep(shot)
            page.screenshot = shot
        page.problems = problems_of(browser.events, session)
        return page
    finally:
        browser.call("Target.closeTarget", {"targetId": target})


def keep(shot: Path) -> None:
    """Copy a screenshot to $GOVKZ_TEST_ARTIFACTS/pages/ when the run collects artifacts."""
    artifacts = os.environ.get("GOVKZ_TEST_ARTIFACTS")
    if artifacts:
        folder = Path(artifacts) / "pages"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, folder / shot.name)


def is_screenshot(shot: Path) -> bool:
    """A PNG with something in it (an empty capture is a few hundred bytes)."""
    return shot.stat().st_size > 1000 and shot.read_bytes()[:8] == PNG
