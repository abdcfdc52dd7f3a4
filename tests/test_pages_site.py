"""The reader's pages served for real on 127.0.0.1 by build_site, over a real archive.

A private reactor (not the global one: the `reactor` fixture of tests/conftest.py) runs in a
thread for this module, so that this module and tests/test_server.py, which runs and stops the
global reactor, work in any order in one session. The archive is opened and read on the
reactor's thread, as the server does. Nothing waits on time: every step waits on a reply.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pages_helpers import Dom, parse
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.threads import blockingCallFromThread
from web_helpers import NoArchive, fetch, serving

from crawler.agencies import Agency, AgencyRegistry
from crawler.items import NewsItem, item_url
from crawler.store import Archive
from scheduler.metrics import Metrics
from scheduler.pages import CONTENT_SECURITY_POLICY
from scheduler.provider import ArchiveStatus
from scheduler.server import build_site

EVIL = "<script>alert('x')</script>"
PUBLISHED = datetime(2026, 3, 2, 5, 30, tzinfo=UTC)  # 10:30 in Almaty (UTC+5)
REGISTRY = AgencyRegistry([
    Agency("mod", {"en": "Ministry of Defence", "ru": "Министерство обороны"}, "ministry"),
    Agency("astana", {"en": "Akimat of Astana"}, "akimat"),
    Agency("evil", {"en": f"Evil {EVIL}"}, "embassy"),
    Agency("quiet", {"en": "Quiet committee"}, "committee", enabled=False),
])


def news(agency: str, item_id: int, lang: str, title: str, body: str, hours: int = 0) -> NewsItem:
    return NewsItem(agency=agency, id=item_id, lang=lang, url=item_url(agency, item_id, lang),
                    title=title, published=PUBLISHED + timedelta(hours=hours),
                    body_html=f"<p>{body}</p>", body_text=body)


def fill(path: Path) -> Archive:
    """On the reactor thread: the archive the pages read, with an item edited twice."""
    archive = Archive.open(path)
    archive.save_item(news("mod", 100, "en", "Defence briefing", "The minister met the press."))
    archive.save_item(news("mod", 100, "ru", "Брифинг", "Министр встретился с прессой."))
    archive.save_item(news("mod", 101, "en", "Older news", "Something else.", hours=-30))
    archive.save_item(news("mod", -7, "kk", "Жаңалық", "Мәтін."))
    archive.save_item(news("mod", 100, "en", "Defence briefing today",
                           "The minister met the free press."))
    archive.save_item(news("mod", 100, "en", "Defence briefing today",
                           "The minister met the free press. Photos follow."))
    archive.save_item(news("evil", 5, "en", EVIL, f"Body {EVIL}"))
    archive.save_item(news("gone", 9, "ru", "Архив", "Ушедшее агентство."))
    return archive


@dataclass
class RecordingArchive:
    """An archive that answers what the pages ask and records the search calls."""

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def agencies(self) -> list[dict]:
        return []

    def item_counts(self) -> dict[str, int]:
        return {"mod": 1}

    def search(self, *args: Any, **kwargs: Any) -> list[dict]:
        self.calls.append((args, kwargs))
        return [{"agency": "mod", "id": 1, "lang": kwargs.get("lang", "ru"), "title": "Тендер",
                 "published": "2026-03-02T10:30:00+05:00", "url": "https://www.gov.kz/x",
                 "snippet": "… объявлен тендер …"}]


@dataclass
class Source:
    archive: Any
    registry: AgencyRegistry = REGISTRY

    def agencies_status(self) -> list:
        return []

    def health(self) -> tuple[bool, str]:
        return True, "ok"


@dataclass
class Served:
    port: int
    archive: Any = None

    def get(self, path: str, method: str = "GET") -> tuple[int, http.client.HTTPMessage, bytes]:
        reply = fetch(self.port, path, method)
        return reply.status, reply.headers, reply.body

    def page(self, path: str, status: int = 200) -> Dom:
        code, headers, body = self.get(path)
        assert code == status, body[:2000]
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert headers["Cache-Control"] == "no-store"
        return parse(body)


def serve(reactor: SelectReactor, tmp: Path, provider: object) -> Iterator[Served]:
    feeds = tmp / "feeds"
    feeds.mkdir(parents=True, exist_ok=True)
    site = build_site(feeds, provider, Metrics())  # type: ignore[arg-type]
    with serving(reactor, site) as port:
        yield Served(port, getattr(provider, "archive", None))


@pytest.fixture(scope="module")
def site(reactor: SelectReactor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("pages-site")
    archive = blockingCallFromThread(reactor, fill, tmp / "news.db")
    try:
        yield from serve(reactor, tmp, ArchiveStatus(archive, REGISTRY, tmp / "feeds"))
    finally:
        blockingCallFromThread(reactor, archive.close)


# --- the pages ----------------------------------------------------------------------------------


def test_home_lists_agencies_by_kind_with_counts(site: Served) -> None:
    dom = site.page("/")
    headings = dom.all_text("h2")
    assert headings.index("Ministries") < headings.index("Akimats") < headings.index("Embassies")
    assert "Other" in headings  # "gone": archived items, known to no registry
    links = set(dom.anchors)
    assert {"/agency/mod", "/agency/astana", "/agency/evil", "/agency/gone"} <= links
    assert "/agency/quiet" not in links  # disabled and without items
    assert {"/status", "/opml", "/feeds/all.atom"} <= links
    text = dom.all_text("li")
    assert "mod · 4 items" in text and "astana · 0 items" in text
    assert "Evil " + EVIL in text and "script" not in dom.tags  # shown, as text


def test_agency_page(site: Served) -> None:
    dom = site.page("/agency/mod")
    assert dom.all_text("h1") == "Ministry of Defence"
    items = [a for a in dom.anchors if a.startswith("/item/")]
    # Newest first across languages; the items of one moment in id order, newest id first.
    assert items == ["/item/mod/100?lang=ru", "/item/mod/100?lang=en", "/item/mod/-7?lang=kk",
                     "/item/mod/101?lang=en"]
    alternates = {link["href"] for link in dom.links if link["rel"] == "alternate"}
    assert {"/feeds/mod.atom", "/feeds/mod/kk.rss", "/feeds/mod/en.json"} <= alternates
    assert len(alternates) == 12  # all + 3 languages, 3 formats each
    assert "https://www.gov.kz/memleket/entities/mod/press/news?lang=ru" in dom.anchors
    assert "Министерство обороны" in dom.all_text("li")
    assert "2026-03-02 10:30" in dom.all_text("time")


def test_archived_agency_outside_the_registry_has_feeds_of_its_languages(site: Served) -> None:
    dom = site.page("/agency/gone")
    alternates = {link["href"] for link in dom.links if link["rel"] == "alternate"}
    assert alternates == {f"/feeds/gone{rel}.{ext}" for rel in ("", "/ru")
                          for ext in ("atom", "rss", "json")}


def test_item_page_with_languages_and_edit_history(site: Served) -> None:
    dom = site.page("/item/mod/100")  # no ?lang: the first of kk, ru, en it has
    assert dom.all_text("h1") == "Брифинг"
    dom = site.page("/item/mod/100?lang=en")
    assert dom.all_text("h1") == "Defence briefing today"
    assert "/item/mod/100?lang=ru" in dom.anchors
    assert "https://www.gov.kz/memleket/entities/mod/press/news/details/100?lang=en" in dom.anchors
    assert "Version 3" in dom.all_text("summary") and "Version 2" in dom.all_text("summary")
    assert dom.all_text("ins") == " Photos follow." + " today" + "free "
    assert "Version 1, first seen" in dom.all_text("p")


def test_item_with_a_negative_id(site: Served) -> None:
    dom = site.page("/item/mod/-7?lang=kk")
    assert dom.all_text("h1") == "Жаңалық"
    assert "No edits since it was first seen" in dom.all_text("p")


def test_hostile_item_is_escaped(site: Served) -> None:
    code, _, body = site.get("/item/evil/5")
    assert code == 200
    assert EVIL.encode() not in body and b"&lt;script&gt;" in body
    assert "script" not in parse(body).tags


@pytest.mark.parametrize(
    "path",
    ["/agency/nobody", "/agency/mod/more", "/agency", "/agency/", "/agency/%2E%2E",
     "/item/mod/999", "/item/mod/abc", "/item/mod", "/item/mod/100/x", "/item/mod/100?lang=zz",
     "/item/nobody/100", "/nowhere", "/" + quote(EVIL)],
)
def test_unknown_addresses_are_friendly_404s(site: Served, path: str) -> None:
    code, _, body = site.get(path)
    assert code == 404
    assert EVIL.encode() not in body
    if not path.startswith("/nowhere") and not path.startswith("/%3C"):
        assert "/" in parse(body).anchors  # our page, with the way home


def test_search_finds_with_the_archives_search(site: Served) -> None:
    dom = site.page("/search?q=briefing")
    hits = [a for a in dom.anchors if a.startswith("/item/")]
    assert hits == ["/item/mod/100?lang=en"]
    assert "/search.atom?q=briefing" in dom.anchors
    assert "1 result" in dom.all_text("p")


@pytest.mark.parametrize(
    ("query", "hits"),
    [("q=" + quote("Брифинг"), ["/item/mod/100?lang=ru"]),
     ("q=briefing&lang=ru", []),
     ("q=" + quote("Архив") + "&agency=gone", ["/item/gone/9?lang=ru"]),
     ("q=" + quote("Архив") + "&agency=mod", [])],
    ids=["ru", "lang-filter", "agency-filter", "other-agency"],
)
def test_search_filters_reach_the_archive(site: Served, query: str, hits: list[str]) -> None:
    dom = site.page("/search?" + query)
    assert [a for a in dom.anchors if a.startswith("/item/")] == hits


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 200), ("q=x&lang=zz", 400), ("q=x&agency=" + quote("../x"), 400),
     ("q=" + "x" * 501, 400), ("q=" + quote("-briefing"), 400)],
    ids=["no-query", "bad-lang", "bad-agency", "too-long", "only-exclusions"],
)
def test_search_refuses_bad_filters(site: Served, query: str, status: int) -> None:
    dom = site.page("/search?" + query, status)
    assert "form" in dom.tags
    assert not [a for a in dom.anchors if a.startswith("/item/")]


@pytest.fixture(scope="module")
def recording(reactor: SelectReactor, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Served]:
    yield from serve(reactor, tmp_path_factory.mktemp("recording"), Source(RecordingArchive()))


@pytest.mark.parametrize(
    ("query", "kwargs"),
    [("q=тендер", {"limit": 20}),
     ("q=тендер&agency=mod&lang=kk", {"limit": 20, "agency": "mod", "lang": "kk"}),
     ("q=тендер&lang=en", {"limit": 20, "lang": "en"})],
)
def test_search_passes_only_the_filters_asked_for(recording: Served, query: str,
                                                  kwargs: dict) -> None:
    archive = recording.archive
    archive.calls.clear()
    dom = recording.page("/search?" + query.replace("тендер", quote("тендер")))
    assert archive.calls == [(("тендер",), kwargs)]
    assert "… объявлен тендер …" in dom.all_text("li")
    feed = "/search.atom?" + query.replace("тендер", quote("тендер"))
    assert feed in dom.anchors


# --- without a readable archive -----------------------------------------------------------------


@pytest.fixture
def no_archive(reactor: SelectReactor, tmp_path: Path) -> Iterator[Served]:
    yield from serve(reactor, tmp_path, NoArchive())


@pytest.fixture
def closed_archive(reactor: SelectReactor, tmp_path: Path) -> Iterator[Served]:
    archive = blockingCallFromThread(reactor, Archive.open, tmp_path / "news.db")
    blockingCallFromThread(reactor, archive.close)  # every read now fails
    yield from serve(reactor, tmp_path, ArchiveStatus(archive, REGISTRY, tmp_path / "feeds"))


@pytest.mark.parametrize("fixture", ["no_archive", "closed_archive"])
@pytest.mark.parametrize("path", ["/agency/mod", "/item/mod/100", "/search?q=x"])
def test_no_archive_is_a_friendly_503(request: pytest.FixtureRequest, fixture: str,
                                      path: str) -> None:
    served: Served = request.getfixturevalue(fixture)
    dom = served.page(path, 503)
    assert dom.all_text("h1") == "Archive unavailable"
    assert "/" in dom.anchors


@pytest.mark.parametrize("fixture", ["no_archive", "closed_archive"])
def test_home_without_archive_still_links_the_feeds(request: pytest.FixtureRequest,
                                                    fixture: str) -> None:
    served: Served = request.getfixturevalue(fixture)
    dom = served.page("/")
    assert "not available" in dom.all_text("p")
    assert {"/status", "/opml", "/feeds/all.atom"} <= set(dom.anchors)
