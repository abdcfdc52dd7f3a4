"""A real feed reader, newsboat, reads every entry of the published feeds."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import feedparser
import pytest
from cli_helpers import run_cli

NEWSBOAT = shutil.which("newsboat")
pytestmark = pytest.mark.skipif(NEWSBOAT is None, reason="newsboat is not installed "
                                "(.ci/run installs Debian's package)")

FEEDS = ["all.atom", "all.rss", "mod.atom", "mod/en.rss", "primeminister/en.atom", "mfa.rss"]


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    assert run_cli("replay", "--data", str(data)).returncode == 0
    return data / "feeds"


@pytest.mark.parametrize("name", FEEDS)
def test_newsboat_reads_every_entry(feeds: Path, tmp_path: Path, name: str) -> None:
    path = feeds / name
    expected = feedparser.parse(path.read_bytes()).entries
    assert expected, f"{name} is empty"
    urls = tmp_path / "urls"
    urls.write_text(path.resolve().as_uri() + "\n", encoding="utf-8")
    cache = tmp_path / "cache.db"
    # One cache per feed: newsboat keeps an item (by guid) under the first feed it saw it in.
    subprocess.run(
        [NEWSBOAT, "-u", str(urls), "-c", str(cache), "-C", "/dev/null", "-x", "reload"],
        check=True, capture_output=True, timeout=60, cwd=tmp_path,
        env={"HOME": str(tmp_path), "TERM": "dumb"},
    )
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT guid, title FROM rss_item").fetchall()
        feed_title = db.execute("SELECT title FROM rss_feed").fetchone()[0]
    assert {guid for guid, _ in rows} == {e.id for e in expected}
    assert all(title for _, title in rows)
    assert feed_title
