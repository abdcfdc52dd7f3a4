"""The archive's newer bookkeeping: rejects kept with their raw text, the per-feed change marks
that say which feeds are behind, and crawls whose process is gone marked `killed`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from crawler import store as store_module
from crawler.errors import StoreError
from crawler.items import RAW_LIMIT, NewsItem, Reject, item_url
from crawler.liveness import is_running, start_time
from crawler.problems import Problem, ProblemKind
from crawler.sanitize import clean_text
from crawler.store import Archive, SaveResult
from crawler.timeutil import ALMATY

T0 = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
PUBLISHED = datetime(2026, 8, 31, 10, 30, tzinfo=ALMATY)


def iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def reject(**over: Any) -> Reject:
    fields: dict[str, Any] = {
        "agency": "mod", "lang": "ru", "reason": "bad id 'abc'",
        "raw": '{"id": "abc", "title": "Совещание"}', "url": "https://x.test/api?page=1",
        "item_id": None,
    }  # fmt: skip
    return Reject(**(fields | over))


def make_item(**over: Any) -> NewsItem:
    fields: dict[str, Any] = {
        "agency": "mod", "id": 1001, "lang": "ru", "title": "Министр провёл совещание",
        "published": PUBLISHED, "body_text": "Текст", "body_html": "<p>Текст</p>",
    }  # fmt: skip
    fields |= over
    fields.setdefault("url", item_url(fields["agency"], fields["id"], fields["lang"]))
    return NewsItem(**fields)


# --- rejects --------------------------------------------------------------------------------


def test_a_reject_is_kept_once_and_counted_when_seen_again(archive: Archive) -> None:
    first_crawl = archive.begin_crawl("crawl", "mod/ru", now=T0)
    assert archive.save_reject(reject(), crawl_id=first_crawl, now=T0) is True
    [row] = archive.rejects()
    key = row.pop("key")
    assert len(key) == 64
    assert row == {
        "agency": "mod", "lang": "ru", "item_id": None, "reason": "bad id 'abc'",
        "url": "https://x.test/api?page=1", "raw": '{"id": "abc", "title": "Совещание"}',
        "crawl_id": first_crawl, "first_seen": iso(T0), "last_seen": iso(T0), "times": 1,
    }  # fmt: skip

    second_crawl = archive.begin_crawl("crawl", "mod/ru", now=T1)
    again = reject(url="https://x.test/api?page=2")  # the same element, on another page
    assert archive.save_reject(again, crawl_id=second_crawl, now=T1) is False
    assert archive.save_reject(again, crawl_id=second_crawl, now=T2) is False

    [row] = archive.rejects()
    assert row["key"] == key
    assert (row["times"], row["first_seen"], row["last_seen"]) == (3, iso(T0), iso(T2))
    assert (row["crawl_id"], row["url"]) == (second_crawl, "https://x.test/api?page=2")


@pytest.mark.parametrize(
    "other",
    [
        {"agency": "mvd"},
        {"lang": "kk"},
        {"reason": "no id"},
        {"raw": '{"id": "abd", "title": "Совещание"}'},
        {"raw": ""},
    ],
)
def test_a_different_element_is_another_reject(archive: Archive, other: dict[str, Any]) -> None:
    assert archive.save_reject(reject(), now=T0) is True
    assert archive.save_reject(reject(**other), now=T1) is True
    assert sorted(row["times"] for row in archive.rejects()) == [1, 1]


@pytest.mark.parametrize(
    "same", [{"url": "https://x.test/other"}, {"item_id": 77}, {"reason": "bad id\n  'abc'"}]
)
def test_where_it_came_from_does_not_make_another_reject(
    archive: Archive, same: dict[str, Any]
) -> None:
    assert archive.save_reject(reject(), now=T0) is True
    assert archive.save_reject(reject(**same), now=T1) is False
    assert [row["times"] for row in archive.rejects()] == [2]


@pytest.mark.parametrize(
    ("raw", "length"),
    [
        ("x" * RAW_LIMIT, RAW_LIMIT),
        ("x" * (RAW_LIMIT + 1), RAW_LIMIT),
        ("ж" * (RAW_LIMIT * 2), RAW_LIMIT),  # the cap counts characters, not UTF-8 bytes
        ("\U0001f600" * (RAW_LIMIT + 5), RAW_LIMIT),
        ("\x00" * 10 + "y" * (RAW_LIMIT + 10), RAW_LIMIT),  # cleaned first, then cut
    ],
)
def test_the_raw_text_is_capped(archive: Archive, raw: str, length: int) -> None:
    r = reject(raw=raw)
    assert len(r.raw) == length and r.raw == clean_text(raw)[:RAW_LIMIT]
    archive.save_reject(r, now=T0)
    [row] = archive.rejects()
    assert row["raw"] == r.raw


PIECE = RAW_LIMIT // 4  # NFC may lengthen a piece: keep it well under the cap


def every_code_point() -> Iterator[str]:
    """Every code point, U+0000 to U+10FFFF (surrogates too), in PIECE-long runs."""
    for start in range(0, sys.maxunicode + 1, PIECE):
        yield "".join(map(chr, range(start, min(start + PIECE, sys.maxunicode + 1))))


def test_a_raw_text_with_any_code_point_is_stored_and_read_back(archive: Archive) -> None:
    pieces = list(every_code_point())
    assert len(pieces) == 68
    saved = [reject(raw=piece, reason=f"piece {n}") for n, piece in enumerate(pieces)]
    for r, piece in zip(saved, pieces, strict=True):
        assert r.raw == clean_text(piece)  # lone surrogates are U+FFFD, controls are gone
        assert len(r.raw) < RAW_LIMIT
        assert archive.save_reject(r, now=T0) is True
    rows = {row["reason"]: row for row in archive.rejects(limit=len(pieces))}
    read_back: set[str] = set()
    for r in saved:
        row = rows[r.reason]
        assert row["raw"] == r.raw
        # SQLite holds valid UTF-8 of exactly this text, not a lossy or truncated copy.
        stored = archive.db.execute(
            "SELECT length(raw), CAST(raw AS BLOB) FROM rejects WHERE key = ?", [row["key"]]
        ).fetchone()
        assert stored == (len(r.raw), r.raw.encode())
        read_back |= set(row["raw"])
    kept = {"\t", "\n", " ", "ж", "\u202e", "\ufffc", "\ufffd", "\U0001f600", "\U0010ffff"}
    assert kept <= read_back
    assert not {chr(c) for c in [0, 0x1F, 0x7F, 0x9F, 0xD800, 0xDFFF, 0xFFFE]} & read_back


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (
            "emoji \U0001f600 and the last one \U0010ffff",
            "emoji \U0001f600 and the last one \U0010ffff",
        ),
        ("Қазақстан — ٱلْعَرَبِيَّة — עִברִית", "Қазақстан — ٱلْعَرَبِيَّة — עִברִית"),
        ("bidi \u202e stays in raw text", "bidi \u202e stays in raw text"),
        ("nul\x00 bell\x07 del\x7f c1\x85", "nul bell del c1"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("e\u0301", "\u00e9"),  # NFC
        ("a\r\nb\rc", "a\nb\nc"),
        ("\ufffe\uffff", ""),
    ],
)
def test_raw_text_goes_through_the_text_boundary(archive: Archive, raw: str, stored: str) -> None:
    assert archive.save_reject(reject(raw=raw), now=T0) is True
    assert archive.rejects()[0]["raw"] == stored


def test_rejects_are_listed_newest_first_per_agency(archive: Archive) -> None:
    archive.save_reject(reject(reason="a"), now=T0)
    archive.save_reject(reject(reason="b"), now=T1)
    archive.save_reject(reject(reason="c", agency="mvd"), now=T2)
    archive.save_reject(reject(reason="a"), now=T2 + timedelta(minutes=1))  # seen again
    assert [r["reason"] for r in archive.rejects()] == ["a", "c", "b"]
    assert [r["reason"] for r in archive.rejects(agency="mod")] == ["a", "b"]
    assert [r["reason"] for r in archive.rejects(agency="mod", limit=1)] == ["a"]
    assert archive.rejects(agency="nobody") == []


def test_a_reject_that_cannot_be_written_is_a_store_error(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path / "news.db")
    blocker = sqlite3.connect(tmp_path / "news.db")
    blocker.execute("BEGIN IMMEDIATE")
    archive.db.execute("PRAGMA busy_timeout = 0")
    try:
        with pytest.raises(StoreError, match="mod/ru.*locked"):
            archive.save_reject(reject(), now=T0)
    finally:
        blocker.rollback()
        blocker.close()
    assert archive.save_reject(reject(), now=T0) is True
    archive.close()


# --- feed marks -----------------------------------------------------------------------------


def test_a_new_item_puts_its_feed_behind_until_published(archive: Archive) -> None:
    assert archive.feeds_behind() == {}
    archive.save_item(make_item(), now=T0)
    behind = archive.feeds_behind()
    assert behind == {("mod", "ru"): 1}

    archive.feeds_published(behind)
    assert archive.feeds_behind() == {}

    assert archive.save_item(make_item(), now=T1) is SaveResult.UNCHANGED
    assert archive.feeds_behind() == {}


@pytest.mark.parametrize(
    ("first", "second", "result", "behind"),
    [
        ({}, {}, SaveResult.UNCHANGED, False),
        ({}, {"views": 99, "categories": ["Новое"]}, SaveResult.UNCHANGED, False),
        ({}, {"title": "Правка заголовка"}, SaveResult.UPDATED, True),
        ({}, {"body_html": "<p>Текст</p><p>Фото</p>"}, SaveResult.UPDATED, True),
        ({"published": None, "incomplete": True}, {}, SaveResult.UPDATED, True),
        ({}, {"published": None, "incomplete": True, "body_text": "Те"}, SaveResult.UNCHANGED,
         False),
    ],
)  # fmt: skip
def test_only_a_stored_change_puts_a_feed_behind(
    archive: Archive, first: dict, second: dict, result: SaveResult, behind: bool
) -> None:
    archive.save_item(make_item(**first), now=T0)
    archive.feeds_published(archive.feeds_behind())
    assert archive.save_item(make_item(**second), now=T1) is result
    assert archive.feeds_behind() == ({("mod", "ru"): 2} if behind else {})


def test_a_change_stored_while_the_feeds_were_written_keeps_its_feed_behind(
    archive: Archive,
) -> None:
    archive.save_item(make_item(id=1), now=T0)
    marks = archive.feeds_behind()  # the publisher reads the marks, then writes the feeds...
    archive.save_item(make_item(id=2), now=T1)  # ...while a crawl stores another item
    archive.feeds_published(marks)
    assert archive.feeds_behind() == {("mod", "ru"): 2}

    archive.feeds_published(archive.feeds_behind())
    assert archive.feeds_behind() == {}
    archive.feeds_published(marks)  # a late, older publish never moves the mark back
    assert archive.feeds_behind() == {}


def test_feed_marks_are_per_agency_and_language(archive: Archive) -> None:
    archive.save_item(make_item(), now=T0)
    archive.save_item(make_item(lang="kk"), now=T0)
    archive.save_item(make_item(agency="mvd"), now=T0)
    archive.save_item(make_item(title="Правка"), now=T1)
    assert archive.feeds_behind() == {("mod", "ru"): 2, ("mod", "kk"): 1, ("mvd", "ru"): 1}

    archive.feeds_published({("mod", "kk"): 1, ("nobody", "en"): 5})
    assert archive.feeds_behind() == {("mod", "ru"): 2, ("mvd", "ru"): 1}
    assert archive.db["feed_marks"].count == 3  # an unknown group is not created


# A save that fails moves no mark: test_store.py, test_a_crash_mid_save_leaves_nothing_half_written.


def test_a_killed_crawls_items_still_reach_the_feeds(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    crawl = Archive.open(path)
    crawl.begin_crawl("crawl", "mod/ru", pid=exited_pid())
    crawl.save_item(make_item(), now=T0)
    crawl.close()  # never finished: the process was killed

    publisher = Archive.open(path)
    assert publisher.crawls()[0]["status"] == "killed"
    assert publisher.feeds_behind() == {("mod", "ru"): 1}
    publisher.close()


# --- crawls whose process is gone -----------------------------------------------------------


def exited_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def zombie() -> Iterator[int]:
    """The pid of a process that has exited but that its parent has not reaped yet."""
    if not hasattr(os, "waitid"):
        pytest.skip("os.waitid is needed to wait for an exit without reaping")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    yield proc.pid
    proc.wait()


def needs_start_times() -> None:
    if start_time(os.getpid()) is None:
        pytest.skip("no process start times here (/proc/PID/stat)")


Start = Callable[[Archive], int]


def by_an_exited_process(archive: Archive) -> int:
    return archive.begin_crawl("crawl", "mod/ru", pid=exited_pid())


def by_a_reused_pid(archive: Archive) -> int:
    needs_start_times()
    crawl = archive.begin_crawl("crawl", "mod/ru")  # this pid, but another process's start
    token = start_time(os.getpid())
    archive.db.execute("UPDATE crawls SET pid_started = ? WHERE id = ?", [f"{token}0", crawl])
    return crawl


def by_an_unknown_process(archive: Archive) -> int:
    crawl = archive.begin_crawl("crawl", "mod/ru")  # a row from before pids were recorded
    archive.db.execute("UPDATE crawls SET pid = NULL, pid_started = NULL WHERE id = ?", [crawl])
    return crawl


def by_this_process(archive: Archive) -> int:
    return archive.begin_crawl("crawl", "mod/ru")


def by_this_process_without_a_start_time(archive: Archive) -> int:
    crawl = archive.begin_crawl("crawl", "mod/ru")  # where /proc is not there to read
    archive.db.execute("UPDATE crawls SET pid_started = NULL WHERE id = ?", [crawl])
    return crawl


@pytest.mark.parametrize(
    ("started_by", "status"),
    [
        (by_an_exited_process, "killed"),
        (by_a_reused_pid, "killed"),
        (by_an_unknown_process, "killed"),
        (by_this_process, "running"),
        (by_this_process_without_a_start_time, "running"),
    ],
)
def test_opening_the_archive_marks_crawls_whose_process_is_gone(
    tmp_path: Path, started_by: Start, status: str
) -> None:
    path = tmp_path / "news.db"
    first = Archive.open(path)
    done = first.begin_crawl("crawl", "mod/kk", pid=exited_pid(), now=T0)
    first.finish_crawl(done, status="ok", counts={"new": 1}, errors=[], now=T1)
    crawl = started_by(first)
    first.close()

    archive = Archive.open(path)
    rows = {row["id"]: row for row in archive.crawls()}
    assert rows[done]["status"] == "ok" and rows[done]["problems"] == []  # finished: untouched
    row = rows[crawl]
    assert row["status"] == status
    if status == "killed":
        [problem] = row["problems"]
        assert (problem.kind, problem.target, problem.fails) == (ProblemKind.CRASHED, "crawl", True)
        assert "killed" in problem.message
        assert (row["errors"], row["error_count"]) == ([problem.line()], 1)
        finished = datetime.fromisoformat(row["finished"])
        assert finished.utcoffset() == timedelta() and finished >= T1
    else:
        assert (row["finished"], row["problems"], row["error_count"]) == (None, [], 0)
    archive.close()


def test_a_zombie_process_is_gone(archive: Archive, zombie: int) -> None:
    crawl = archive.begin_crawl("crawl", "mod/ru", pid=zombie)
    assert not is_running(zombie, archive.crawls()[0]["pid_started"])
    assert archive.mark_killed_crawls(now=T2) == [crawl]
    assert archive.crawls()[0]["status"] == "killed"


def test_mark_killed_crawls_returns_what_it_marked_once(archive: Archive) -> None:
    gone = [archive.begin_crawl("crawl", f"mod/{lang}", pid=exited_pid()) for lang in ("ru", "kk")]
    alive = archive.begin_crawl("crawl", "mod/en")
    assert archive.mark_killed_crawls(now=T2) == gone
    assert archive.mark_killed_crawls(now=T2) == []
    rows = {row["id"]: row for row in archive.crawls()}
    assert [rows[c]["finished"] for c in gone] == [iso(T2), iso(T2)]
    assert rows[alive]["status"] == "running"
    assert rows[gone[0]]["problems"] == [Problem(
        ProblemKind.CRASHED, "crawl",
        "the crawl process ended without finishing (killed, timed out or crashed)",
    )]  # fmt: skip


def test_a_killed_crawl_that_reports_after_all_keeps_its_report(archive: Archive) -> None:
    crawl = archive.begin_crawl("crawl", "mod/ru", pid=exited_pid())
    archive.mark_killed_crawls(now=T1)
    archive.finish_crawl(crawl, status="ok", counts={"new": 2}, errors=[], now=T2)
    [row] = archive.crawls()
    assert (row["status"], row["new"], row["problems"], row["finished"]) == ("ok", 2, [], iso(T2))


def test_a_stale_crawl_does_not_make_a_reader_wait_for_a_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "news.db"
    first = Archive.open(path)
    first.begin_crawl("crawl", "mod/ru", pid=exited_pid())
    first.close()
    # No busy wait, so that waiting for the lock shows at once instead of after 5 s.
    monkeypatch.setattr(store_module, "Database", lambda p: Database(sqlite3.connect(p, timeout=0)))
    writer = sqlite3.connect(path, timeout=0)
    writer.execute("BEGIN IMMEDIATE")  # another crawl is writing
    try:
        reader = Archive.open(path)  # the feeds server, `status`, ...
        assert reader.feed_items() == []
        reader.close()
    finally:
        writer.rollback()
        writer.close()
