"""The page base (0 or 1) and the code of Kazakh (kk or kz): probed once per site, remembered,
or set (GOVKZ_PAGE_BASE, GOVKZ_KK_CODE); crawls of a 0-based or a "kz" site get every item
exactly once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helpers import run_cli
from crawl_helpers import NEWS, archive_at, assert_each_once, crawl, fill, rows
from scrapy import Request
from scrapy.settings import Settings

from crawler.config import ConfigError, resolve
from crawler.mockgov import MockSite, serve_in_thread
from crawler.mockgov.faults import Dialect
from crawler.siteprobe import (
    DialectMiddleware,
    SiteDialect,
    decide_kk_code,
    decide_page_base,
    listing,
)

AUTO = ("-s", "GOVKZ_PAGE_BASE=auto", "-s", "GOVKZ_KK_CODE=auto")  # beats the harness's pins
A, B, C = ("1", "a"), ("2", "b"), ("3", "c")


# --- the decisions (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize(("page0", "page1", "base"), [
    ([A], [B], 0),      # page 1 is the second page
    ([A], [], 0),       # one item only, on page 0
    ([A], [A], 1),      # page 0 read as page 1
    (None, [A], 1),     # page 0 refused (400)
    ([], [A], 1),       # page 0 empty
    ([], [], None),     # nothing to tell by
    ([A], None, None),  # page 1 failed
])
def test_decide_page_base(page0: list | None, page1: list | None, base: int | None) -> None:
    assert decide_page_base(page0, page1) == base


@pytest.mark.parametrize(("ru", "kk", "kz", "code"), [
    ([A, B], [C], None, "kk"),
    ([A, B], [A, B], [C], "kz"),     # "kk" answered Russian, "kz" Kazakh
    ([A, B], [A, B], [A, B], None),  # all the same: cannot tell
    ([], [A], None, None),
    ([A], None, None, None),
])
def test_decide_kk_code(ru: list, kk: list | None, kz: list | None, code: str | None) -> None:
    assert decide_kk_code(ru, kk, kz) == code


@pytest.mark.parametrize(("body", "expected"), [
    (b'[{"id": 1, "title": "a"}]', [("1", "a")]),
    (b'{"data": {"news": [{"id": "1", "title": "a"}]}}', [("1", "a")]),
    (b"[]", []),
    (b'{"error": "badRequest"}', None),
    (b"<html></html>", None),
])
def test_listing(body: bytes, expected: list | None) -> None:
    assert listing(body) == expected


@pytest.mark.parametrize(("dialect", "page", "lang", "sent_page", "sent_lang"), [
    (SiteDialect(), 1, "kk", 1, "kk"),
    (SiteDialect(0, "kz"), 1, "kk", 0, "kz"),
    (SiteDialect(0, "kz"), 3, "ru", 2, "ru"),
    (SiteDialect(1, "kz"), 2, "en", 2, "en"),
])
def test_dialect(dialect: SiteDialect, page: int, lang: str, sent_page: int,
                 sent_lang: str) -> None:
    assert (dialect.page(page), dialect.lang(lang)) == (sent_page, sent_lang)


def _middleware(base: str, code: str) -> DialectMiddleware:
    settings = Settings({"GOVKZ_BASE_URL": "http://x", "GOVKZ_PAGE_BASE": base,
                         "GOVKZ_KK_CODE": code})
    return DialectMiddleware(SimpleNamespace(settings=settings))


@pytest.mark.parametrize(("base", "code", "url", "lang"), [
    ("1", "kk", None, None),  # already the site's dialect: sent as it is
    ("0", "kk", "http://x/n?projects=eq:mod&page=2&size=5", "kk"),
    ("0", "kz", "http://x/n?projects=eq:mod&page=2&size=5", "kz"),
    ("1", "kz", "http://x/n?projects=eq:mod&page=3&size=5", "kz"),
])
def test_requests_are_put_in_the_site_dialect(base: str, code: str, url: str | None,
                                             lang: str | None) -> None:
    request = Request("http://x/n?projects=eq:mod&page=3&size=5",
                      headers={"Accept-Language": "kk"}, meta={"govkz_api": True})
    out = _middleware(base, code).translate(request)
    if url is None:
        assert out is None
        return
    assert out is not None and out.meta["govkz_dialect"]
    assert (out.url, out.headers["Accept-Language"]) == (url, str(lang).encode())


@pytest.mark.parametrize(("name", "value"), [("GOVKZ_PAGE_BASE", "2"),
                                             ("GOVKZ_KK_CODE", "kaz")])
def test_bad_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        resolve(environ={name: value})


def test_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    process = run_cli("doctor", "--data", str(tmp_path), "-s", "GOVKZ_PAGE_BASE=2")
    assert process.returncode == 2
    assert "GOVKZ_PAGE_BASE: must be auto, 0 or 1" in process.stderr


# --- crawls -------------------------------------------------------------------------------------


def probes(site: MockSite) -> int:
    """List requests of one item: the page-base probe (the crawl's own pages are bigger)."""
    return sum(1 for e in site.log.entries(path=NEWS) if e.query.get("size") == "1")


def test_a_zero_based_site_gets_every_item_once_and_is_remembered(tmp_path: Path) -> None:
    site = MockSite(access="k6v1", dialect=Dialect(page_base=0))
    ids = fill(site, "mod", 12)  # three pages of 5
    with serve_in_thread(site) as server:
        first = crawl(server, tmp_path, "--backfill", "4", *AUTO)
        assert first.code == 0, first.output
        assert probes(site) == 2
        assert_each_once(tmp_path, "mod", "en", set(ids))
        pages = sorted(int(e.query["page"]) for e in site.log.entries(path=NEWS)
                       if e.query.get("size") == "5")
        assert pages[0] == 0  # the newest page was asked for
        site.publish("mod", title={"en": "Newer"}, body="<p>n</p>")
        second = crawl(server, tmp_path, *AUTO)
    assert second.code == 0, second.output
    assert probes(site) == 2  # remembered: no probe again
    assert second.target("mod/en")["new"] == 1
    with archive_at(tmp_path) as archive:
        assert archive.monitor.site_probe(server.url)["page_base"] == 0


def test_a_kz_site_gets_kazakh_texts_once(tmp_path: Path) -> None:
    site = MockSite(dialect=Dialect(kk_code="kz"))
    ids = fill(site, "mod", 7)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "--backfill", "3", *AUTO, langs=("kk", "ru"))
        assert result.code == 0, result.output
        kk_langs = {e.headers.get("accept-language") for e in site.log.entries(path=NEWS)
                    if e.lang == "kk"}
    assert_each_once(tmp_path, "mod", "kk", set(ids))
    assert_each_once(tmp_path, "mod", "ru", set(ids))
    assert all(r["title"].startswith("mod kk news") for r in rows(tmp_path, "mod", "kk"))
    assert kk_langs == {"kz"}
    with archive_at(tmp_path) as archive:
        assert archive.monitor.site_probe(server.url)["kk_code"] == "kz"


def test_settings_skip_the_probe(tmp_path: Path) -> None:
    site = MockSite(dialect=Dialect(page_base=0, kk_code="kz"))
    ids = fill(site, "mod", 6)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "--backfill", "2", "-s", "GOVKZ_PAGE_BASE=0",
                       "-s", "GOVKZ_KK_CODE=kz", langs=("kk",))
    assert result.code == 0, result.output
    assert probes(site) == 0
    assert_each_once(tmp_path, "mod", "kk", set(ids))
