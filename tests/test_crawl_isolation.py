"""One bad input costs only itself, and every loss is named: end to end against the mock.

A page mixing good and poison elements keeps every good item and names each poison one as a
reject; a crawl killed after it stored items leaves feeds that the next publish brings up to date
and a `crawls` row that reads `killed`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import feedparser
from crawl_helpers import (
    NEWS,
    PAGE,
    START,
    archive_at,
    crawl,
    fill,
    killed_while_hung,
    list_requests,
    rows,
)

from crawler.mockgov import Fault, MockSite, serve_in_thread
from crawler.mockgov.faults import RSS_PATH


def feed_ids(data: Path, rel: str) -> set[int]:
    parsed = feedparser.parse((data / "feeds" / rel).read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    return {int(e.id.split("/details/")[1].split("?")[0]) for e in parsed.entries}


def test_a_killed_crawl_reaches_the_feeds_at_the_next_publish(tmp_path: Path) -> None:
    """SIGKILL after new items were stored: the next (quiet) crawl finds them unchanged, yet
    the feeds show them, because publishing follows the archive, not the crawl."""
    site = MockSite(access="k6v1")
    fill(site, "mod", PAGE)
    with serve_in_thread(site) as server:
        assert crawl(server, tmp_path).code == 0
        fresh = fill(site, "mod", 2 * PAGE, start=START + timedelta(days=2))
        site.faults.add(Fault("hang", seconds=30, agency="mod", path=NEWS, after=1))  # page 2
        with killed_while_hung(site, server.url, tmp_path, where="page 2"):
            # Page 2 is asked for only after page 1's items went to the pipeline.
            stored = {r["id"] for r in rows(tmp_path, "mod", "en")}
            assert set(fresh[-PAGE:]) <= stored
        assert max(fresh) not in feed_ids(tmp_path, "mod/en.atom")  # the killed crawl's lag
        with archive_at(tmp_path) as archive:  # opening the archive notices the dead process
            killed = archive.crawls(limit=1)[0]
        assert killed["status"] == "killed", killed
        assert [p.kind for p in killed["problems"]] == ["crashed"]
        again = crawl(server, tmp_path)  # walks on to the old mark, then publishes
        assert again.code == 0, again.output
        assert max(fresh) in feed_ids(tmp_path, "mod/en.atom")
        before = list_requests(site, "mod", "en")
        quiet = crawl(server, tmp_path)
        assert quiet.code == 0 and quiet.target("mod/en")["new"] == 0
        assert list_requests(site, "mod", "en") - before == 1
    assert set(fresh) <= feed_ids(tmp_path, "mod/en.atom")


def test_a_crawl_killed_before_publishing_is_repaired_by_a_quiet_crawl(tmp_path: Path) -> None:
    """The same, when every new item was stored before the kill: the next crawl is quiet (one
    list request, nothing new) and still writes the feeds the killed one never wrote."""
    site = MockSite(access="k6v1")
    fill(site, "mod", PAGE)
    with serve_in_thread(site) as server:
        assert crawl(server, tmp_path).code == 0
        fresh = fill(site, "mod", 2, start=START + timedelta(days=2))
        # The killed crawl stores the two new items of page 1, then hangs on page 2, which the
        # walk asks for because page 1 was not all known.
        site.faults.add(Fault("hang", seconds=30, agency="mod", path=NEWS, after=1))
        with killed_while_hung(site, server.url, tmp_path, where="page 2"):
            assert set(fresh) <= {r["id"] for r in rows(tmp_path, "mod", "en")}
        assert not set(fresh) & feed_ids(tmp_path, "mod/en.atom")
        again = crawl(server, tmp_path)
    assert again.code == 0, again.output
    assert again.target("mod/en")["new"] == 0  # nothing new to this crawl ...
    assert set(fresh) <= feed_ids(tmp_path, "mod/en.atom")  # ... yet the feeds caught up
    with archive_at(tmp_path) as archive:
        statuses = [c["status"] for c in archive.crawls()]
    assert statuses[:2] == ["ok", "killed"] and "running" not in statuses


POISON = ("number", "no_id", "bad_id", "control_char", "lone_surrogate", "far_date", "duplicate")


def test_a_page_of_good_and_poison_elements_keeps_every_good_item(tmp_path: Path) -> None:
    site = MockSite(access="k6v1")
    good = fill(site, "mod", PAGE)
    other = fill(site, "mfa", 3)
    poison = site.faults.add(Fault("poison", agency="mod", lang="en", poison=POISON, times=1))
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, agencies=("mod", "mfa"))
        injected = dict(poison.injected)
        assert result.code == 0, result.output  # rejects cost only themselves
        target = result.target("mod/en")
        # Every good item, plus the poison items that are news after cleaning (the control
        # character and the lone surrogate are cleaned away; the far date is a reject).
        cleaned = {injected["control_char"], injected["lone_surrogate"]}
        assert {r["id"] for r in rows(tmp_path, "mod", "en")} == set(good) | cleaned
        assert {r["id"] for r in rows(tmp_path, "mfa", "en")} == set(other)
        assert target["rejected"] == 4, target  # number, no_id, bad_id, far_date
        assert result.target("mfa/en")["problems"] == []
        with archive_at(tmp_path) as archive:
            rejects = {r["reason"]: r for r in archive.rejects("mod")}
            crawl_row = archive.crawls(limit=1)[0]
            stored = {r["id"]: r for r in rows(tmp_path, "mod", "en")}
        assert set(rejects) == {"a number, not an object", "no id", "bad id 'abc'",
                                "date out of range"}, rejects
        assert rejects["date out of range"]["item_id"] == injected["far_date"]
        assert rejects["bad id 'abc'"]["raw"].startswith("{") and rejects["no id"]["url"]
        assert (crawl_row["status"], crawl_row["rejected"]) == ("partial", 4)
        assert {p.kind for p in crawl_row["problems"]} == {"rejected"}
        # The text boundary: nothing of the poison reaches the archive or the feeds.
        assert "\x07" not in stored[injected["control_char"]]["body_text"]
        assert "\ufffd" in stored[injected["lone_surrogate"]]["title"]
        assert all(r["version"] == 1 for r in stored.values())  # the duplicate is no edit
        assert feed_ids(tmp_path, "mod/en.atom") == set(good) | cleaned
        feedparser_ok = feedparser.parse((tmp_path / "feeds" / "mod/en.rss").read_bytes())
        assert not feedparser_ok.bozo
        # The walk and its mark went on: the quiet re-crawl is one list request.
        before = list_requests(site, "mod", "en")
        quiet = crawl(server, tmp_path, agencies=("mod",))
        assert quiet.code == 0 and quiet.target("mod/en")["new"] == 0, quiet.output
        assert list_requests(site, "mod", "en") - before == 1


def test_the_official_rss_with_an_invalid_character_loses_only_that_character(
    tmp_path: Path,
) -> None:
    site = MockSite(access="k6v1")
    ids = fill(site, "mod", 6)
    site.faults.add(Fault("poison", path=RSS_PATH, agency="mod", poison=("rss_bad_char",)))
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "-s", "GOVKZ_ACCESS=token,plain,rss")
    assert result.code == 0, result.output
    got = {r["id"]: r for r in rows(tmp_path, "mod", "en")}
    assert set(got) == set(ids)
    bad = [r for r in got.values() if r["title"].startswith("Bad")]
    assert len(bad) == 1 and "\x0b" not in bad[0]["title"]
    assert feed_ids(tmp_path, "mod/en.atom") == set(ids)


def test_publishing_renders_only_what_is_behind_the_archive(tmp_path: Path) -> None:
    from crawler.pipelines import publish
    from crawler.runner import project_settings

    site = MockSite(access="k6v1")
    fill(site, "mod", 2)
    with serve_in_thread(site) as server:
        assert crawl(server, tmp_path).code == 0
    # In the crawl's languages (--lang en): other languages' feeds would be missing, not behind.
    settings = project_settings({"GOVKZ_DATA": str(tmp_path), "GOVKZ_LANGS": "en"})
    assert publish(settings).feeds == 0  # the crawl published; nothing is behind
    with archive_at(tmp_path) as archive:
        assert archive.feeds_behind() == {}
    assert publish(settings, full=True).feeds > 0  # --all still renders every feed
