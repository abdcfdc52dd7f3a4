"""A local imitation of gov.kz for tests, demos and benchmarks: the news API behind each access
path, the official RSS and GraphQL, as README "Crawling gov.kz" describes them.

    site = MockSite(access="k6v1")
    site.add_agency("mod", names={"ru": "Министерство обороны"})
    site.publish("mod", title={"ru": "Заголовок", "en": "Title"}, body="<p>…</p>")
    with serve_in_thread(site) as server:   # http://127.0.0.1:PORT, loopback only
        ...
    site.count("/api/v1/public/content-manager/news", agency="mod", lang="ru")
"""

from typing import Any

from crawler.mockgov.app import MockApp, create_app, run_graphql, token_headers
from crawler.mockgov.faults import DropConnection, Fault, FaultSet
from crawler.mockgov.site import (
    ACCESS_SCHEMES,
    IncompleteLog,
    LoggedRequest,
    MockSite,
    RequestLog,
)

_SERVE = ("MockServer", "serve_in_thread", "wsgi_resource")


def __getattr__(name: str) -> Any:
    # serve.py is imported on first use, so `python -m crawler.mockgov.serve` runs it only once.
    if name in _SERVE:
        from crawler.mockgov import serve

        return getattr(serve, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCESS_SCHEMES",
    "DropConnection",
    "Fault",
    "FaultSet",
    "IncompleteLog",
    "LoggedRequest",
    "MockApp",
    "MockServer",
    "MockSite",
    "RequestLog",
    "create_app",
    "run_graphql",
    "serve_in_thread",
    "token_headers",
    "wsgi_resource",
]
