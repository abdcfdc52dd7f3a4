"""`govkz-monitor crawl` end to end against the mock gov.kz: paging, re-crawls, edits,
languages and access schemes.

Each crawl runs in a child process (Scrapy's reactor cannot restart); the mock runs in a thread
of the test process, so the test can count the requests it answered and change it between
crawls. Faults (layout changes, retries, kills) are in test_crawl_faults.py; the helpers
these modules share are in crawl_helpers.py.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from crawl_helpers import (
    NEWS,
    PAGE,
    START,
    archive_at,
    assert_each_once,
    crawl,
    fill,
    list_requests,
    logged_key,
    newest,
    request_key,
    rows,
)

from crawler.items import LANGS
from crawler.mockgov import Fault, MockSite, serve_in_thread

# --- 1. first crawl: backfill depth, --since ------------------------------------------------


@pytest.mark.parametrize("depth", [1, 3])
def test_first_crawl_backfills_the_asked_depth(tmp_path: Path, depth: int) -> None:
    site = MockSite(access="k6v1")
    ids = fill(site, "mod", 25)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "--backfill", str(depth))
    assert result.code == 0, result.output
    assert_each_once(tmp_path, "mod", "en", newest(ids, depth * PAGE))
    assert list_requests(site) == depth
    target = result.target("mod/en")
    assert (target["found"], target["new"], target["pages"]) == (depth * PAGE, depth * PAGE, depth)
    assert target["errors"] == []


def test_first_crawl_default_depth_is_the_backfill_setting(tmp_path: Path) -> None:
    site = MockSite()
    ids = fill(site, "mod", 25)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "-s", "GOVKZ_BACKFILL_PAGES=4")
    assert result.code == 0, result.output
    assert_each_once(tmp_path, "mod", "en", newest(ids, 4 * PAGE))
    assert list_requests(site) == 4


@pytest.mark.parametrize(("since", "expected"), [
    ("2026-05-20", 11),  # items of 20 May 09:00 .. 30 May 09:00
    ("2026-05-29", 2),   # fewer than one page
    ("2026-05-26", 5),   # exactly one page: the next one is [] and ends the walk
])
def test_since_walks_back_to_the_date(tmp_path: Path, since: str, expected: int) -> None:
    site = MockSite()
    ids = fill(site, "mod", 30, step=timedelta(days=1))  # 1 May .. 30 May, 09:00
    with serve_in_thread(site) as server:
        # --since decides the depth, whatever --backfill says.
        result = crawl(server, tmp_path, "--since", since, "--backfill", "1")
    assert result.code == 0, result.output
    assert_each_once(tmp_path, "mod", "en", newest(ids, expected))
    # The API filters by date (created_date=gt:), so the walk ends on the first empty page (a
    # short page is not trusted as the end: the API may cap a page below the size asked).
    assert list_requests(site) == math.ceil(expected / PAGE) + 1
    assert all(e.query["created_date"].startswith("gt:") for e in site.log.entries(path=NEWS))
    assert result.target("mod/en")["new"] == expected


def test_a_list_without_bodies_is_completed_from_the_detail_endpoint(tmp_path: Path) -> None:
    site = MockSite(access="k6v1")
    ids = fill(site, "mod", 12)
    # Page 1 of the first crawl comes without bodies (field renamed away), page 2 with them.
    site.faults.add(Fault("rename", rename=("body", "text"), agency="mod"))
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path)
        assert result.code == 0, result.output
        details = site.log.entries(path_prefix=NEWS + "/")
        assert sorted(int(e.path.rsplit("/", 1)[1]) for e in details) == sorted(newest(ids, PAGE))
        assert all(e.headers.get("accept-language") == "en" for e in details)
        assert_each_once(tmp_path, "mod", "en", newest(ids, 2 * PAGE))
        assert all(r["body_text"].startswith("mod en body") for r in rows(tmp_path))
        # Known items are judged by their id: a quiet re-crawl of body-less lists is 1 request.
        site.faults.add(Fault("rename", rename=("body", "text"), agency="mod", times=None))
        site.reset_log()
        again = crawl(server, tmp_path)
    assert again.code == 0, again.output
    assert list_requests(site) == 1
    assert site.count(path_prefix=NEWS + "/") == 0
    assert again.target("mod/en")["new"] == 0


# --- 2. a quiet re-crawl costs one request per agency x language ------------------------------


@pytest.mark.parametrize(("scheme", "access"), [
    ("k6v1", "auto"),  # the first strategy auto tries
    ("plain", "plain"),
    ("k6v2", "k6v2"),
    ("token", "token,rss"),
])
def test_quiet_recrawl_costs_one_list_request_per_agency_and_language(
    tmp_path: Path, scheme: str, access: str
) -> None:
    site = MockSite(access=scheme)
    agencies, langs = ("mod", "mfa"), ("ru", "en")
    for agency in agencies:
        fill(site, agency, 12)
    with serve_in_thread(site) as server:
        first = crawl(server, tmp_path, "--access", access, agencies=agencies, langs=langs)
        assert first.code == 0, first.output
        assert first.summary["totals"]["new"] == 2 * 2 * 2 * PAGE  # default backfill: 2 pages
        site.reset_log()
        again = crawl(server, tmp_path, "--access", access, agencies=agencies, langs=langs)
    assert again.code == 0, again.output
    assert list_requests(site) == len(agencies) * len(langs)
    for agency in agencies:
        for lang in langs:
            assert list_requests(site, agency, lang) == 1
    assert site.count(path_prefix=NEWS + "/") == 0  # no detail requests either
    totals = again.summary["totals"]
    assert (totals["new"], totals["updated"], totals["errors"]) == (0, 0, 0)
    assert totals["unchanged"] == len(agencies) * len(langs) * PAGE


def test_quiet_recrawl_with_access_discovery(tmp_path: Path) -> None:
    """With "auto" against a site that wants the 3rd strategy, the first crawl finds it; the
    next one starts with it (remembered in the archive), so a quiet re-crawl costs exactly one
    list request per agency x language, none of them refused."""
    site = MockSite(access="token")
    agencies, langs = ("mod", "mfa"), ("ru", "en")
    for agency in agencies:
        fill(site, agency, 12)
    with serve_in_thread(site) as server:
        assert crawl(server, tmp_path, agencies=agencies, langs=langs).code == 0
        site.reset_log()
        again = crawl(server, tmp_path, agencies=agencies, langs=langs)
    assert again.code == 0, again.output
    assert again.summary["totals"]["new"] == 0
    news = site.log.entries(path=NEWS)
    accepted = [e for e in news if e.status == 200]
    assert sorted((e.agency, e.lang) for e in accepted) == sorted(
        (a, lang) for a in agencies for lang in langs)
    assert news == accepted and len(news) == len(agencies) * len(langs)
    assert again.target("mod/en")["strategy"].startswith("token ")


# --- 3. k new items cost at most one extra page per page of news ------------------------------


@pytest.mark.parametrize("k", [1, PAGE, PAGE + 1, 2 * PAGE + 1])
def test_new_items_cost_one_page_per_page_of_news(tmp_path: Path, k: int) -> None:
    site = MockSite(access="k6v1")
    old = fill(site, "mod", 12)
    with serve_in_thread(site) as server:
        assert crawl(server, tmp_path).code == 0
        fresh = fill(site, "mod", k, start=START + timedelta(days=1))
        site.reset_log()
        result = crawl(server, tmp_path)
    assert result.code == 0, result.output
    assert_each_once(tmp_path, "mod", "en", newest(old, 2 * PAGE) | set(fresh))
    assert list_requests(site) <= math.ceil(k / PAGE) + 1
    assert result.target("mod/en")["new"] == k


# --- 4. access schemes ------------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "works"), [
    # A plain API lets anyone in, so the first strategy tried (k6v1) already works.
    ("plain", "k6v1"),
    ("k6v1", "k6v1"),
    ("k6v2", "k6v2"),
    ("token", "token"),
])
def test_every_access_scheme_is_found_with_auto(tmp_path: Path, scheme: str, works: str) -> None:
    site = MockSite(access=scheme)
    ids = fill(site, "mod", 12)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "--access", "auto")
    assert result.code == 0, result.output
    assert_each_once(tmp_path, "mod", "en", newest(ids, 2 * PAGE))
    strategy = result.target("mod/en")["strategy"]
    assert strategy.split(" -> ")[-1].startswith(works + " ")
    assert strategy.endswith(" ok")
    # The news requests the site accepted carried what the scheme asks for.
    accepted = site.log.entries(path=NEWS, status=200)
    expected_header = {"k6v1": "cookie", "k6v2": "x-k6-key", "token": "hash", "plain": None}
    if expected_header[scheme]:
        assert all(expected_header[scheme] in e.headers for e in accepted)
    if scheme == "token":
        assert all(re.fullmatch(r"[0-9a-f-]{36}", e.headers["token"]) for e in accepted)


@pytest.mark.parametrize(("before", "after"), [
    ("k6v1", "k6v2"),
    ("k6v2", "token"),
    ("plain", "k6v1"),
    ("token", "k6v1"),  # a switch to a scheme earlier in the order: one more lap
])
def test_access_scheme_switched_mid_crawl(tmp_path: Path, before: str, after: str) -> None:
    site = MockSite(access=before)
    ids = fill(site, "mod", 25)
    site.faults.add(Fault("switch_access", scheme=after, after=2))  # on the 3rd news request
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "--backfill", "5")
    assert result.code == 0, result.output
    assert site.access == after
    assert_each_once(tmp_path, "mod", "en", set(ids))
    target = result.target("mod/en")
    assert target["new"] == 25 and target["errors"] == []
    assert target["strategy"].split(" -> ")[-1].startswith(after + " ")
    refused = site.log.entries(path=NEWS, status=400) + site.log.entries(path=NEWS, status=403)
    assert refused, "the switch should have refused at least one request"


def test_expired_handshake_is_renewed(tmp_path: Path) -> None:
    site = MockSite(access="k6v1", handshake_uses=2)
    ids = fill(site, "mod", 25)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "--backfill", "5")
    assert result.code == 0, result.output
    assert_each_once(tmp_path, "mod", "en", set(ids))
    handshakes = site.count("/api/v1/public/_/c/k6", method="POST")
    assert handshakes == 3  # 5 pages, 2 per session: sessions for pages 1-2, 3-4, 5
    assert site.count(NEWS, status=200) == 5
    assert "k6v2" not in result.target("mod/en")["strategy"]  # renewed, not abandoned


def test_rss_fallback_when_every_header_strategy_is_refused(tmp_path: Path) -> None:
    site = MockSite(access="k6v1")
    ids = fill(site, "mod", 12)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "-s", "GOVKZ_ACCESS=token,plain,rss")
    assert site.count("/api/v1/public/rss/mod/news/en") == 1
    got = rows(tmp_path, "mod", "en")
    assert {r["id"] for r in got} == set(ids)  # the RSS shows the newest 20
    assert {r["source"] for r in got} == {"rss"}
    assert all(r["title"] and r["body_text"] for r in got)
    target = result.target("mod/en")
    assert "rss" in target["strategy"] and target["new"] == len(ids)
    assert result.code == 0, result.output


def test_every_strategy_refused_without_rss_fails_in_one_line(tmp_path: Path) -> None:
    site = MockSite(access="k6v1")
    fill(site, "mod", 3)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "-s", "GOVKZ_ACCESS=token,plain")
    assert result.code == 1, result.output
    errors = result.target("mod/en")["errors"]
    assert len(errors) == 1 and "\n" not in errors[0]
    # The daemon recognises the kind of failure by how the line starts (scheduler/policy.py).
    assert errors[0].startswith("access refused")
    assert "every access strategy was refused" in errors[0]
    assert "token" in errors[0] and "plain" in errors[0]
    assert site.count("/api/v1/public/rss/mod/news/en") == 0
    assert rows(tmp_path) == []


# --- 7. edits ---------------------------------------------------------------------------------


def test_an_edit_becomes_a_new_version_and_reaches_the_feed(tmp_path: Path) -> None:
    site = MockSite()
    ids = fill(site, "mod", 12)
    edited = ids[-2]  # on page 1
    with serve_in_thread(site) as server:
        assert crawl(server, tmp_path).code == 0
        before = rows(tmp_path, "mod", "en")
        site.edit("mod", edited, "en", title="Corrected: the minister met the press",
                  body="<p>A corrected body.</p>")
        result = crawl(server, tmp_path)
    assert result.code == 0, result.output
    assert result.target("mod/en")["updated"] == 1
    with archive_at(tmp_path) as archive:
        row = archive.get_item("mod", edited, "en")
        versions = sorted(archive.versions("mod", edited, "en"), key=lambda v: v["version"])
        crawl_ids = sorted(c["id"] for c in archive.crawls())
    old = next(r for r in before if r["id"] == edited)
    assert row["version"] == 2 and row["title"] == "Corrected: the minister met the press"
    assert [v["title"] for v in versions] == [old["title"], row["title"]]
    # `updated` moved to the second crawl's edit (stamps have whole seconds: two quick crawls
    # may share one, so "later" is checked through the crawl that saw each version).
    assert [v["crawl_id"] for v in versions] == crawl_ids
    assert row["updated"] == versions[1]["seen_at"] >= old["updated"]
    assert row["first_seen"] == old["first_seen"]
    assert {r["id"]: r["version"] for r in rows(tmp_path, "mod", "en")} == {
        r["id"]: (2 if r["id"] == edited else 1) for r in before}
    feed = feedparser.parse((tmp_path / "feeds" / "mod" / "en.atom").read_bytes())
    titles = {entry.link: entry.title for entry in feed.entries}
    assert titles[row["url"]] == "Corrected: the minister met the press"


# --- 8. languages -----------------------------------------------------------------------------


def test_three_languages_of_one_agency_are_linked(tmp_path: Path) -> None:
    site = MockSite(access="k6v1")
    ids = fill(site, "mod", 7)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, langs=LANGS)
    assert result.code == 0, result.output
    for lang in LANGS:
        assert list_requests(site, "mod", lang) == 2  # 5 items, then the last 2
        assert_each_once(tmp_path, "mod", lang, set(ids))
        assert {r["title"] for r in rows(tmp_path, "mod", lang)} == {
            f"mod {lang} news {n}" for n in range(7)}
    with archive_at(tmp_path) as archive:
        links = archive.translations("mod", ids[0])
    assert set(links) == set(LANGS)
    assert all(urlsplit(url).query == f"lang={lang}" for lang, url in links.items())
    feed = feedparser.parse((tmp_path / "feeds" / "mod" / "en.atom").read_bytes())
    entry = next(e for e in feed.entries if e.link == links["en"])
    related = {link.get("hreflang"): link.href for link in entry.links
               if link.get("rel") == "related"}
    assert related == {"ru": links["ru"], "kk": links["kk"]}


# --- politeness: only the mock, robots.txt, User-Agent ----------------------------------------


def test_every_request_goes_to_the_mock(tmp_path: Path) -> None:
    site = MockSite(access="token")
    fill(site, "mod", 7)
    fill(site, "mfa", 7)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, agencies=("mod", "mfa"), langs=("ru", "en"),
                       verbose=True)
    assert result.code == 0, result.output
    # Any request Scrapy's debug log names at all (crawled, failed, retried, filtered) is to
    # the mock, and the requests it names are exactly the ones the mock received. Compared as
    # sets of distinct requests, so a retry (which repeats one) cannot change the verdict.
    named = re.findall(r"<(GET|POST|HEAD|PUT|DELETE|PATCH) (\S+)>", result.process.stderr)
    assert {urlsplit(url).netloc for _, url in named} == {f"127.0.0.1:{server.port}"}
    assert {request_key(method, url) for method, url in named} == {
        logged_key(entry) for entry in site.log.entries()}
    # And however often anything was retried: every response that reached the engine
    # ("Crawled (200) <GET ...>") came from the mock. (Refused answers that the access
    # middleware turns into a retry never reach it, so the mock may count more.)
    crawled = re.findall(r"Crawled \(\d+\) <", result.process.stderr)
    assert 0 < len(crawled) <= len(site.log)
    assert site.count("/robots.txt") == 1
    # The feeds and archive still name gov.kz-shaped links on the mock's host, not gov.kz.
    assert {urlsplit(r["url"]).hostname for r in rows(tmp_path)} == {"127.0.0.1"}
