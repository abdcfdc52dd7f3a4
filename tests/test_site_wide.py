"""`govkz-monitor crawl --site-wide` end to end against the mock gov.kz with thousands of agencies:
the one list of every agency's news, walked newest first with the per-agency stop rule, each item
filed under the agency its `projects` names, agencies never seen before added to the archive.

Each crawl runs in a child process; the mock runs in a thread of the test process, which counts
the requests it answered (the helpers of test_crawl_mock.py).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from cli_helpers import run_cli
from crawl_helpers import NEWS, PAGE, Crawl, archive_at, crawl, list_requests

from crawler.mockgov import MockServer, MockSite, serve_in_thread
from crawler.mockgov.site import PROJECTS_SHAPES
from crawler.sync import SITE_WIDE
from crawler.timeutil import ALMATY

AGENCIES = 3000
LANGS = ("ru", "en")
SITE_PAGE = 100  # GOVKZ_PAGE_SIZE of the site-wide walks here: the API's largest page
# The synthetic site's newest item is dated 2026-06-30 12:00 Almaty; news published "now".
LATER = datetime(2026, 7, 1, 9, 0, tzinfo=ALMATY)


def site_crawl(server: MockServer, data: Path, *args: str, langs: tuple[str, ...] = LANGS,
               feeds: bool = True) -> Crawl:
    """`crawl --site-wide` for `langs`, with pages of SITE_PAGE items. Without `feeds`, the
    crawl does not publish: the first publication of thousands of agencies' feeds is the
    feeds' cost, not the walk's, and is tested with fewer agencies."""
    publish = () if feeds else ("-s", "GOVKZ_PUBLISH_FEEDS=0")
    return crawl(server, data, "--site-wide", "-s", f"GOVKZ_PAGE_SIZE={SITE_PAGE}", *publish,
                 *args, agencies=(), langs=langs)


def site_list_requests(site: MockSite, lang: str) -> int:
    """Pages of the site-wide list (the news list without projects=) asked in `lang` by a walk
    (of SITE_PAGE items: a one-item probe of the site, when there is one, is not a page)."""
    return len([e for e in site.log.entries(path=NEWS, method="GET", lang=lang)
                if "projects" not in e.query and e.query.get("size") == str(SITE_PAGE)])


def mock_filing(site: MockSite, lang: str) -> set[tuple[str, int]]:
    """(agency, id) of every item of the mock's own site-wide list in `lang`."""
    return {(story.agency, story.id) for story in site.select(None, lang)}


def archive_filing(data: Path, lang: str) -> set[tuple[str, int]]:
    with archive_at(data) as archive:
        rows = archive.db.query("SELECT agency, id FROM items WHERE lang = ?", [lang])
        return {(row["agency"], row["id"]) for row in rows}


def discovered(data: Path) -> set[str]:
    with archive_at(data) as archive:
        return {row["slug"] for row in archive.agencies() if row["source"] == "discovered"}


def full_walk(server: MockServer, data: Path, **kwargs: object) -> Crawl:
    """A first site-wide walk deep enough to reach the end of the mock's list."""
    pages = math.ceil(len(server.site.select(None, "ru")) / SITE_PAGE) + 1
    return site_crawl(server, data, "--backfill", str(pages), **kwargs)  # type: ignore[arg-type]


def feed_links(data: Path, agency: str, lang: str) -> set[str]:
    feed = feedparser.parse((data / "feeds" / agency / f"{lang}.atom").read_bytes())
    assert not feed.bozo, feed.bozo_exception
    return {entry.link for entry in feed.entries}


def publish_news(site: MockSite, old_agency: str, new_agency: str) -> dict[str, list[int]]:
    """Three items of a known agency and one of an agency gov.kz never showed, all newer than
    anything before; their ids by agency."""
    fresh = [site.publish(old_agency, title={lang: f"{old_agency} {lang} {n}" for lang in LANGS},
                          body="<p>new</p>", created=LATER + timedelta(minutes=n))
             for n in range(3)]
    first = site.publish(new_agency, title={lang: f"Первая {lang}" for lang in LANGS},
                         body="<p>first</p>", created=LATER + timedelta(hours=1))
    return {old_agency: fresh, new_agency: [first]}


# --- 3,000 agencies ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory):
    """The mock with 3,000 synthetic agencies (one item each), walked once site-wide."""
    site = MockSite.synthetic(AGENCIES, 1)
    data = tmp_path_factory.mktemp("site-wide") / "data"
    with serve_in_thread(site) as server:
        first = full_walk(server, data, feeds=False)
        yield server, data, first


def test_the_first_walk_files_every_item_under_its_agency(walked) -> None:
    server, data, first = walked
    site = server.site
    assert first.code == 0, first.output
    assert set(first.targets) == {f"{SITE_WIDE}/{lang}" for lang in LANGS}
    for lang in LANGS:
        expected = mock_filing(site, lang)
        assert len(expected) == AGENCIES
        assert archive_filing(data, lang) == expected
        target = first.target(f"{SITE_WIDE}/{lang}")
        assert (target["found"], target["new"], target["errors"]) == (AGENCIES, AGENCIES, [])
        # 30 full pages, then the empty one that ends the list; no detail request.
        assert site_list_requests(site, lang) == target["pages"] == AGENCIES // SITE_PAGE + 1
    assert list_requests(site, agency="test-agency-001") == 0  # no per-agency walk at all
    assert site.count(path_prefix=NEWS + "/") == 0
    # Every agency the stream named is in the archive now, discovered once in this crawl.
    assert discovered(data) == {a.slug for a in site.agencies()}
    assert sum(t["discovered"] for t in first.targets.values()) == AGENCIES
    with archive_at(data) as archive:
        for lang in LANGS:
            assert archive.monitor.high_water(SITE_WIDE, lang) is not None
        # The site-wide key is a walk, never an agency: no row, no item, no feed of its own.
        assert SITE_WIDE not in {row["slug"] for row in archive.agencies()}
        assert SITE_WIDE not in archive.item_counts()


def test_a_quiet_cycle_costs_one_request_per_language_then_news_and_a_new_agency_arrive(
    walked,
) -> None:
    server, data, _ = walked
    site = server.site
    site.reset_log()
    quiet = site_crawl(server, data, feeds=False)
    assert quiet.code == 0, quiet.output
    for lang in LANGS:
        assert site_list_requests(site, lang) == 1
    assert list_requests(site) == len(LANGS)  # nothing else: no probe, no per-agency list
    assert site.count(path_prefix=NEWS + "/") == 0  # no detail either
    totals = quiet.summary["totals"]
    assert (totals["new"], totals["updated"], totals["errors"]) == (0, 0, 0)

    fresh = publish_news(site, "test-agency-042", "zz-new-committee")
    count = sum(len(ids) for ids in fresh.values())
    site.reset_log()
    news = site_crawl(server, data, feeds=False)
    assert news.code == 0, news.output
    for lang in LANGS:
        assert site_list_requests(site, lang) <= math.ceil(count / SITE_PAGE) + 1
        assert news.target(f"{SITE_WIDE}/{lang}")["new"] == count
        assert archive_filing(data, lang) == mock_filing(site, lang)
    assert "zz-new-committee" in discovered(data)
    assert len(discovered(data)) == AGENCIES + 1
    assert sum(t["discovered"] for t in news.targets.values()) == 1


def test_new_items_and_a_new_agency_reach_their_feeds_after_the_next_cycle(
    tmp_path: Path,
) -> None:
    site = MockSite.synthetic(60, 2)
    with serve_in_thread(site) as server:
        assert full_walk(server, tmp_path).code == 0
        fresh = publish_news(site, "test-agency-042", "zz-new-committee")
        news = site_crawl(server, tmp_path)
    assert news.code == 0, news.output
    for agency, ids in fresh.items():
        for lang in LANGS:
            expected = {f"{server.url}/memleket/entities/{agency}/press/news/details/{i}"
                        f"?lang={lang}" for i in ids}
            assert expected <= feed_links(tmp_path, agency, lang)
    # The site-wide key is no agency: it has no feed.
    assert not (tmp_path / "feeds" / SITE_WIDE).exists()
    assert not any((tmp_path / "feeds" / f"{SITE_WIDE}{ext}").exists()  # literal names
                   for ext in (".atom", ".rss", ".json"))


# --- shapes of `projects` --------------------------------------------------------------------


@pytest.mark.parametrize("shape", PROJECTS_SHAPES)
def test_every_projects_shape_files_the_items(tmp_path: Path, shape: str) -> None:
    site = MockSite.synthetic(40, 3, projects_shape=shape)
    # One item of two agencies: filed under both.
    shared = site.publish("test-agency-001", title="Совместно", body="<p>b</p>", created=LATER,
                          langs=["ru"], projects=["test-agency-001", "test-agency-002"])
    with serve_in_thread(site) as server:
        first = full_walk(server, tmp_path, langs=("ru",))
    assert first.code == 0, first.output
    expected = mock_filing(site, "ru") | {("test-agency-002", shared)}
    assert archive_filing(tmp_path, "ru") == expected
    assert discovered(tmp_path) == {a.slug for a in site.agencies()}


def test_a_daemon_target_of_the_site_wide_key_walks_the_site_wide_list(tmp_path: Path) -> None:
    site = MockSite.synthetic(5, 2)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "--target", f"{SITE_WIDE}/en", agencies=(), langs=())
    assert result.code == 0, result.output
    assert set(result.targets) == {f"{SITE_WIDE}/en"}
    walk = [e for e in site.log.entries(path=NEWS) if e.query.get("size") == str(PAGE)]
    assert len(walk) == 2 and all("projects" not in e.query for e in walk)  # backfill: 2 pages
    newest = site.select(None, "en")[: 2 * PAGE]
    assert archive_filing(tmp_path, "en") == {(story.agency, story.id) for story in newest}


# --- what cannot be read ----------------------------------------------------------------------


def test_one_unreadable_projects_is_a_reject_and_its_neighbours_are_stored(
    tmp_path: Path,
) -> None:
    site = MockSite()
    good = [site.publish("mod", title=f"Новость {n}", body="<p>b</p>", langs=["ru"],
                         created=LATER + timedelta(minutes=n)) for n in range(3)]
    bad = site.publish("mod", title="Плохая", body="<p>b</p>", langs=["ru"],
                       created=LATER + timedelta(minutes=10), projects=[{"id": 100001}])
    with serve_in_thread(site) as server:
        result = site_crawl(server, tmp_path, langs=("ru",))
    assert result.code == 0, result.output  # a reject costs only itself
    target = result.target(f"{SITE_WIDE}/ru")
    assert (target["new"], target["rejected"]) == (len(good), 1)
    assert archive_filing(tmp_path, "ru") == {("mod", i) for i in good}
    with archive_at(tmp_path) as archive:
        [reject] = archive.rejects()
    assert (reject["agency"], reject["item_id"]) == (SITE_WIDE, bad)
    assert reject["reason"] == "projects[0]: an object without slug or alias (keys: id)"


def test_a_page_where_no_projects_is_readable_is_a_layout_change_with_a_sample(
    tmp_path: Path,
) -> None:
    site = MockSite()
    for n in range(3):
        site.publish("mod", title=f"Новость {n}", body="<p>b</p>", langs=["ru"],
                     created=LATER + timedelta(minutes=n), projects=100001 + n)
    with serve_in_thread(site) as server:
        result = site_crawl(server, tmp_path, langs=("ru",))
    assert result.code == 1, result.output
    target = result.target(f"{SITE_WIDE}/ru")
    assert {p["kind"] for p in target["problems"]} >= {"layout_changed"}
    assert target["new"] == 0
    with archive_at(tmp_path) as archive:
        [sample] = archive.monitor.samples()
        assert archive.monitor.high_water(SITE_WIDE, "ru") is None  # the walk did not complete
    assert sample["agency"] == SITE_WIDE and sample["reason"].startswith(
        "news list: every element rejected, e.g. projects: a number")
    assert b"100001" in sample["body"]


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [("--agency", "mod"), ("--target", "mod/en")])
def test_site_wide_with_agencies_is_a_usage_error(tmp_path: Path, extra: tuple[str, str]) -> None:
    process = run_cli("crawl", "--site-wide", *extra, "--data", str(tmp_path))
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == [
        "govkz-monitor crawl: error: argument --site-wide: it walks every agency at once, so "
        "neither --agency nor --target goes with it"]
