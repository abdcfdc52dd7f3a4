"""`govkz-monitor doctor`: which ways into gov.kz work from here, and if none does, why.

Tries each path once, in order, against the configured site (GOVKZ_BASE_URL): every header
access strategy (k6v1, k6v2, token, plain: handshake, then one page of an agency's news), the
site-wide list, GraphQL `news`, the official RSS, the detail endpoint (of the newest id any
list gave) and the page base (page 0 against page 1). Each check is a row: path, HTTP status,
items, newest date, milliseconds, verdict. The requests go through Scrapy, with the crawl's
settings (User-Agent, robots.txt, delay) and its proxy support: HTTPS_PROXY / HTTP_PROXY in the
environment are honoured (Scrapy's HttpProxyMiddleware), without retries.

The overall verdict is one line, chosen by what the checks saw, never by their wording:
a news path that works; a connection refused, reset or timed out on every path (gov.kz refuses
some networks); a block page (HTML or a captcha where JSON was expected); an unknown shape (the
API changed); or every path refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import scrapy
from scrapy.http import JsonRequest, Request, Response

from crawler.access import (
    HEADER_STRATEGIES,
    handshake_request,
    is_graphql_refusal,
    is_refusal,
    parse_k6_headers,
    token_headers,
)
from crawler.errors import GovkzError, LayoutChanged
from crawler.extract.api import detail_url, list_url, parse_news_detail, parse_news_list
from crawler.extract.graphql import graphql_url, news_query, parse_graphql_page
from crawler.extract.result import Extracted
from crawler.extract.rss import parse_official_rss, rss_url
from crawler.siteprobe import decide_page_base, listing
from crawler.timeutil import isoformat

PAGE_SIZE = 5  # items asked per list: enough to see a shape and a date
TIMEOUT = 20  # seconds per request: a diagnosis must not wait Scrapy's crawl timeout
NETWORK_HINT = ("gov.kz refuses some networks (cloud/datacenter); try another network or set "
                "HTTPS_PROXY")
# Outcomes of a check.
OK, REFUSED, BLOCKED, SHAPE, NETWORK, HTTP, SKIPPED = (
    "ok", "refused", "blocked", "shape", "network", "http", "skipped")
_CAPTCHA = (b"captcha", b"recaptcha", b"hcaptcha", b"cf-challenge", b"are you a robot")


@dataclass
class Check:
    """One path tried once."""

    path: str
    url: str
    news: bool = True  # a path that gives news (the detail and the page base do not)
    status: int | None = None  # None: no HTTP answer
    items: int | None = None
    newest: str | None = None
    ms: int = 0
    outcome: str = SKIPPED
    verdict: str = ""
    newest_id: int | None = field(default=None, repr=False)

    @property
    def works(self) -> bool:
        return self.outcome == OK


@dataclass
class Diagnosis:
    site: str
    agency: str
    lang: str
    checks: list[Check]
    verdict: str = ""

    @property
    def ok(self) -> bool:
        """At least one news path works."""
        return any(c.news and c.works for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        checks = [{k: v for k, v in asdict(c).items() if k != "newest_id"} for c in self.checks]
        return {"site": self.site, "agency": self.agency, "lang": self.lang, "ok": self.ok,
                "verdict": self.verdict, "checks": checks}

    def render(self) -> str:
        head = ("path", "HTTP", "items", "newest", "ms", "verdict")
        rows = [head] + [(c.path, "-" if c.status is None else str(c.status),
                          "-" if c.items is None else str(c.items), c.newest or "-",
                          str(c.ms), c.verdict) for c in self.checks]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                 + "  " + row[-1] for row in rows]
        return "\n".join([f"{self.site} ({self.agency}, {self.lang})", *lines, "",
                          f"verdict: {self.verdict}"])


# --- judging one answer (pure) ----------------------------------------------------------------


def failure_line(exc: BaseException) -> str:
    """A network failure in a few words: refused, reset, timed out, name not resolved."""
    # Scrapy wraps Twisted's errors (DownloadFailedError around ConnectionDone, ...): the
    # class name and the message together say which it was.
    text = f"{type(exc).__name__} {exc}".lower()
    if "refused" in text:
        return "connection refused"
    if "timeout" in text or "timed out" in text:
        return "timed out"
    if "dns" in text or "resolve" in text:
        return "host name not resolved"
    return "connection reset or closed without an answer"


def is_block_page(body: bytes, content_type: str) -> bool:
    """HTML where JSON or XML was expected: a block page, a captcha, the SPA shell."""
    start = body.lstrip()[:64].lower()
    return "html" in content_type.lower() or start.startswith((b"<!doctype html", b"<html"))


def judge(check: Check, status: int, content_type: str, body: bytes,
          parse: Callable[[bytes], Extracted], *, graphql: bool = False,
          xml: bool = False) -> None:
    """Fill in ``check`` from an answer; ``parse`` is the extractor of the path."""
    check.status = status
    refused = is_graphql_refusal if graphql else is_refusal
    if refused(status, body):
        word = "notAllowed" if b"notallowed" in body.lower() else f"HTTP {status}"
        check.outcome, check.verdict = REFUSED, f"refused ({word})"
        return
    if is_block_page(body, content_type) and not (xml and status == 200 and b"<rss" in body):
        captcha = any(word in body.lower() for word in _CAPTCHA)
        check.outcome = BLOCKED
        check.verdict = "block page: a captcha" if captcha else \
            "block page: HTML where " + ("XML" if xml else "JSON") + " was expected"
        return
    if status != 200:
        check.outcome, check.verdict = HTTP, f"HTTP {status}"
        return
    try:
        found = parse(body)
    except LayoutChanged as exc:
        check.outcome, check.verdict = SHAPE, f"shape changed: {exc.reason}"
        return
    check.items = len(found.items)
    dated = [item for item in found.items if item.published is not None]
    if dated:
        newest = max(dated, key=lambda item: item.published)  # type: ignore[arg-type,return-value]
        check.newest = isoformat(newest.published) if newest.published else None
        check.newest_id = max(item.id for item in found.items)
    check.outcome = OK
    check.verdict = "works" if found.items else "works, but no items"
    if found.rejects:
        check.verdict += f" ({len(found.rejects)} element(s) unreadable)"


def overall(checks: list[Check]) -> str:
    """The one-line verdict of a diagnosis."""
    working = [c.path for c in checks if c.news and c.works]
    if working:
        first = working[0]
        also = f"; also {', '.join(working[1:])}" if len(working) > 1 else ""
        return f"news reachable: {first} works{also}"
    tried = [c for c in checks if c.outcome != SKIPPED]
    if tried and all(c.outcome == NETWORK for c in tried):
        kinds = sorted({c.verdict for c in tried})
        return f"no answer on any path ({', '.join(kinds)}): {NETWORK_HINT}"
    if any(c.outcome == BLOCKED for c in tried):
        return ("a block page answered instead of the API (HTML or a captcha): this network or "
                f"client is blocked; {NETWORK_HINT.split('; ', 1)[1]}")
    if any(c.outcome == SHAPE for c in tried):
        paths = ", ".join(c.path for c in tried if c.outcome == SHAPE)
        return f"gov.kz answered in an unknown shape ({paths}): the API changed"
    if any(c.outcome == REFUSED for c in tried):
        return "every access path was refused: gov.kz changed its access control again"
    return "no news path works (see the table)"


# --- the spider: one request at a time, each judged ---------------------------------------------


class DoctorSpider(scrapy.Spider):
    """Routes only: builds each check's requests in turn and hands the answers to `judge`."""

    name = "doctor"

    def __init__(self, agency: str = "", lang: str = "ru", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.agency, self.lang = agency, lang
        self.diagnosis: Diagnosis | None = None

    async def start(self) -> Any:
        self.site = str(self.settings.get("GOVKZ_BASE_URL")).rstrip("/")
        checks: list[Check] = []
        self.diagnosis = Diagnosis(self.site, self.agency, self.lang, checks)
        session: dict[str, Any] | None = None  # headers and cookie jar of the first that works
        for strategy in HEADER_STRATEGIES:
            check, headers = await self._strategy(strategy)
            checks.append(check)
            if check.works and session is None:
                session = {"headers": headers, "jar": strategy}
        session = session or {"headers": {}, "jar": "plain"}
        checks.append(await self._list("site-wide", None, session))
        checks.append(await self._graphql())
        checks.append(await self._rss())
        checks.append(await self._detail(checks, session))
        checks.append(await self._page_base(session))
        self.diagnosis.verdict = overall(checks)
        return
        yield  # an async generator that yields no request: every check is awaited in turn

    async def _fetch(self, request: Request, check: Check) -> Response | None:
        request.meta.update({"dont_retry": True, "download_timeout": TIMEOUT})
        started = time.monotonic()
        try:
            response = await self.crawler.engine.download_async(request)
        except Exception as exc:  # the network: refused, reset, timed out, not resolved
            check.outcome, check.verdict = NETWORK, failure_line(exc)
            return None
        finally:
            check.ms += int((time.monotonic() - started) * 1000)
        return response

    def _judge(self, check: Check, response: Response, parse: Callable[[bytes], Extracted],
               **kinds: bool) -> None:
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
        judge(check, response.status, content_type, response.body, parse, **kinds)

    def _parse_list(self, agency: str | None) -> Callable[[bytes], Extracted]:
        def parse(body: bytes) -> Extracted:
            if agency is not None:
                return parse_news_list(body, agency=agency, lang=self.lang, site=self.site)
            # The site-wide list: its shape is the same array; filing is the crawl's business.
            return parse_news_list(body, agency="site-wide", lang=self.lang, site=self.site)
        return parse

    async def _strategy(self, strategy: str) -> tuple[Check, dict[str, str]]:
        url = list_url(self.site, self.agency, 1, PAGE_SIZE)
        check = Check(strategy, url)
        headers: dict[str, str] = {}
        spec = handshake_request(strategy, self.site)
        if spec is not None:
            shake = Request(spec.url, method=spec.method, headers=spec.headers, body=spec.body,
                            meta={"cookiejar": strategy}, dont_filter=True)
            answer = await self._fetch(shake, check)
            if answer is None:
                return check, headers
            if answer.status != 200:
                check.status, check.outcome = answer.status, REFUSED
                check.verdict = f"handshake answered HTTP {answer.status}"
                return check, headers
            if strategy == "k6v2":
                try:
                    headers = parse_k6_headers(answer.body)
                except GovkzError as exc:
                    check.outcome, check.verdict = SHAPE, f"shape changed: {exc}"
                    return check, headers
        elif strategy == "token":
            headers = token_headers()
        await self._list_into(check, self.agency, {"headers": headers, "jar": strategy})
        return check, headers

    async def _list(self, path: str, agency: str | None, session: dict[str, Any]) -> Check:
        check = Check(path, list_url(self.site, agency, 1, PAGE_SIZE))
        await self._list_into(check, agency, session)
        return check

    async def _list_into(self, check: Check, agency: str | None,
                         session: dict[str, Any]) -> None:
        request = Request(check.url, headers={"Accept": "application/json",
                                              "Accept-Language": self.lang,
                                              **session["headers"]},
                          meta={"cookiejar": session["jar"]}, dont_filter=True)
        response = await self._fetch(request, check)
        if response is not None:
            self._judge(check, response, self._parse_list(agency))

    async def _graphql(self) -> Check:
        check = Check("graphql", graphql_url(self.site))
        body = news_query(1, PAGE_SIZE, self.lang, agency=self.agency)
        response = await self._fetch(JsonRequest(check.url, data=body, dont_filter=True), check)
        if response is not None:
            self._judge(check, response, lambda b: parse_graphql_page(
                b, agency=self.agency, lang=self.lang, site=self.site), graphql=True)
        return check

    async def _rss(self) -> Check:
        check = Check("rss", rss_url(self.site, self.agency, self.lang))
        response = await self._fetch(Request(check.url, dont_filter=True), check)
        if response is not None:
            self._judge(check, response, lambda b: parse_official_rss(
                b, agency=self.agency, lang=self.lang, site=self.site), xml=True)
        return check

    async def _detail(self, checks: list[Check], session: dict[str, Any]) -> Check:
        ids = [c.newest_id for c in checks if c.newest_id is not None]
        if not ids:
            return Check("detail", "-", news=False, verdict="skipped: no list gave an id")
        item_id = max(ids)
        check = Check("detail", detail_url(self.site, item_id), news=False)
        request = Request(check.url, headers={"Accept": "application/json",
                                              "Accept-Language": self.lang,
                                              **session["headers"]},
                          meta={"cookiejar": session["jar"]}, dont_filter=True)
        response = await self._fetch(request, check)
        if response is not None:
            self._judge(check, response, lambda b: parse_news_detail(
                b, agency=self.agency, lang=self.lang, site=self.site, expected_id=item_id))
        return check

    async def _page_base(self, session: dict[str, Any]) -> Check:
        check = Check("page base", list_url(self.site, self.agency, 1, 1), news=False)
        pages = []
        for page in (0, 1):
            url = check.url.replace("&page=1&", f"&page={page}&")
            request = Request(url, headers={"Accept": "application/json",
                                            "Accept-Language": self.lang, **session["headers"]},
                              meta={"cookiejar": session["jar"]}, dont_filter=True)
            response = await self._fetch(request, check)
            if response is None:
                return check
            check.status = response.status
            pages.append(listing(response.body) if response.status == 200 else None)
        base = decide_page_base(pages[0], pages[1])
        check.outcome = OK if base is not None else HTTP
        check.verdict = f"pages from {base}" if base is not None else \
            "cannot tell (no list answered)"
        return check


# --- running it ---------------------------------------------------------------------------------


def diagnose(config: Any, *, agency: str | None = None, lang: str | None = None) -> Diagnosis:
    """Run every check once against ``config``'s site and return the diagnosis.

    Runs Scrapy in this process, so once per process (its reactor cannot restart): the daemon
    runs it in a child, `govkz-monitor doctor --json` (scheduler/daemon.py)."""
    from scrapy.crawler import CrawlerProcess

    from crawler.config import scrapy_settings
    from crawler.directory import crawl_targets, load_registry

    settings = scrapy_settings(config)
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
    settings.set("ITEM_PIPELINES", {}, priority="cmdline")  # a diagnosis stores nothing
    settings.set("RETRY_ENABLED", False, priority="cmdline")  # each path once
    if agency is None:
        targets = crawl_targets(load_registry(settings), config.agencies)
        agency = targets[0] if targets else "mfa"
    lang = lang or config.crawl.langs[0]
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(DoctorSpider)
    process.crawl(crawler, agency=agency, lang=lang)
    process.start()
    spider = crawler.spider
    if not isinstance(spider, DoctorSpider) or spider.diagnosis is None:  # checks never ran
        raise GovkzError("doctor: the checks did not run (see the log)")
    diagnosis: Diagnosis = spider.diagnosis
    if not diagnosis.verdict:
        diagnosis.verdict = overall(diagnosis.checks)
    return diagnosis


def verdict_of(output: str) -> str | None:
    """The verdict in the output of `govkz-monitor doctor --json`, or None (for the daemon)."""
    try:
        data = json.loads(output)
    except ValueError:
        return None
    verdict = data.get("verdict") if isinstance(data, dict) else None
    return verdict if isinstance(verdict, str) and verdict else None
