"""The crawler CPU baseline, run as a child process: fetch the given requests with a plain
HTTP client (aiohttp when installed, else Twisted's Agent) at the given concurrency, reading
every body, and print how many answered 200.

    python -m tests.benchmarks.fetch_baseline REQUESTS.json CONCURRENCY [--scrapy]
REQUESTS.json: [[url, accept_language], ...]

`--scrapy`: the same with a bare Scrapy spider instead (Scrapy's default settings, no project
code): the share of the crawler's CPU that is Scrapy's and Twisted's own request path.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def with_aiohttp(requests: list[list[str]], concurrency: int) -> int:
    import asyncio

    import aiohttp

    async def run() -> int:
        ok = 0
        queue = list(reversed(requests))
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def worker() -> None:
                nonlocal ok
                while queue:
                    url, lang = queue.pop()
                    async with session.get(url, headers={"Accept-Language": lang}) as answer:
                        json.loads(await answer.read())
                        ok += answer.status == 200
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ok

    return asyncio.run(run())


def with_twisted(requests: list[list[str]], concurrency: int) -> int:
    from twisted.internet import defer, reactor, task
    from twisted.web.client import Agent, HTTPConnectionPool, readBody
    from twisted.web.http_headers import Headers

    pool = HTTPConnectionPool(reactor)
    pool.maxPersistentPerHost = concurrency
    agent = Agent(reactor, pool=pool)
    queue = list(reversed(requests))
    ok = 0

    @defer.inlineCallbacks
    def worker() -> Any:
        nonlocal ok
        while queue:
            url, lang = queue.pop()
            answer = yield agent.request(b"GET", url.encode(),
                                         Headers({b"Accept-Language": [lang.encode()]}))
            json.loads((yield readBody(answer)))
            ok += answer.code == 200

    def main(_reactor: Any) -> Any:
        return defer.gatherResults([worker() for _ in range(concurrency)])

    task.react(lambda r: main(r).addCallback(lambda _: None))
    return ok


def with_scrapy(requests: list[list[str]], concurrency: int) -> int:
    import scrapy
    from scrapy.crawler import CrawlerProcess

    ok = 0

    class Fetch(scrapy.Spider):
        name = "fetch"

        async def start(self) -> Any:
            for url, lang in requests:
                yield scrapy.Request(url, headers={"Accept-Language": lang}, dont_filter=True)

        def parse(self, response: Any) -> None:
            nonlocal ok
            json.loads(response.body)
            ok += response.status == 200

    process = CrawlerProcess({"CONCURRENT_REQUESTS": concurrency,
                              "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
                              "DOWNLOAD_DELAY": 0, "LOG_LEVEL": "WARNING",
                              "TELNETCONSOLE_ENABLED": False})
    process.crawl(Fetch)
    process.start()
    return ok


def main(argv: list[str]) -> int:
    requests = json.loads(open(argv[0], encoding="utf-8").read())
    concurrency = int(argv[1])
    if "--scrapy" in argv[2:]:
        ok = with_scrapy(requests, concurrency)
        print(json.dumps({"ok": ok, "client": f"Scrapy {_version('scrapy')}, a bare spider"}))
        return 0 if ok == len(requests) else 1
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        ok = with_twisted(requests, concurrency)
        client = "twisted"
    else:
        ok = with_aiohttp(requests, concurrency)
        client = "aiohttp"
    print(json.dumps({"ok": ok, "client": client}))
    return 0 if ok == len(requests) else 1


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
