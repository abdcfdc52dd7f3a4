"""A search is a feed: /search.atom|rss|json?q=… served for real on 127.0.0.1 by build_site over
a real archive; valid feeds a reader parses, ETag and 304, changes seen, bad requests in one line.

A private reactor runs in a thread for this module (the `reactor` fixture of tests/conftest.py); the
archive is opened, written and read on its thread, as the server does. Nothing waits on time:
every step waits on a reply.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import feedparser
import pytest
from feedcheck import ATOM, check_atom, check_rss
from jsonfeed_check import check_json_feed
from lxml import etree
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.threads import blockingCallFromThread
from web_helpers import NoArchive, Reply, fetch, serving

from crawler.agencies import AgencyRegistry
from crawler.items import NewsItem, item_url
from crawler.store import Archive
from crawler.timeutil import ALMATY
from scheduler.metrics import Metrics
from scheduler.provider import ArchiveStatus
from scheduler.server import build_site

PUBLISHED = datetime(2026, 3, 2, 10, 30, tzinfo=ALMATY)


def news(agency: str, item_id: int, lang: str, title: str, body: str, days: int = 0,
         **over: Any) -> NewsItem:
    fields: dict[str, Any] = {
        "agency": agency, "id": item_id, "lang": lang, "url": item_url(agency, item_id, lang),
        "title": title, "published": PUBLISHED + timedelta(days=days),
        "body_html": f"<p>{body}</p>", "body_text": body,
    }  # fmt: skip
    return NewsItem(**(fields | over))


def fill(path: Path) -> Archive:
    archive = Archive.open(path)
    archive.upsert_agency("mfa", names={"ru": "МИД", "en": "Foreign Ministry"})
    for item in [
        news("mfa", 1, "ru", "Объявлен тендер", "Тендер на поставку техники."),
        news("mfa", 1, "en", "Tender announced", "A tender for equipment.", days=0),
        news("mod", 2, "ru", "Итоги тендеров", "Тендеры завершены.", days=1),
        news("mod", 3, "kk", "Тендер жарияланды", "Министрлікте тендерге өтінім.", days=2),
        news("mfa", 4, "ru", "Брифинг", "Без закупок.", days=3),
        news("mfa", 5, "ru", "Тендер <script>", "Тендер & <b>жирный</b>", days=4),
    ]:
        archive.save_item(item)
    archive.save_item(news("mfa", 6, "ru", "Тендер без даты", "Обрезан", published=None,
                           incomplete=True))
    return archive


@dataclass
class Served:
    port: int
    reactor: SelectReactor
    archive: Any = None

    def get(self, path: str, headers: dict[str, str] | None = None,
            method: str = "GET") -> Reply:
        return fetch(self.port, path, method, headers)

    def url(self, fmt: str, **params: str) -> str:
        """The address the feed names itself by: its self link."""
        return f"http://127.0.0.1:{self.port}/search.{fmt}?{urlencode(params)}"

    def save(self, item: NewsItem) -> None:
        blockingCallFromThread(self.reactor, self.archive.save_item, item)


def serve(reactor: SelectReactor, tmp: Path, provider: object) -> Iterator[Served]:
    feeds = tmp / "feeds"
    feeds.mkdir(parents=True, exist_ok=True)
    site = build_site(feeds, provider, Metrics(), cache_max_age=120)  # type: ignore[arg-type]
    with serving(reactor, site) as port:
        yield Served(port, reactor, getattr(provider, "archive", None))


@pytest.fixture
def site(reactor: SelectReactor, tmp_path: Path) -> Iterator[Served]:
    archive = blockingCallFromThread(reactor, fill, tmp_path / "news.db")
    try:
        yield from serve(reactor, tmp_path, ArchiveStatus(archive, AgencyRegistry(),
                                                          tmp_path / "feeds"))
    finally:
        blockingCallFromThread(reactor, archive.close)


def q(text: str) -> str:
    return quote(text)


# --- valid feeds --------------------------------------------------------------------------------


def test_search_atom_is_a_valid_feed_feedparser_reads(site: Served) -> None:
    reply = site.get(f"/search.atom?q={q('тендера')}")
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert check_atom(reply.body, served_at=site.url("atom", q="тендера")) == []
    feed = feedparser.parse(reply.body)
    assert not feed.bozo, feed.bozo_exception
    assert "тендера" in feed.feed.title
    # Newest first, every language, word forms (тендеры, тендерге), no incomplete item.
    assert [e.link for e in feed.entries] == [
        item_url("mfa", 5, "ru"), item_url("mod", 3, "kk"), item_url("mod", 2, "ru"),
        item_url("mfa", 1, "ru"),
    ]  # not mfa/1/en: "Tender" is another word
    first = feed.entries[0]
    titles = etree.fromstring(reply.body).findall(f"{{{ATOM}}}entry/{{{ATOM}}}title")
    assert titles[0].text == "Тендер"  # a title is plain text: markup in it is dropped
    assert "<script" not in first.content[0].value and "жирный" in first.content[0].value
    assert feed.entries[-1].author == "МИД"  # the agency's name in the hit's language


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("rss", "application/rss+xml"), ("json", "application/feed+json")],
)
def test_rss_and_json_feed_of_a_search(site: Served, fmt: str, content_type: str) -> None:
    reply = site.get(f"/search.{fmt}?q={q('тендер')}&lang=ru")
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == f"{content_type}; charset=utf-8"
    served_at = site.url(fmt, q="тендер", lang="ru")
    if fmt == "rss":
        assert check_rss(reply.body, served_at=served_at) == []
        links = [e.link for e in feedparser.parse(reply.body).entries]
    else:
        doc = json.loads(reply.body)
        assert check_json_feed(reply.body, served_at=served_at) == []
        assert doc["feed_url"] == served_at and doc["language"] == "ru"
        links = [item["url"] for item in doc["items"]]
    assert links == [item_url("mfa", 5, "ru"), item_url("mod", 2, "ru"), item_url("mfa", 1, "ru")]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "тендер", "agency": "mod"}, [("mod", 3, "kk"), ("mod", 2, "ru")]),
        ({"q": "тендер", "agency": "mod", "lang": "kk"}, [("mod", 3, "kk")]),
        ({"q": "tender OR брифинг"}, [("mfa", 4, "ru"), ("mfa", 1, "en")]),
        ({"q": "тендер -техники", "lang": "ru"}, [("mfa", 5, "ru"), ("mod", 2, "ru")]),
        ({"q": "nothing-at-all"}, []),
        ({"q": "тендер", "agency": "no-such-agency"}, []),  # subscribe ahead: an empty feed
    ],
)
def test_filters_and_the_query_language(site: Served, params: dict[str, str],
                                        expected: list[tuple[str, int, str]]) -> None:
    reply = site.get(f"/search.atom?{urlencode(params)}")
    assert reply.status == 200, reply.body
    assert check_atom(reply.body, served_at=site.url("atom", **params)) == []
    links = [e.link for e in feedparser.parse(reply.body).entries]
    assert links == [item_url(*hit) for hit in expected]


# --- caching ------------------------------------------------------------------------------------


def test_etag_304_and_a_new_etag_when_the_archive_changes(site: Served) -> None:
    path = f"/search.atom?q={q('тендер')}"
    first = site.get(path)
    etag = first.headers["ETag"]
    assert etag and first.headers["Cache-Control"] == "public, max-age=120"
    again = site.get(path)
    assert again.headers["ETag"] == etag and again.body == first.body

    not_modified = site.get(path, {"If-None-Match": etag})
    assert not_modified.status == 304 and not_modified.body == b""
    assert not_modified.headers["ETag"] == etag
    assert site.get(path, {"If-None-Match": f'"other", {etag}'}).status == 304
    assert site.get(path, {"If-None-Match": '"other"'}).status == 200

    site.save(news("mod", 9, "ru", "Тендер продлён", "Тендер продлится дольше.", days=9))
    changed = site.get(path, {"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert feedparser.parse(changed.body).entries[0].link == item_url("mod", 9, "ru")
    # A change elsewhere in the archive re-runs the search but keeps the ETag of the same feed.
    site.save(news("mfa", 10, "ru", "Брифинг снова", "Без закупок.", days=10))
    assert site.get(path, {"If-None-Match": changed.headers["ETag"]}).status == 304


def test_each_format_and_query_has_its_own_etag(site: Served) -> None:
    etags = {site.get(path).headers["ETag"] for path in (
        f"/search.atom?q={q('тендер')}", f"/search.rss?q={q('тендер')}",
        f"/search.json?q={q('тендер')}", f"/search.atom?q={q('тендер')}&lang=kk",
    )}
    assert len(etags) == 4


# --- bad requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/search.atom", "missing search query"),
        ("/search.atom?q=", "missing search query"),
        ("/search.rss?q=%20%20", "missing search query"),
        ("/search.json?agency=mfa", "missing search query"),
        (f"/search.atom?q={q('-тендер')}", "not only words to leave out"),
        ("/search.atom?q=x&lang=de", "unknown language"),
        ("/search.atom?q=x&agency=Not%20a%20slug", "not an agency slug"),
        (f"/search.atom?q={'x' * 1200}", "too long"),
    ],
)
def test_a_bad_search_is_400_with_one_line(site: Served, path: str, reason: str) -> None:
    reply = site.get(path)
    assert reply.status == 400
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
    lines = reply.body.decode().splitlines()
    assert len(lines) == 1 and reason in lines[0], lines


@pytest.mark.parametrize(
    "query", ['"', "*", "NEAR(a b)", "title:x", "a OR", "\x00", "%FF%FE", "(((", "^-*"]
)
def test_hostile_queries_are_a_feed_or_a_400(site: Served, query: str) -> None:
    reply = site.get("/search.atom?q=" + (query if "%" in query else q(query)))
    assert reply.status in (200, 400), reply.body
    if reply.status == 200:
        assert check_atom(reply.body) == []


def test_without_an_archive_search_feeds_are_503(reactor: SelectReactor, tmp_path: Path) -> None:
    for served in serve(reactor, tmp_path, NoArchive()):
        reply = served.get(f"/search.atom?q={q('тендер')}")
        assert reply.status == 503 and len(reply.body.decode().splitlines()) == 1
        assert served.get("/search.atom").status == 400  # the request is checked first
