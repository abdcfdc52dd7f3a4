"""Read gov.kz's directory of agencies through GraphQL `projectdetails`, page by page, in each
language. Used by `govkz-monitor agencies --refresh`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import JsonRequest, Response
from twisted.python.failure import Failure

from crawler.errors import LayoutChanged
from crawler.extract.graphql import graphql_url, parse_projectdetails, projectdetails_query
from crawler.failures import describe_failure, failed_request
from crawler.items import LANGS, AgencyRecord
from crawler.problems import ProblemKind
from crawler.spiders.govkz import split_list
from crawler.summary import summary_for

PAGE_SIZE = 100
MAX_PAGES = 100  # 10,000 agencies: far above the ~2,000 gov.kz has


class AgenciesSpider(scrapy.Spider):
    name = "agencies"

    def __init__(self, langs: str | list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.langs = split_list(langs) or list(LANGS)
        self.target = "directory"

    async def start(self) -> AsyncIterator[Any]:
        self.site = self.settings.get("GOVKZ_BASE_URL").rstrip("/")
        for lang in self.langs:
            yield self.page_request(lang, 1)

    def page_request(self, lang: str, page: int) -> JsonRequest:
        summary_for(self.crawler).target(f"directory/{lang}").requests += 1
        return JsonRequest(
            graphql_url(self.site), data=projectdetails_query(page, PAGE_SIZE, lang),
            callback=self.parse_page, errback=self.failed,
            cb_kwargs={"lang": lang, "page": page}, dont_filter=True,
        )

    def parse_page(self, response: Response, lang: str, page: int) -> Iterator[Any]:
        target = summary_for(self.crawler).target(f"directory/{lang}")
        target.pages += 1
        try:
            rows = parse_projectdetails(response.body)
        except LayoutChanged as exc:
            target.add(ProblemKind.LAYOUT_CHANGED, f"layout changed: {exc.reason}", response.url)
            return
        if not rows and page == 1:
            # gov.kz lists some 2,000 bodies: an empty first page is an outage or a changed
            # API, and must not pass for a refresh that found nothing new.
            target.add(ProblemKind.LAYOUT_CHANGED, f"the directory in {lang} is empty",
                       response.url)
            return
        for row in rows:
            target.found += 1
            yield AgencyRecord(row["slug"], lang, row.get("name") or "", row.get("parent"))
        if rows and page < MAX_PAGES:
            yield self.page_request(lang, page + 1)

    def failed(self, failure: Failure) -> None:
        request = failed_request(failure)
        lang = request.cb_kwargs["lang"]
        kind, message = describe_failure(failure)
        summary_for(self.crawler).target(f"directory/{lang}").add(kind, message, request.url)
