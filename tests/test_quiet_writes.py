"""A quiet re-crawl writes (almost) nothing: a quiet page's `last_seen` refresh and walk wait in
the pipeline (crawler/quiet_buffer.py) for the next transaction that writes anyway, at the
latest the one that finishes the crawl; a page that changes anything is stored in its own
transaction as before, and takes what waited with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scrapy.settings import Settings
from store_helpers import memory_archive

from crawler.errors import StoreError
from crawler.items import NewsItem, NewsPage, PageMemo, Reject, SyncMark, item_url
from crawler.paths import db_path
from crawler.pipelines import ArchivePipeline, ValidateItemPipeline
from crawler.quiet_buffer import QuietBuffer
from crawler.save_plan import content_hash
from crawler.store import Archive
from crawler.summary import summary_for
from crawler.sync import SITE_WIDE_SOURCE
from crawler.timeutil import ALMATY

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = datetime(2026, 8, 31, 10, 0, tzinfo=ALMATY)
OLD = "2020-01-01T00:00:00+00:00"  # last_seen and walked_at before the re-crawl
TARGETS = [("mod", "ru"), ("mod", "kk"), ("mvd", "ru"), ("mvd", "kk")]


def news(agency: str, lang: str, item_id: int, **over: Any) -> NewsItem:
    fields: dict[str, Any] = {
        "agency": agency, "id": item_id, "lang": lang, "url": item_url(agency, item_id, lang),
        "title": f"{agency} {lang} новость {item_id}",
        "published": PUBLISHED + timedelta(minutes=item_id),
        "body_text": f"Текст {item_id}.", "body_html": f"<p>Текст {item_id}.</p>",
        "categories": ["Новости"], "views": 10, "source": "api",
    }  # fmt: skip
    return NewsItem(**(fields | over))


def walk(agency: str, lang: str, *, ids: range = range(1, 4), mark: bool = True,
         **over: Any) -> NewsPage:
    """The one list page of a target's walk, its SyncMark riding in it."""
    items = [news(agency, lang, item_id, **over) for item_id in ids]
    newest = max((item.published for item in items if item.published), default=None)
    return NewsPage(items=items, marks=[SyncMark(agency, lang, newest)] if mark else [])


class Run:
    """One crawl through the validate and archive pipelines, counting the commits of each
    step on the archive's connection."""

    def __init__(self, data: Path) -> None:
        self.crawler = SimpleNamespace(settings=Settings({"GOVKZ_DATA": str(data)}),
                                       spider=SimpleNamespace(name="govkz", target="site"))
        self.validate = ValidateItemPipeline(self.crawler)
        self.store = ArchivePipeline(self.crawler)
        self.store.open_spider()
        self.commits = 0
        self.store.archive.db.conn.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        self.commits += sql.lstrip().upper().startswith("COMMIT")

    def page(self, page: NewsPage) -> int:
        """The commits storing `page` cost."""
        before = self.commits
        self.store.process_item(self.validate.process_item(page))
        return self.commits - before

    def close(self) -> int:
        before = self.commits
        self.store.close_spider()
        return self.commits - before

    @property
    def summary(self) -> dict[str, Any]:
        return summary_for(self.crawler).to_dict()


def backfill(data: Path, pages: list[NewsPage]) -> None:
    """A first crawl of `pages`, then its bookkeeping made old: what a re-crawl refreshes
    shows as anything but OLD."""
    run = Run(data)
    for page in pages:
        run.page(page)
    run.close()
    with opened(data) as archive, archive.transaction("age the bookkeeping"):
        archive.db.execute("UPDATE items SET last_seen = ?", [OLD])
        archive.db.execute("UPDATE sync_state SET walked_at = ?", [OLD])


class opened:  # noqa: N801 - used as a context manager, like open()
    def __init__(self, data: Path) -> None:
        self.archive = Archive.open(db_path(Settings({"GOVKZ_DATA": str(data)})))

    def __enter__(self) -> Archive:
        return self.archive

    def __exit__(self, *exc: Any) -> None:
        self.archive.close()


def seen(data: Path) -> dict[tuple[str, int, str], str]:
    with opened(data) as archive:
        return {(r["agency"], r["id"], r["lang"]): r["last_seen"]
                for r in archive.db["items"].rows}


def walked(data: Path) -> dict[tuple[str, str], tuple[str, str]]:
    with opened(data) as archive:
        return {(r["agency"], r["lang"]): (r["high_water"], r["walked_at"])
                for r in archive.db["sync_state"].rows}


def contents(data: Path) -> dict[str, Any]:
    """What the archive holds besides its bookkeeping (last_seen, walked_at, the crawl log)."""
    with opened(data) as archive:
        db = archive.db
        items = [{k: v for k, v in row.items() if k != "last_seen"}
                 for row in db["items"].rows_where(order_by="agency, id, lang")]
        return {
            "items": items,
            "versions": list(db["item_versions"].rows_where(order_by="agency, id, lang, version")),
            "marks": [(r["agency"], r["lang"], r["high_water"])
                      for r in db["sync_state"].rows_where(order_by="agency, lang")],
            "feed_marks": list(db["feed_marks"].rows_where(order_by="agency, lang")),
            "agencies": [r["slug"] for r in db["agencies"].rows_where(order_by="slug")],
            "rejects": db["rejects"].count,
        }


# Quiet pages: (the backfill's page, the re-crawl's page) of one target.
QUIET: dict[str, Callable[[str, str], tuple[NewsPage, NewsPage]]] = {
    "unchanged items": lambda a, lang: (walk(a, lang), walk(a, lang)),
    # The spider recognised the page by its bytes (or the items by their hash): keys only.
    "seen keys only": lambda a, lang: (
        walk(a, lang),
        NewsPage(seen=[(a, i, lang) for i in range(1, 4)], marks=walk(a, lang).marks)),
    "an empty list keeps its mark": lambda a, lang: (
        walk(a, lang), NewsPage(marks=[SyncMark(a, lang, None)])),
    "a cut-off copy of a complete item": lambda a, lang: (
        walk(a, lang), replace(walk(a, lang), items=[
            news(a, lang, i, published=None, incomplete=True) for i in range(1, 4)])),
    "site-wide items of known agencies": lambda a, lang: (
        walk(a, lang, source=SITE_WIDE_SOURCE), walk(a, lang, source=SITE_WIDE_SOURCE)),
}


@pytest.mark.parametrize("shape", QUIET.values(), ids=QUIET.keys())
def test_a_quiet_crawl_commits_once_at_its_end_and_refreshes_everything(
    tmp_path: Path, shape: Callable[[str, str], tuple[NewsPage, NewsPage]]
) -> None:
    pairs = [shape(agency, lang) for agency, lang in TARGETS]
    backfill(tmp_path, [first for first, _ in pairs])
    marks_before = {key: mark for key, (mark, _) in walked(tmp_path).items()}
    before = contents(tmp_path)
    run = Run(tmp_path)
    assert [run.page(again) for _, again in pairs] == [0] * len(pairs)
    assert set(seen(tmp_path).values()) == {OLD}  # nothing written yet: it waits
    assert run.close() == 1  # the waiting bookkeeping with the crawl's record
    keys = {key for _, again in pairs for key in [*again.seen, *(i.key for i in again.items)]}
    assert {key for key, stamp in seen(tmp_path).items() if stamp != OLD} == keys
    assert {key: walk_at != OLD for key, (_, walk_at) in walked(tmp_path).items()} == {
        key: True for key in TARGETS}
    assert {key: mark for key, (mark, _) in walked(tmp_path).items()} == marks_before
    assert contents(tmp_path) == before
    with opened(tmp_path) as archive:
        [crawl] = archive.crawls(limit=1)
    assert crawl["status"] == "ok"


def test_the_summary_of_a_quiet_recrawl_is_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = [walk(agency, lang) for agency, lang in TARGETS]
    cut_off = replace(walk("mod", "ru", ids=range(7, 8)), marks=[])
    cut_off.items[0] = news("mod", "ru", 7, published=None, incomplete=True)
    backfill(tmp_path, [*pages, cut_off])
    quiet = Run(tmp_path)
    for page in [*pages, cut_off]:
        assert quiet.page(page) == 0
    quiet.close()
    # Before: every page took the write path (what ArchivePipeline did for every page).
    monkeypatch.setattr(ArchivePipeline, "_quiet", lambda self, page, discover: False)
    written = Run(tmp_path)
    for page in [*pages, cut_off]:
        assert written.page(page) == 1
    written.close()
    assert quiet.summary == written.summary
    target = summary_for(quiet.crawler).target("mod/ru")
    assert (target.found, target.new, target.updated, target.unchanged) == (4, 0, 0, 4)
    assert len(target.incomplete) == 1
    with opened(tmp_path) as archive:
        ours, theirs = archive.crawls(limit=2)[::-1]
    counts = ("found", "new", "updated", "unchanged", "rejected", "incomplete", "status")
    assert {k: ours[k] for k in counts} == {k: theirs[k] for k in counts}


# Pages that are not quiet: (the backfill's page, the re-crawl's page) of one target, and what
# shows the change was stored.
Check = Callable[[Path, Run], bool]
CHANGES: dict[str, tuple[Callable[[str, str], tuple[NewsPage, NewsPage]], Check]] = {
    "an edited item": (lambda a, lang: (walk(a, lang), walk(a, lang, title="Правка")),
                       lambda d, run: run.summary["targets"][-1]["updated"] == 3),
    "a new item": (lambda a, lang: (walk(a, lang), walk(a, lang, ids=range(0, 4))),
                   lambda d, run: run.summary["targets"][-1]["new"] == 1),
    "a reject": (lambda a, lang: (walk(a, lang), replace(walk(a, lang),
                                                         rejects=[Reject(a, lang, "no id")])),
                 lambda d, run: contents(d)["rejects"] == 1),
    "a moved mark": (lambda a, lang: (walk(a, lang), replace(walk(a, lang), marks=[
        SyncMark(a, lang, PUBLISHED + timedelta(days=1))])),
        lambda d, run: walked(d)[TARGETS[2]][0] == "2026-09-01T10:00:00+05:00"),
    "new views": (lambda a, lang: (walk(a, lang), walk(a, lang, views=99)),
                  lambda d, run: {i["views"] for i in contents(d)["items"]} == {10, 99}),
    "an agency to discover": (
        lambda a, lang: (walk(a, lang), walk(a, lang, source=SITE_WIDE_SOURCE)),
        lambda d, run: contents(d)["agencies"] == ["mvd"]),
    "a walk's first mark": (lambda a, lang: (walk(a, lang, mark=False), walk(a, lang)),
                            lambda d, run: TARGETS[2] in walked(d)),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_page_that_writes_takes_the_waiting_bookkeeping_with_it(
    tmp_path: Path,
    change: tuple[Callable[[str, str], tuple[NewsPage, NewsPage]], Check],
) -> None:
    build, stored = change
    first, again = build(*TARGETS[2])
    backfill(tmp_path, [walk(*TARGETS[0]), walk(*TARGETS[1]), first])
    run = Run(tmp_path)
    assert [run.page(walk(*t)) for t in TARGETS[:2]] == [0, 0]
    assert run.page(again) == 1  # the change and what waited, in one transaction
    assert run.store.quiet.empty
    refreshed = {key for key, stamp in seen(tmp_path).items() if stamp != OLD}
    assert {(a, i, lang) for a, lang in TARGETS[:2] for i in range(1, 4)} <= refreshed
    assert all(walked(tmp_path)[t][1] != OLD for t in TARGETS[:2])
    assert stored(tmp_path, run)
    assert run.close() == 1


def test_a_moved_mark_is_written_with_its_page_and_a_waiting_walk_never_undoes_it(
    tmp_path: Path,
) -> None:
    backfill(tmp_path, [walk("mod", "ru")])
    run = Run(tmp_path)
    assert run.page(walk("mod", "ru")) == 0  # the walk waits, its mark as stored
    assert run.page(walk("mod", "ru", ids=range(1, 5))) == 1  # a newer item: the mark moves
    assert walked(tmp_path)[("mod", "ru")][0] == "2026-08-31T10:04:00+05:00"
    assert run.page(walk("mod", "ru", ids=range(1, 5))) == 0  # waits again
    with opened(tmp_path) as other:  # another process moves the mark meanwhile
        other.monitor.set_high_water("mod", "ru", PUBLISHED + timedelta(minutes=9))
    run.close()
    assert walked(tmp_path)[("mod", "ru")][0] == "2026-08-31T10:09:00+05:00"


def memo_of(page: NewsPage, digest: str = "d1") -> PageMemo:
    items = page.items
    return PageMemo(items[0].agency, items[0].lang, digest, newest=page.marks[0].newest,
                    oldest=min(i.published for i in items if i.published), found=len(items),
                    items=tuple((i.agency, i.id, content_hash(i)) for i in items), version=1)


def test_a_quiet_page_s_memo_waits_and_is_kept_at_the_end(tmp_path: Path) -> None:
    backfill(tmp_path, [walk(*t) for t in TARGETS])
    run = Run(tmp_path)
    pages = [replace(walk(*t), memo=memo_of(walk(*t))) for t in TARGETS]
    assert [run.page(page) for page in pages] == [0] * len(TARGETS)
    with opened(tmp_path) as archive:
        assert archive.monitor.page_memos(TARGETS) == {}
    assert run.close() == 1
    with opened(tmp_path) as archive:
        assert archive.monitor.page_memos(TARGETS) == {
            (page.memo.agency, page.memo.lang): page.memo for page in pages if page.memo}


def test_a_memo_to_forget_is_written_at_once(tmp_path: Path) -> None:
    first = replace(walk("mod", "ru"), memo=memo_of(walk("mod", "ru")))
    backfill(tmp_path, [first])
    run = Run(tmp_path)
    assert run.page(replace(walk("mod", "ru"), forget_memo=("mod", "ru"))) == 1
    with opened(tmp_path) as archive:
        assert archive.monitor.page_memos([("mod", "ru")]) == {}
    run.close()


def test_record_walks_moves_only_walked_at_and_never_back(archive: Archive) -> None:
    archive.monitor.set_high_water("mod", "ru", PUBLISHED, now=datetime(2026, 9, 2, tzinfo=ALMATY))
    archive.monitor.record_walks({("mod", "ru"): datetime(2026, 9, 1, tzinfo=ALMATY),
                                  ("mvd", "ru"): datetime(2026, 9, 3, tzinfo=ALMATY)})
    row = archive.db["sync_state"].get(("mod", "ru"))
    assert row["walked_at"] == "2026-09-01T19:00:00+00:00"  # 2026-09-02 in Almaty, kept
    assert archive.monitor.high_water("mod", "ru") == PUBLISHED
    assert archive.db["sync_state"].count == 1  # a walk with no row is no quiet walk
    archive.monitor.record_walks({("mod", "ru"): datetime(2026, 9, 3, tzinfo=ALMATY)})
    assert archive.db["sync_state"].get(("mod", "ru"))["walked_at"] == "2026-09-02T19:00:00+00:00"


@pytest.mark.parametrize(("stored", "newest", "unchanged"), [
    (PUBLISHED, PUBLISHED, True),
    (PUBLISHED, PUBLISHED.astimezone(ALMATY).replace(microsecond=5), True),  # same second
    (PUBLISHED, None, True),  # an empty list keeps the mark
    (PUBLISHED, PUBLISHED + timedelta(seconds=1), False),
    (None, None, False),  # no row yet: the walk's first record is a write
    (None, PUBLISHED, False),
])
def test_mark_unchanged(archive: Archive, stored: datetime | None, newest: datetime | None,
                        unchanged: bool) -> None:
    if stored is not None:
        archive.monitor.set_high_water("mod", "ru", stored)
    assert archive.monitor.mark_unchanged("mod", "ru", newest) is unchanged
    # The same answer from the marks read once for a whole crawl.
    marks = archive.monitor.stored_marks()
    assert archive.monitor.mark_unchanged("mod", "ru", newest, marks) is unchanged


def test_mark_unchanged_reads_a_walk_the_snapshot_lacks(archive: Archive) -> None:
    marks = archive.monitor.stored_marks()
    assert marks == {}
    archive.monitor.set_high_water("mod", "ru", PUBLISHED)  # written after the snapshot
    assert archive.monitor.mark_unchanged("mod", "ru", PUBLISHED, marks)
    assert not archive.monitor.mark_unchanged("mod", "ru", PUBLISHED + timedelta(1), marks)


def test_a_stale_snapshot_never_puts_an_older_mark_back(archive: Archive) -> None:
    """A crawl read the marks; another process moved one on; this crawl's page ends where the
    old mark was. Judged unchanged from the snapshot, the page writes no mark, and the newer
    one stays."""
    archive.monitor.set_high_water("mod", "ru", PUBLISHED)
    marks = archive.monitor.stored_marks()
    later = PUBLISHED + timedelta(hours=1)
    archive.monitor.set_high_water("mod", "ru", later)  # the other process
    assert archive.monitor.mark_unchanged("mod", "ru", PUBLISHED, marks)  # so no write


@pytest.mark.parametrize(("again", "quiet"), [
    ([news("mod", "ru", 1), news("mod", "ru", 2)], True),
    ([news("mod", "ru", 1), news("mod", "ru", 1)], True),  # a key twice, both unchanged
    ([news("mod", "ru", 1, published=None, incomplete=True)], True),  # never a downgrade
    ([news("mod", "ru", 1, title="Правка")], False),
    ([news("mod", "ru", 1, views=11)], False),
    ([news("mod", "ru", 1, categories=["Новости", "Спорт"])], False),
    ([news("mod", "ru", 3)], False),
    ([], True),
])
def test_page_is_quiet(archive: Archive, again: list[NewsItem], quiet: bool) -> None:
    archive.save_items([news("mod", "ru", 1), news("mod", "ru", 2)])
    assert archive.page_is_quiet(again) is quiet


@pytest.mark.parametrize(("agencies", "quiet"), [([], True), (["mod"], True),
                                                  (["mod", "new-one"], False)])
def test_page_is_quiet_only_when_every_agency_is_stored(agencies: list[str],
                                                        quiet: bool) -> None:
    with memory_archive() as archive:
        archive.discover_agency("mod")
        assert archive.page_is_quiet([], agencies=agencies) is quiet


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("bound", ["keys", "age"])
def test_the_bound_writes_what_waits_on_its_own(tmp_path: Path, bound: str) -> None:
    backfill(tmp_path, [walk(*t) for t in TARGETS])
    run = Run(tmp_path)
    clock = FakeClock()
    run.store.quiet = (QuietBuffer(max_keys=5) if bound == "keys"
                       else QuietBuffer(max_age=60, clock=clock))
    assert run.page(walk(*TARGETS[0])) == 0
    clock.now = 60
    assert run.page(walk(*TARGETS[1])) == 1  # 6 keys, or a minute old: written
    assert run.store.quiet.empty
    refreshed = {key for key, stamp in seen(tmp_path).items() if stamp != OLD}
    assert refreshed == {(a, i, lang) for a, lang in TARGETS[:2] for i in range(1, 4)}
    assert run.page(walk(*TARGETS[2])) == 0  # the buffer starts again
    assert run.close() == 1


def quiet_then_killed(data: str) -> None:
    """In a child process: a quiet re-crawl of two targets, then SIGKILL."""
    run = Run(Path(data))
    for target in TARGETS[:2]:
        run.page(walk(*target))
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("death", ["abandoned", "sigkill"])
def test_a_killed_quiet_crawl_leaves_the_archive_as_it_was_and_the_next_refreshes_it(
    tmp_path: Path, death: str
) -> None:
    backfill(tmp_path, [walk(*t) for t in TARGETS])
    before = contents(tmp_path)
    if death == "sigkill":
        child = subprocess.run(
            [sys.executable, "-c", "import sys, test_quiet_writes as t; t.quiet_then_killed("
             "sys.argv[1])", str(tmp_path)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])},
            capture_output=True, text=True, timeout=120)
        assert child.returncode == -signal.SIGKILL, child.stderr
    else:  # the process dies before close_spider: what it committed is all that is left
        run = Run(tmp_path)
        for target in TARGETS[:2]:
            run.page(walk(*target))
        run.store.archive.close()
    assert contents(tmp_path) == before
    assert set(seen(tmp_path).values()) == {OLD}  # lagging, not wrong
    with opened(tmp_path) as archive:
        assert archive.crawls(limit=1)[0]["status"] in {"running", "killed"}
    again = Run(tmp_path)
    for target in TARGETS:
        again.page(walk(*target))
    again.close()
    assert OLD not in set(seen(tmp_path).values())
    assert contents(tmp_path) == before


def test_a_bookkeeping_write_that_fails_never_costs_the_crawl_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backfill(tmp_path, [walk(*t) for t in TARGETS])
    run = Run(tmp_path)
    for target in TARGETS:
        run.page(walk(*target))

    def full(*args: Any, **kwargs: Any) -> None:
        raise StoreError("cannot record 12 items as seen: database or disk is full")

    monkeypatch.setattr(run.store.archive, "touch", full)
    run.close()
    with opened(tmp_path) as archive:
        [crawl] = archive.crawls(limit=1)
    assert (crawl["status"], crawl["found"], crawl["unchanged"]) == ("ok", 12, 12)
    assert set(seen(tmp_path).values()) == {OLD}  # the refresh lags to the next crawl
