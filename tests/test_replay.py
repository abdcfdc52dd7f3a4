"""`govkz-monitor replay` end to end: seeds -> replay spider -> pipelines -> archive -> feeds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import feedparser
import pytest
from cli_helpers import ROOT, run_cli
from feedcheck import check_file

from crawler.store import Archive

SEEDS = ROOT / "seeds"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    result = run_cli("replay", "--data", str(data))
    assert result.returncode == 0, result.stderr
    return data


def items(data: Path) -> list[dict]:
    archive = Archive.open(data / "news.db")
    try:
        return list(archive.db.query("SELECT * FROM items ORDER BY agency, id, lang"))
    finally:
        archive.close()


def test_replay_fills_the_archive_with_the_expected_items(replayed: Path) -> None:
    rows = items(replayed)
    by_source: dict[str, int] = {}
    for row in rows:
        by_source[row["source"]] = by_source.get(row["source"], 0) + 1
    assert by_source == {
        "snapshot:000_4ec7fd5933ffcd57.txt": 5,
        "snapshot:001_28f041a508a280bb.txt": 20,
        "snapshot:004_4bfc0a0de863c664.txt": 9,
    }
    assert all(row["lang"] == "en" for row in rows)
    incomplete = [row for row in rows if row["incomplete"]]
    assert [row["title"] for row in incomplete] == [
        "Kazakhstan launches Center for Combating Disinformation"
    ]
    assert incomplete[0]["published"] is None


@pytest.mark.parametrize(
    ("agency", "item_id", "field", "expected"),
    [
        ("pravstat", 1171712, "published", "2026-02-27T00:00:00+05:00"),
        ("pravstat", 1171712, "categories", '["News", "Society"]'),
        ("mod", 997786, "body_text", ""),
        ("mod", 997786, "title", "Kazakh military delegation visits defense department in Baku"),
        ("mfa", 997859, "categories", '["Law"]'),
        (
            "mfa",
            997859,
            "url",
            "https://www.gov.kz/memleket/entities/mfa/press/news/details/997859?lang=kk",
        ),
    ],
)
def test_replayed_fields(
    replayed: Path, agency: str, item_id: int, field: str, expected: str
) -> None:
    row = next(r for r in items(replayed) if (r["agency"], r["id"]) == (agency, item_id))
    assert row[field] == expected


def test_full_text_items_keep_time_and_views(replayed: Path) -> None:
    rows = [r for r in items(replayed) if r["agency"] == "primeminister" and r["published"]]
    assert len(rows) == 8
    newest = max(rows, key=lambda r: r["published"])
    assert newest["published"] == "2025-08-08T12:43:00+05:00"
    assert newest["views"] == 2936


def test_second_replay_changes_nothing_but_last_seen(tmp_path: Path) -> None:
    assert run_cli("replay", "--data", str(tmp_path)).returncode == 0
    before = items(tmp_path)
    feeds_before = {p: p.stat().st_mtime_ns for p in (tmp_path / "feeds").rglob("*.*")}
    second = run_cli("replay", "--data", str(tmp_path), "--json")
    assert second.returncode == 0, second.stderr
    totals = json.loads(second.stdout)["totals"]
    assert (totals["new"], totals["updated"], totals["unchanged"]) == (0, 0, 34)
    after = items(tmp_path)
    strip = [{k: v for k, v in row.items() if k != "last_seen"} for row in before]
    assert strip == [{k: v for k, v in row.items() if k != "last_seen"} for row in after]
    assert all(b["last_seen"] <= a["last_seen"] for b, a in zip(before, after, strict=True))
    # Unchanged content: no feed file is rewritten.
    assert feeds_before == {p: p.stat().st_mtime_ns for p in (tmp_path / "feeds").rglob("*.*")}
    archive = Archive.open(tmp_path / "news.db")
    try:
        versions = archive.db.execute("SELECT count(*) FROM item_versions").fetchone()[0]
        crawls = archive.crawls()
    finally:
        archive.close()
    assert versions == 34
    assert [c["status"] for c in crawls] == ["ok", "ok"]


def test_every_feed_file_validates_and_parses(replayed: Path) -> None:
    files = sorted((replayed / "feeds").rglob("*.*"))
    names = {str(p.relative_to(replayed / "feeds")) for p in files}
    assert {"all.atom", "all.rss", "index.opml", "mod.atom", "mod/en.rss"} <= names
    for path in files:
        served = "http://127.0.0.1:8080/feeds/" + str(path.relative_to(replayed / "feeds"))
        assert check_file(path, served_at=served) == [], path
        if path.suffix in (".atom", ".rss"):
            assert not feedparser.parse(path.read_bytes()).bozo, path


def test_all_feed_excludes_the_incomplete_item(replayed: Path) -> None:
    parsed = feedparser.parse((replayed / "feeds" / "all.atom").read_bytes())
    titles = [e.title for e in parsed.entries]
    assert "Kazakhstan launches Center for Combating Disinformation" not in titles
    assert len(titles) == 33
    assert len({e.id for e in parsed.entries}) == 33


BAD_FILES = {
    "empty.txt": b"",
    "binary.txt": b"\x00\x01\x02PNG\x00\x00" * 20,
    "latin1.txt": "Caf\xe9 news 27.02.2026\n".encode("latin-1"),
    "unknown.txt": b"just some words\nwithout any news shape\n",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_a_one_line_error_and_the_others_still_import(
    tmp_path: Path, name: str
) -> None:
    bad = tmp_path / name
    bad.write_bytes(BAD_FILES[name])
    good = tmp_path / "001_28f041a508a280bb.txt"
    shutil.copy(SEEDS / good.name, good)
    result = run_cli("replay", str(bad), str(good), "--data", str(tmp_path / "data"))
    assert result.returncode == 1
    error_lines = [line for line in result.stdout.splitlines() if "ERROR" in line]
    assert len(error_lines) == 1 and name in result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert "20 new" in result.stdout  # the good file imported all the same


def test_missing_file_is_reported_without_traceback(tmp_path: Path) -> None:
    result = run_cli("replay", str(tmp_path / "nope.txt"), "--data", str(tmp_path))
    assert result.returncode != 0
    assert "no such file" in result.stderr and "Traceback" not in result.stderr


def test_hostile_titles_never_break_a_feed(tmp_path: Path) -> None:
    page = (
        "Law\n"
        "<script>alert(1)</script> Tom & Jerry \x0b\ufffe win 21.05.2025\n"
        "Body with <b>tags</b> & an ampersand\x01.Source : "
        "https://www.gov.kz/memleket/entities/mod/press/news/details/5?lang=en\n"
    )
    snap = tmp_path / "hostile.txt"
    snap.write_text(page, encoding="utf-8")
    result = run_cli("replay", str(snap), "--data", str(tmp_path / "d"))
    assert result.returncode == 0, result.stdout + result.stderr
    for path in (tmp_path / "d" / "feeds").rglob("*.*"):
        assert check_file(path) == [], path
        data = path.read_bytes()
        if path.suffix == ".gz":  # a feed's gzip copy: what a gzip client reads is inside
            import gzip

            data = gzip.decompress(data)
        assert b"<script" not in data and b"\x0b" not in data
    entry = feedparser.parse((tmp_path / "d" / "feeds" / "mod.atom").read_bytes()).entries[0]
    assert "Tom & Jerry" in entry.title
