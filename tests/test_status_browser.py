"""The status page in a real browser: headless Chromium (tests/browser_helpers.py, over the
DevTools protocol) loads what `govkz-monitor serve` serves.

Every console message, log entry and uncaught exception of the page (an error, a script refused
by the Content-Security-Policy) fails the test; the status page has no reason to print anything.
A control page proves the browser reports those at all, so "no problems" cannot pass vacuously.
At 1280 and 400 px the page fits the screen; screenshots are saved under tmp_path and, when
GOVKZ_TEST_ARTIFACTS is set, copied there (pages/status-<width>.png).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from browser_helpers import WIDTHS, DevTools, is_screenshot, needs_chromium, visit
from serve_helpers import Server, serve

from crawler.items import NewsItem, item_url
from crawler.pipelines import publish
from crawler.runner import project_settings
from crawler.store import Archive
from crawler.store_monitor import Target
from crawler.timeutil import utcnow

pytestmark = needs_chromium

NAMES = {  # the shipped registry's English names
    "mod": "Ministry of Defence of the Republic of Kazakhstan",
    "mfa": "Ministry of Foreign Affairs of the Republic of Kazakhstan",
    "economy": "Ministry of National Economy of the Republic of Kazakhstan",
}
STATES = {"mod": "ok", "mfa": "failing", "economy": "never"}


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
        save = archive.monitor.save_schedule
        save(Target("mod", "en"), interval=1800, next_crawl=now + timedelta(minutes=20),
             last_crawl=now - timedelta(minutes=10), last_success=now - timedelta(minutes=10))
        save(Target("mfa", "en"), interval=3600, next_crawl=now + timedelta(hours=2),
             last_crawl=now - timedelta(minutes=5), last_success=now - timedelta(days=1),
             last_error="mfa/en: HTTP 500 <b>from</b> the API & more",
             last_error_at=now - timedelta(minutes=5), consecutive_failures=3)
        save(Target("economy", "en"), interval=3600, next_crawl=now + timedelta(hours=3))
        archive.monitor.add_incident("mfa/en", "failing",
                                     "mfa/en: 3 crawl(s) failed in a row; last error: <b>500</b>")
    finally:
        archive.close()
    publish(project_settings({"GOVKZ_DATA": str(data)}))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("status-browser")
    make_data(root / "data")
    with serve(root / "data", root) as running:
        yield running


# --- the page's table ---------------------------------------------------------------------------


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
def test_the_browser_reports_console_errors(browser: DevTools, html: str, expected: str) -> None:
    # The control: what the status page tests look for does show up when it happens.
    page = visit(browser, "data:text/html," + quote(html), 1280)
    assert any(expected in problem for problem in page.problems), page.problems


def test_status_page_lists_every_agency_without_console_errors(
    server: Server, browser: DevTools
) -> None:
    page = visit(browser, server.url("/status"), 1280)
    assert page.problems == []
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
    # The sparkline's title counts the last 30 days' items.
    assert by_slug["mod"].cells[3].startswith("2 items in 30 days")
    assert "https://www.gov.kz/memleket/entities/mod/press/news?lang=en" in by_slug["mod"].links
    # The error text is shown as text, not as markup.
    assert "HTTP 500 <b>from</b> the API & more" in by_slug["mfa"].cells[5]
    assert "3 failure(s) in a row" in by_slug["mfa"].cells[5]
    assert by_slug["economy"].cells[4] == "never"
    # Almaty time with a relative hint: the future is "in …", the past "… ago".
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d \(in (2|3) h\)", by_slug["economy"].cells[6])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d \(\d+ min ago\)", by_slug["mod"].cells[4])


@pytest.mark.parametrize(
    ("query", "expected"),
    [("mfa", ["mfa"]), ("Defence", ["mod"]), ("ministry of", sorted(NAMES)), ("nowhere", [])],
)
def test_status_page_filters_by_name_or_slug(server: Server, browser: DevTools, query: str,
                                             expected: list[str]) -> None:
    page = visit(browser, server.url(f"/status?q={quote(query)}"), 1280)
    assert page.problems == []
    dom = StatusDom(page.dom)
    assert sorted(dom.slugs()) == expected
    assert dom.query == query
    # The page's script filters with the same rule as the server: it hides none of the rows.
    assert [row.hidden for row in dom.rows] == [False] * len(expected)
    assert dom.showing() == f"Showing {len(expected)} of 3 agencies"


# --- the summary, and the layout at 1280 and 400 px ---------------------------------------------


def test_the_summary_line_and_the_latest_incidents(server: Server, browser: DevTools) -> None:
    page = visit(browser, server.url("/status"), 1280)
    assert page.problems == []
    text = " ".join("".join(StatusDom(page.dom).text).split())
    assert "targets: 1 ok, 1 failing, 1 never" in text
    assert "items: 0 today, 3 this week" in text  # published 1 and 2 days ago
    assert "mode: per-agency" in text
    assert "serve only: no daemon in this process" in text
    assert "health: serve-only" in text
    assert "mfa/en: 3 crawl(s) failed in a row; last error: <b>500</b>" in text  # as text
    assert 'href="/feeds/incidents.atom"' in page.dom


@pytest.mark.parametrize("width", WIDTHS)
def test_the_layout_fits_the_screen_with_no_console_errors(server: Server, browser: DevTools,
                                                           tmp_path: Path, width: int) -> None:
    shot = tmp_path / f"status-{width}.png"
    page = visit(browser, server.url("/status"), width, shot)
    assert page.problems == []
    assert page.scroll_width <= width, f"the page is {page.scroll_width} px wide at {width} px"
    assert is_screenshot(shot)
