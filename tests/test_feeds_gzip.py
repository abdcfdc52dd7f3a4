"""Precompressed feeds: the writer keeps a .gz beside every file it writes (same bytes gzipped,
same mtime), and the embedded server sends that copy to gzip clients, falling back to
compressing itself when the copy is missing or stale. Conditional GET and Range stay correct.
"""

from __future__ import annotations

import gzip
import http.client
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import ROOT
from test_feeds import FakeArchive, dataset

from crawler.agencies import AgencyRegistry
from crawler.feed_dir import STATE
from crawler.feeds import INDEX_KEY, gz_fresh, gz_path, write_feeds, write_if_changed

FEED = ("<?xml version='1.0' encoding='UTF-8'?>\n<feed xmlns='http://www.w3.org/2005/Atom'>"
        + "<entry><title>Жаңалық — новость</title></entry>" * 300 + "</feed>\n").encode()


def _mtime(path: Path) -> int:
    return os.stat(path).st_mtime_ns


# --- the writer -------------------------------------------------------------------------------


def test_a_written_file_gets_its_gz_with_the_same_mtime(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.atom"
    assert write_if_changed(path, FEED)
    assert gzip.decompress(gz_path(path).read_bytes()) == FEED
    assert _mtime(gz_path(path)) == _mtime(path)
    assert gz_fresh(path)
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left
    assert oct(gz_path(path).stat().st_mode & 0o777) == "0o644"  # readable by another server


@pytest.mark.parametrize("damage", ["missing", "stale", "none"])
def test_an_unchanged_file_keeps_its_bytes_and_gets_a_current_gz(tmp_path: Path,
                                                                 damage: str) -> None:
    path = tmp_path / "a.rss"
    write_if_changed(path, FEED)
    before, gz_before = _mtime(path), _mtime(gz_path(path))
    if damage == "missing":
        gz_path(path).unlink()
    elif damage == "stale":
        gz_path(path).write_bytes(gzip.compress(b"an older version"))
        os.utime(gz_path(path), ns=(before - 10**9, before - 10**9))
    assert not write_if_changed(path, FEED)  # the feed itself is unchanged: not rewritten
    assert _mtime(path) == before
    assert gzip.decompress(gz_path(path).read_bytes()) == FEED
    assert _mtime(gz_path(path)) == before
    if damage == "none":
        assert _mtime(gz_path(path)) == gz_before  # a current copy is left alone


def test_changed_bytes_replace_both(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_if_changed(path, b"{}\n")
    os.utime(path, ns=(1, 1))  # so the rewrite's mtime surely differs
    os.utime(gz_path(path), ns=(1, 1))
    assert write_if_changed(path, FEED)
    assert path.read_bytes() == FEED
    assert gzip.decompress(gz_path(path).read_bytes()) == FEED
    assert _mtime(gz_path(path)) == _mtime(path) != 1


def test_no_gz_when_asked_for_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.atom"
    assert write_if_changed(path, FEED, gz=False)
    assert not gz_path(path).exists()


def test_every_published_file_has_a_current_gz(tmp_path: Path) -> None:
    write_feeds(FakeArchive(dataset()), tmp_path, registry=AgencyRegistry.load())
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".gz"
             and p.name != INDEX_KEY and p != tmp_path / STATE]  # fmt: skip
    assert len(files) > 40
    for path in files:
        assert gzip.decompress(gz_path(path).read_bytes()) == path.read_bytes(), path
        assert gz_fresh(path), path
    assert {p.with_suffix("") for p in tmp_path.rglob("*.gz")} == set(files)


def test_an_old_directory_without_copies_gets_them(tmp_path: Path) -> None:
    """Feeds written before the copies existed: a publish of other agencies adds them."""
    registry = AgencyRegistry.load()
    write_feeds(FakeArchive(dataset()), tmp_path, registry=registry)
    for gz in tmp_path.rglob("*.gz"):
        gz.unlink()
    report = write_feeds(FakeArchive(dataset()), tmp_path, registry=registry, agencies=["mod"])
    assert report.written == []  # no feed's bytes changed...
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".gz" and path.name != INDEX_KEY \
                and path != tmp_path / STATE:
            assert gz_fresh(path), path  # ...but each has its copy again


# --- the embedded server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """The embedded server (build_site + listen) in a child process of its own, serving a
    feeds directory: its reactor is the real, global one, which a test process can run only
    once."""
    feeds = tmp_path_factory.mktemp("served") / "feeds"
    feeds.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.serve_child", str(feeds)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # its port, once it listens (or "" if it died)
        assert line.strip().isdigit(), f"the server did not start (exit {child.poll()})"
        yield feeds, int(line)
    finally:
        child.terminate()
        child.wait(30)


@pytest.fixture
def served(server: tuple[Path, int], request: pytest.FixtureRequest) -> tuple[Path, int]:
    """A directory of its own under the server's feeds for each test."""
    feeds, port = server
    mine = feeds / request.node.name.replace("[", "-").replace("]", "")
    mine.mkdir()
    return mine, port


def get(port: int, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


GZ = {"Accept-Encoding": "gzip"}


def _marked_copy(path: Path) -> bytes:
    """A .gz of `path` the server could not have made itself (level 1, a name in its
    header), stamped current: if the server sends these bytes, it sent the file."""
    data = gzip.compress(path.read_bytes(), compresslevel=1, mtime=12345)
    gz_path(path).write_bytes(data)
    os.utime(gz_path(path), ns=(_mtime(path), _mtime(path)))
    return data


def test_the_current_gz_is_sent_as_it_is(served: tuple[Path, int]) -> None:
    feeds, port = served
    write_if_changed(feeds / "a.atom", FEED)
    copy = _marked_copy(feeds / "a.atom")
    status, headers, body = get(port, f"/feeds/{feeds.name}/a.atom", GZ)
    assert (status, headers["content-encoding"], body) == (200, "gzip", copy)
    assert int(headers["content-length"]) == len(copy)
    head = get(port, f"/feeds/{feeds.name}/a.atom", GZ, method="HEAD")
    assert head[2] == b"" and head[1]["content-length"] == str(len(copy))
    plain = get(port, f"/feeds/{feeds.name}/a.atom")
    assert plain[2] == FEED and "content-encoding" not in plain[1]
    # Both variants carry the file's one Last-Modified (the copy has the feed's mtime).
    assert headers["last-modified"] == plain[1]["last-modified"]


@pytest.mark.parametrize("damage", ["missing", "stale", "directory"])
def test_without_a_current_gz_the_server_compresses(served: tuple[Path, int],
                                                    damage: str) -> None:
    feeds, port = served
    path = feeds / "b.rss"
    write_if_changed(path, FEED, gz=False)
    if damage == "stale":
        gz_path(path).write_bytes(gzip.compress(b"<rss>an older version</rss>"))
        os.utime(gz_path(path), ns=(_mtime(path) - 10**9,) * 2)
    elif damage == "directory":
        gz_path(path).mkdir()
    status, headers, body = get(port, f"/feeds/{feeds.name}/b.rss", GZ)
    assert (status, headers["content-encoding"]) == (200, "gzip")
    assert gzip.decompress(body) == FEED
    assert body == gzip.compress(FEED, 6, mtime=0)  # what the writer would have written


def test_a_new_version_is_served_with_its_new_copy(served: tuple[Path, int]) -> None:
    feeds, port = served
    path = feeds / "c.atom"
    write_if_changed(path, FEED)
    first = get(port, f"/feeds/{feeds.name}/c.atom", GZ)
    newer = FEED.replace(b"</feed>", b"<entry><title>new</title></entry></feed>")
    os.utime(path, ns=(1, 1))  # the rewrite's mtime differs even on a coarse clock
    write_if_changed(path, newer)
    second = get(port, f"/feeds/{feeds.name}/c.atom", GZ)
    assert gzip.decompress(first[2]) == FEED and gzip.decompress(second[2]) == newer
    assert first[1]["etag"] != second[1]["etag"]


@pytest.mark.parametrize("validator", ["if-none-match", "if-modified-since"])
@pytest.mark.parametrize("accept", [{}, GZ])
def test_conditional_get_still_answers_304(served: tuple[Path, int], validator: str,
                                           accept: dict[str, str]) -> None:
    feeds, port = served
    write_if_changed(feeds / "d.atom", FEED)
    _, headers, _ = get(port, f"/feeds/{feeds.name}/d.atom", accept)
    value = headers["etag"] if validator == "if-none-match" else headers["last-modified"]
    status, again, body = get(port, f"/feeds/{feeds.name}/d.atom", {**accept, validator: value})
    assert (status, body) == (304, b"")
    assert again["etag"] == headers["etag"]


def test_range_of_the_plain_file_is_unchanged_by_the_copy(served: tuple[Path, int]) -> None:
    feeds, port = served
    write_if_changed(feeds / "e.atom", FEED)
    status, headers, body = get(port, f"/feeds/{feeds.name}/e.atom", {"Range": "bytes=10-19"})
    assert (status, body) == (206, FEED[10:20])
    assert headers["content-range"] == f"bytes 10-19/{len(FEED)}"


def test_the_copies_themselves_are_not_served(served: tuple[Path, int]) -> None:
    feeds, port = served
    write_if_changed(feeds / "f.atom", FEED)
    assert get(port, f"/feeds/{feeds.name}/f.atom.gz")[0] == 404
