"""The embedded server's cache of feed versions (scheduler/feed_cache.py): a cached answer is only
ever the current file's, the cache stays bounded, and a hit opens no file.

The served tests run the real site on 127.0.0.1 with this module's reactor (tests/conftest.py);
every step waits on a reply, nothing on time.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest
from web_helpers import fetch, serving

from crawler.feed_files import write_if_changed
from scheduler.feed_cache import FeedCache, FeedVersion
from scheduler.metrics import Metrics
from scheduler.server import AccessLogSite, FeedTree, build_site

ATOM = "application/atom+xml; charset=utf-8"


def feed(n: int) -> bytes:
    """A feed of `n` entries: each n gives another size, so another ETag whatever the clock."""
    return (b"<feed xmlns='http://www.w3.org/2005/Atom'>" + b"<entry>e</entry>" * n + b"</feed>\n")


def version_of(path: Path) -> FeedVersion:
    return FeedVersion.of(str(path), os.stat(path), ATOM)


# --- the cache alone -----------------------------------------------------------------------------


def _replace_by_rename(path: Path) -> None:
    write_if_changed(path, feed(7), gz=False)


def _touch(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _chmod(path: Path) -> None:
    path.chmod(0o600)  # the mtime stays: only the ctime tells


def _remove(path: Path) -> None:
    path.unlink()


def _symlink_elsewhere(path: Path) -> None:
    other = path.with_name("other.atom")
    other.write_bytes(feed(1))
    path.unlink()
    path.symlink_to(other)


@pytest.mark.parametrize(
    "change", [_replace_by_rename, _touch, _chmod, _remove, _symlink_elsewhere],
    ids=lambda change: change.__name__.strip("_"),
)
def test_a_changed_file_is_no_longer_cached(tmp_path, change):
    path = tmp_path / "a.atom"
    path.write_bytes(feed(1))
    cache = FeedCache()
    version = version_of(path)
    cache.remember((b"a.atom",), str(path), version)
    assert cache.lookup((b"a.atom",)) is version  # unchanged: the same version
    change(path)
    assert cache.lookup((b"a.atom",)) is None
    assert len(cache) == 0


def test_entries_are_bounded_least_recently_used_first_out(tmp_path):
    cache = FeedCache(max_entries=3)
    urls = []
    for n in range(5):
        path = tmp_path / f"{n}.atom"
        path.write_bytes(feed(n))
        urls.append((path.name.encode(),))
        cache.remember(urls[-1], str(path), version_of(path))
        cache.lookup(urls[0])  # the first one stays in use
        assert len(cache) <= 3
    assert [cache.lookup(url) is not None for url in urls] == [True, False, False, True, True]


def test_bodies_are_bounded_in_bytes(tmp_path):
    cache = FeedCache(max_bytes=1000, max_body=600)
    versions = []
    for n in range(4):
        path = tmp_path / f"{n}.atom"
        path.write_bytes(feed(n))
        url = (path.name.encode(),)
        version = version_of(path)
        cache.remember(url, str(path), version)
        cache.keep_body(url, version, b"x" * 400, gzipped=False)
        cache.keep_body(url, version, b"z" * 100, gzipped=True)
        versions.append(version)
        assert cache.held_bytes <= 1000
    assert cache.held_bytes == 1000  # the last two (500 bytes each); the first two evicted
    assert [cache.lookup((b"%d.atom" % n,)) is not None for n in range(4)] == [
        False, False, True, True]
    assert versions[3].body == b"x" * 400 and versions[3].gzipped == b"z" * 100


@pytest.mark.parametrize(("gzipped", "kept"), [(False, False), (True, True)])
def test_an_identity_body_over_max_body_is_not_kept(tmp_path, gzipped, kept):
    path = tmp_path / "a.atom"
    path.write_bytes(feed(1))
    cache = FeedCache(max_body=10)
    version = version_of(path)
    cache.remember((b"a.atom",), str(path), version)
    cache.keep_body((b"a.atom",), version, b"y" * 11, gzipped=gzipped)
    assert ((version.gzipped if gzipped else version.body) is not None) == kept
    assert cache.held_bytes == (11 if kept else 0)


def test_a_body_for_a_version_no_longer_held_is_not_kept(tmp_path):
    path = tmp_path / "a.atom"
    path.write_bytes(feed(1))
    cache = FeedCache()
    old = version_of(path)
    cache.remember((b"a.atom",), str(path), old)
    _replace_by_rename(path)
    new = version_of(path)
    cache.remember((b"a.atom",), str(path), new)
    cache.keep_body((b"a.atom",), old, feed(1), gzipped=False)  # a slow request of the old one
    assert (old.body, new.body, cache.held_bytes) == (None, None, 0)


# --- served --------------------------------------------------------------------------------------


class _NoStatus:
    def agencies_status(self) -> list:
        return []


@pytest.fixture
def feeds(tmp_path: Path) -> Path:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    write_if_changed(feeds / "a.atom", feed(40))  # with its .gz, as the publisher writes it
    (tmp_path / "secret.atom").write_bytes(b"SECRET")
    return feeds


@pytest.fixture
def port(reactor, feeds: Path) -> Iterator[int]:
    with serving(reactor, build_site(feeds, _NoStatus(), Metrics())) as number:  # type: ignore[arg-type]
        yield number


def _get(port: int, gzipped: bool, **headers: str) -> tuple[int, bytes, str | None]:
    if gzipped:
        headers["Accept-Encoding"] = "gzip"
    reply = fetch(port, "/feeds/a.atom", headers=headers)
    body = gzip.decompress(reply.body) if reply.header("Content-Encoding") == "gzip" else reply.body
    return reply.status, body, reply.header("ETag")


@pytest.mark.parametrize("gzipped", [False, True], ids=["identity", "gzip"])
@pytest.mark.parametrize("gz_copy", [True, False], ids=["with-gz", "without-gz"])
def test_a_feed_replaced_by_rename_is_served_new_at_once(port, feeds, gzipped, gz_copy):
    status, body, old_etag = _get(port, gzipped)
    assert (status, body) == (200, feed(40))
    assert _get(port, gzipped, **{"If-None-Match": old_etag})[0] == 304  # cached, still current
    write_if_changed(feeds / "a.atom", feed(41), gz=gz_copy)
    if not gz_copy:
        (feeds / "a.atom.gz").unlink()  # no copy: the server compresses the new version
    status, body, new_etag = _get(port, gzipped)
    assert (status, body) == (200, feed(41))
    assert new_etag != old_etag
    # The old validator no longer matches; the new one does, for the new bytes.
    assert _get(port, gzipped, **{"If-None-Match": old_etag})[:2] == (200, feed(41))
    assert _get(port, gzipped, **{"If-None-Match": new_etag})[0] == 304


def _no_open(path: str) -> None:
    raise AssertionError(f"opened {path} although its version is cached")


@pytest.mark.parametrize("gzipped", [False, True], ids=["identity", "gzip"])
def test_a_cached_version_answers_without_opening_the_file(port, monkeypatch, gzipped):
    status, body, etag = _get(port, gzipped)  # reads it once
    assert (status, body) == (200, feed(40))
    monkeypatch.setattr("scheduler.server.open_feed", _no_open)
    assert _get(port, gzipped) == (200, feed(40), etag)
    assert _get(port, gzipped, **{"If-None-Match": etag}) == (304, b"", etag)
    head = fetch(port, "/feeds/a.atom", method="HEAD",
                 headers={"Accept-Encoding": "gzip"} if gzipped else {})
    assert (head.status, head.body, head.header("ETag")) == (200, b"", etag)
    if not gzipped:
        ranged = fetch(port, "/feeds/a.atom", headers={"Range": "bytes=0-5"})
        assert (ranged.status, ranged.body) == (206, feed(40)[:6])
        assert ranged.header("Content-Range") == f"bytes 0-5/{len(feed(40))}"


def test_a_cached_feed_that_leaves_the_feeds_is_not_served(port, feeds, tmp_path):
    assert _get(port, False)[0] == 200
    (feeds / "a.atom").unlink()
    assert _get(port, False)[0] == 404
    (feeds / "a.atom").symlink_to(tmp_path / "secret.atom")  # outside the feeds directory
    reply = fetch(port, "/feeds/a.atom")
    assert reply.status == 404 and b"SECRET" not in reply.body


def test_a_served_cache_stays_bounded(reactor, feeds):
    cache = FeedCache(max_entries=2, max_bytes=4096)
    metrics = Metrics()
    root = Resource()
    root.putChild(b"feeds", FeedTree(feeds, metrics, max_age=60, cache=cache))
    for n in range(6):
        write_if_changed(feeds / f"{n}.atom", feed(10 * n + 1), gz=False)
    with serving(reactor, AccessLogSite(root)) as port:
        for _ in range(2):
            for n in range(6):
                for accept in ({}, {"Accept-Encoding": "gzip"}):
                    reply = fetch(port, f"/feeds/{n}.atom", headers=accept)
                    body = reply.body if not accept else gzip.decompress(reply.body)
                    assert (reply.status, body) == (200, feed(10 * n + 1))
                    assert len(cache) <= 2 and cache.held_bytes <= 4096
    assert len(cache) == 2


def _feed_counts(metrics: Metrics) -> dict[tuple[str, str], float]:
    counts = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == "govkz_feed_requests_total":
                counts[(sample.labels["path_class"], sample.labels["code"])] = sample.value
    return counts


def test_every_cached_answer_is_counted_once(reactor, feeds):
    """Answers made at once (from the cache, 404, 405) are counted as they are made."""
    metrics = Metrics()
    root = Resource()
    root.putChild(b"feeds", FeedTree(feeds, metrics, max_age=60, cache=FeedCache()))
    requests = [
        ("GET", {}, 200),  # read from the file, kept
        ("GET", {}, 200),  # from the cache
        ("GET", {"Range": "bytes=0-9"}, 206),
        ("GET", {"Range": "bytes=99999-"}, 416),
        ("GET", {"Accept-Encoding": "gzip"}, 200),
        ("GET", {"If-None-Match": "*"}, 304),
        ("HEAD", {}, 200),
        ("POST", {}, 405),
    ]
    with serving(reactor, AccessLogSite(root)) as port:
        for method, headers, status in requests:
            assert fetch(port, "/feeds/a.atom", method=method, headers=headers).status == status
        assert fetch(port, "/feeds/missing.atom").status == 404
        counts = _feed_counts(metrics)  # read in the test thread after the last reply
    assert counts == {("atom", "200"): 4, ("atom", "206"): 1, ("atom", "416"): 1,
                      ("atom", "304"): 1, ("atom", "405"): 1, ("atom", "404"): 1}


class _StreamedRequest(DummyRequest):
    """A request whose pull producer the test drives after render returned, as the reactor
    would. (The served tests cannot stream: Twisted runs pull producers on the global reactor's
    cooperator, and this module's reactor is a private one.)"""

    producer: Any = None

    @property
    def code(self) -> int:
        return self.responseCode or 200

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None


@pytest.mark.parametrize(("range_", "status"), [(None, 200), ("bytes=0-9", 206),
                                               ("bytes=99999-", 416)])
def test_a_streamed_answer_is_counted_once_when_it_finishes(feeds, range_, status):
    metrics = Metrics()
    tree = FeedTree(feeds, metrics, max_age=60, cache=FeedCache(max_body=100))  # not kept
    request = _StreamedRequest([b"a.atom"])
    if range_:
        request.requestHeaders.setRawHeaders(b"range", [range_.encode()])
    assert tree.render(request) is NOT_DONE_YET
    assert _feed_counts(metrics) == {}  # still streaming
    while request.producer is not None:
        request.producer.resumeProducing()
    assert request.finished and request.code == status
    assert _feed_counts(metrics) == {("atom", str(status)): 1}


def test_a_failed_answer_is_counted_once_with_its_status(feeds, monkeypatch):
    metrics = Metrics()
    tree = FeedTree(feeds, metrics, max_age=60, cache=FeedCache(max_body=100))
    monkeypatch.setattr("scheduler.server.FeedFile.makeProducer", _fail)
    request = _StreamedRequest([b"a.atom"])
    with pytest.raises(RuntimeError):
        tree.render(request)
    # What server.Request.processingFailed does with it.
    request.setResponseCode(500)
    request.finish()
    assert _feed_counts(metrics) == {("atom", "500"): 1}


def _fail(*args: object) -> None:
    raise RuntimeError("injected")
