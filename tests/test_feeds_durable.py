"""What a publish leaves on disk: only the files whose bytes changed are replaced (an unchanged
file keeps its inode and mtime, so its ETag and Last-Modified), a publish that dies at any point
leaves every file whole and is repaired by the next one, and the directory's record spares the
listing of every directory without ever hiding a missing feed."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest

import crawler.feed_dir as feed_dir
import crawler.feed_files as feed_files
from crawler.feed_dir import STATE, FeedDirectory
from crawler.feed_files import StagedWrites, gz_path
from crawler.items import NewsItem, item_url
from crawler.store import Archive
from crawler.timeutil import ALMATY

# (agency, id, lang, day of March 2026): mfa's news are the newest of all, mod's older.
ITEMS = [
    ("mfa", 10, "ru", 2), ("mfa", 11, "ru", 3), ("mfa", 10, "en", 2), ("mfa", 11, "en", 3),
    ("mod", 1, "ru", 1), ("mod", 2, "ru", 1), ("mod", 3, "ru", 1), ("mod", 1, "en", 1),
    ("mod", 2, "en", 1),
]  # fmt: skip
LIMIT = 2  # entries per feed: mod's id 1 is in none of them


def _item(agency: str, item_id: int, lang: str, day: int, title: str = "") -> NewsItem:
    published = datetime(2026, 3, day, 9, tzinfo=ALMATY) + timedelta(minutes=item_id)
    return NewsItem(agency=agency, id=item_id, lang=lang, url=item_url(agency, item_id, lang),
                    title=title or f"{agency} {item_id} {lang}", published=published,
                    body_html=f"<p>{agency} {item_id} {lang}</p>", source="api")  # fmt: skip


def _settings(data: Path) -> Any:
    from crawler.runner import project_settings

    return project_settings({"GOVKZ_DATA": str(data), "GOVKZ_AGENCIES_ENABLED": "mod,mfa",
                             "GOVKZ_LANGS": "ru,en", "GOVKZ_FEED_LIMIT": str(LIMIT)})  # fmt: skip


def _publish(data: Path, **kwargs: Any) -> Any:
    from crawler.pipelines import publish

    return publish(_settings(data), **kwargs)


def _edit(data: Path, agency: str, item_id: int, lang: str, title: str) -> None:
    day = next(d for a, i, lg, d in ITEMS if (a, i, lg) == (agency, item_id, lang))
    archive = Archive.open(data / "news.db")
    try:
        archive.save_item(_item(agency, item_id, lang, day, title))
    finally:
        archive.close()


def _behind(data: Path) -> dict[tuple[str, str], int]:
    archive = Archive.open(data / "news.db")
    try:
        return archive.feeds_behind()
    finally:
        archive.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    archive = Archive.open(tmp_path / "news.db")
    try:
        for agency, item_id, lang, day in ITEMS:
            archive.save_item(_item(agency, item_id, lang, day))
    finally:
        archive.close()
    _publish(tmp_path)
    assert _behind(tmp_path) == {}
    return tmp_path


def _public(feeds: Path) -> dict[str, Path]:
    """The files readers get (the hidden bookkeeping aside), by their path."""
    return {p.relative_to(feeds).as_posix(): p for p in feeds.rglob("*") if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(feeds).parts)}  # fmt: skip


def _stamps(feeds: Path) -> dict[str, tuple[int, int, int]]:
    return {name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_ctime_ns)
            for name, p in _public(feeds).items()}  # fmt: skip


def _contents(feeds: Path) -> dict[str, bytes]:
    return {name: p.read_bytes() for name, p in _public(feeds).items()}


def _files_of(*rels: str) -> set[str]:
    return {f"{rel}.{ext}{gz}" for rel in rels for ext in ("atom", "rss", "json")
            for gz in ("", ".gz")}  # fmt: skip


# --- an incremental publish touches what changed, and only that -------------------------------


@pytest.mark.parametrize(("edit", "changed"), [
    # mod's newest Russian item: its feed and its agency's mixed feed; the every-agency feeds
    # show mfa's news only, and mod's English feed only links to the item's (same) page.
    (("mod", 3, "ru"), _files_of("mod/ru", "mod")),
    # mfa's newest: its feeds and the every-agency ones in Russian and in all languages.
    (("mfa", 11, "ru"), _files_of("mfa/ru", "mfa", "all/ru", "all")),
    # an item older than every feed's window: nothing a reader sees changes.
    (("mod", 1, "ru"), set()),
])  # fmt: skip
def test_a_publish_replaces_only_the_files_whose_bytes_changed(
    data: Path, edit: tuple[str, int, str], changed: set[str]
) -> None:
    feeds = data / "feeds"
    before = _stamps(feeds)
    _edit(data, *edit, title="Edited title")
    report = _publish(data)
    assert report.feeds > 0  # the agency was behind: its feeds were rendered...
    after = _stamps(feeds)
    assert after.keys() == before.keys()
    moved = {name for name in before if after[name] != before[name]}
    assert moved == changed  # ...and only the files whose bytes changed were replaced
    assert {p.relative_to(feeds).as_posix() for p in report.written} \
        == {name for name in changed if not name.endswith(".gz")}
    assert _behind(data) == {}


def test_a_publish_of_one_agency_renders_only_its_feeds_and_the_aggregates(data: Path) -> None:
    _edit(data, "mod", 3, "ru", title="Edited title")
    report = _publish(data)
    # mod's mixed, ru and en feeds and the four every-agency feeds, in three formats each; the
    # indexes are current (what they list did not change) and are not rendered, mfa not at all.
    assert report.feeds == (3 + 4) * 3 + 5
    assert report.unchanged == report.feeds - len(report.written)


def test_a_quiet_publish_renders_and_writes_nothing(data: Path) -> None:
    feeds = data / "feeds"
    before = _stamps(feeds), (feeds / STATE).stat().st_mtime_ns
    report = _publish(data)
    assert (report.feeds, report.written) == (0, [])
    assert (_stamps(feeds), (feeds / STATE).stat().st_mtime_ns) == before


# --- a crash mid-publish ----------------------------------------------------------------------


class PowerCut(Exception):
    pass


def _clean_rewrite_changes_nothing(data: Path) -> None:
    """The directory is what a full rewrite from the archive makes of it, byte for byte."""
    assert _publish(data, full=True).written == []


def _no_temporaries(feeds: Path) -> None:
    assert [p for p in feeds.rglob("*") if feed_files.is_temporary(p.name)] == []


@pytest.mark.parametrize("renames", [0, 1, 3, 7])
def test_a_publish_killed_between_renames_leaves_whole_files_and_is_repaired(
    data: Path, monkeypatch: pytest.MonkeyPatch, renames: int
) -> None:
    feeds = data / "feeds"
    old = _contents(feeds)
    _edit(data, "mfa", 11, "ru", title="Edited title")
    _edit(data, "mod", 3, "ru", title="Edited too")
    real = os.replace
    done = []

    def replace(src: Any, dst: Any) -> None:
        if len(done) == renames:
            raise PowerCut
        real(src, dst)
        done.append(dst)

    monkeypatch.setattr(feed_files.os, "replace", replace)
    with pytest.raises(PowerCut):
        _publish(data)
    monkeypatch.undo()
    # Every file a reader can get is whole: the old bytes or the new, each parses.
    assert _public(feeds).keys() == old.keys()
    for name, path in _public(feeds).items():
        if name.endswith((".atom", ".rss")):
            assert not feedparser.parse(path.read_bytes()).bozo, name
        elif name.endswith(".json"):
            json.loads(path.read_bytes())
    _no_temporaries(feeds)  # the ones not renamed were removed
    assert set(_behind(data)) == {("mfa", "ru"), ("mod", "ru")}  # nothing recorded as published
    repaired = _publish(data)
    assert repaired.written  # the changes not in place yet are written now
    assert _behind(data) == {}
    _clean_rewrite_changes_nothing(data)


def test_a_publish_killed_before_it_is_recorded_is_redone(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit(data, "mod", 3, "ru", title="Edited title")

    def cut(self: Archive, marks: Any) -> None:
        raise PowerCut

    monkeypatch.setattr(Archive, "feeds_published", cut)
    with pytest.raises(PowerCut):
        _publish(data)  # every file in place, the archive not told
    monkeypatch.undo()
    assert set(_behind(data)) == {("mod", "ru")}
    again = _publish(data)
    assert again.feeds > 0 and again.written == []  # rendered again, found already written
    assert _behind(data) == {}
    _clean_rewrite_changes_nothing(data)


def test_a_write_that_fails_changes_no_file(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    feeds = data / "feeds"
    before = _stamps(feeds)
    _edit(data, "mod", 3, "ru", title="Edited title")
    real, calls = feed_files._temporary, []

    def temporary(path: Path, payload: bytes, mtime_ns: int | None = None) -> str:
        calls.append(path)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        return real(path, payload, mtime_ns)

    monkeypatch.setattr(feed_files, "_temporary", temporary)
    with pytest.raises(OSError, match="No space"):
        _publish(data)
    monkeypatch.undo()
    assert _stamps(feeds) == before  # the batch it was in put nothing in place
    _no_temporaries(feeds)
    assert _publish(data).written
    _clean_rewrite_changes_nothing(data)


def test_staged_files_are_synced_before_they_replace_the_old_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_sync, real_replace = feed_files._sync_data, os.replace

    def sync(fd: int) -> None:
        events.append(("sync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        real_sync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(("rename", os.path.basename(src)))
        real_replace(src, dst)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to name a file descriptor")
    monkeypatch.setattr(feed_files, "_sync_data", sync)
    monkeypatch.setattr(feed_files.os, "replace", replace)
    with StagedWrites() as staged:
        for n in range(5):
            staged.put(tmp_path / f"f{n}.atom", b"<feed/>" * (n + 1))
    renamed = [name for kind, name in events if kind == "rename"]
    assert len(renamed) == 10  # five files, each with its .gz
    for name in renamed:
        assert events.index(("sync", name)) < events.index(("rename", name))
    assert sorted(staged.written) == [tmp_path / f"f{n}.atom" for n in range(5)]


# --- the directory's record -------------------------------------------------------------------


def test_a_recorded_directory_is_not_listed_again(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed: list[str] = []
    real = os.scandir

    def scandir(path: Any) -> Any:
        listed.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(feed_dir.os, "scandir", scandir)
    directory = FeedDirectory.load(data / "feeds")
    assert all(directory.complete(rel) for rel in
               ("mod", "mod/ru", "mod/en", "mfa", "mfa/ru", "mfa/en", "all", "all/ru"))
    assert not directory.complete("mod/kk")
    assert listed == []


@pytest.mark.parametrize("gone", ["mod/ru.json", "mod/ru.atom.gz", "mfa.rss", "all/en.atom",
                                  "index.en.opml", "index.opml.gz"])
def test_a_deleted_file_is_seen_and_written_again(data: Path, gone: str) -> None:
    feeds = data / "feeds"
    (feeds / gone).unlink()
    if not gone.startswith("index."):
        assert not FeedDirectory.load(feeds).complete(gone.split(".")[0])
    _publish(data)  # nothing is behind the archive: not a quiet cycle all the same
    assert (feeds / gone).is_file()
    _clean_rewrite_changes_nothing(data)


def _claim(feeds: Path, layout: str = feed_dir.LAYOUT) -> bytes:
    """A record that says mod holds its English feed whole, with mod's mtime as it is now."""
    mtime = os.stat(feeds / "mod").st_mtime_ns
    return json.dumps({"layout": layout, "directories": {"mod": [mtime, ["en", "ru"]]}}).encode()


@pytest.mark.parametrize("record", [
    lambda feeds: b"",
    lambda feeds: b"{not json",
    lambda feeds: _claim(feeds),  # not sealed
    lambda feeds: feed_dir._sealed(_claim(feeds))[:-9],  # a write cut short
    lambda feeds: feed_dir._sealed(_claim(feeds)).replace(b'"ru"', b'"kk"'),  # spliced
    lambda feeds: feed_dir._sealed(_claim(feeds, layout="feeds atom rss")),  # older layout
    lambda feeds: feed_dir._sealed(b'{"layout": "%s", "directories": {"mod": [1]}}'
                                   % feed_dir.LAYOUT.encode()),
])  # fmt: skip
def test_a_record_that_is_not_whole_is_not_believed(data: Path, record: Any) -> None:
    feeds = data / "feeds"
    (feeds / "mod" / "en.rss").unlink()
    (feeds / STATE).write_bytes(record(feeds))
    directory = FeedDirectory.load(feeds)  # the directory is listed instead
    assert directory.complete("mod/ru") and directory.complete("mfa")
    assert not directory.complete("mod/en")


def test_a_whole_record_is_believed(data: Path) -> None:
    """The control of the test above: the forged claim, sealed, is taken as it is (which is
    why only the publisher writes the record, and only after the files it names)."""
    feeds = data / "feeds"
    (feeds / "mod" / "en.rss").unlink()
    (feeds / STATE).write_bytes(feed_dir._sealed(_claim(feeds)))
    assert FeedDirectory.load(feeds).complete("mod/en")


def test_a_dead_writers_temporary_files_are_removed(data: Path) -> None:
    feeds = data / "feeds"
    dead = feeds / "mod" / ".ru.atom.999999999.x1y2z3.tmp"  # beyond any pid_max
    mine = feeds / "mod" / f".ru.rss.{os.getpid()}.a1b2c3.tmp"
    live = feeds / "mod" / f".en.atom.{os.getppid()}.d4e5f6.tmp"  # a live writer's, young
    for path in (dead, mine, live):
        path.write_bytes(b"half a feed")
    directory = FeedDirectory.load(feeds)
    assert directory.complete("mod/ru")
    assert not dead.exists() and mine.exists() and live.exists()
    directory.save()
    # A live writer's temporary keeps the directory out of the record: listed again next time.
    recorded = json.loads((feeds / STATE).read_bytes().partition(b"\n")[2])["directories"]
    assert "mod" not in recorded and "mfa" in recorded
    hour_ago = (os.stat(live).st_mtime_ns - feed_dir.STALE_TEMPORARY_NS - 10**9,) * 2
    os.utime(live, ns=hour_ago)  # ...until it is too old to be anyone's
    FeedDirectory.load(feeds).complete("mod/ru")
    assert not live.exists()
    mine.unlink()


def test_every_feed_keeps_its_gz_copy_current(data: Path) -> None:
    _edit(data, "mod", 3, "ru", title="Edited title")
    _publish(data)
    for name, path in _public(data / "feeds").items():
        if not name.endswith(".gz"):
            assert feed_files.gz_fresh(path), name
            assert gz_path(path).stat().st_mtime_ns == path.stat().st_mtime_ns
