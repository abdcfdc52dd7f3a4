"""A search is a feed: `/search.atom?q=…&agency=…&lang=…`, `/search.rss`, `/search.json`.

A reader subscribes to "тендер" across all of gov.kz the way it subscribes to an agency: the
newest hits of Archive.search, rendered by crawler/feeds.py (render_atom, render_rss,
render_json) from entries built by feeds.entry_from_item, so a hit looks as it does in the
agency's own feed (same id, dates, body, translations).

Caching: a feed reader polls, so each answer carries an ETag (a digest of the document) and
Cache-Control; a conditional GET with a matching If-None-Match is a 304. The rendered document
is kept per (format, query, filters) together with the archive's change counter
(Archive.search_stamp): while nothing was stored, a poll costs neither a search nor a render.

Reads go through the status provider's Archive (one connection, on the reactor thread), as the
other pages do. A missing or empty q, an unknown language, a malformed agency slug or a query
that cannot run is a 400 with one line saying why; an archive that cannot be read, a 503.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode

from twisted.web import http, server
from twisted.web.resource import Resource

from crawler.feeds import (
    ATOM_TYPE,
    JSON_FEED_TYPE,
    RSS_TYPE,
    EntryData,
    FeedMeta,
    entry_from_item,
    render_atom,
    render_json,
    render_rss,
)
from crawler.items import LANGS, is_slug
from crawler.search import MAX_QUERY_CHARS, QueryError

log = logging.getLogger(__name__)

LIMIT = 50  # entries per search feed: as many as an agency's feed (GOVKZ_FEED_LIMIT's default)
CACHED = 256  # rendered searches kept
# (self URL, search) -> (archive stamp, ETag, body)
Cache = OrderedDict[tuple[str, "Search"], tuple[int, bytes, bytes]]
Renderer = Callable[[FeedMeta, Iterable[EntryData]], bytes]
FORMATS: dict[str, tuple[Renderer, str]] = {
    "atom": (render_atom, ATOM_TYPE),
    "rss": (render_rss, RSS_TYPE),
    "json": (render_json, JSON_FEED_TYPE),
}


class SearchArchive(Protocol):
    """What a search feed reads (crawler.store.Archive)."""

    def search(self, query: str, limit: int = 20, *, agency: str | None = None,
               lang: str | None = None) -> list[dict]: ...

    def translations(self, agency: str, item_id: int) -> dict[str, str]: ...

    def search_stamp(self) -> int: ...


@runtime_checkable
class SearchSource(Protocol):
    """A status provider with an archive behind it (scheduler/provider.py's ArchiveStatus)."""

    archive: Any


@dataclass(frozen=True)
class Search:
    """One search feed asked for: the query and its filters, as given (empty: no filter)."""

    query: str
    agency: str = ""
    lang: str = ""

    def problem(self) -> str | None:
        """Why this search cannot be answered, in one line; None when it can."""
        if not self.query.strip():
            return "missing search query: add ?q=words (e.g. /search.atom?q=тендер)"
        if len(self.query) > MAX_QUERY_CHARS:
            return f"the query is too long (over {MAX_QUERY_CHARS} characters)"
        if self.lang and self.lang not in LANGS:
            return f"unknown language {self.lang!r}: lang is one of {', '.join(LANGS)}"
        if self.agency and not is_slug(self.agency):
            return f"not an agency slug: {self.agency!r}"
        return None

    def query_string(self) -> str:
        params = [(k, v) for k, v in (("q", self.query), ("agency", self.agency),
                                      ("lang", self.lang)) if v]
        return urlencode(params)

    def title(self) -> str:
        where = " · ".join(part for part in (self.agency, self.lang) if part)
        return f"gov.kz search: {self.query}" + (f" ({where})" if where else "")


def _arg(request: server.Request, name: str) -> str:
    return request.args.get(name.encode(), [b""])[0].decode("utf-8", "replace").strip()


def _entries(archive: SearchArchive, search: Search) -> list[EntryData]:
    hits = archive.search(search.query, LIMIT, agency=search.agency or None,
                          lang=search.lang or None)
    entries = []
    for hit in hits:
        translations = archive.translations(hit["agency"], hit["id"])
        entry = entry_from_item(hit, author=hit.get("agency_name") or hit["agency"],
                                translations=translations)
        if entry is not None:  # an incomplete item is found, but not published
            entries.append(entry)
    return entries


class SearchFeed(Resource):
    """/search.{atom,rss,json}: one format; the cache is shared by the three."""

    isLeaf = True

    def __init__(self, source: SearchSource | None, fmt: str, *, max_age: int,
                 cache: Cache) -> None:
        super().__init__()
        self._source = source
        self._format = fmt
        self._max_age = max_age
        self._cache = cache

    def render_GET(self, request: server.Request) -> bytes | int:
        search = Search(_arg(request, "q"), _arg(request, "agency"), _arg(request, "lang"))
        problem = search.problem()
        if problem is not None:
            return _plain(request, http.BAD_REQUEST, problem)
        if self._source is None:
            return _plain(request, http.SERVICE_UNAVAILABLE, "search needs the archive, and "
                          "this server has none")
        try:
            etag, body = self._document(request, self._source.archive, search)
        except QueryError as exc:
            return _plain(request, http.BAD_REQUEST, str(exc))
        except Exception as exc:  # the edge: an archive that cannot be read is a 503, not a 500
            log.exception("search feed %s failed", request.uri.decode("ascii", "replace"))
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return _plain(request, http.SERVICE_UNAVAILABLE, f"the archive cannot be read: "
                          f"{reason}")
        from scheduler.server import etag_matches  # here: scheduler.server imports this module

        request.setHeader(b"etag", etag)
        request.setHeader(b"cache-control", b"public, max-age=%d" % self._max_age)
        request.setHeader(b"x-content-type-options", b"nosniff")
        if_none_match = request.getHeader(b"if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, etag):
            request.setResponseCode(http.NOT_MODIFIED)
            request.finish()  # finishing here keeps Twisted from adding Content-Length: 0
            return server.NOT_DONE_YET
        content_type = FORMATS[self._format][1] + "; charset=utf-8"
        request.setHeader(b"content-type", content_type.encode())
        return body

    def _document(self, request: server.Request, archive: SearchArchive,
                  search: Search) -> tuple[bytes, bytes]:
        """(ETag, body) of this search now: from the cache while the archive is unchanged."""
        meta = self._meta(request, search)
        key = (meta.self_url, search)  # the address names the format and the host asked
        stamp = archive.search_stamp()
        cached = self._cache.get(key)
        if cached is not None and cached[0] == stamp:
            self._cache.move_to_end(key)
            return cached[1], cached[2]
        render = FORMATS[self._format][0]
        body = render(meta, _entries(archive, search))
        etag = b'"%s"' % hashlib.sha256(body).hexdigest()[:32].encode()
        self._cache[key] = (stamp, etag, body)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHED:
            self._cache.popitem(last=False)
        return etag, body

    def _meta(self, request: server.Request, search: Search) -> FeedMeta:
        # The feed names the address it was asked at: the server knows no public URL.
        base = request.prePathURL().decode("utf-8", "replace").rsplit("/", 1)[0]
        query = search.query_string()
        return FeedMeta(
            title=search.title(),
            self_url=f"{base}/search.{self._format}?{query}",
            alternate_url=f"{base}/search?{query}",
            description=f"News on gov.kz matching “{search.query}”, newest first",
            lang=search.lang or None,
        )


def _plain(request: server.Request, code: int, message: str) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"x-content-type-options", b"nosniff")
    return " ".join(message.split()).encode("utf-8") + b"\n"


def add_search_feeds(root: Resource, provider: object, *, max_age: int) -> None:
    """Put /search.atom, /search.rss and /search.json under `root`, reading through `provider`
    when it has an archive."""
    source = provider if isinstance(provider, SearchSource) else None
    cache: Cache = OrderedDict()
    for fmt in FORMATS:
        root.putChild(f"search.{fmt}".encode(), SearchFeed(source, fmt, max_age=max_age,
                                                          cache=cache))
