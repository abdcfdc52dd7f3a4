"""What a site speaks: the number of its news list's first page and its code for Kazakh.

One 2026 client of gov.kz pages from ``page=0``, the others from 1; one sends Kazakh as ``kz``,
not ``kk``. Asking a 0-based site for page 1 first would skip its newest page; asking a
"kz" site for "kk" gets Russian texts (an unknown language is the default one), which would be
archived as Kazakh. So both are settings (GOVKZ_PAGE_BASE = auto|0|1, GOVKZ_KK_CODE =
auto|kk|kz), and "auto" probes the site once and remembers the answer in the archive
(`site_probe`, per site like the access strategy), so later crawls pay nothing:

- page base: page 0 and page 1 of the first list asked for, one item each in its language
  (2 requests). Page 0 answered with an item other than page 1's: 0-based. Page 0 refused,
  empty or the same as page 1: 1-based. Nothing on either page: not known yet (asked again by
  a later crawl).
- Kazakh (only by a crawl configured for Russian too, GOVKZ_LANGS, since it is told from
  Russian): the first Kazakh list page in "kk" and in Russian, three items each; if they differ
  the site knows "kk"; if they are the same, "kz" too: "kz" differing from Russian means "kz".
  Otherwise (all the same, or nothing to compare) not known yet; "kk" is used.

The spider always counts pages from 1 and names Kazakh "kk"; DialectMiddleware rewrites each
news request to the site's dialect (the API list's ``page=`` and ``Accept-Language``, GraphQL's
``_page`` and ``_lang``) right before the access middleware lets it in.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scrapy import Request, signals
from scrapy.http import JsonRequest

from crawler.errors import GovkzError
from crawler.extract.api import list_url
from crawler.extract.graphql import graphql_url, news_query
from crawler.middlewares import SourceChanged

log = logging.getLogger(__name__)

AUTO = "auto"
PAGE_BASES = (0, 1)
KK_CODES = ("kk", "kz")
PROBE_ITEMS = 3  # items per page compared between languages


@dataclass
class SiteDialect:
    """The site's first page number and Kazakh code; None: not known (1 and "kk" are used)."""

    page_base: int | None = None
    kk_code: str | None = None

    @property
    def first_page(self) -> int:
        return 1 if self.page_base is None else self.page_base

    @property
    def kazakh(self) -> str:
        return self.kk_code or "kk"

    def page(self, page: int) -> int:
        """The number the site gives our page ``page`` (counted from 1)."""
        return page - 1 + self.first_page

    def lang(self, lang: str) -> str:
        return self.kazakh if lang == "kk" else lang


# --- the decisions (pure) --------------------------------------------------------------------

Listing = list[tuple[str, str]]  # (id, title) of a page's items, in order


def listing(body: bytes) -> Listing | None:
    """(id, title) of a news page: a JSON array (the API) or ``data.news`` (GraphQL). None
    when the answer is not such a list (an error, a block page, another shape)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        inner = data.get("data")
        data = inner.get("news") if isinstance(inner, dict) else None
    if not isinstance(data, list):
        return None
    return [(str(row.get("id")), str(row.get("title"))) for row in data if isinstance(row, dict)]


def decide_page_base(page0: Listing | None, page1: Listing | None) -> int | None:
    """0 or 1 from the answers to page=0 and page=1 (None: an error answer); None when they
    cannot tell (both empty, or page 1 failed)."""
    if page1 is None:
        return None
    if not page0:
        return 1 if page1 else None  # page 0 refused or empty: the list starts at 1
    return 1 if page0 == page1 else 0  # a 0-based site's page 1 is its second page


def decide_kk_code(ru: Listing | None, kk: Listing | None, kz: Listing | None) -> str | None:
    """"kk" or "kz" from the same page in Russian, "kk" and "kz" (``kz`` None: not asked);
    None when they cannot tell."""
    if not ru or kk is None:
        return None
    if kk != ru:
        return "kk"
    if kz and kz != ru:
        return "kz"
    return None


def needs_kz(ru: Listing | None, kk: Listing | None) -> bool:
    """Whether the "kz" page must be asked too (the "kk" one looked Russian)."""
    return bool(ru) and kk == ru


# --- the middleware ---------------------------------------------------------------------------


def agency_of(request: Request) -> str | None:
    """The agency a news list request asks for; None for the site-wide list."""
    graphql = request.meta.get("govkz_graphql")
    if graphql:
        return graphql.get("agency")
    projects = dict(parse_qsl(urlsplit(request.url).query)).get("projects", "")
    return projects.split(":", 1)[-1] or None


def _with_query(url: str, **values: Any) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: str(v) for k, v in values.items()})
    return urlunsplit(parts._replace(query=urlencode(query, safe=":,")))


class DialectMiddleware:
    """Probe the site's dialect on the first news request that needs it (GOVKZ_PAGE_BASE /
    GOVKZ_KK_CODE "auto" and nothing remembered), remember it, and rewrite news requests
    into it. Requests it sent itself carry meta ``govkz_probe``; rewritten ones
    ``govkz_dialect``."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.site = str(settings.get("GOVKZ_BASE_URL")).rstrip("/")
        base, code = settings.get("GOVKZ_PAGE_BASE"), settings.get("GOVKZ_KK_CODE")
        self.auto_base, self.auto_code = base == AUTO, code == AUTO
        self.dialect = SiteDialect(None if self.auto_base else int(base),
                                   None if self.auto_code else str(code))
        # Kazakh is told from Russian, so it is probed only by a crawl that asks Russian too:
        # a crawl never asks a language it was not configured for.
        self.compare_with_ru = "ru" in settings.getlist("GOVKZ_LANGS")
        self._loaded = False
        self._tried: set[str] = set()  # what this crawl probed already (once, even undecided)
        self._lock: asyncio.Lock | None = None
        self._settled = False  # loaded, and nothing left this crawl could probe

    @classmethod
    def from_crawler(cls, crawler: Any) -> DialectMiddleware:
        mw = cls(crawler)
        crawler.govkz_dialect = mw.dialect  # the doctor and the tests read it
        # What the archive remembers is read when the spider opens, not by the first news
        # request: that one already waits for robots.txt.
        crawler.signals.connect(mw.load_remembered, signal=signals.spider_opened)
        return mw

    async def process_request(self, request: Request, spider: Any = None) -> Request | None:
        meta = request.meta
        graphql = meta.get("govkz_graphql")
        if not (meta.get("govkz_api") or graphql) or meta.get("govkz_probe") \
                or meta.get("govkz_dialect"):
            return None
        if not self._settled:
            await self._settle(request)
        return self.translate(request)

    async def _settle(self, request: Request) -> None:
        """Load what the archive remembers and run the probes ``request`` can start."""
        graphql = request.meta.get("govkz_graphql")
        lang = str(graphql["lang"]) if graphql else \
            (request.headers.get("Accept-Language") or b"").decode("latin-1")
        is_list = bool(graphql) or "page=" in urlsplit(request.url).query
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one probe at a time; the other requests wait for its answer
            self.load_remembered()
            if is_list and self._may_probe_base():
                self._tried.add("page_base")
                await self._probe_page_base(agency_of(request), self.dialect.lang(lang or "ru"))
            if is_list and lang == "kk" and self._may_probe_code():
                self._tried.add("kk_code")
                await self._probe_kk_code(agency_of(request))
            # Nothing left to probe: later requests skip the lock and the checks (a quiet
            # crawl sends thousands; the dialect no longer changes).
            self._settled = not (self._may_probe_base() or self._may_probe_code())

    def _may_probe_base(self) -> bool:
        return self.auto_base and self.dialect.page_base is None \
            and "page_base" not in self._tried

    def _may_probe_code(self) -> bool:
        return self.auto_code and self.dialect.kk_code is None \
            and "kk_code" not in self._tried and self.compare_with_ru

    def translate(self, request: Request) -> Request | None:
        """``request`` in the site's dialect (a new request), or None when it already is."""
        dialect = self.dialect
        if dialect.first_page == 1 and dialect.kazakh == "kk":
            return None  # the spider's own dialect: nothing to rewrite
        meta = {**request.meta, "govkz_dialect": True}
        graphql = request.meta.get("govkz_graphql")
        if graphql:
            page, lang = dialect.page(graphql["page"]), dialect.lang(graphql["lang"])
            if (page, lang) == (graphql["page"], graphql["lang"]):
                return None
            body = news_query(page, graphql["size"], lang, tuple(graphql["fields"]),
                              agency=graphql["agency"], first_page=dialect.first_page)
            return request.replace(body=json.dumps(body), meta=meta)
        url, headers = request.url, request.headers.copy()
        query = dict(parse_qsl(urlsplit(url).query))
        if "page" in query and query["page"].isdigit() and dialect.first_page != 1:
            url = _with_query(url, page=dialect.page(int(query["page"])))
        lang = (headers.get("Accept-Language") or b"").decode("latin-1")
        if lang and dialect.lang(lang) != lang:
            headers["Accept-Language"] = dialect.lang(lang)
        if url == request.url and headers == request.headers:
            return None
        return request.replace(url=url, headers=headers, meta=meta)

    # --- probing --------------------------------------------------------------------------

    def load_remembered(self) -> None:
        """Read the dialect the archive remembers for this site (once)."""
        if self._loaded:
            return
        self._loaded = True
        if not (self.auto_base or self.auto_code):
            return
        remembered = self._archive(lambda monitor: monitor.site_probe(self.site)) or {}
        if self.auto_base and remembered.get("page_base") in PAGE_BASES:
            self.dialect.page_base = int(remembered["page_base"])
        if self.auto_code and remembered.get("kk_code") in KK_CODES:
            self.dialect.kk_code = str(remembered["kk_code"])

    def _archive(self, use: Any) -> Any:
        from crawler.paths import db_path
        from crawler.store import Archive

        try:
            archive = Archive.open(db_path(self.crawler.settings))
        except GovkzError as exc:
            log.warning("site probe: archive unusable: %s", exc)
            return None
        try:
            return use(archive.monitor)
        except GovkzError as exc:
            log.warning("site probe: %s", exc)
            return None
        finally:
            archive.close()

    def _probe(self, agency: str | None, *, page: int, size: int, lang: str) -> Request:
        """A list request for ``agency`` (None: the site-wide list) asking the site's ``page``
        (as sent), ``size`` items in ``lang`` (as sent), through the source the access state
        uses now (GraphQL or the API)."""
        meta = {"govkz_probe": True, "dont_retry": True}
        access = getattr(self.crawler, "govkz_access", None)
        if access is not None and access.using_graphql:
            body = news_query(page, size, lang, ("id", "title"), agency=agency, first_page=0)
            spec = {"page": page, "size": size, "lang": lang, "agency": agency,
                    "fields": ("id", "title")}
            return JsonRequest(graphql_url(self.site), data=body, dont_filter=True,
                               meta={**meta, "govkz_graphql": spec})
        url = _with_query(list_url(self.site, agency, 1, size), page=page)
        return Request(url, dont_filter=True, meta={**meta, "govkz_api": True},
                       headers={"Accept": "application/json", "Accept-Language": lang})

    async def _fetch(self, agency: str | None, *, page: int, size: int,
                     lang: str) -> Listing | None:
        for _ in range(2):  # again once when the access state moved to the other source
            request = self._probe(agency, page=page, size=size, lang=lang)
            try:
                response = await self.crawler.engine.download_async(request)
            except SourceChanged:
                continue
            except Exception as exc:  # refused, unreachable: this probe tells nothing
                log.info("site probe: %s failed: %s", request.url, exc)
                return None
            return listing(response.body) if response.status == 200 else None
        return None

    async def _probe_page_base(self, agency: str | None, lang: str) -> None:
        page0 = await self._fetch(agency, page=0, size=1, lang=lang)
        page1 = await self._fetch(agency, page=1, size=1, lang=lang)
        base = decide_page_base(page0, page1)
        log.info("site probe: %s pages from %s", self.site, "?" if base is None else base)
        if base is not None:
            self.dialect.page_base = base
            self._archive(lambda monitor: monitor.save_site_probe(self.site, page_base=base))

    async def _probe_kk_code(self, agency: str | None) -> None:
        first = self.dialect.first_page
        ru = await self._fetch(agency, page=first, size=PROBE_ITEMS, lang="ru")
        kk = await self._fetch(agency, page=first, size=PROBE_ITEMS, lang="kk")
        kz = None
        if needs_kz(ru, kk):
            kz = await self._fetch(agency, page=first, size=PROBE_ITEMS, lang="kz")
        code = decide_kk_code(ru, kk, kz)
        log.info("site probe: %s names Kazakh %s", self.site, code or "? (kk used)")
        if code is not None:
            self.dialect.kk_code = code
            self._archive(lambda monitor: monitor.save_site_probe(self.site, kk_code=code))
