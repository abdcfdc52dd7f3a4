"""The daemon's HTTP server, served for real on 127.0.0.1 by a reactor running in a thread.

The reactor cannot be restarted, so this module runs it once (module scope) and talks to it with
http.client from the test thread; nothing waits on time, every step waits on a reply.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.threads import blockingCallFromThread
from web_helpers import fetch, read, serving

from scheduler.metrics import Metrics
from scheduler.server import (
    MAX_HEADER_LINE,
    MAX_HEADERS,
    MAX_HEADERS_SIZE,
    accepts_gzip,
    build_site,
    etag_matches,
    listen,
    plan_range,
)
from scheduler.status_page import AgencyStatus, relative

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
ATOM = (
    "<?xml version='1.0' encoding='UTF-8'?>\n<feed xmlns='http://www.w3.org/2005/Atom'>"
    + "<entry><title>Жаңалық — новость</title></entry>" * 200
    + "</feed>\n"
).encode()
BIG = ATOM * 6  # over 64 KiB, where static.File's multipart producer crashed
RSS = b"<?xml version='1.0'?><rss version='2.0'><channel><title>r</title></channel></rss>\n"
OPML = b"<?xml version='1.0'?><opml version='2.0'><head/><body/></opml>\n"
SECRET = b"SECRET-ARCHIVE-BYTES"
EVIL = "<script>alert('x')</script>"


@dataclass
class FakeProvider:
    agencies: list[AgencyStatus] = field(default_factory=list)
    now: datetime = NOW  # the moment the sample times are relative to
    healthy: tuple[bool, str] = (True, "scheduler running")
    fail_with: Exception | None = None

    def agencies_status(self) -> list[AgencyStatus]:
        if self.fail_with:
            raise self.fail_with
        return self.agencies

    def health(self) -> tuple[bool, str]:
        if self.fail_with:
            raise self.fail_with
        return self.healthy


def sample_agencies(now: datetime) -> list[AgencyStatus]:
    return [
        AgencyStatus(
            slug="astana",
            name="Акимат города Астаны",
            enabled=True,
            langs=("ru", "kk"),
            # Half a unit off the round value, so the relative text holds while the test runs.
            last_success=now - timedelta(minutes=5, seconds=30),
            items=120,
            next_crawl=now + timedelta(hours=1, minutes=30),
            feeds=("astana.ru.atom", "astana.ru.rss"),
        ),
        AgencyStatus(
            slug="evil",
            name=f"Evil {EVIL}",
            enabled=True,
            langs=("en",),
            last_error=f"LayoutChanged: {EVIL}",
            last_error_at=now - timedelta(hours=2),
            consecutive_failures=3,
            items=0,
        ),
        AgencyStatus(slug="mfa-berlin", name="Embassy in Berlin", enabled=False),
    ]


# --- the server ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reactor() -> Iterator[object]:
    """The global reactor (not tests/conftest.py's private one): listen's default is under test."""
    from twisted.internet import reactor

    if reactor.running:  # another module already runs it in a thread: share it
        yield reactor
        return
    started = threading.Event()
    reactor.callWhenRunning(started.set)
    thread = threading.Thread(
        target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
    )
    thread.start()
    assert started.wait(30), "the reactor did not start"
    yield reactor
    reactor.callFromThread(reactor.stop)
    thread.join(30)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    (data / "news.db").write_bytes(SECRET)
    (data / "secret.atom").write_bytes(SECRET)
    feeds = data / "feeds"
    (feeds / "sub").mkdir(parents=True)
    (feeds / "all.atom").write_bytes(ATOM)
    (feeds / "big.atom").write_bytes(BIG)
    (feeds / "astana.ru.rss").write_bytes(RSS)
    (feeds / "index.opml").write_bytes(OPML)
    (feeds / "sub" / "nested.atom").write_bytes(ATOM)
    (feeds / ".all.atom.tmp").write_bytes(SECRET)
    (feeds / ".hidden.atom").write_bytes(SECRET)
    (feeds / "notes.txt").write_bytes(SECRET)
    (feeds / "outside.atom").symlink_to(data / "secret.atom")
    (feeds / "inside.atom").symlink_to(feeds / "all.atom")
    return data


@pytest.fixture(scope="module")
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture(autouse=True)
def reset_provider(provider: FakeProvider) -> None:
    # Each test builds its sample just before its requests, so "5 min ago" holds while it runs.
    provider.now = datetime.now(UTC).replace(microsecond=0)
    provider.agencies = sample_agencies(provider.now)
    provider.healthy = (True, "scheduler running")
    provider.fail_with = None


@pytest.fixture(scope="module")
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture(scope="module")
def port(reactor, data_dir: Path, provider: FakeProvider, metrics: Metrics) -> Iterator[int]:
    site = build_site(data_dir / "feeds", provider, metrics)
    with serving(reactor, site) as number:
        yield number


# --- feed files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "content"),
    [
        ("/feeds/all.atom", "application/atom+xml; charset=utf-8", ATOM),
        ("/feeds/astana.ru.rss", "application/rss+xml; charset=utf-8", RSS),
        ("/feeds/index.opml", "text/x-opml; charset=utf-8", OPML),
        ("/opml", "text/x-opml; charset=utf-8", OPML),
        ("/feeds/sub/nested.atom", "application/atom+xml; charset=utf-8", ATOM),
        ("/feeds/inside.atom", "application/atom+xml; charset=utf-8", ATOM),
    ],
)
def test_feed_files_are_served_with_their_type(port, path, content_type, content):
    reply = fetch(port, path)
    assert reply.status == 200
    assert reply.header("Content-Type") == content_type
    assert reply.body == content
    assert reply.header("Content-Length") == str(len(content))
    assert reply.header("Content-Encoding") is None


def test_feed_has_validators_and_cache_headers(port, data_dir):
    reply = fetch(port, "/feeds/all.atom")
    etag = reply.header("ETag")
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    mtime = (data_dir / "feeds" / "all.atom").stat().st_mtime
    assert reply.header("Last-Modified") == formatdate(int(mtime), usegmt=True)
    assert reply.header("Cache-Control") == "public, max-age=300"
    assert reply.header("Vary") == "Accept-Encoding"
    assert fetch(port, "/feeds/all.atom").header("ETag") == etag  # stable


def test_etag_changes_when_the_file_changes(port, data_dir):
    path = data_dir / "feeds" / "astana.ru.rss"
    before = fetch(port, "/feeds/astana.ru.rss").header("ETag")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = fetch(port, "/feeds/astana.ru.rss")
    assert after.header("ETag") != before
    assert fetch(port, "/feeds/astana.ru.rss", headers={"If-None-Match": before}).status == 200


@pytest.mark.parametrize(
    "if_none_match", ["{etag}", "W/{etag}", '"other", {etag}', '"a","b",{etag}', "*"]
)
def test_if_none_match_gives_304_without_body(port, if_none_match):
    etag = fetch(port, "/feeds/all.atom").header("ETag")
    headers = {"If-None-Match": if_none_match.format(etag=etag)}
    reply = fetch(port, "/feeds/all.atom", headers=headers)
    assert reply.status == 304
    assert reply.body == b""
    assert reply.header("ETag") == etag
    assert reply.header("Cache-Control") == "public, max-age=300"
    assert reply.header("Content-Length") is None
    assert reply.header("Content-Type") is None


def test_if_modified_since_gives_304(port):
    last_modified = fetch(port, "/feeds/all.atom").header("Last-Modified")
    reply = fetch(port, "/feeds/all.atom", headers={"If-Modified-Since": last_modified})
    assert (reply.status, reply.body) == (304, b"")
    earlier = parsedate_to_datetime(last_modified) - timedelta(seconds=1)
    since = formatdate(earlier.timestamp(), usegmt=True)
    assert fetch(port, "/feeds/all.atom", headers={"If-Modified-Since": since}).status == 200


def test_an_empty_if_modified_since_is_ignored(port):
    # Twisted's date parser raises IndexError on it; that was a 500.
    assert fetch(port, "/feeds/all.atom", headers={"If-Modified-Since": ";"}).status == 200


def test_if_none_match_decides_over_if_modified_since(port):
    last_modified = fetch(port, "/feeds/all.atom").header("Last-Modified")
    headers = {"If-None-Match": '"stale"', "If-Modified-Since": last_modified}
    reply = fetch(port, "/feeds/all.atom", headers=headers)
    assert (reply.status, reply.body) == (200, ATOM)


def test_gzip_when_the_client_accepts_it(port):
    plain = fetch(port, "/feeds/all.atom")
    zipped = fetch(port, "/feeds/all.atom", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.status == 200
    assert zipped.header("Content-Encoding") == "gzip"
    assert zipped.header("Content-Type") == "application/atom+xml; charset=utf-8"
    assert zipped.header("Vary") == "Accept-Encoding"
    assert int(zipped.header("Content-Length")) == len(zipped.body) < len(ATOM)
    assert gzip.decompress(zipped.body) == ATOM
    # Each variant has its own ETag, and a validator only matches its own variant.
    assert zipped.header("ETag") not in (None, plain.header("ETag"))
    gz_headers = {"Accept-Encoding": "gzip"}
    assert (
        fetch(
            port, "/feeds/all.atom", headers={**gz_headers, "If-None-Match": zipped.header("ETag")}
        ).status
        == 304
    )
    assert (
        fetch(
            port, "/feeds/all.atom", headers={**gz_headers, "If-None-Match": plain.header("ETag")}
        ).status
        == 200
    )
    assert (
        fetch(port, "/feeds/all.atom", headers={"If-None-Match": zipped.header("ETag")}).status
        == 200
    )


@pytest.mark.parametrize("accept", [None, "identity", "gzip;q=0", "br", "*;q=0"])
def test_no_gzip_unless_accepted(port, accept):
    reply = fetch(port, "/feeds/all.atom", headers={"Accept-Encoding": accept} if accept else {})
    assert reply.header("Content-Encoding") is None
    assert reply.body == ATOM


@pytest.mark.parametrize("accept", [None, "gzip"])
def test_head_has_the_get_headers_and_no_body(port, accept):
    headers = {"Accept-Encoding": accept} if accept else {}
    get = fetch(port, "/feeds/all.atom", headers=headers)
    head = fetch(port, "/feeds/all.atom", method="HEAD", headers=headers)
    assert head.status == 200
    assert head.body == b""
    for name in (
        "Content-Type",
        "Content-Length",
        "Content-Encoding",
        "ETag",
        "Last-Modified",
        "Cache-Control",
        "Vary",
    ):
        assert head.header(name) == get.header(name), name


def test_keep_alive_survives_head_and_304_with_gzip(port):
    """Twisted's stock gzip encoder writes stray bytes after these; the next reply would break."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("HEAD", "/feeds/all.atom", headers={"Accept-Encoding": "gzip"})
        head = read(conn.getresponse())
        conn.request(
            "GET",
            "/feeds/all.atom",
            headers={"Accept-Encoding": "gzip", "If-None-Match": head.header("ETag")},
        )
        assert read(conn.getresponse()).status == 304
        conn.request("GET", "/feeds/astana.ru.rss")
        last = read(conn.getresponse())
        assert (last.status, last.body) == (200, RSS)
    finally:
        conn.close()


def test_range_requests_still_work(port):
    reply = fetch(port, "/feeds/all.atom", headers={"Range": "bytes=0-9"})
    assert reply.status == 206
    assert reply.body == ATOM[:10]


def test_feeds_are_read_only(port):
    reply = fetch(port, "/feeds/all.atom", method="POST")
    assert reply.status == 405
    assert "GET" in reply.header("Allow")


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/../news.db",
        "/feeds/%2e%2e/news.db",
        "/feeds/%2E%2E%2Fnews.db",
        "/feeds/..%2fnews.db",
        "/feeds/..%5cnews.db",
        "/feeds/sub/../../news.db",
        "/feeds/../secret.atom",
        "/feeds/%2e%2e/secret.atom",
        "/feeds//etc/passwd",
        "/feeds/%2Fetc%2Fpasswd",
        "/feeds/{abs_secret}",
        "/feeds/outside.atom",
        "/feeds/all.atom%00",
        "/feeds/all.atom%00.txt",
        "/feeds/%00",
        "/feeds/./all.atom",
        "/feeds/.hidden.atom",
        "/feeds/.all.atom.tmp",
        "/feeds/notes.txt",
        "/feeds/%ff.atom",
        "/../news.db",
        "/opml/../news.db",
    ],
)
def test_paths_outside_the_feeds_are_not_found(port, data_dir, path):
    from urllib.parse import quote

    path = path.format(abs_secret=quote(str(data_dir / "secret.atom"), safe=""))
    reply = fetch(port, path)
    assert reply.status == 404
    assert SECRET not in reply.body


@pytest.mark.parametrize(
    "path",
    [
        "/feeds",
        "/feeds/",
        "/feeds/sub",
        "/feeds/sub/",
        "/opml/",
        "/opml/index.opml",
        "/feeds/missing.atom",
        "/nope",
        "/favicon.ico",
        "/status/extra",
        "/status/",
        "/feeds.atom",
    ],
)
def test_directories_and_unknown_paths_are_not_found(port, path):
    assert fetch(port, path).status == 404


def test_feeds_do_not_need_the_status_provider(port, provider):
    provider.fail_with = RuntimeError("the archive is locked")
    assert fetch(port, "/feeds/all.atom").body == ATOM
    assert fetch(port, "/opml").body == OPML


def test_one_access_log_line_per_request(port, caplog):
    caplog.set_level(logging.INFO, logger="scheduler.server.access")
    fetch(port, "/feeds/all.atom?from=test", headers={"User-Agent": "newsboat/2.39"})
    lines = [r.getMessage() for r in caplog.records if r.name == "scheduler.server.access"]
    assert len(lines) == 1
    assert '"GET /feeds/all.atom?from=test HTTP/1.1" 200' in lines[0]
    assert lines[0].startswith("127.0.0.1 ") and lines[0].endswith('"newsboat/2.39"')


# --- hostile clients -----------------------------------------------------------------------------

N = len(BIG)


def byte_ranges(count: int, *, step: int, length: int) -> str:
    return "bytes=" + ",".join(f"{i * step}-{i * step + length - 1}" for i in range(count))


# (Range, status, the (offset, length) of BIG answered: None for all of it, () for nothing)
RANGE_CASES = [
    pytest.param("bytes=0-9", 206, (0, 10), id="one"),
    pytest.param("bytes=0-9,20-29", 200, None, id="two-disjoint"),
    pytest.param("bytes=0-9,10-19", 206, (0, 20), id="two-adjacent"),
    pytest.param("bytes=5-15,0-9", 206, (0, 16), id="two-overlapping"),
    pytest.param("bytes=" + ",".join(["0-"] * 100), 206, (0, N), id="100-overlapping"),
    pytest.param("bytes=" + ",".join(["0-"] * 300), 206, (0, N), id="300-overlapping"),
    pytest.param(byte_ranges(300, step=10, length=11), 206, (0, 3001), id="300-chain"),
    pytest.param(byte_ranges(300, step=20, length=10), 200, None, id="300-disjoint"),
    pytest.param("bytes=-100", 206, (N - 100, 100), id="suffix"),
    pytest.param("bytes=-999999", 206, (0, N), id="suffix-longer-than-the-file"),
    pytest.param("bytes=999999-", 416, (), id="unsatisfiable"),
    pytest.param("bytes=999999-,888888-", 416, (), id="all-unsatisfiable"),
    pytest.param("bytes=999999-,0-9", 206, (0, 10), id="one-unsatisfiable"),
    pytest.param("bytes=9-0", 200, None, id="malformed"),
    pytest.param("bytes=\xff", 200, None, id="malformed-not-utf8"),
    pytest.param("items=0-9", 200, None, id="other-unit"),
]


@pytest.mark.parametrize(("ranges", "status", "part"), RANGE_CASES)
def test_ranges_get_one_part_at_most_the_file(port, ranges, status, part):
    reply = fetch(port, "/feeds/big.atom", headers={"Range": ranges})
    assert reply.status == status
    assert reply.header("Content-Type") == "application/atom+xml; charset=utf-8"  # not multipart
    assert int(reply.header("Content-Length")) == len(reply.body) <= N
    assert reply.header("ETag") and reply.header("Accept-Ranges") == "bytes"
    if part is None:
        assert (reply.body, reply.header("Content-Range")) == (BIG, None)
    elif part == ():
        assert (reply.body, reply.header("Content-Range")) == (b"", f"bytes */{N}")
    else:
        offset, length = part
        assert reply.body == BIG[offset : offset + length]
        assert reply.header("Content-Range") == f"bytes {offset}-{offset + length - 1}/{N}"


@pytest.mark.parametrize(("ranges", "status", "part"), RANGE_CASES[::3])
def test_ranges_are_ignored_when_gzipped(port, ranges, status, part):
    # The gzip body is whole or nothing, as before: Range never applied to it.
    headers = {"Range": ranges, "Accept-Encoding": "gzip"}
    reply = fetch(port, "/feeds/big.atom", headers=headers)
    assert (reply.status, reply.header("Content-Encoding")) == (200, "gzip")
    assert reply.header("Content-Range") is None and reply.header("Accept-Ranges") is None
    assert gzip.decompress(reply.body) == BIG


def _fail(*args: object) -> None:
    raise RuntimeError("injected")


@pytest.mark.parametrize("fault", [None, "scheduler.server.FeedFile.makeProducer"])
def test_no_file_descriptor_leaks(reactor, port, monkeypatch, fault):
    """Hostile requests on one keep-alive connection: no socket opens or closes between the counts,
    so any difference would be a feed file left open."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/feeds/big.atom")
        assert read(conn.getresponse()).body == BIG
        sock, before = conn.sock, len(os.listdir("/proc/self/fd"))
        if fault:
            monkeypatch.setattr(fault, _fail)
        for _ in range(5):
            for case in RANGE_CASES:
                conn.request("GET", "/feeds/big.atom", headers={"Range": case.values[0]})
                assert read(conn.getresponse()).status == (500 if fault else case.values[1])
        # The producer closes the file before the last bytes reach the socket; this round trip
        # also lets the reactor finish what it was doing when the client got them.
        blockingCallFromThread(reactor, lambda: None)
        assert len(os.listdir("/proc/self/fd")) == before
        assert conn.sock is sock  # the same connection throughout
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [
        ([], (200, 0, 100)),
        ([(0, 9)], (206, 0, 10)),
        ([(0, None)], (206, 0, 100)),
        ([(90, 200)], (206, 90, 10)),
        ([(None, 10)], (206, 90, 10)),
        ([(None, 500)], (206, 0, 100)),
        ([(None, 0)], (416, 0, 0)),
        ([(100, None)], (416, 0, 0)),
        ([(0, 9), (10, 19)], (206, 0, 20)),
        ([(0, 9), (11, 19)], (200, 0, 100)),
        ([(50, 59), (0, 9), (5, 55)], (206, 0, 60)),
        ([(0, None)] * 300, (206, 0, 100)),
        ([(200, None), (0, 0)], (206, 0, 1)),
    ],
)
def test_plan_range(ranges, expected):
    assert plan_range(ranges, 100) == expected
    assert plan_range([(0, None)], 0)[0] == 416  # an empty file has no satisfiable range


BASE_HEAD = [b"GET /feeds/astana.ru.rss HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]


def request_head(lines: list[bytes], first: bytes = BASE_HEAD[0]) -> bytes:
    return b"\r\n".join([first, *BASE_HEAD[1:], *lines]) + b"\r\n\r\n"


def field(name: str, length: int) -> bytes:
    """A header line of exactly `length` bytes."""
    prefix = name.encode() + b": "
    assert length > len(prefix)
    return prefix + b"a" * (length - len(prefix))


def head_of_size(total: int) -> bytes:
    """A request head of `total` bytes, line ends not counted, with no line over the limit."""
    left, lines = total - sum(map(len, BASE_HEAD)), []
    while left:
        length = min(left, MAX_HEADER_LINE)
        lines.append(field(f"X-Fill-{len(lines)}", length))
        left -= length
    return request_head(lines)


def request_line(length: int) -> bytes:
    """A request line of exactly `length` bytes, for a feed that does not exist."""
    return b"GET /feeds/%s HTTP/1.1" % (b"a" * (length - len(b"GET /feeds/ HTTP/1.1")))


def headers(count: int) -> bytes:
    """A request head with `count` header fields."""
    return request_head([b"X-%d: a" % i for i in range(count - len(BASE_HEAD) + 1)])


def send_raw(port: int, data: bytes) -> bytes:
    """Send `data` and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        pytest.param(request_head([field("X-Big", MAX_HEADER_LINE + 1)]), 431, id="long-line"),
        pytest.param(request_head([field("X-Big", MAX_HEADER_LINE)]), 200, id="line-at-limit"),
        pytest.param(head_of_size(MAX_HEADERS_SIZE + 1), 431, id="large-head"),
        pytest.param(head_of_size(MAX_HEADERS_SIZE), 200, id="head-at-limit"),
        pytest.param(headers(MAX_HEADERS + 1), 431, id="many-fields"),
        pytest.param(headers(MAX_HEADERS), 200, id="fields-at-limit"),
        pytest.param(request_head([], request_line(MAX_HEADER_LINE + 1)), 414, id="long-uri"),
        pytest.param(request_head([], request_line(MAX_HEADER_LINE)), 404, id="uri-at-limit"),
    ],
)
def test_oversized_request_heads_get_431_and_a_close(port, head, status):
    answer = send_raw(port, head)  # it returns once the server has closed the connection
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:100]
    if status in (414, 431):
        response_head, _, body = answer.partition(b"\r\n\r\n")
        assert b"\r\nConnection: close" in response_head
        assert body.endswith(b"Too Large\n" if status == 431 else b"Too Long\n")


def test_431_after_a_good_request_on_the_same_connection(port):
    good = b"GET /feeds/astana.ru.rss HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    answer = send_raw(port, good + headers(MAX_HEADERS + 1))
    assert answer.startswith(b"HTTP/1.1 200 ") and RSS in answer
    assert answer.count(b"HTTP/1.1 ") == 2 and b"\r\n\r\nHTTP/1.1 431 " in answer.replace(RSS, b"")


# --- pages ---------------------------------------------------------------------------------------


VOID = {"meta", "link", "br", "input", "img", "hr"}


class PageParser(HTMLParser):
    """Collects what the tests look at, and checks every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.doctype = False
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.rows: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.inputs: list[dict[str, str | None]] = []
        self._text_into: list[str] | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "tr" and "data-search" in attributes:
            self.rows.append(attributes)
        if tag == "a":
            self.links.append(attributes["href"])
        if tag == "input":
            self.inputs.append(attributes)
        if tag in ("script", "style"):
            self._text_into = self.scripts if tag == "script" else self.styles
            self._text_into.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self._text_into = None
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")

    def handle_data(self, data: str) -> None:
        if self._text_into is not None:
            self._text_into[-1] += data


def parse_page(body: bytes) -> PageParser:
    parser = PageParser()
    parser.feed(body.decode("utf-8"))
    parser.close()
    assert parser.doctype
    assert parser.errors == [] and parser.stack == []
    return parser


def csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def test_index_links_the_main_pages(port):
    reply = fetch(port, "/")
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/html; charset=utf-8"
    assert {"/status", "/opml", "/feeds/all.atom"} <= set(parse_page(reply.body).links)


def test_status_page_lists_every_agency_and_escapes_text(port, provider):
    reply = fetch(port, "/status")
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/html; charset=utf-8"
    page = parse_page(reply.body)
    assert [row["data-search"] for row in page.rows] == [
        "акимат города астаны astana",
        f"evil {EVIL.lower()} evil",
        "embassy in berlin mfa-berlin",
    ]
    text = reply.body.decode()
    assert EVIL not in text  # only escaped
    assert "LayoutChanged: &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert len(page.scripts) == 1  # the page's own filter, nothing injected
    assert "/feeds/astana.ru.atom" in page.links and "/feeds/astana.ru.rss" in page.links
    assert "5 min ago" in text and "in 1 h" in text and "3 failure(s) in a row" in text
    last_success = (provider.now - timedelta(minutes=5, seconds=30)).isoformat()
    assert f'<time datetime="{last_success}"' in text
    assert [row["class"] for row in page.rows] == ["ok", "failing", "disabled"]


def test_status_page_policy_allows_exactly_its_own_script_and_style(port):
    reply = fetch(port, "/status")
    page = parse_page(reply.body)
    policy = reply.header("Content-Security-Policy")
    assert f"script-src {csp_hash(page.scripts[0])};" in policy
    assert f"style-src {csp_hash(page.styles[0])};" in policy
    assert "default-src 'none'" in policy


@pytest.mark.parametrize(
    ("query", "slugs"),
    [
        ("astana", ["astana"]),
        ("АКИМАТ", ["astana"]),
        ("  berlin ", ["mfa-berlin"]),
        ("", ["astana", "evil", "mfa-berlin"]),
        ("nothing-like-this", []),
    ],
)
def test_status_query_filters_server_side(port, query, slugs):
    from urllib.parse import quote

    page = parse_page(fetch(port, "/status?q=" + quote(query)).body)
    assert [row["data-search"].split()[-1] for row in page.rows] == slugs
    assert page.inputs[0]["value"] == query
    data = json.loads(fetch(port, "/status.json?q=" + quote(query)).body)
    assert [a["slug"] for a in data["agencies"]] == slugs


def test_status_query_is_escaped_in_the_form(port):
    from urllib.parse import quote

    reply = fetch(port, "/status?q=" + quote('"><script>x</script>'))
    page = parse_page(reply.body)
    assert page.inputs[0]["value"] == '"><script>x</script>'
    assert len(page.scripts) == 1


def test_status_json_has_the_same_data(port, provider):
    reply = fetch(port, "/status.json")
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json; charset=utf-8"
    data = json.loads(reply.body)
    astana, evil, berlin = data["agencies"]
    assert astana["name"] == "Акимат города Астаны" and astana["langs"] == ["ru", "kk"]
    now = provider.now
    assert datetime.fromisoformat(astana["last_success"]) == now - timedelta(minutes=5, seconds=30)
    assert datetime.fromisoformat(astana["next_crawl"]) == now + timedelta(hours=1, minutes=30)
    assert astana["feeds"][0] == {"path": "astana.ru.atom", "url": "/feeds/astana.ru.atom"}
    assert evil["last_error"] == f"LayoutChanged: {EVIL}"
    assert evil["consecutive_failures"] == 3 and evil["state"] == "failing"
    assert berlin["enabled"] is False and berlin["last_success"] is None
    assert datetime.fromisoformat(data["generated_at"]).tzinfo is not None


def test_status_reports_a_failing_provider(port, provider):
    provider.fail_with = RuntimeError(f"database is locked {EVIL}")
    page = fetch(port, "/status")
    assert page.status == 503
    assert b"database is locked" in page.body and EVIL.encode() not in page.body
    as_json = fetch(port, "/status.json")
    assert as_json.status == 503
    assert json.loads(as_json.body) == {"error": f"database is locked {EVIL}"}


# --- metrics and health --------------------------------------------------------------------------


def families(text: bytes) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text.decode())}


def test_metrics_page_parses_and_counts_feed_requests(port, metrics):
    metrics.record_crawl("astana", "success", requests=4, new=2, updated=1, errors=0)
    metrics.set_items("astana", 120)
    before = families(fetch(port, "/metrics").body)

    def feed_count(found: dict, path_class: str, code: str) -> float:
        return sum(
            s.value
            for s in found.get("govkz_feed_requests", [])
            if s.labels == {"path_class": path_class, "code": code}
        )

    fetch(port, "/feeds/all.atom")
    fetch(port, "/feeds/nope.rss")
    fetch(port, "/opml", headers={"If-None-Match": "*"})
    reply = fetch(port, "/metrics")
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    after = families(reply.body)
    assert feed_count(after, "atom", "200") == feed_count(before, "atom", "200") + 1
    assert feed_count(after, "rss", "404") == feed_count(before, "rss", "404") + 1
    assert feed_count(after, "opml", "304") == feed_count(before, "opml", "304") + 1
    assert after["govkz_up"][0].value == 1
    assert {"agency": "astana"} in [s.labels for s in after["govkz_items"]]
    assert any(
        s.labels == {"agency": "astana", "outcome": "success"} for s in after["govkz_crawls"]
    )


def test_healthz_ok(port):
    reply = fetch(port, "/healthz")
    assert reply.status == 200
    assert json.loads(reply.body) == {"status": "ok", "reason": "scheduler running"}


@pytest.mark.parametrize(
    ("healthy", "fail_with", "detail"),
    [
        ((False, "no crawl for 3 hours"), None, "no crawl for 3 hours"),
        ((True, "fine"), RuntimeError("boom"), "health check failed: boom"),
    ],
)
def test_healthz_unhealthy(port, provider, healthy, fail_with, detail):
    provider.healthy = healthy
    provider.fail_with = fail_with
    reply = fetch(port, "/healthz")
    assert reply.status == 503
    assert json.loads(reply.body) == {"status": "fail", "reason": detail}


def test_healthz_needs_a_readable_data_dir(reactor, tmp_path, provider):
    site = build_site(tmp_path / "missing" / "feeds", provider, Metrics())
    with serving(reactor, site) as number:
        reply = fetch(number, "/healthz")
    assert reply.status == 503
    assert "data directory not readable" in json.loads(reply.body)["reason"]


def test_cache_max_age_is_configurable(reactor, data_dir, provider):
    site = build_site(data_dir / "feeds", provider, Metrics(), cache_max_age=60)
    with serving(reactor, site) as number:
        assert fetch(number, "/feeds/all.atom").header("Cache-Control") == "public, max-age=60"


def test_listen_binds_loopback_by_default(reactor, data_dir, provider):
    site = build_site(data_dir / "feeds", provider, Metrics())
    port = blockingCallFromThread(reactor, lambda: listen(site, port=0))
    try:
        assert port.getHost().host == "127.0.0.1"
    finally:
        blockingCallFromThread(reactor, port.stopListening)


# --- pure helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        (b"", False),
        (b"gzip", True),
        (b"deflate, gzip;q=0.5", True),
        (b"GZIP", True),
        (b"x-gzip", True),
        (b"gzip;q=0", False),
        (b"gzip; q=0.0", False),
        (b"*", True),
        (b"*;q=0", False),
        (b"*, gzip;q=0", False),
        (b"br, identity", False),
        (b"gzip;q=bad", False),
    ],
)
def test_accepts_gzip(header, expected):
    assert accepts_gzip(header) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b'"a"', True),
        (b'W/"a"', True),
        (b'"b", "a"', True),
        (b'"b","a"', True),
        (b"*", True),
        (b'"b"', False),
        (b'"a-gzip"', False),
        (b"a", False),
    ],
)
def test_etag_matches(header, expected):
    assert etag_matches(header, b'"a"') is expected


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=-30), "just now"),
        (timedelta(minutes=-5), "5 min ago"),
        (timedelta(hours=2, minutes=5), "in 2 h"),
        (timedelta(days=-3), "3 d ago"),
    ],
)
def test_relative_time(delta, text):
    assert relative(NOW + delta, NOW) == text


def test_metrics_objects_do_not_share_state():
    one, two = Metrics(), Metrics()
    one.record_crawl("astana", "success", requests=3, new=1, updated=0, errors=0)
    two.record_crawl("astana", "failed", requests=1, new=0, updated=0, errors=2)
    first, second = families(one.render()), families(two.render())
    assert [s.value for s in first["govkz_crawl_requests"]] == [3]
    assert [s.value for s in second["govkz_crawl_errors"]] == [2]
    assert "govkz_last_success_timestamp_seconds" in first
    assert second.get("govkz_last_success_timestamp_seconds", []) == []


def test_metrics_last_success_only_moves_on_success():
    m = Metrics()
    at = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    m.record_crawl("astana", "ok", at=at)
    m.record_crawl("astana", "failed", at=at + timedelta(hours=1))
    samples = families(m.render())["govkz_last_success_timestamp_seconds"]
    assert [(s.labels, s.value) for s in samples] == [({"agency": "astana"}, at.timestamp())]


def test_metrics_reject_negative_counts():
    m = Metrics()
    with pytest.raises(ValueError, match="requests"):
        m.record_crawl("astana", "ok", requests=-1)
    with pytest.raises(ValueError):
        m.set_items("astana", -5)


# A stand-in for the few DOM calls the filter script makes: enough to run it outside a browser.
DOM_STUB = """
const rows = ROWS.map((search) => ({
  hidden: false, getAttribute(name) { return name === "data-search" ? search : null; },
}));
let onInput = null;
const box = { value: "", addEventListener(event, fn) { if (event === "input") onInput = fn; } };
const shown = { textContent: "" };
const table = { querySelectorAll() { return rows; } };
const byId = { q: box, agencies: table, shown };
globalThis.document = { getElementById(id) { return byId[id] || null; } };
SCRIPT
const initial = rows.map((r) => r.hidden);
box.value = TYPED;
onInput();
const hidden = rows.map((r) => r.hidden);
console.log(JSON.stringify({ initial, hidden, shown: shown.textContent }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize(
    ("typed", "hidden", "shown"),
    [
        ("  BERLIN ", [True, True, False], "1"),
        ("", [False, False, False], "3"),
        ("акимат", [False, True, True], "1"),
    ],
)
def test_filter_script_hides_rows_that_do_not_match(port, typed, hidden, shown):
    page = parse_page(fetch(port, "/status").body)
    program = (
        DOM_STUB.replace("ROWS", json.dumps([row["data-search"] for row in page.rows]))
        .replace("TYPED", json.dumps(typed))
        .replace("SCRIPT", page.scripts[0])
    )
    run = subprocess.run(["node", "-e", program], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    result = json.loads(run.stdout)
    assert result == {"initial": [False, False, False], "hidden": hidden, "shown": shown}
