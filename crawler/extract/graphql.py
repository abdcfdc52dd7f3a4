"""gov.kz's GraphQL endpoint, ``POST /graphql`` (DESIGN.md §3): ``projectdetails`` lists the
agencies (slug, name, parent organisation), ``news`` the newest items across all of them.

Both take ``_size``, ``_page`` and ``_lang``. Their argument types are not known (Int or Int!,
String or an enum), and a GraphQL variable declared with the wrong type fails validation, so the
arguments are written into the document as literals. They are checked first (integers, one of
LANGS), so nothing from outside can change the query.
"""

from __future__ import annotations

import json
from typing import Any

from crawler.errors import LayoutChanged
from crawler.extract.api import SAMPLE_BYTES
from crawler.items import LANGS

GRAPHQL_PATH = "/graphql"
# Scalar fields only: selecting an object-typed field without a sub-selection is a query error.
NEWS_FIELDS = ("id", "slug", "title", "body", "created_date", "heropic", "short_description")


def graphql_url(site: str) -> str:
    return f"{site.rstrip('/')}{GRAPHQL_PATH}"


def _arguments(page: int, size: int, lang: str) -> str:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValueError(f"page must be an integer >= 1, got {page!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an integer >= 1, got {size!r}")
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}")
    return f'_size: {size}, _page: {page}, _lang: "{lang}"'


def projectdetails_query(page: int, size: int, lang: str) -> dict[str, Any]:
    """The JSON body of a POST /graphql listing one page of agencies."""
    args = _arguments(page, size, lang)
    return {
        "operationName": "Agencies",
        "query": (
            f"query Agencies {{ projectdetails({args}) "
            "{ slug project_name parent_govorg { id } } }"
        ),
        "variables": {},
    }


def news_query(page: int, size: int, lang: str, fields: tuple[str, ...] = NEWS_FIELDS) -> dict:
    """The JSON body of a POST /graphql listing one page of the newest news (all agencies)."""
    args = _arguments(page, size, lang)
    for name in fields:
        if not name.isidentifier():
            raise ValueError(f"not a GraphQL field name: {name!r}")
    return {
        "operationName": "News",
        "query": f"query News {{ news({args}) {{ {' '.join(fields)} }} }}",
        "variables": {},
    }


def _data(body: bytes, field: str) -> list:
    """``data.<field>`` of a GraphQL answer, which must be a list; errors raise LayoutChanged."""
    sample = body[:SAMPLE_BYTES]
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise LayoutChanged(f"graphql {field}: not JSON", sample=sample) from exc
    if not isinstance(answer, dict):
        raise LayoutChanged(f"graphql {field}: expected a JSON object", sample=sample)
    errors = answer.get("errors")
    if errors:
        messages = [
            e.get("message", "?") if isinstance(e, dict) else str(e)
            for e in (errors if isinstance(errors, list) else [errors])
        ]
        raise LayoutChanged(f"graphql {field}: errors: {'; '.join(messages)}", sample=sample)
    data = answer.get("data")
    rows = data.get(field) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise LayoutChanged(f"graphql {field}: no list at data.{field}", sample=sample)
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise LayoutChanged(f"graphql {field}: row {index} is not an object", sample=sample)
    return rows


def parse_projectdetails(body: bytes) -> list[dict[str, str | None]]:
    """Agencies of a ``projectdetails`` answer as ``{"slug", "name", "parent"}`` dicts.

    ``parent`` is the id of the parent organisation as a string (GraphQL ids are strings), or
    None for a top-level body. An empty list is the page past the end.
    """
    agencies = []
    for index, row in enumerate(_data(body, "projectdetails")):
        slug = row.get("slug")
        if not isinstance(slug, str) or not slug.strip():
            raise LayoutChanged(
                f"graphql projectdetails: row {index} has no slug (fields: {sorted(row)})",
                sample=body[:SAMPLE_BYTES],
            )
        name = row.get("project_name")
        parent = row.get("parent_govorg")
        parent_id = parent.get("id") if isinstance(parent, dict) else None
        agencies.append(
            {
                "slug": slug.strip(),
                "name": " ".join(name.split()) if isinstance(name, str) else "",
                "parent": str(parent_id) if parent_id not in (None, "") else None,
            }
        )
    return agencies


def parse_news(body: bytes) -> list[dict]:
    """The raw news objects of a ``news`` answer (ids are strings here), for
    crawler.extract.api.parse_news_element once the caller knows each one's agency."""
    return _data(body, "news")
