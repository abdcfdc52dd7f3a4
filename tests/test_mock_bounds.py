"""What a long-running mock keeps stays bounded: the request log, the handshakes, the items the
demo publishes (`run --demo` runs the mock in the daemon's process, for days)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.mockgov.serve import SERVE_LOG_KEPT, build_parser, build_site
from crawler.mockgov.site import IncompleteLog, LoggedRequest, MockSite, RequestLog
from scheduler import demo
from scheduler.demo import DEMO_LOG_KEPT, DemoSite

ROOT = Path(__file__).resolve().parent.parent
NEWS = "/api/v1/public/content-manager/news"


def entry(n: int, status: int = 200) -> LoggedRequest:
    return LoggedRequest("GET", NEWS, {"page": str(n)}, {}, status,
                         datetime(2026, 1, 1, tzinfo=UTC), "mod", "ru")


@pytest.mark.parametrize(("limit", "recorded"), [(1, 5), (3, 3), (3, 10), (100, 250)])
def test_a_bounded_log_keeps_the_newest_entries_and_counts_them_all(limit: int,
                                                                    recorded: int) -> None:
    log = RequestLog(limit=limit)
    for n in range(recorded):
        log.record(entry(n))
    kept = min(limit, recorded)
    assert len(log) == kept
    assert log.total == recorded and log.dropped == recorded - kept
    assert [e.query["page"] for e in log.entries()] == [
        str(n) for n in range(recorded - kept, recorded)]


def test_a_bounded_log_that_dropped_entries_refuses_to_count() -> None:
    log = RequestLog(limit=2)
    for n in range(2):
        log.record(entry(n))
    assert log.count(NEWS) == 2  # nothing dropped yet: the count is exact
    log.record(entry(2))
    with pytest.raises(IncompleteLog, match="dropped 1"):
        log.count(NEWS)
    log.reset()
    assert (log.count(NEWS), log.total, log.dropped) == (0, 0, 0)


def test_the_default_log_keeps_everything() -> None:
    log = MockSite().log
    for n in range(5_000):
        log.record(entry(n, status=200 if n % 2 else 404))
    assert (len(log), log.total, log.dropped) == (5_000, 5_000, 0)
    assert log.count(NEWS, status=404) == 2_500


@pytest.mark.parametrize("limit", [0, -1])
def test_a_log_limit_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RequestLog(limit=limit)


@pytest.mark.parametrize(("kept", "issued"), [(1, 4), (3, 3), (3, 10)])
def test_the_site_forgets_its_oldest_handshakes_beyond_its_limit(kept: int, issued: int) -> None:
    site = MockSite(access="k6v1", grants_kept=kept)
    grants = [site.issue_grant("k6v1") for _ in range(issued)]
    honoured = [site.use_grant("k6v1", grant) for grant in grants]
    assert honoured == [n >= issued - kept for n in range(issued)]


@pytest.mark.parametrize("built_first", [False, True])  # the site-wide list built or not yet
def test_an_unpublished_item_is_gone_in_every_language(built_first: bool) -> None:
    site = MockSite()
    keep = site.publish("mod", title="Keep", body="<p>a</p>")
    gone = site.publish("mod", title="Gone", body="<p>b</p>")
    if built_first:
        site.items(None, "ru")
    site.unpublish(gone)
    for lang in ("ru", "kk", "en"):
        assert [i["id"] for i in site.items("mod", lang)] == [keep]
        assert [i["id"] for i in site.items(None, lang)] == [keep]
        assert site.item(gone, lang) is None
    with pytest.raises(KeyError):
        site.unpublish(gone)


@pytest.fixture
def demo_site() -> DemoSite:
    return DemoSite(ROOT / "seeds", reactor=None)


def test_the_demo_mock_keeps_a_bounded_log(demo_site: DemoSite) -> None:
    assert demo_site.site.log.limit == DEMO_LOG_KEPT


@pytest.mark.parametrize("kept", [1, 4])
def test_the_demo_mock_serves_only_its_newest_published_items(
        demo_site: DemoSite, monkeypatch: pytest.MonkeyPatch, kept: int) -> None:
    monkeypatch.setattr(demo, "DEMO_ITEMS_KEPT", kept)
    site = demo_site.site
    seeded = {lang: {i["id"] for i in site.items(None, lang)} for lang in ("ru", "kk", "en")}
    published = [demo_site.publish_one() for _ in range(kept + 6)]
    newest = published[-kept:]
    assert list(demo_site.published) == newest
    for lang, ids in seeded.items():
        served = {i["id"] for i in site.items(None, lang)}
        assert served - ids == set(newest), "only the newest demo items are still served"
        assert ids <= served, "the seeded items are never taken off"
    assert all(site.item(item_id, "en") is None for item_id in published[:-kept])


def test_the_command_line_mock_keeps_a_bounded_log() -> None:
    assert build_site(build_parser().parse_args([])).log.limit == SERVE_LOG_KEPT
