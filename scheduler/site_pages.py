"""The reader's web pages as twisted.web resources: `/`, `/agency/{slug}`, `/item/{agency}/{id}`
and `/search`. They read the archive the way the status page does, through the status
provider's own Archive (one connection, on the reactor thread, per request) and its agency
registry; rendering is scheduler/pages.py.

Whatever goes wrong while reading (no archive behind the provider, a database error) is a
friendly 503 page naming the reason, never a 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from twisted.web import server
from twisted.web.resource import Resource

from crawler.agencies import AgencyRegistry
from crawler.items import LANGS, is_slug
from crawler.search import QueryError
from crawler.store import Archive
from scheduler import pages
from scheduler.pages import AgencyEntry

log = logging.getLogger(__name__)

HTML = b"text/html; charset=utf-8"
LATEST = 30  # items on an agency page
HITS = 20  # results on a search page
MAX_QUERY = 500  # characters of a search query
_ITEM_ID = re.compile(r"-?[0-9]{1,19}")  # synthetic ids are negative (crawler/items.py)


@runtime_checkable
class PageSource(Protocol):
    """Where the pages read from: scheduler/provider.py's ArchiveStatus is one."""

    archive: Archive
    registry: AgencyRegistry


Answer = tuple[int, bytes]


def combine_agencies(registry: Iterable[Any], rows: Iterable[Mapping[str, Any]],
                     counts: Mapping[str, int]) -> list[AgencyEntry]:
    """The agencies worth listing: the registry's enabled ones and every agency with items.

    Names and kind come from the registry, else from the archive's `agencies` row; an
    archived agency known to neither is listed by its slug. Agencies only the archive's
    directory knows, without items, are left out (a refresh knows about 2,000 of them)."""
    archived = {row["slug"]: row for row in rows}
    known = {agency.slug: agency for agency in registry}
    entries = []
    for slug in sorted(set(known) | set(archived) | set(counts)):
        entry = _entry(slug, known.get(slug), archived.get(slug), counts.get(slug, 0))
        if entry.enabled or entry.items:
            entries.append(entry)
    return entries


def _entry(slug: str, agency: Any, row: Mapping[str, Any] | None, items: int) -> AgencyEntry:
    names = {lang: row[f"name_{lang}"] for lang in LANGS if row and row.get(f"name_{lang}")}
    kind = (row or {}).get("kind") or "other"
    if agency is not None:
        names |= {lang: name for lang, name in agency.names.items() if name}
        kind = agency.kind if agency.kind != "other" else kind
    return AgencyEntry(slug=slug, names=names, kind=kind,
                       enabled=bool(agency.enabled) if agency is not None else False,
                       items=items)


def _path(request: server.Request) -> list[bytes]:
    return list(request.postpath or [])


def _arg(request: server.Request, name: str) -> str:
    return request.args.get(name.encode(), [b""])[0].decode("utf-8", "replace").strip()


class _ArchivePage(Resource):
    """A page read from the archive; the path below it is in request.postpath."""

    isLeaf = True

    def __init__(self, source: PageSource | None) -> None:
        super().__init__()
        self._source = source

    def render_GET(self, request: server.Request) -> bytes:
        code, body = self._safely(request)
        request.setResponseCode(code)
        request.setHeader(b"content-type", HTML)
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"content-security-policy", pages.CONTENT_SECURITY_POLICY.encode())
        return body

    def _safely(self, request: server.Request) -> Answer:
        if self._source is None:
            return self.unavailable("this server has no archive to read")
        try:
            return self.page(request, self._source)
        except Exception as exc:  # the edge: any failure to read is a page that says so
            log.exception("page %s failed", request.uri.decode("ascii", "replace"))
            return self.unavailable(f"the archive cannot be read: {str(exc).splitlines()[0]}"
                                    if str(exc) else "the archive cannot be read")

    def unavailable(self, reason: str) -> Answer:
        return 503, pages.render_error(503, "Archive unavailable",
                                       f"The news archive is not available right now: {reason}.")

    def page(self, request: server.Request, source: PageSource) -> Answer:
        raise NotImplementedError

    def entries(self, source: PageSource) -> list[AgencyEntry]:
        archive = source.archive
        return combine_agencies(source.registry, archive.agencies(), archive.item_counts())


def not_found(message: str) -> Answer:
    return 404, pages.render_error(404, "Not found", message)


class HomePage(_ArchivePage):
    """`/`: with no archive it still answers, with the links to feeds and status."""

    def _safely(self, request: server.Request) -> Answer:
        if _path(request) not in ([], [b""]):
            return not_found("There is no page at this address.")
        code, body = super()._safely(request)
        if code == 503:
            reason = "the news archive is not available right now"
            return 200, pages.render_home([], notice=f"{reason}; the feeds still are.")
        return code, body

    def page(self, request: server.Request, source: PageSource) -> Answer:
        return 200, pages.render_home(self.entries(source))


class AgencyPage(_ArchivePage):
    """`/agency/{slug}`."""

    def page(self, request: server.Request, source: PageSource) -> Answer:
        path = _path(request)
        slug = path[0].decode("utf-8", "replace") if len(path) == 1 else ""
        if not is_slug(slug):
            return not_found("There is no agency at this address.")
        archive = source.archive
        counts = archive.lang_counts(slug)
        row = archive.agency(slug)
        agency = source.registry.get(slug)
        if agency is None and row is None and not counts:
            return not_found(f"No agency called “{slug}” is known.")
        entry = _entry(slug, agency, row, sum(counts.values()))
        # Enabled agencies have feeds in every language from the first publish; others only
        # in the languages they have items in.
        feed_langs = LANGS if entry.enabled else tuple(counts)
        items = archive.latest_items(slug, LATEST)
        return 200, pages.render_agency(entry, items, counts, feed_langs)


class ItemPage(_ArchivePage):
    """`/item/{agency}/{id}?lang=`."""

    def page(self, request: server.Request, source: PageSource) -> Answer:
        path = [p.decode("utf-8", "replace") for p in _path(request)]
        if len(path) != 2 or not is_slug(path[0]) or not _ITEM_ID.fullmatch(path[1]):
            return not_found("There is no item at this address.")
        slug, item_id = path[0], int(path[1])
        archive = source.archive
        languages = archive.item_languages(slug, item_id)
        if not languages:
            return not_found(f"The archive holds no item {item_id} of “{slug}”.")
        wanted = _arg(request, "lang")
        if wanted and wanted not in languages:
            have = ", ".join(sorted(languages))
            return not_found(f"Item {item_id} of “{slug}” has no “{wanted}” version "
                             f"(it has: {have}).")
        lang = wanted or next(code for code in (*LANGS, *sorted(languages))
                              if code in languages)
        entry = _entry(slug, source.registry.get(slug), archive.agency(slug), 0)
        versions = archive.versions(slug, item_id, lang)
        return 200, pages.render_item(entry, languages, lang, versions)


SearchFunction = Callable[..., list[dict]]


class SearchPage(_ArchivePage):
    """`/search?q=&agency=&lang=`."""

    def page(self, request: server.Request, source: PageSource) -> Answer:
        query, agency, lang = _arg(request, "q"), _arg(request, "agency"), _arg(request, "lang")
        listed = [e for e in self.entries(source) if e.items]
        problem = None
        if len(query) > MAX_QUERY:
            problem = f"The query is too long (over {MAX_QUERY} characters)."
        elif agency and not is_slug(agency):
            problem = "The agency filter is not an agency slug."
        elif lang and lang not in LANGS:
            problem = f"The language filter must be one of {', '.join(LANGS)}."
        if problem or not query:
            body = pages.render_search(query, [], agency=agency, lang=lang, agencies=listed,
                                       error=problem)
            return (400 if problem else 200), body
        # Archive.search(query, limit, *, agency=None, lang=None, since=None): a filter not
        # asked for is not passed.
        filters = {k: v for k, v in (("agency", agency), ("lang", lang)) if v}
        search: SearchFunction = source.archive.search
        try:
            hits = search(query, limit=HITS, **filters)
        except QueryError as exc:  # e.g. only -exclusions: the person's mistake, not the archive's
            return 400, pages.render_search(query, [], agency=agency, lang=lang, agencies=listed,
                                            error=f"This search cannot be run: {exc}.")
        return 200, pages.render_search(query, hits, agency=agency, lang=lang, agencies=listed)


def add_pages(root: Resource, provider: object) -> None:
    """Put the pages under `root`; they read through `provider` when it is a PageSource."""
    source = provider if isinstance(provider, PageSource) else None
    root.putChild(b"", HomePage(source))
    root.putChild(b"agency", AgencyPage(source))
    root.putChild(b"item", ItemPage(source))
    root.putChild(b"search", SearchPage(source))
