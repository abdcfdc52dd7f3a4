"""Requests to the mock gov.kz (crawler/mockgov) straight from a test, no crawler in between."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from crawl_helpers import NEWS

from crawler.mockgov import MockServer

# Never let an http_proxy from the environment see requests to the mock.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(
    server: MockServer,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    query: dict[str, Any] | None = None,
) -> tuple[int, Any, bytes]:
    url = server.url + path + ("?" + urlencode(query) if query else "")
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read()


def news(
    server: MockServer,
    slug: str | None = "mod",
    *,
    page: int = 1,
    size: int = 10,
    lang: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> tuple[int, Any]:
    query = {"sort-by": "created_date:DESC", "page": page, "size": size, **extra}
    if slug is not None:
        query["projects"] = f"eq:{slug}"
    headers = dict(headers or {})
    if lang:
        headers["Accept-Language"] = lang
    status, _, body = call(server, NEWS, query=query, headers=headers)
    return status, json.loads(body)

