"""gov.kz's GraphQL endpoint, ``POST /graphql`` (README, "Crawling gov.kz"):
``projectdetails`` lists the agencies (slug, name, parent organisation), ``news`` the newest
items of one agency (``projects: "EQ:<slug>"``) or across all of them.

Both take ``_size``, ``_page`` and ``_lang``. Their argument types are not known (Int or Int!,
String or an enum), and a GraphQL variable declared with the wrong type fails validation, so the
arguments are written into the document as literals. They are checked first (integers, one of
LANGS), so nothing from outside can change the query.

Answers: one that is not JSON, not an object, or has ``errors`` and no rows is a LayoutChanged
(its shape is wrong); a row that cannot be used (a news row without an id, an agency without a
slug) costs only itself. News rows go through the API's own element parser.
"""

from __future__ import annotations

from typing import Any, TypedDict

from crawler.errors import LayoutChanged
from crawler.extract.api import element_outcome, site_element_outcomes
from crawler.extract.fields import SAMPLE_BYTES, json_type, load_json
from crawler.extract.result import Extracted, collect
from crawler.items import GOVKZ_SITE, LANGS, is_slug
from crawler.sanitize import clean_line

GRAPHQL_PATH = "/graphql"
# Scalar fields only: selecting an object-typed field without a sub-selection is a query error.
NEWS_FIELDS = ("id", "slug", "title", "body", "created_date", "heropic", "short_description")


def graphql_url(site: str) -> str:
    return f"{site.rstrip('/')}{GRAPHQL_PATH}"


# What `_lang` may carry: a language, or "kz", the Kazakh code one client sends (a site that
# answers to "kz" only is probed for and remembered: crawler/siteprobe.py).
LANG_CODES = (*LANGS, "kz")
NEWS_SORT = "created_date:DESC"


def _arguments(page: int, size: int, lang: str, *, first_page: int = 1,
               codes: tuple[str, ...] = LANGS) -> str:
    if isinstance(page, bool) or not isinstance(page, int) or page < first_page:
        raise ValueError(f"page must be an integer >= {first_page}, got {page!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an integer >= 1, got {size!r}")
    if lang not in codes:
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


def news_query(page: int, size: int, lang: str, fields: tuple[str, ...] = NEWS_FIELDS, *,
               agency: str | None = None, first_page: int = 1) -> dict:
    """The JSON body of a POST /graphql listing one page of news, newest first: of one agency
    (``projects: "EQ:<slug>"``, as gov.kz's own client asks), or of every agency.

    ``page`` and ``lang`` are sent as given: ``first_page`` is the site's page base (0 or 1),
    ``lang`` may be "kz" where the site names Kazakh so."""
    args = _arguments(page, size, lang, first_page=min(first_page, 1), codes=LANG_CODES)
    if agency is not None:
        if not is_slug(agency):
            raise ValueError(f"not an agency slug: {agency!r}")
        args = f'projects: "EQ:{agency}", {args}'
    for name in fields:
        if not name.isidentifier():
            raise ValueError(f"not a GraphQL field name: {name!r}")
    return {
        "operationName": "News",
        "query": f'query News {{ news({args}, _sort: "{NEWS_SORT}") {{ {" ".join(fields)} }} }}',
        "variables": {},
    }


def _rows(body: bytes, field: str) -> tuple[list, list]:
    """``(original, cleaned)`` rows of ``data.<field>``; LayoutChanged when the answer has the
    wrong shape. ``errors`` next to a non-empty list is a partial answer: its rows are read
    (a row the server could not resolve is null there, and becomes a reject)."""
    sample = body[:SAMPLE_BYTES]
    original, answer = load_json(body, f"graphql {field}")
    if not isinstance(answer, dict):
        raise LayoutChanged(f"graphql {field}: expected a JSON object", sample=sample)
    data = answer.get("data")
    rows = data.get(field) if isinstance(data, dict) else None
    errors = answer.get("errors")
    if errors and not (isinstance(rows, list) and rows):
        messages = [
            str(e.get("message", "?")) if isinstance(e, dict) else str(e)
            for e in (errors if isinstance(errors, list) else [errors])
        ]
        reason = clean_line(f"graphql {field}: errors: {'; '.join(messages)}")
        raise LayoutChanged(reason, sample=sample)
    if not isinstance(rows, list):
        raise LayoutChanged(f"graphql {field}: no list at data.{field}", sample=sample)
    try:  # the same rows as sent, for the rejects' raw text
        sent = original["data"][field]
    except (KeyError, TypeError):  # a key that only reads "data" once cleaned
        sent = None
    return (sent if isinstance(sent, list) and len(sent) == len(rows) else rows), rows


class ProjectRow(TypedDict):
    """One agency of the directory: its slug, its name in the asked language, its parent."""

    slug: str
    name: str
    parent: str | None


def parse_projectdetails_rows(body: bytes) -> tuple[list[ProjectRow], list[str]]:
    """Agencies of a ``projectdetails`` answer as ``{"slug", "name", "parent"}`` dicts, and one
    line per row that was skipped ("row 1: no slug"). An empty list is the page past the end.

    ``parent`` is the id of the parent organisation as a string (GraphQL ids are strings), or
    None for a top-level body. A slug listed twice is kept once, the first time."""
    agencies: list[ProjectRow] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, row in enumerate(_rows(body, "projectdetails")[1]):
        if not isinstance(row, dict):
            problems.append(f"row {index}: {json_type(row)}, not an object")
            continue
        slug = row.get("slug")
        slug = slug.strip() if isinstance(slug, str) else None
        if not slug:
            problems.append(f"row {index}: no slug")
            continue
        if not is_slug(slug):
            problems.append(clean_line(f"row {index}: bad slug {slug[:60]!r}"))
            continue
        if slug in seen:
            continue
        seen.add(slug)
        name = row.get("project_name")
        parent = row.get("parent_govorg")
        parent_id = parent.get("id") if isinstance(parent, dict) else None
        if isinstance(parent_id, bool) or not isinstance(parent_id, str | int):
            parent_id = None
        agencies.append(
            {
                "slug": slug,
                "name": clean_line(name) if isinstance(name, str) else "",
                "parent": clean_line(str(parent_id)) or None if parent_id is not None else None,
            }
        )
    return agencies, problems


def parse_projectdetails(body: bytes) -> list[ProjectRow]:
    """The agencies of parse_projectdetails_rows, without the list of skipped rows."""
    return parse_projectdetails_rows(body)[0]


def parse_graphql_news(
    body: bytes, *, agency: str, lang: str, site: str = GOVKZ_SITE, url: str = ""
) -> Extracted:
    """Items and rejects of a ``news`` answer, read by the API list's element parser (ids are
    strings here; a null ``body`` or ``short_description`` gives an empty one)."""
    original, rows = _rows(body, "news")
    return collect(
        element_outcome(raw, clean, agency=agency, lang=lang, site=site, url=url)
        for raw, clean in zip(original, rows, strict=True)
    )


# Site-wide, each row must name its agency: `projects`, read as the site-wide API list reads it
# (crawler/extract/projects.py). Selected as a scalar: its GraphQL type is not known.
SITE_NEWS_FIELDS = (*NEWS_FIELDS, "projects")


def parse_graphql_page(
    body: bytes, *, agency: str | None, lang: str, site: str = GOVKZ_SITE, url: str = ""
) -> Extracted:
    """One page of the ``news`` query as the spider walks it: of ``agency``, or (None) of every
    agency, each row filed under the agencies its ``projects`` names, as on the site-wide API
    list. Rows without a body are items with an empty body: GraphQL is the source here, there
    is no detail request to complete them."""
    if agency is not None:
        return parse_graphql_news(body, agency=agency, lang=lang, site=site, url=url)
    original, rows = _rows(body, "news")
    return collect(
        outcome
        for raw, clean in zip(original, rows, strict=True)
        for outcome in site_element_outcomes(raw, clean, lang=lang, site=site, url=url)
    )
