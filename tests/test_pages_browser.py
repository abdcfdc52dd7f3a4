"""The reader's pages in a real browser: headless Chromium (tests/browser_helpers.py, over the
DevTools protocol) loads what `govkz-monitor serve` serves, at 1280 px and at a 400 px phone
width.

Every console message, log entry (CSP refusals, failed loads) and uncaught exception of a page
fails the test; control pages prove that those are reported at all and that an overflow is
measured, so neither check can pass vacuously. Screenshots of every page at both widths are
saved under tmp_path and, when GOVKZ_TEST_ARTIFACTS is set, copied there
(pages/<name>-<width>.png).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from browser_helpers import WIDTHS, DevTools, is_screenshot, needs_chromium, visit
from serve_helpers import Server, serve

from crawler.items import NewsItem, item_url
from crawler.pipelines import publish
from crawler.runner import project_settings
from crawler.store import Archive
from crawler.timeutil import utcnow

pytestmark = needs_chromium

EVIL = "<script>alert('x')</script>"
EDITED = 1_300_001  # the item with an edit history
LONG_WORD = "Қазақстанның" * 12  # one unbreakable word, wider than a phone


# --- a data directory and its server ------------------------------------------------------------


def make_data(data: Path) -> None:
    """An archive with items in three languages, an item edited twice, a hostile title, a body
    with a wide table and a long word; the feeds written from it."""
    now = utcnow().replace(microsecond=0)
    archive = Archive.open(data / "news.db")

    def save(agency: str, item_id: int, lang: str, title: str, body: str, days: int = 1) -> None:
        archive.save_item(NewsItem(
            agency=agency, id=item_id, lang=lang, url=item_url(agency, item_id, lang),
            title=title, published=now - timedelta(days=days), body_html=body,
            body_text=re.sub(r"<[^>]+>", " ", body)))

    try:
        table = "<table><tr>" + "".join(f"<td>column {n} value</td>" for n in range(12)) + "</tr>"
        save("mod", EDITED, "en", "Defence briefing", "<p>The minister met the press.</p>")
        save("mod", EDITED, "en", "Defence briefing today",
             "<p>The minister met the free press.</p>")
        save("mod", EDITED, "en", "Defence briefing today",
             f"<p>The minister met the free press.</p><p>{LONG_WORD}</p>{table}</table>")
        save("mod", EDITED, "ru", "Брифинг в Министерстве обороны",
             "<p>Министр встретился с прессой.</p>")
        save("mod", EDITED, "kk", "Қорғаныс министрлігінде брифинг", "<p>Мәтін.</p>")
        for n in range(8):
            save("mod", 1_300_100 + n, "ru", f"Новость номер {n} " + "длинный заголовок " * 4,
                 f"<p>Текст {n}.</p>", days=n + 2)
        save("mfa", 1_300_200, "en", f"Hostile {EVIL} title & more", f"<p>{EVIL}</p>")
    finally:
        archive.close()
    publish(project_settings({"GOVKZ_DATA": str(data)}))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("pages-browser")
    make_data(root / "data")
    with serve(root / "data", root) as running:
        yield running


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<meta http-equiv='Content-Security-Policy' content=\"script-src 'none'\">"
         "<script>1</script>", "Content Security Policy"),
        ("<script>notDefinedAnywhere()</script>", "ReferenceError: notDefinedAnywhere"),
        ("<script>console.log('hello')</script>", "console.log"),
    ],
    ids=["refused-by-csp", "uncaught", "console"],
)
def test_the_browser_reports_problems(browser: DevTools, html: str, expected: str) -> None:
    # The control: what the page tests look for does show up when it happens.
    page = visit(browser, "data:text/html," + quote(html), 1280)
    assert any(expected in problem for problem in page.problems), page.problems


def test_the_browser_measures_overflow(browser: DevTools) -> None:
    html = ('<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<div style="width: 900px">wide</div>')
    assert visit(browser, "data:text/html," + quote(html), 400).scroll_width > 400


PAGES = {  # name: (path, the page's <h1>)
    "home": ("/", "gov.kz press news"),
    "agency": ("/agency/mod", "Ministry of Defence of the Republic of Kazakhstan"),
    "item-en": (f"/item/mod/{EDITED}?lang=en", "Defence briefing today"),
    "item-ru": (f"/item/mod/{EDITED}?lang=ru", "Брифинг в Министерстве обороны"),
    "item-hostile": ("/item/mfa/1300200", f"Hostile {EVIL} title & more"),
    "search": ("/search?q=briefing", "Search"),
    "search-empty": ("/search", "Search"),
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_renders_cleanly_and_fits(server: Server, browser: DevTools, tmp_path: Path,
                                       name: str, width: int) -> None:
    path, h1 = PAGES[name]
    shot = tmp_path / f"{name}-{width}.png"
    page = visit(browser, server.url(path), width, shot)
    assert page.problems == []
    assert page.h1 == h1  # the page itself, its hostile text shown as text
    assert is_screenshot(shot)
    if width == 400:
        assert page.scroll_width <= 400


@pytest.mark.parametrize("width", WIDTHS)
def test_not_found_page(server: Server, browser: DevTools, tmp_path: Path, width: int) -> None:
    shot = tmp_path / f"not-found-{width}.png"
    page = visit(browser, server.url("/agency/nobody"), width, shot)
    assert is_screenshot(shot)
    # The browser logs the 404 of the document itself; nothing else may show up.
    assert [p for p in page.problems if "404" not in p] == []
    assert page.h1 == "Not found"
    assert page.scroll_width <= width
