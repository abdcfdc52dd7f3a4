"""The status page in a real browser: headless Chromium loads what `govkz-monitor serve` serves.

Chromium prints every console message of the page to stderr (--enable-logging=stderr) as a line
with "CONSOLE"; the status page has no reason to print anything, so any such line (an uncaught
error, a script refused by the Content-Security-Policy) fails the test. A control page proves the
browser reports those lines at all, so "no console lines" cannot pass vacuously.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from cli_helpers import ROOT

from crawler.items import NewsItem, item_url
from crawler.pipelines import publish
from crawler.runner import project_settings
from crawler.store import Archive
from crawler.timeutil import utcnow

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.access(
    "/usr/bin/chromium", os.X_OK) else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium; .ci/run does)",
)
NAMES = {  # the shipped registry's English names
    "mod": "Ministry of Defence of the Republic of Kazakhstan",
    "mfa": "Ministry of Foreign Affairs of the Republic of Kazakhstan",
    "economy": "Ministry of National Economy of the Republic of Kazakhstan",
}
STATES = {"mod": "ok", "mfa": "failing", "economy": "never"}
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
)


# --- a data directory and its server ------------------------------------------------------------


def make_data(data: Path) -> None:
    """An archive as the daemon leaves it: items, one healthy, one failing and one new target,
    and the feeds written from it."""
    now = utcnow().replace(microsecond=0)
    archive = Archive.open(data / "news.db")
    try:
        for slug, count in (("mod", 2), ("mfa", 1)):
            for n in range(count):
                item_id = 1_200_000 + 10 * len(slug) + n
                archive.save_item(NewsItem(
                    agency=slug, id=item_id, lang="en", url=item_url(slug, item_id, "en"),
                    title=f"{slug} news {n}", published=now - timedelta(days=n + 1),
                    body_html=f"<p>{slug} body {n}</p>", body_text=f"{slug} body {n}",
                ))
        archive.save_schedule("mod/en", interval=1800, next_crawl=now + timedelta(minutes=20),
                              last_crawl=now - timedelta(minutes=10),
                              last_success=now - timedelta(minutes=10))
        archive.save_schedule("mfa/en", interval=3600, next_crawl=now + timedelta(hours=2),
                              last_crawl=now - timedelta(minutes=5),
                              last_success=now - timedelta(days=1),
                              last_error="mfa/en: HTTP 500 <b>from</b> the API & more",
                              last_error_at=now - timedelta(minutes=5), consecutive_failures=3)
        archive.save_schedule("economy/en", interval=3600, next_crawl=now + timedelta(minutes=3))
    finally:
        archive.close()
    publish(project_settings({"GOVKZ_DATA": str(data)}))


@dataclass
class Server:
    port: int
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("status-browser")
    make_data(root / "data")
    config = root / "empty.toml"
    config.write_text("", encoding="utf-8")  # defaults, whatever ./govkz-monitor.toml says
    log = root / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVKZ_")}
    env["PYTHONPATH"] = str(ROOT)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "--config", str(config), "serve",
             "--data", str(root / "data"), "--port", "0"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        found = None
        while found is None:
            found = re.search(r"serving feeds on http://127\.0\.0\.1:(\d+)/", log.read_text())
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`serve` did not start (exit {proc.returncode}):\n{log.read_text()}")
            try:
                proc.wait(timeout=0.05)  # returns early if the server dies
            except subprocess.TimeoutExpired:
                pass
        yield Server(int(found.group(1)), log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# --- the browser --------------------------------------------------------------------------------


@dataclass
class Page:
    dom: str
    console: list[str]  # the page's console messages, one line each


def load(url: str, profile: Path) -> Page:
    """Load `url` in headless Chromium; the DOM after its scripts ran, and its console."""
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,  # so a hung browser goes down with all its helper processes
    )
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert proc.returncode == 0, err.decode("utf-8", "replace")[-3000:]
    lines = err.decode("utf-8", "replace").splitlines()
    return Page(out.decode("utf-8"),
                [line for line in lines if "CONSOLE" in line or "Uncaught" in line])


@dataclass
class Row:
    css_class: str
    search: str
    hidden: bool  # hidden by the page's filter script
    cells: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


class StatusDom(HTMLParser):
    """The agencies table's rows, the filter box and the "Showing N of M" line."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self.query: str | None = None
        self.text: list[str] = []
        self._in_body = self._in_cell = False
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append(Row(a.get("class") or "", a.get("data-search") or "",
                                 "hidden" in a))
        elif tag == "td" and self.rows and self._in_body:
            self.rows[-1].cells.append("")
            self._in_cell = True
        elif tag == "a" and self._in_cell:
            self.rows[-1].links.append(a.get("href") or "")
        elif tag == "input" and a.get("id") == "q":
            self.query = a.get("value")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_cell:
            self.rows[-1].cells[-1] += data

    def slugs(self) -> list[str]:
        return [row.search.rsplit(" ", 1)[-1] for row in self.rows]

    def showing(self) -> str:
        found = re.search(r"Showing (\d+) of (\d+) agencies", " ".join("".join(self.text).split()))
        assert found, "no 'Showing N of M agencies' line"
        return found.group(0)


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<meta http-equiv='Content-Security-Policy' content=\"script-src 'none'\">"
         "<script>1</script>", "Content Security Policy"),
        ("<script>notDefinedAnywhere()</script>", "Uncaught ReferenceError"),
    ],
    ids=["refused-by-csp", "uncaught"],
)
def test_the_browser_reports_console_errors(tmp_path: Path, html: str, expected: str) -> None:
    # The control: what the status page tests look for does show up when it happens.
    page = load("data:text/html," + quote(html), tmp_path / "profile")
    assert any(expected in line for line in page.console), page.console


def test_status_page_lists_every_agency_without_console_errors(
    server: Server, tmp_path: Path
) -> None:
    page = load(server.url("/status"), tmp_path / "profile")
    assert page.console == []
    dom = StatusDom(page.dom)
    assert sorted(dom.slugs()) == sorted(NAMES)
    assert dom.showing() == "Showing 3 of 3 agencies"
    by_slug = dict(zip(dom.slugs(), dom.rows, strict=True))
    for slug, name in NAMES.items():
        row = by_slug[slug]
        assert row.cells[0].startswith(name) and slug in row.cells[0]
        assert (row.css_class, row.cells[1]) == (STATES[slug], STATES[slug])
    assert by_slug["mod"].cells[2] == "2"
    assert "/feeds/mod/en.atom" in by_slug["mod"].links
    # The error text is shown as text, not as markup.
    assert "HTTP 500 <b>from</b> the API & more" in by_slug["mfa"].cells[4]
    assert "3 failure(s) in a row" in by_slug["mfa"].cells[4]
    assert by_slug["economy"].cells[3] == "never"


@pytest.mark.parametrize(
    ("query", "expected"),
    [("mfa", ["mfa"]), ("Defence", ["mod"]), ("ministry of", sorted(NAMES)), ("nowhere", [])],
)
def test_status_page_filters_by_name_or_slug(server: Server, tmp_path: Path, query: str,
                                             expected: list[str]) -> None:
    page = load(server.url(f"/status?q={quote(query)}"), tmp_path / "profile")
    assert page.console == []
    dom = StatusDom(page.dom)
    assert sorted(dom.slugs()) == expected
    assert dom.query == query
    # The page's script filters with the same rule as the server: it hides none of the rows.
    assert [row.hidden for row in dom.rows] == [False] * len(expected)
    assert dom.showing() == f"Showing {len(expected)} of 3 agencies"
