"""`run --demo`: the real daemon against a local mock of gov.kz that keeps publishing.

The mock (crawler/mockgov) is mounted in the daemon's own reactor on 127.0.0.1, filled from
seeds/ and a few synthetic agencies; every `publish_every` seconds one agency publishes a new
item (in three languages), so the served feeds visibly change on a machine with no network.
The mock keeps only its newest requests and demo items (DEMO_LOG_KEPT, DEMO_ITEMS_KEPT), so a
demo that runs for days does not grow the daemon's memory; the archive keeps every item.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from pathlib import Path
from typing import Any

from crawler.config import Config, override
from crawler.timeutil import utcnow

log = logging.getLogger(__name__)

DEMO_AGENCIES = ("mod", "mfa", "economy")
DEMO_SCHEDULE = {"min_interval": 15, "max_interval": 60, "jitter": 3, "crawl_timeout": 120}
# Under the data directory, so a demo never writes into the work tree's top level.
DEMO_SUBDIR = "demo"
# A fixed port, so the links stored in the demo's archive and feeds survive a restart.
DEMO_MOCK_PORT = 8081
# `run --demo` may run for days, and its mock lives in the daemon's process: what the mock
# keeps must stay bounded, or the daemon's memory grows with every crawl.
# Requests the mock's log keeps (about 1.5 KB each): a little more than 20 batches of the
# demo's 45 targets, enough to see what the last crawls asked; nothing in the demo reads more.
DEMO_LOG_KEPT = 1_000
# Items the demo itself published that the mock still serves (one every 30 s: the last 2.5 h).
# An older one is taken off the mock, not out of the archive or the feeds, which keep
# everything; 300 is six of the crawler's largest pages (100 items), more than any crawl of
# the demo reads back.
DEMO_ITEMS_KEPT = 300


def demo_config(config: Config, base_url: str, *, keep_data: bool) -> Config:
    """The resolved configuration with the demo's layer on top: crawl the mock at `base_url`
    without delays, on a fast schedule, into DATA/demo (./data/demo by default), so the demo
    never mixes with a real archive."""
    flags: dict[str, Any] = {f"schedule.{key}": value for key, value in DEMO_SCHEDULE.items()}
    flags.update({"crawl.base_url": base_url, "crawl.download_delay": 0.0})
    if not keep_data:
        flags["crawl.data"] = Path(config.crawl.data) / DEMO_SUBDIR
    return override(config, flags=flags, sets={"AUTOTHROTTLE_ENABLED": "0"})


class DemoSite:
    def __init__(self, seeds_dir: Path, reactor: Any) -> None:
        from crawler.mockgov.serve import seed_items
        from crawler.mockgov.site import MockSite, RequestLog

        self.reactor = reactor
        self.site = MockSite.from_seeds(seed_items(seeds_dir), access="k6v1",
                                        log=RequestLog(limit=DEMO_LOG_KEPT))
        self.counter = itertools.count(1)
        self.published: deque[int] = deque()  # ids of the items the demo published, oldest first
        self.port: Any = None

    def listen(self, port: int = 0) -> str:
        from twisted.web.server import Site

        from crawler.mockgov.serve import wsgi_resource

        self.port = self.reactor.listenTCP(
            port, Site(wsgi_resource(self.site, self.reactor)), interface="127.0.0.1"
        )
        return f"http://127.0.0.1:{self.port.getHost().port}"

    def agencies(self) -> list[str]:
        return [a.slug for a in self.site.agencies()]

    def publish_one(self) -> int:
        n = next(self.counter)
        slug = DEMO_AGENCIES[n % len(DEMO_AGENCIES)]
        if self.site.agency(slug) is None:
            self.site.add_agency(slug)
        stamp = utcnow().strftime("%H:%M:%S")
        item_id = self.site.publish(
            slug,
            title={"en": f"Demo briefing no. {n} ({stamp} UTC)",
                   "ru": f"Демо-брифинг № {n} ({stamp} UTC)",
                   "kk": f"Демо-брифинг № {n} ({stamp} UTC)"},
            body={lang: f"<p>Item {n} published by the local mock of gov.kz.</p>"
                  for lang in ("en", "ru", "kk")},
            created=utcnow(),
        )
        log.info("demo: %s published item %s", slug, item_id)
        self.published.append(item_id)
        while len(self.published) > DEMO_ITEMS_KEPT:
            self.site.unpublish(self.published.popleft())
        return item_id

    def start_publishing(self, every: float) -> Any:
        from twisted.internet.task import LoopingCall

        loop = LoopingCall(self.publish_one)
        loop.clock = self.reactor
        loop.start(every, now=False)
        return loop
