"""`govkz-monitor backfill`: whole histories, resumable from the archive's cursor.

End to end against the mock gov.kz (in a thread of the test process; each backfill a child
process, killed with SIGKILL while the mock holds one of its requests, so nothing here sleeps
to synchronize), plus the pure resume rules of crawler/backfill.py and the progress line.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helpers import run_cli
from crawl_helpers import FAST, NEWS, START, archive_at, killed_at_hang

from crawler.backfill import RESUME_OVERLAP, Cursor, HistoryWalk, fraction_done
from crawler.backfill_command import unexplained
from crawler.items import NewsItem
from crawler.mockgov import Fault, MockServer, MockSite, serve_in_thread
from crawler.problems import ProblemKind
from crawler.progress import SETTING, BackfillProgress, progress_line
from crawler.summary import CrawlSummary, TargetSummary
from crawler.sync import SITE_WIDE
from crawler.timeutil import ALMATY

AGENCIES = ("mod", "mfa", "economy")
SIZE = 5  # GOVKZ_PAGE_SIZE of FAST: a few hundred items make dozens of pages
MIDNIGHT = datetime(2026, 3, 22, tzinfo=ALMATY)  # created_date T00:00:00: a migrated item


def args_for(page_size: int) -> tuple[str, ...]:
    """FAST (no delay, no AutoThrottle, the mock's dialect stated) at another page size."""
    fast = list(FAST)
    fast[fast.index(f"GOVKZ_PAGE_SIZE={SIZE}")] = f"GOVKZ_PAGE_SIZE={page_size}"
    return tuple(fast)


def history_site(per_agency: int = 70) -> MockSite:
    """Several agencies publishing in turns, hourly, in English; one run of items sharing a
    midnight (as gov.kz's migrated items do), so pages hold ties of created_date."""
    site = MockSite()
    for n in range(per_agency):
        for k, agency in enumerate(AGENCIES):
            when = MIDNIGHT if n < 8 else START + timedelta(hours=n, minutes=k)
            site.publish(agency, title={"en": f"{agency} news {n}"},
                         body={"en": f"<p>{agency} body {n}</p>"}, created=when)
    return site


def publish_new(site: MockSite, count: int, tag: str) -> None:
    """`count` items newer than everything so far: they push every page down."""
    top = max(s["created_date"] for s in site.items(None, "en"))
    newest = datetime.fromisoformat(top)
    for n in range(count):
        agency = AGENCIES[n % len(AGENCIES)]
        site.publish(agency, title={"en": f"{agency} {tag} {n}"}, body={"en": f"<p>{tag}</p>"},
                     created=newest + timedelta(minutes=n + 1))


def mock_items(site: MockSite, since: datetime | None = None) -> set[tuple[str, int]]:
    return {(site.agency_of(s["id"]) or "", s["id"]) for s in site.items(None, "en")
            if since is None or datetime.fromisoformat(s["created_date"]) > since}


def archived(data: Path) -> set[tuple[str, int]]:
    """(agency, id) of every stored English item, each checked to be stored once."""
    with archive_at(data) as archive:
        rows = list(archive.db.query("SELECT agency, id, version FROM items WHERE lang = 'en'"))
        versions = list(archive.db.query(
            "SELECT agency, id, COUNT(*) AS n FROM item_versions GROUP BY agency, id, lang "
            "HAVING n > 1"))
    assert versions == [] and all(r["version"] == 1 for r in rows)
    return {(r["agency"], r["id"]) for r in rows}


def cursors(data: Path) -> dict[str, Cursor]:
    with archive_at(data) as archive:
        return {f"{r['agency']}/{r['lang']}": Cursor.from_row(r)
                for r in archive.monitor.backfill_cursors()}


def argv(server: MockServer, data: Path, mode: tuple[str, ...], page_size: int,
         *extra: str) -> list[str]:
    return ["backfill", "--base-url", server.url, "--data", str(data), "--lang", "en",
            *args_for(page_size), *mode, *extra]


def backfill(server: MockServer, data: Path, mode: tuple[str, ...], page_size: int = SIZE,
             *extra: str) -> subprocess.CompletedProcess[str]:
    process = run_cli(*argv(server, data, mode, page_size, *extra), timeout=180)
    assert "Traceback" not in process.stderr, process.stderr
    return process


@contextmanager
def killed_backfill(server: MockServer, data: Path, mode: tuple[str, ...], page_size: int,
                    after: int) -> Iterator[subprocess.Popen[str]]:
    """A backfill whose list request number `after` + 1 the mock holds: once it is held, the
    block runs, then the backfill is SIGKILLed and the hang ends."""
    server.site.faults.add(Fault("hang", seconds=30, after=after, path=NEWS))
    with killed_at_hang(server.site, argv(server, data, mode, page_size),
                        where="the hang") as process:
        yield process
    # The held request is answered and logged only once the hang ended: settled, the killed
    # run's requests are all in the log before the test counts or changes the site.
    assert server.settle(), "a request of the killed backfill never finished"


def first_page_per_target(site: MockSite, since: int) -> dict[str, int]:
    """The page each list walk asked first after log entry `since`, by its projects filter."""
    first: dict[str, int] = {}
    for entry in site.log.entries(path=NEWS)[since:]:
        first.setdefault(entry.query.get("projects", SITE_WIDE), int(entry.query["page"]))
    return first


def first_pages(site: MockSite, since: int) -> list[int]:
    """The page numbers of the list requests answered after log entry `since`, in order."""
    return [int(e.query["page"]) for e in site.log.entries(path=NEWS)[since:]]


# --- killed three times, resumed, exactly the mock's items ----------------------------------

def withdraw(site: MockSite, data: Path, per_target: int, site_wide: bool) -> set[tuple[str, int]]:
    """Delete from the mock `per_target` items the archive holds (the newest ones of each
    target): the list moves up under the cursor, which a resumed run must notice. The mock
    has no deletion of its own; this takes its stories out under its lock."""
    held = sorted(archived(data) & mock_items(site), key=lambda key: key[1], reverse=True)
    groups = [held] if site_wide else [[k for k in held if k[0] == a] for a in AGENCIES]
    gone = {key for group in groups for key in group[:per_target]}
    with site._lock:
        for agency, item_id in gone:
            site._stories[agency].remove(site._by_id.pop(item_id))
        site._everything = None  # rebuilt on the next site-wide request
    return gone


# flags, page size, the targets' agencies, and per kill: the list requests answered before the
# one held (then killed), the items published before the next run, and the pages of stored
# items deleted (more than a resumed run reads again: RESUME_OVERLAP).
MODES = {
    "site-wide": (("--site-wide",), 10, (SITE_WIDE,), [(4, 30, 0), (6, 0, 4), (5, 7, 0)]),
    "agency": (("--agency", "mod", "--agency", "mfa", "--agency", "economy"), SIZE, AGENCIES,
               [(12, 36, 0), (14, 0, 4), (11, 7, 0)]),
}


@pytest.mark.parametrize("mode", MODES)
def test_killed_three_times_then_complete_with_exactly_the_mocks_items(
    tmp_path: Path, mode: str
) -> None:
    flags, page_size, agencies, kills = MODES[mode]
    site = history_site()
    deleted: set[tuple[str, int]] = set()  # stored before the mock deleted them: kept
    with serve_in_thread(site) as server:
        # Each kill at another point; between the kills items are published at the top (the
        # pages move down) and stored items deleted (they move up).
        for kill, (after, fresh, gone) in enumerate(kills):
            before = len(site.log.entries(path=NEWS))
            with killed_backfill(server, tmp_path, flags, page_size, after):
                pass
            marks = cursors(tmp_path)
            assert marks, "a killed backfill left no cursor"
            assert all(not c.finished_at for c in marks.values())
            if kill:  # a resumed run starts near its cursor, not at the top again
                assert max(first_page_per_target(site, before).values()) > 1
            publish_new(site, fresh, f"fresh{kill}")
            deleted |= withdraw(site, tmp_path, gone * page_size, site_wide=flags[0] != "--agency")
        done = backfill(server, tmp_path, flags, page_size, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        assert deleted and not deleted & mock_items(site)
        assert archived(tmp_path) == mock_items(site) | deleted
        report = json.loads(done.stdout)
        assert {row["target"] for row in report["targets"]} == {f"{a}/en" for a in agencies}
        assert all(row["finished"] for row in report["targets"])
        assert all(c.finished_at and c.oldest is not None for c in cursors(tmp_path).values())
        # Finished: the same command again asks gov.kz nothing.
        before = len(site.log.entries(path=NEWS))
        again = backfill(server, tmp_path, flags, page_size)
        assert again.returncode == 0, again.stderr
        assert len(site.log.entries(path=NEWS)) == before
        assert again.stdout.count("finished already") == len(agencies), again.stdout
        # --restart walks again from the top: nothing new, nothing duplicated.
        restarted = backfill(server, tmp_path, flags, page_size, "--restart", "--json")
        assert restarted.returncode == 0, restarted.stderr
        rows = json.loads(restarted.stdout)["targets"]
        assert sum(row["new"] + row["updated"] for row in rows) == 0
        assert sum(row["unchanged"] for row in rows) >= len(mock_items(site))
    assert archived(tmp_path) == mock_items(site) | deleted


def test_a_page_waiting_for_a_detail_holds_the_cursor_back(tmp_path: Path) -> None:
    """Page 1 comes without bodies; one of its detail requests hangs while the walk goes on:
    until that item is stored no cursor may say page 1 is done, whatever else is."""
    site = history_site(per_agency=10)
    site.faults.add(Fault("rename", rename=("body", "text"), agency="mod"))  # page 1 only
    site.faults.add(Fault("hang", path=NEWS + "/", seconds=30))  # its first detail request
    with serve_in_thread(site) as server:
        with killed_at_hang(site, argv(server, tmp_path, ("--agency", "mod"), SIZE),
                            where="the detail request"):
            assert cursors(tmp_path) == {}  # page 1 is not complete: nothing moved
        done = backfill(server, tmp_path, ("--agency", "mod"))
    assert done.returncode == 0, done.stderr
    assert archived(tmp_path) == {key for key in mock_items(site) if key[0] == "mod"}
    assert cursors(tmp_path)["mod/en"].finished_at


# --- --since --------------------------------------------------------------------------------


def test_since_stops_at_the_date_and_an_older_date_continues(tmp_path: Path) -> None:
    site = MockSite()
    for n in range(60):  # daily, 60 days, two agencies
        for agency in ("mod", "mfa"):
            site.publish(agency, title={"en": f"{agency} day {n}"}, body={"en": "<p>b</p>"},
                         created=START + timedelta(days=n, minutes=agency == "mfa"))
    since = datetime(2026, 6, 10, tzinfo=ALMATY)
    older = datetime(2026, 5, 20, tzinfo=ALMATY)
    with serve_in_thread(site) as server:
        first = backfill(server, tmp_path, ("--site-wide",), SIZE, "--since", "2026-06-10")
        assert first.returncode == 0, first.stderr
        assert archived(tmp_path) == mock_items(site, since)
        cursor = cursors(tmp_path)["*/en"]
        assert cursor.finished_at and cursor.since == since
        assert cursor.oldest is not None and cursor.oldest > since
        assert "(--since 2026-06-10)" in first.stdout
        # The same date again: finished; an older one walks on from the cursor.
        before = len(site.log.entries(path=NEWS))
        assert "finished already" in backfill(server, tmp_path, ("--site-wide",), SIZE,
                                              "--since", "2026-06-10").stdout
        assert len(site.log.entries(path=NEWS)) == before
        deeper = backfill(server, tmp_path, ("--site-wide",), SIZE, "--since", "2026-05-20")
        assert deeper.returncode == 0, deeper.stderr
        asked = first_pages(site, before)
        assert asked[0] > 1 and asked[-1] == 1  # from the cursor on; at the end, the top again
    assert archived(tmp_path) == mock_items(site, older)


# --- the summary without a terminal ---------------------------------------------------------


def test_without_a_terminal_it_ends_with_a_summary_per_target(tmp_path: Path) -> None:
    site = history_site(per_agency=12)
    with serve_in_thread(site) as server:
        result = backfill(server, tmp_path, ("--agency", "mod", "--agency", "mfa"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for agency in ("mod", "mfa"):
        line = next(x for x in lines if x.startswith(f"{agency}/en: "))
        # 12 new; page 1 read again at the end, for items published meanwhile: 5 unchanged.
        assert "finished;" in line and "17 items: 12 new, 0 updated, 5 unchanged, 0 rejected" \
            in line
        assert "back to 2026-03-22 (the first item)" in line  # the shared midnight, 40 days back
    assert lines[-1] == "backfill: 2 of 2 target(s) finished"
    assert "\x1b[" not in result.stderr  # no terminal: no progress bar drawn
    # The per-page lines are at debug level: the progress display sums them up.
    assert " page 1:" not in result.stderr


@pytest.mark.parametrize(("finished", "failed", "exit_ok"), [
    (True, False, True), (False, False, False), (False, True, False)])
def test_a_walk_left_unfinished_fails_even_without_an_error(
    finished: bool, failed: bool, exit_ok: bool
) -> None:
    """An unfinished history is never an exit 0; one already failing gets no second error."""
    summary = CrawlSummary()
    if failed:
        summary.target("mod/en").add(ProblemKind.HTTP_ERROR, "500")
    cursor = Cursor("mod", "en", 3, 5, finished_at=DAY if finished else None)
    unexplained(summary, [("mod", "en")], {("mod", "en"): cursor})
    assert summary.ok is exit_ok
    assert len(summary.target("mod/en").errors) == (not finished)


def test_site_wide_and_agency_do_not_go_together(tmp_path: Path) -> None:
    result = run_cli("backfill", "--data", str(tmp_path), "--site-wide", "--agency", "mod")
    assert result.returncode == 2
    assert "--site-wide" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- the resume rules (pure) ----------------------------------------------------------------


def item(n: int, when: datetime) -> NewsItem:
    return NewsItem("mod", n, "en", f"https://x/{n}", f"t{n}", when, body_html="<p>b</p>")


def page_of(ids: list[int], day: datetime) -> list[NewsItem]:
    return [item(n, day + timedelta(minutes=n)) for n in ids]


DAY = datetime(2026, 1, 1, tzinfo=ALMATY)


def cursor_at(page: int, oldest_id: int, size: int = 5) -> Cursor:
    return Cursor("mod", "en", page, size, oldest=DAY + timedelta(minutes=oldest_id),
                  oldest_id=oldest_id, newest=DAY + timedelta(minutes=1000), newest_id=1000)


@pytest.mark.parametrize(("page", "size", "new_size", "start"), [
    (10, 5, 5, 10 + 1 - RESUME_OVERLAP),
    (1, 5, 5, 1),
    (10, 10, 5, 20 + 1 - RESUME_OVERLAP),  # the page size changed: the position counts
    (10, 5, 100, 1),
])
def test_resume_page(page: int, size: int, new_size: int, start: int) -> None:
    assert cursor_at(page, 1, size).resume_page(new_size) == start


def test_a_list_that_moved_up_is_walked_back_to_the_cursor() -> None:
    walk = HistoryWalk("mod", "en", 5, cursor=cursor_at(10, 500))
    first = walk.start_page
    # Items were deleted: the resumed page holds only items older than the cursor.
    step = walk.listed(first, page_of([400, 399, 398, 397, 396], DAY))
    assert step.next_page == first - 1 and step.marks == []
    step = walk.listed(first - 1, page_of([505, 504, 503, 502, 501], DAY))  # newer: an anchor
    assert step.next_page == first and step.marks[-1].page == first - 1
    step = walk.listed(first, page_of([500, 499, 498, 497, 496], DAY))
    assert step.marks[-1].page == first and step.marks[-1].oldest_id == 496


@pytest.mark.parametrize(("page", "size"), [(1, 5), (2, 5), (4, 2)])
def test_a_cursor_near_the_top_resumes_at_page_1_and_finishes(page: int, size: int) -> None:
    """A run killed within RESUME_OVERLAP pages of the top resumes at page 1, its anchor: its
    pages count from there, not from the cursor, or pages 1.. would wait forever."""
    walk = HistoryWalk("mod", "en", 5, cursor=cursor_at(page, 990, size))
    assert (walk.start_page, walk.anchored) == (1, True)
    first = walk.listed(1, page_of([1000, 999, 998, 997, 996], DAY))
    assert [m.page for m in first.marks] == [1]
    assert [m.page for m in walk.listed(2, page_of([995, 994, 993, 992, 991], DAY)).marks] == [2]
    assert [m.page for m in walk.listed(3, page_of([990, 989], DAY)).marks] == [3]
    assert walk.listed(4, []).next_page == 1  # the end, then the top
    assert walk.listed(1, page_of([1000, 999, 998, 997, 996], DAY)).next_page is None
    final = walk.finish()
    assert final is not None and final.finished and final.page == 3 and final.oldest_id == 989


def test_pages_newer_than_the_cursor_are_passed_through() -> None:
    walk = HistoryWalk("mod", "en", 5, cursor=cursor_at(10, 500))
    step = walk.listed(walk.start_page, page_of([520, 519, 518, 517, 516], DAY))
    assert step.why == "passing items newer than the cursor"
    assert step.marks[-1].oldest_id == 500  # the oldest reached never moves up
    assert walk.listed(step.next_page or 0, []).next_page == 1  # the end, then the top
    assert walk.finish() is None  # not before the top was walked
    assert walk.listed(1, page_of([1001, 1000, 999, 998, 997], DAY)).next_page is None
    final = walk.finish()
    assert final is not None and final.finished


def test_a_page_waits_for_its_details_and_the_cursor_for_its_pages() -> None:
    walk = HistoryWalk("mod", "en", 5)
    one = walk.listed(1, page_of([9, 8, 7, 6, 5], DAY), details=2)
    assert one.marks == []
    two = walk.listed(2, page_of([4, 3, 2, 1, 0], DAY))
    assert two.marks == []  # complete, but page 1 is not yet
    assert walk.detail_done(one.page) == []
    (mark,) = walk.detail_done(one.page)
    assert (mark.page, mark.oldest_id, mark.newest_id) == (2, 0, 9)


def test_at_the_bottom_it_walks_the_top_down_to_where_it_began() -> None:
    walk = HistoryWalk("mod", "en", 5, cursor=cursor_at(10, 500))  # began at id 1000
    start = walk.start_page
    walk.listed(start, page_of([502, 501, 500, 499, 498], DAY))
    bottom = walk.listed(start + 1, [])
    assert (bottom.next_page, bottom.marks) == (1, [])
    assert walk.finish() is None
    top = walk.listed(1, page_of([1012, 1011, 1010, 1009, 1008], DAY))  # all published since
    assert top.next_page == 2
    assert walk.listed(2, page_of([1007, 1006, 1005, 1000, 999], DAY)).next_page is None
    final = walk.finish()
    assert final is not None and final.finished
    assert (final.newest_id, final.oldest_id, final.page) == (1012, 498, start)


def test_a_page_that_repeats_stops_the_walk() -> None:
    walk = HistoryWalk("mod", "en", 5)
    walk.listed(1, page_of([9, 8, 7, 6, 5], DAY))
    step = walk.listed(2, page_of([9, 8, 7, 6, 5], DAY))
    assert step.next_page is None and step.problem and "repeats" in step.problem


def test_ties_at_the_cursor_date_need_the_cursor_item_itself() -> None:
    midnight = DAY
    cursor = Cursor("mod", "en", 4, 5, oldest=midnight, oldest_id=50, newest=DAY, newest_id=99)
    walk = HistoryWalk("mod", "en", 5, cursor=cursor)
    same_date = [item(n, midnight) for n in (44, 43, 42, 41, 40)]
    assert walk.listed(walk.start_page, same_date).next_page == walk.start_page - 1
    with_it = [item(n, midnight) for n in (52, 51, 50, 49, 48)]
    assert walk.listed(walk.start_page - 1, with_it).next_page == walk.start_page


@pytest.mark.parametrize(("total", "since", "expected"), [
    (1000, None, 0.25),  # the site's total
    (None, DAY + timedelta(minutes=600), 0.5),  # dates toward --since
    (None, None, (1000 - 750) / 1000),  # ids toward the first one
])
def test_fraction_done(total: int | None, since: datetime | None, expected: float) -> None:
    newest, oldest = (DAY + timedelta(minutes=1000), 1000), (DAY + timedelta(minutes=800), 750)
    assert fraction_done(250, total=total, newest=newest, oldest=oldest,
                         since=since) == pytest.approx(expected)


def test_progress_line_says_where_how_fast_and_how_long() -> None:
    walk = HistoryWalk("*", "ru", 100, cursor=Cursor(
        SITE_WIDE, "ru", 1270, 100, oldest=datetime(2024, 3, 2, tzinfo=ALMATY),
        oldest_id=1_143_000, newest=datetime(2026, 6, 1, tzinfo=ALMATY), newest_id=1_270_000))
    walk.pages_walked = 600
    counts = TargetSummary("*/ru", found=60_000, new=3_210)
    line = progress_line("*/ru", walk, counts, elapsed=600.0)
    assert line == ("*/ru: page 1,270 of ~12,700 (10.0%), 60,000 items (3,210 new), "
                    "1.00 pages/s, back to 2024-03-02, about 3 h 10 min left")


def test_without_a_terminal_the_extension_logs_a_line_per_target(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The extension as the crawl runs it, its minute's tick called at once (no waiting)."""
    from scrapy.exceptions import NotConfigured
    from scrapy.settings import Settings

    from crawler.summary import summary_for

    walk = HistoryWalk("mod", "en", 5)
    walk.listed(1, page_of([9, 8, 7, 6, 5], DAY))
    crawler = SimpleNamespace(settings=Settings({SETTING: True}), spider=SimpleNamespace(
        walks={"mod/en": SimpleNamespace(history=walk), "mfa/en": SimpleNamespace(history=None)}))
    summary_for(crawler).target("mod/en").found = 5
    progress = BackfillProgress(crawler, tty=False)
    progress.started = time.monotonic() - 100  # as if the crawl had run 100 s
    with caplog.at_level(logging.INFO, logger="crawler.progress"):
        progress.tick()
    # One line per backfill walk. Ids 9..5 of 9..0 walked: 4/9 of the way, ~2 pages in all;
    # 1 page in 100 s, so the one left takes 100 s.
    assert [r.getMessage() for r in caplog.records] == [
        "backfill mod/en: page 1 of ~2 (44.4%), 5 items (0 new), 0.01 pages/s, "
        "back to 2026-01-01, about 1 min 40 s left"]
    with pytest.raises(NotConfigured):  # only `backfill` turns it on
        BackfillProgress.from_crawler(SimpleNamespace(settings=Settings()))
