"""What the embedded server knows about the feed files it served recently: one FeedVersion per
URL, bounded in entries and bytes, least recently used first out.

A version is keyed by its file's identity and version, (device, inode, size, mtime, ctime), taken
from the descriptor its headers and bodies were read from. A lookup is one stat of the URL's
path: when the file there is no longer exactly that version (the publisher renamed a new one over
it; it was touched, chmodded, removed or replaced by a symlink), the entry is dropped and the
caller resolves and reads the file afresh. So a cached answer never mixes one version's headers
with another's body, and a changed file is served new at once.

A hit skips resolve_feed's checks safely: the same inode at the same version is the file that
passed them, reached by the same URL.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

from twisted.web import http

Key = tuple[int, int, int, int, int]
Segments = tuple[bytes, ...]

MAX_ENTRIES = 512
MAX_BYTES = 16 * 1024 * 1024  # bodies held, both variants counted
# Identity bodies up to this size are kept; larger files are streamed from disk per request (only
# readers that refuse gzip ask for them, and ranges of big files are what a producer is for).
MAX_BODY = 64 * 1024


def file_key(st: os.stat_result) -> Key:
    """The identity and version of a file: what must match for a cached answer to be current.
    The ctime is there for changes that leave the mtime alone (permissions, links)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(eq=False)
class FeedVersion:
    """One version of one feed file: its validators and headers, and its bodies once read."""

    path: str  # the real path the URL resolved to
    key: Key
    content_type: bytes
    mtime: int  # whole seconds, as Last-Modified and If-Modified-Since count them
    last_modified: bytes
    etag: bytes
    gzip_etag: bytes  # each variant has its own strong ETag: the gzip bytes follow the file's
    body: bytes | None = None  # the file's bytes, when small enough to keep
    gzipped: bytes | None = None  # the gzip variant (the writer's .gz copy, or compressed here)

    @classmethod
    def of(cls, path: str, st: os.stat_result, content_type: str) -> FeedVersion:
        """The version `st` (the fstat of the descriptor the answer is read from) describes."""
        etag = b'"%x-%x' % (st.st_size, st.st_mtime_ns)
        mtime = int(st.st_mtime)
        return cls(path, file_key(st), content_type.encode(), mtime,
                   http.datetimeToString(mtime), etag + b'"', etag + b'-gzip"')

    @property
    def size(self) -> int:
        return self.key[2]

    @property
    def mtime_ns(self) -> int:
        return self.key[3]

    @property
    def cost(self) -> int:
        return len(self.body or b"") + len(self.gzipped or b"")


class FeedCache:
    """The FeedVersion of each recently served URL (its path segments), while it is current."""

    def __init__(
        self, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES,
        max_body: int = MAX_BODY,
    ) -> None:
        self.max_body = max_body
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Segments, tuple[str, FeedVersion]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def held_bytes(self) -> int:
        """The bytes of bodies held."""
        return self._bytes

    def lookup(self, segments: Segments) -> FeedVersion | None:
        """The version remembered for `segments`, if the file its URL names is still exactly it."""
        entry = self._entries.get(segments)
        if entry is None:
            return None
        url_path, version = entry
        try:
            current: Key | None = file_key(os.stat(url_path))
        except OSError:
            current = None
        if current != version.key:
            self._drop(segments)
            return None
        self._entries.move_to_end(segments)
        return version

    def remember(self, segments: Segments, url_path: str, version: FeedVersion) -> None:
        """`version` is what `url_path` (the URL's path joined under the feeds root: what a
        lookup stats) held when resolve_feed last checked it."""
        self._drop(segments)
        self._entries[segments] = (url_path, version)
        self._bytes += version.cost
        self._trim()

    def keep_body(self, segments: Segments, version: FeedVersion, body: bytes, *,
                  gzipped: bool) -> None:
        """Attach to `version` a body read from its own descriptor, within the bounds. When
        `segments` no longer holds that version (a newer one, or evicted), the bytes were only
        that request's."""
        entry = self._entries.get(segments)
        if entry is None or entry[1] is not version or len(body) > self._max_bytes:
            return
        if gzipped:
            old, version.gzipped = version.gzipped, body
        elif len(body) <= self.max_body:
            old, version.body = version.body, body
        else:
            return
        self._bytes += len(body) - len(old or b"")
        self._trim()

    def _drop(self, segments: Segments) -> None:
        entry = self._entries.pop(segments, None)
        if entry is not None:
            self._bytes -= entry[1].cost

    def _trim(self) -> None:
        while self._entries and (
            len(self._entries) > self._max_entries or self._bytes > self._max_bytes
        ):
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted.cost
