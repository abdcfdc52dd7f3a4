"""The daemon's HTTP server (twisted.web): feed files, the status page, metrics and health.

    /                 the reader's pages: / (agencies by kind), /agency/<slug>,
                      /item/<agency>/<id>, /search (scheduler/site_pages.py)
    /feeds/<path>     the .atom, .rss, .json (JSON Feed) and .opml files of the feeds directory
                      and its index.html (also /feeds/), nothing else
    /opml             <feeds>/index.opml
    /search.atom      a search as a feed, also .rss and .json (scheduler/search_feed.py)
    /status           the status page (?q= filters by name); /status.json the same as JSON
    /metrics          Prometheus text format 0.0.4
    /healthz          JSON {"status", "reason"}: 503 "fail" when the scheduler stopped, most
                      targets fail, nothing succeeded for 2 x max_interval or the data dir is
                      unreadable (scheduler/health.py); 200 "ok", or "serve-only" under `serve`

Feed files never touch the status provider, so old feeds stay available while the archive or the
scheduler is failing. Nothing here imports the reactor at import time: the daemon picks it.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, cast

from twisted.internet.interfaces import IListeningPort
from twisted.web import http, pages, server, static, util
from twisted.web.error import UnsupportedMethod
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource, Resource

from scheduler.feed_cache import FeedCache, FeedVersion, Segments, file_key
from scheduler.health import FAIL, Health
from scheduler.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from scheduler.metrics import Metrics
from scheduler.search_feed import add_search_feeds
from scheduler.site_pages import add_pages
from scheduler.status_page import (
    CONTENT_SECURITY_POLICY,
    StatusProvider,
    filter_agencies,
    render_status_html,
    status_json,
)

log = logging.getLogger(__name__)
access_log = logging.getLogger(__name__ + ".access")

FEED_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",  # JSON Feed 1.1
    ".html": "text/html; charset=utf-8",  # the directory's index.html, the feed writer's
}
OPML_INDEX = "index.opml"
FEEDS_INDEX = "index.html"  # answers /feeds/ (crawler/feed_index.py writes it)
HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"

# Limits on a request head, the request line included, counted without line ends. Past them the
# answer is 431 (414 for an over-long request line) and the connection is closed.
MAX_HEADER_LINE = 16 * 1024  # one line; a folded continuation line counts on its own
MAX_HEADERS_SIZE = 64 * 1024  # all lines of one request head
MAX_HEADERS = 100  # header fields of one request
REJECT_LINGER = 5.0  # seconds a rejected client gets to stop sending before the hard close


# --- feed files ----------------------------------------------------------------------------------


def resolve_feed(root: Path, segments: list[bytes]) -> Path | None:
    """The feed file a URL path (already split and percent-decoded by Twisted) names, or None.

    Refuses empty, dot and dot-dot segments, hidden files (the feed writer's temporary files),
    encoded separators and NUL bytes, anything whose real path (symlinks followed) leaves `root`,
    directories, and files that are not feeds.
    """
    names = []
    for segment in segments:
        try:
            name = segment.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not name or name.startswith(".") or any(c in name for c in "/\\\x00"):
            return None
        names.append(name)
    if not names or os.path.splitext(names[-1])[1] not in FEED_TYPES:
        return None  # not even named like a feed: no need to look at the disk
    # os.path rather than pathlib: this runs on every request, and the objects cost as much as
    # the lstat calls.
    try:
        base = os.path.realpath(root, strict=True)
        target = os.path.realpath(os.path.join(base, *names), strict=True)
        st = os.stat(target)
    except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
        return None
    inside = target.startswith(base.rstrip(os.sep) + os.sep)
    if not inside or not stat.S_ISREG(st.st_mode) or os.path.splitext(target)[1] not in FEED_TYPES:
        return None
    return Path(target)


def accepts_gzip(header: bytes | None) -> bool:
    """Whether an Accept-Encoding value allows gzip (q-values honoured, `gzip;q=0` refuses)."""
    best: float | None = None
    wildcard = 0.0
    for part in (header or b"").split(b","):
        coding, _, params = part.partition(b";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params.split(b";"):
            key, _, value = param.partition(b"=")
            if key.strip().lower() == b"q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if coding in (b"gzip", b"x-gzip"):
            best = max(best or 0.0, q)
        elif coding == b"*":
            wildcard = q
    return (wildcard if best is None else best) > 0


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """RFC 9110 weak comparison against a comma-separated If-None-Match list.

    (http.Request.setETag splits the list on whitespace, so `"a", "b"` would not match "a".)
    """
    if if_none_match.strip() == b"*":
        return True
    tags = (t.strip().removeprefix(b"W/") for t in if_none_match.split(b","))
    return etag.removeprefix(b"W/") in tags


def plan_range(ranges: Sequence[tuple[int | None, int | None]], size: int) -> tuple[int, int, int]:
    """How to answer the parsed Range `ranges` of a `size`-byte file: (status, offset, length).

    Never multipart: a client asking for many ranges gets at most the file's size. The rule:
    ranges that miss the file are dropped; none left is 416; if the rest overlap or touch, the
    one span covering exactly them is a 206 (RFC 9110 §15.3.7 lets a server coalesce them);
    if they leave a gap it is 200 with the whole file (§14.2 lets a server ignore Range), as is
    an empty list (no or malformed Range). A suffix longer than the file is the whole file.
    """
    if not ranges:
        return http.OK, 0, size
    spans = []
    for start, end in ranges:
        if start is None:  # "-N": the last N bytes (_parseRangeHeader sets one of the two)
            start, end = max(size - (end or 0), 0), size - 1
        else:
            end = size - 1 if end is None else min(end, size - 1)
        if start <= end:  # else it starts past the end of the file, or asks for its last 0
            spans.append((start, end))
    if not spans:
        return http.REQUESTED_RANGE_NOT_SATISFIABLE, 0, 0
    spans.sort()
    first, last = spans[0]
    for start, end in spans[1:]:
        if start > last + 1:
            return http.OK, 0, size
        last = max(last, end)
    return http.PARTIAL_CONTENT, first, last - first + 1


def precompressed(path: str, mtime_ns: int) -> bytes | None:
    """The bytes of `path`.gz, the feed writer's gzip copy of the file, or None when it is
    missing, not a regular file, or stale: the writer gives the copy the feed's own mtime
    (crawler.feeds.write_if_changed), so any other mtime is another version's."""
    try:
        fd = os.open(path + ".gz", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_mtime_ns != mtime_ns:
            return None  # a directory opens too: only a regular file is a copy
        with os.fdopen(fd, "rb", closefd=False) as gz:
            return gz.read()
    except OSError:
        return None
    finally:
        os.close(fd)


def open_feed(path: str) -> IO[bytes]:
    # The path is already resolved; O_NOFOLLOW stops a symlink swapped in since then.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return os.fdopen(fd, "rb")


def parse_ranges(header: bytes | None) -> list[tuple[int | None, int | None]]:
    """The ranges of a Range header as static.File parses them; none when absent or malformed
    (ignored, as static.File does)."""
    if header is None:
        return []
    try:
        # static.File's parser, which reads nothing of the instance.
        return cast(list, static.File._parseRangeHeader(cast(Any, None), header))
    except ValueError:
        return []


class FeedFile(static.File):
    """A feed file too big to keep in the FeedCache, streamed from its open descriptor with
    static.File's producers and plan_range choosing what to send."""

    def __init__(self, version: FeedVersion) -> None:
        super().__init__(version.path)
        self.type = version.content_type.decode()
        self.encoding = None
        self._size = version.size

    def getFileSize(self) -> int:
        return self._size

    def makeProducer(
        self, request: server.Request, fileForReading: IO[bytes]
    ) -> static.StaticProducer:
        """static.File's producers and headers, with plan_range choosing what to send.

        static.File's own choice answers several ranges with multipart/byteranges, one part per
        range even when they overlap (100 x "0-" sent the file 100 times); its multipart producer
        crashes on some part layouts and never closes the file; a suffix longer than the file
        makes it seek before the start; and its log line for a non-UTF-8 Range raises.
        """
        code, offset, length = plan_range(
            parse_ranges(request.getHeader(b"range")), self.getFileSize()
        )
        request.setResponseCode(code)
        if code == http.PARTIAL_CONTENT:
            request.setHeader(b"content-range", self._contentRange(offset, length))
        elif code == http.REQUESTED_RANGE_NOT_SATISFIABLE:
            request.setHeader(b"content-range", b"bytes */%d" % self.getFileSize())
        self._setContentHeaders(request, length)
        if code == http.OK:
            # Reads to EOF rather than `length` bytes, so a file cut short cannot stall it.
            return static.NoRangeStaticProducer(request, fileForReading)
        return static.SingleRangeStaticProducer(request, fileForReading, offset, length)


def _not_modified(request: server.Request, etag: bytes, mtime: int) -> bool:
    # RFC 9110 §13.2.2: If-None-Match, when present, decides alone.
    if_none_match = request.getHeader(b"if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    since = request.getHeader(b"if-modified-since")
    if not since:
        return False
    try:
        return mtime <= http.stringToDatetime(since.split(b";", 1)[0])
    except (ValueError, IndexError):  # IndexError: an empty date, as in "If-Modified-Since: ;"
        return False


# What a feed answers to (static.File's list): any other method is a 405 naming them.
FEED_METHODS = (b"HEAD", b"GET")


class FeedTree(Resource):
    """/feeds/...: the rest of the URL path names a file inside the feeds directory.

    With `fixed`, serves that one file and nothing below it (/opml).

    Feeds get what static.File lacks: ETag, RFC-correct conditional GET, caching headers, and
    gzip. Gzip is done here rather than with GzipEncoderFactory: in Twisted 26.10 its encoder
    writes the gzip header and trailer after the headers of HEAD and 304 responses, which
    corrupts keep-alive connections, and it cannot give the gzipped variant a Content-Length or
    its own ETag.

    Every answer comes from one FeedVersion: its headers and bodies were all taken from one open
    descriptor and its fstat, so they describe the same bytes even while the feed writer
    replaces the file. A version the cache holds, still current and with the body asked for,
    answers without opening the file; anything else opens it and answers from that descriptor.
    """

    isLeaf = True

    def __init__(
        self, root: Path, metrics: Metrics, *, max_age: int, fixed: str | None = None,
        cache: FeedCache | None = None,
    ):
        super().__init__()
        self._root = root
        self._metrics = metrics
        self._cache_control = b"public, max-age=%d" % max_age
        self._fixed = fixed
        self._cache = FeedCache() if cache is None else cache

    def render(self, request: server.Request) -> bytes | int:
        segments = list(request.postpath or [])
        if self._fixed is not None:
            segments = [self._fixed.encode()] if not segments else [b""]
        elif not segments:
            # The directory is its index.html; /feeds goes to /feeds/ so its relative links work.
            if resolve_feed(self._root, [FEEDS_INDEX.encode()]) is not None:
                return util.redirectTo(request.path + b"/", request)
            segments = [FEEDS_INDEX.encode()]
        elif segments == [b""]:
            segments = [FEEDS_INDEX.encode()]
        path_class = _path_class(segments)
        try:
            answer = self._serve(request, segments)
        except BaseException:
            self._count_when_finished(request, path_class)  # the 405 or 500 Twisted answers
            raise
        if answer is server.NOT_DONE_YET and not request.finished:
            self._count_when_finished(request, path_class)  # a producer is streaming it
        else:
            # Bytes, which the server writes at once with this code, or a 304 already finished:
            # no Deferred needed to learn the outcome.
            self._metrics.record_feed_request(path_class, request.code)
        return answer

    def _count_when_finished(self, request: server.Request, path_class: str) -> None:
        request.notifyFinish().addBoth(
            lambda _: self._metrics.record_feed_request(path_class, request.code)
        )

    def _serve(self, request: server.Request, segments: list[bytes]) -> bytes | int:
        if request.method not in FEED_METHODS:
            if resolve_feed(self._root, segments) is None:
                return pages.notFound().render(request)
            raise UnsupportedMethod(FEED_METHODS)
        url = tuple(segments)
        gzipped = accepts_gzip(request.getHeader(b"accept-encoding"))
        version = self._cache.lookup(url)
        if version is not None:
            etag = version.gzip_etag if gzipped else version.etag
            not_modified = _not_modified(request, etag, version.mtime)
            has_body = version.gzipped if gzipped else version.body
            if not_modified or has_body is not None or (not gzipped and request.method == b"HEAD"):
                return self._respond(request, url, version, None, gzipped, not_modified)
        target = resolve_feed(self._root, segments)
        if target is None:
            return pages.notFound().render(request)
        try:
            fh = open_feed(str(target))
        except OSError:
            return pages.notFound().render(request)
        try:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                fh.close()
                return pages.notFound().render(request)
            if version is None or version.key != file_key(st) or version.path != str(target):
                version = FeedVersion.of(str(target), st, FEED_TYPES[target.suffix])
                url_path = os.path.join(self._root, *(s.decode("utf-8") for s in segments))
                self._cache.remember(url, url_path, version)
            return self._respond(request, url, version, fh, gzipped, None)
        except BaseException:
            # Whatever failed, the handle must not outlive the request (a 500 follows). Closing
            # it again after a producer did is harmless.
            fh.close()
            raise

    def _respond(
        self, request: server.Request, url: Segments, version: FeedVersion,
        fh: IO[bytes] | None, gzipped: bool, not_modified: bool | None,
    ) -> bytes | int:
        """The answer `version` gives `request`. `fh`, its open descriptor, is there whenever
        the answer needs a body the version does not hold, and is closed here or by a producer."""
        etag = version.gzip_etag if gzipped else version.etag
        request.setHeader(b"etag", etag)
        request.setHeader(b"last-modified", version.last_modified)
        request.setHeader(b"cache-control", self._cache_control)
        request.setHeader(b"vary", b"Accept-Encoding")
        if not_modified is None:
            not_modified = _not_modified(request, etag, version.mtime)
        if not_modified:
            _close(fh)
            request.setResponseCode(http.NOT_MODIFIED)
            # Finishing here keeps the server from adding "Content-Length: 0" to the 304.
            request.finish()
            return server.NOT_DONE_YET
        if gzipped:
            body = version.gzipped
            if body is None:
                assert fh is not None  # _serve opens the file when the body is missing
                with fh:
                    body = precompressed(version.path, version.mtime_ns)
                    if body is None:
                        # mtime=0 makes the bytes a function of the content, so the strong ETag
                        # holds (and they are the writer's .gz bytes: same level, same header).
                        body = gzip.compress(fh.read(), compresslevel=6, mtime=0)
                self._cache.keep_body(url, version, body, gzipped=True)
            else:
                _close(fh)
            request.setHeader(b"content-type", version.content_type)
            request.setHeader(b"content-encoding", b"gzip")
            request.setHeader(b"content-length", b"%d" % len(body))
            return b"" if request.method == b"HEAD" else body
        request.setHeader(b"accept-ranges", b"bytes")
        if request.method == b"HEAD":
            _close(fh)
            request.setHeader(b"content-length", b"%d" % version.size)
            request.setHeader(b"content-type", version.content_type)
            return b""
        body = version.body
        if body is None and fh is not None and version.size <= self._cache.max_body:
            body = _read_whole(fh, version)
            if body is not None:
                self._cache.keep_body(url, version, body, gzipped=False)
        if body is None:
            assert fh is not None  # _serve opens the file when the body is missing
            # The producer closes fh when done or cut off.
            FeedFile(version).makeProducer(request, fh).start()
            return server.NOT_DONE_YET
        _close(fh)
        code, offset, length = plan_range(parse_ranges(request.getHeader(b"range")), version.size)
        request.setResponseCode(code)
        if code == http.PARTIAL_CONTENT:
            request.setHeader(
                b"content-range", b"bytes %d-%d/%d" % (offset, offset + length - 1, version.size)
            )
        elif code == http.REQUESTED_RANGE_NOT_SATISFIABLE:
            request.setHeader(b"content-range", b"bytes */%d" % version.size)
        request.setHeader(b"content-type", version.content_type)
        return body[offset : offset + length]  # the server sets Content-Length: `length`


def _read_whole(fh: IO[bytes], version: FeedVersion) -> bytes | None:
    """The file's bytes if they are exactly `version`'s (not written to in place meanwhile);
    else None, with `fh` back at the start for a producer."""
    data = fh.read()
    if len(data) == version.size and file_key(os.fstat(fh.fileno())) == version.key:
        return data
    fh.seek(0)
    return None


def _close(fh: IO[bytes] | None) -> None:
    if fh is not None:
        fh.close()


def _path_class(segments: list[bytes]) -> str:
    """The metrics label of a feed request: the feed type it asks for, or "other"."""
    suffix = os.path.splitext(segments[-1].decode("utf-8", "replace"))[1] if segments else ""
    return suffix[1:] if suffix in FEED_TYPES else "other"


# --- pages ---------------------------------------------------------------------------------------


def _answer(
    request: server.Request, body: str | bytes, content_type: str, code: int = 200
) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", content_type.encode())
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"x-content-type-options", b"nosniff")
    return body.encode("utf-8") if isinstance(body, str) else body


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1) + "\n"


class _Page(Resource):
    """A page with nothing below it (/status/x is a 404, with Twisted's escaping error page)."""

    def getChild(self, path: bytes, request: server.Request) -> IResource:
        return pages.notFound()


class StatusPage(_Page):
    """/status (HTML) or /status.json; ?q= filters by agency name or slug."""

    def __init__(self, provider: StatusProvider, *, as_json: bool) -> None:
        super().__init__()
        self._provider = provider
        self._as_json = as_json

    def render_GET(self, request: server.Request) -> bytes:
        query = request.args.get(b"q", [b""])[0].decode("utf-8", "replace")
        try:
            agencies = self._provider.agencies_status()
            # The summary line and incidents, from a provider that has them (ArchiveStatus).
            overview_of = getattr(self._provider, "overview", None)
            overview = overview_of() if overview_of is not None else None
        except Exception as exc:  # any provider failure: the page says so instead of a 500
            log.exception("the status provider failed")
            if self._as_json:
                return _answer(request, _json({"error": str(exc)}), JSON, 503)
            page = pages.errorPage(503, "Status unavailable", str(exc))
            return cast(bytes, page.render(request))
        shown = filter_agencies(agencies, query)
        if self._as_json:
            return _answer(request, _json(status_json(shown, overview=overview)), JSON)
        request.setHeader(b"content-security-policy", CONTENT_SECURITY_POLICY.encode())
        html = render_status_html(shown, query=query, total=len(agencies), overview=overview)
        return _answer(request, html, HTML)


class MetricsPage(_Page):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: server.Request) -> bytes:
        return _answer(request, self._metrics.render(), METRICS_CONTENT_TYPE)


class HealthPage(_Page):
    def __init__(self, provider: StatusProvider, data_dir: Path) -> None:
        super().__init__()
        self._provider = provider
        self._data_dir = data_dir

    def render_GET(self, request: server.Request) -> bytes:
        """{"status": "ok" | "serve-only" (200) | "fail" (503), "reason": ..., ...}: the
        verdict of scheduler/health.py, or of a provider's (healthy, detail) pair."""
        try:
            health = Health.of(self._provider.health())
        except Exception as exc:  # a health check that raises is an unhealthy daemon
            health = Health(FAIL, f"health check failed: {exc}")
        if not _readable_dir(self._data_dir):
            health = Health(FAIL, f"data directory not readable: {self._data_dir}")
        return _answer(request, _json(health.to_json()), JSON, health.code)


def _readable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.R_OK | os.X_OK)


# --- site ----------------------------------------------------------------------------------------


class BoundedHTTPChannel(http.HTTPChannel):
    """An HTTPChannel that answers a request head over the limits above with 431 (414 when it is
    the request line), where Twisted would answer a bare 400 or drop the connection silently.

    The checks run just before Twisted's own, with its (documented) counters, so its 400 paths
    are never reached for size.
    """

    MAX_LENGTH = MAX_HEADER_LINE  # LineReceiver's limit: calls lineLengthExceeded
    totalHeadersSize = MAX_HEADERS_SIZE
    maxHeaders = MAX_HEADERS
    _rejected = False

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        """http.HTTPChannel's bytes in one piece: its writeSequence of some 40 fragments per
        answer, each checked by the transport, cost more than building the head here."""
        if not isinstance(headers, Headers):
            super().writeHeaders(version, code, reason, headers)  # it sanitizes other kinds
            return
        head = [b"%s %s %s\r\n" % (version, code, reason)]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                head.append(b"%s: %s\r\n" % (name, value))
        head.append(b"\r\n")
        cast(Any, self.transport).write(b"".join(head))

    def dataReceived(self, data: bytes) -> None:
        if not self._rejected:  # after a rejection, input is read only to be thrown away
            super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._reject(431)
        else:
            super().lineReceived(line)

    def headerReceived(self, line: bytes) -> bool:
        if self._receivedHeaderCount >= self.maxHeaders:
            self._reject(431)
            return False
        return super().headerReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        # Nothing of this request counted yet: the over-long line is its request line.
        self._reject(414 if self._receivedHeaderSize == 0 else 431)

    def _reject(self, code: int) -> None:
        self._rejected = True
        self.clearLineBuffer()
        # A connected TCP transport: ITCPTransport and IConsumer (the stubs type it as neither).
        transport = cast(Any, self.transport)
        reason = b"URI Too Long" if code == 414 else b"Request Header Fields Too Large"
        body = b"%s\n" % reason
        transport.write(
            b"HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (code, reason, len(body), body)
        )
        # Half-close rather than close (RFC 9112 §9.6): closing with the rest of the client's
        # request unread makes the kernel send a reset, which can destroy the answer before the
        # client reads it. The client sees the end of the answer; the timeout (not reset by the
        # discarded input) closes the connection if the client does not.
        # Else, if an earlier answer made the transport pause this channel, the half-close would
        # wait for a resume that never comes.
        transport.unregisterProducer()
        transport.loseWriteConnection()
        self.setTimeout(REJECT_LINGER)
        access_log.info("%s request head rejected: %d", _client(transport.getPeer()), code)


class AccessLogSite(server.Site):
    """A Site that writes one access line per request to Python logging instead of Twisted's
    log, and stays quiet about starting and stopping."""

    noisy = False
    displayTracebacks = False
    # The plain channel, not Twisted's wrapper that may switch to HTTP/2, which only happens
    # over TLS and listen() serves plain TCP.
    protocol = BoundedHTTPChannel  # type: ignore[assignment]  # a channel class is a factory

    def log(self, request: http.Request) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return  # the usual case (WARNING and up): no line, so nothing to format per request
        client = _client(request.getClientAddress())
        agent = request.getHeader(b"user-agent") or b"-"
        access_log.info(
            '%s "%s %s %s" %d %d "%s"',
            client,
            request.method.decode("ascii", "backslashreplace"),
            request.uri.decode("ascii", "backslashreplace"),
            request.clientproto.decode("ascii", "backslashreplace"),
            request.code,
            request.sentLength,
            agent.decode("ascii", "backslashreplace"),
        )


def _client(address: object) -> str:
    return getattr(address, "host", "-")


def build_site(
    feeds_dir: Path, provider: StatusProvider, metrics: Metrics, *, cache_max_age: int = 300
) -> server.Site:
    """The whole HTTP interface of the daemon, ready for listen()."""
    feeds_dir = Path(feeds_dir)
    root = _Page()
    add_pages(root, provider)  # /, /agency/…, /item/…, /search (scheduler/site_pages.py)
    add_search_feeds(root, provider, max_age=cache_max_age)  # /search.atom|rss|json
    cache = FeedCache()  # one for both trees: /opml is /feeds/index.opml
    root.putChild(b"feeds", FeedTree(feeds_dir, metrics, max_age=cache_max_age, cache=cache))
    root.putChild(
        b"opml", FeedTree(feeds_dir, metrics, max_age=cache_max_age, fixed=OPML_INDEX, cache=cache)
    )
    root.putChild(b"status", StatusPage(provider, as_json=False))
    root.putChild(b"status.json", StatusPage(provider, as_json=True))
    root.putChild(b"metrics", MetricsPage(metrics))
    root.putChild(b"healthz", HealthPage(provider, feeds_dir.parent))
    return AccessLogSite(root)


def listen(
    site: server.Site, host: str = "127.0.0.1", port: int = 8080, *, reactor: Any = None
) -> IListeningPort:
    """Start serving `site` on host:port (port 0 picks a free one) with the running reactor."""
    if reactor is None:
        # Imported here: importing it installs the default reactor, which is the caller's choice.
        from twisted.internet import reactor
    return reactor.listenTCP(port, site, interface=host)
