"""One bad input costs only itself, and every loss is named: end to end against the mock.

A page mixing good and poison elements keeps every good item and names each poison one as a
reject; a crawl killed after it stored items leaves feeds that the next publish brings up to date
and a `crawls` row that reads `killed`.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import feedparser
from test_crawl_faults import start_crawl
from test_crawl_mock import (
    NEWS,
    PAGE,
    START,
    archive_at,
    crawl,
    fill,
    list_requests,
    rows,
)

from crawler.mockgov import Fault, MockSite, serve_in_thread


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
        process = start_crawl(server.url, tmp_path)
        try:
            assert site.faults.await_waiting(1, timeout=60), "the crawl never reached page 2"
            # Page 2 is asked for only after page 1's items went to the pipeline.
            stored = {r["id"] for r in rows(tmp_path, "mod", "en")}
            assert set(fresh[-PAGE:]) <= stored
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        site.faults.clear()
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
        process = start_crawl(server.url, tmp_path)
        try:
            assert site.faults.await_waiting(1, timeout=60)
            assert set(fresh) <= {r["id"] for r in rows(tmp_path, "mod", "en")}
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        site.faults.clear()
        assert not set(fresh) & feed_ids(tmp_path, "mod/en.atom")
        again = crawl(server, tmp_path)
    assert again.code == 0, again.output
    assert again.target("mod/en")["new"] == 0  # nothing new to this crawl ...
    assert set(fresh) <= feed_ids(tmp_path, "mod/en.atom")  # ... yet the feeds caught up
    with archive_at(tmp_path) as archive:
        statuses = [c["status"] for c in archive.crawls()]
    assert statuses[:2] == ["ok", "killed"] and "running" not in statuses
