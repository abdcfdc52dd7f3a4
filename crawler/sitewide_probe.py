"""Does the site-wide news list work here? One cheap request, through the crawl's machinery.

The daemon (scheduler/mode.py) asks this at start and once a day, in a child process (the
Twisted reactor cannot restart): `python -m crawler.sitewide_probe [--config FILE] [-s N=V…]
--lang L` prints one JSON object `{"works": bool, "reason": "…", "items": n}` on stdout.

The request is page 1 of the list without `projects=`, one item, in the first configured
language, sent with the crawl's own settings and middlewares: GOVKZ_BASE_URL, the access
strategies (handshakes, refusals, the switch to GraphQL), the site's page base and Kazakh code,
retries, robots.txt. It works when the answer is a list whose item names the agency it belongs
to (its `projects`, in a shape the extractor knows): only then can the stream file every item.
An empty list proves nothing, so it does not count as working.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import scrapy
from scrapy.http import JsonRequest, Response
from twisted.python.failure import Failure

from crawler.errors import GovkzError, LayoutChanged
from crawler.extract.api import list_url, parse_site_news_list
from crawler.extract.graphql import SITE_NEWS_FIELDS, graphql_url, news_query, parse_graphql_page
from crawler.extract.result import Extracted
from crawler.failures import describe_failure
from crawler.middlewares import SourceChanged, UseRssFallback

log = logging.getLogger(__name__)


@dataclass
class ProbeAnswer:
    works: bool = False
    reason: str = "the probe did not run"
    items: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def judge_page(found: Extracted, source: str) -> ProbeAnswer:
    """What one page of the site-wide list (already extracted) says about the stream (pure)."""
    if found.items:
        agencies = sorted({item.agency for item in found.items})
        return ProbeAnswer(True, f"the site-wide list answers through {source} and names each "
                           f"item's agency (e.g. {agencies[0]})", len(found.items))
    if found.rejects:
        return ProbeAnswer(False, "the site-wide list answers, but its items cannot be filed: "
                           f"{found.rejects[0].reason}")
    return ProbeAnswer(False, "the site-wide list answered no items")


class SiteWideProbeSpider(scrapy.Spider):
    """One request; routes only: the answer is judged by `judge_page`."""

    name = "sitewide-probe"

    def __init__(self, lang: str = "ru", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lang = lang
        self.answer = ProbeAnswer()

    async def start(self) -> AsyncIterator[Any]:
        self.site = str(self.settings.get("GOVKZ_BASE_URL")).rstrip("/")
        yield self._request()

    def _request(self) -> scrapy.Request:
        access = getattr(self.crawler, "govkz_access", None)
        if access is not None and access.using_graphql:
            query = {"page": 1, "size": 1, "lang": self.lang, "agency": None,
                     "fields": SITE_NEWS_FIELDS}
            return JsonRequest(
                graphql_url(self.site), data=news_query(1, 1, self.lang, SITE_NEWS_FIELDS),
                headers={"Accept-Language": self.lang}, meta={"govkz_graphql": query},
                callback=self.parse, errback=self.failed, dont_filter=True)
        return scrapy.Request(
            list_url(self.site, None, 1, 1),
            headers={"Accept": "application/json", "Accept-Language": self.lang},
            meta={"govkz_api": True}, callback=self.parse, errback=self.failed,
            dont_filter=True)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        graphql = bool(response.meta.get("govkz_graphql"))
        try:
            if graphql:
                found = parse_graphql_page(response.body, agency=None, lang=self.lang,
                                           site=self.site, url=response.url)
            else:
                found = parse_site_news_list(response.body, lang=self.lang, site=self.site,
                                             url=response.url)
        except LayoutChanged as exc:
            self.answer = ProbeAnswer(False, f"the site-wide list has an unknown shape: "
                                      f"{exc.reason}")
            return
        self.answer = judge_page(found, "GraphQL" if graphql else "the news API")
        yield from ()

    def failed(self, failure: Failure) -> Iterator[Any]:
        if failure.check(SourceChanged):  # the access state moved to GraphQL: ask there
            yield self._request()
            return
        if failure.check(UseRssFallback):
            self.answer = ProbeAnswer(False, "every API access strategy was refused (the "
                                      "site-wide list has no RSS)")
            return
        _, message = describe_failure(failure)
        self.answer = ProbeAnswer(False, f"the site-wide list failed: {message}")


def probe(config: Any, lang: str | None = None) -> ProbeAnswer:
    """Run the probe in this process (once per process: Scrapy's reactor cannot restart)."""
    from scrapy.crawler import CrawlerProcess

    from crawler.config import scrapy_settings

    settings = scrapy_settings(config)
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
    settings.set("ITEM_PIPELINES", {}, priority="cmdline")  # a probe stores no item
    settings.set("LOG_LEVEL", "WARNING", priority="cmdline")  # its stdout is the answer
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(SiteWideProbeSpider)
    process.crawl(crawler, lang=lang or config.crawl.langs[0])
    process.start()
    spider = crawler.spider
    if not isinstance(spider, SiteWideProbeSpider):
        raise GovkzError("site-wide probe: the spider did not start")
    return spider.answer


def main(argv: Sequence[str] | None = None) -> int:
    from crawler.config import resolve, set_current
    from crawler.runner import die_with_parent

    parser = argparse.ArgumentParser(prog="python -m crawler.sitewide_probe")
    parser.add_argument("--config", default=None)
    parser.add_argument("-s", dest="sets", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--lang", default=None)
    # The daemon hands its crawl children's flags over as they are: others are not for us.
    args, _ = parser.parse_known_args(argv)
    die_with_parent()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        config = set_current(resolve(config_file=Path(args.config) if args.config else None,
                                         sets=args.sets, flags={"crawl.data": args.data}))
        answer = probe(config, args.lang)
    except GovkzError as exc:
        answer = ProbeAnswer(False, f"the site-wide probe could not run: {exc}")
    print(answer.to_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
