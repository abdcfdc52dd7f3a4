"""A kept k6v1 session's cookies put back in the crawl's cookie jar, once, at its first news
request (crawler/middlewares.py AccessMiddleware), and taken out again when the site refuses
the session.

Once in the jar, Scrapy's CookiesMiddleware sends them on every request to the site and
replaces them with whatever the site sets, as for the cookies of a handshake of this crawl.
Handing them over as Request.cookies instead, on every request, cost a parse of each cookie
and the middleware's public-suffix check (tldextract, whose suffix list loads in ~40 ms) per
request: 7 % of a quiet re-crawl's CPU. These cookies came from the site's own Set-Cookie
headers and passed that check when a handshake set them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scrapy.http import Request, Response

from crawler.access_session import SessionCookie

# The jar of requests without a "cookiejar" meta key: the crawl's one jar (no request sets it).
DEFAULT_JAR = None


def _jar(crawler: Any) -> Any:
    # Imported when first needed, as Scrapy imports it when it builds the middleware: imported
    # with this module, before the crawl configures its logging, it made tldextract's warning
    # about its offline fallback reach stderr, traceback and all (seen in an offline test).
    from scrapy.downloadermiddlewares.cookies import CookiesMiddleware

    middleware = crawler.get_downloader_middleware(CookiesMiddleware)
    return None if middleware is None else middleware.jars[DEFAULT_JAR]


def seed(crawler: Any, request: Request, cookies: Iterable[SessionCookie]) -> frozenset[
        tuple[str, str]]:
    """Put `cookies` in the jar as if the site had set them in answer to `request` (so a
    cookie without Domain or Path gets the ones that request gives it); the (name, value) of
    those the jar took. Nothing with the cookie middleware off (COOKIES_ENABLED=False)."""
    jar = _jar(crawler)
    headers = [cookie.set_cookie_header() for cookie in cookies]
    if jar is None or not headers:
        return frozenset()
    answer = Response(request.url, headers={"Set-Cookie": headers}, request=request)
    taken = set()
    for cookie in jar.make_cookies(answer, request):
        jar.set_cookie_if_ok(cookie, request)
        taken.add((cookie.name, cookie.value))
    return frozenset(taken)


def unseed(crawler: Any, seeded: frozenset[tuple[str, str]]) -> None:
    """Take out of the jar the seeded cookies it still holds with their seeded value (one the
    site has set again since, with a new value, stays)."""
    jar = _jar(crawler)
    if jar is None or not seeded:
        return
    for cookie in list(jar.jar):
        if (cookie.name, cookie.value) in seeded:
            jar.jar.clear(cookie.domain, cookie.path, cookie.name)
