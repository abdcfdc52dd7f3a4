"""gov.kz's JSON news API (README, "Crawling gov.kz"): request URLs, and response bodies as items.

List: ``GET /api/v1/public/content-manager/news?sort-by=created_date:DESC&projects=eq:{slug}
&page={n}&size={k}`` answers a bare JSON array, 1-based pages, ``[]`` past the end. Detail:
``GET /api/v1/public/content-manager/news/{id}`` (assumed: one object of the same fields).
The language is chosen by the Accept-Language header, not the URL.

A response of the wrong *shape* (not JSON, not an array / an object, an HTML page) fails
loudly with LayoutChanged: garbage is never an empty page. One element that cannot become an
item (not an object, no id, a bad date, ...) is a Reject in the result, and its neighbours are
kept: one poisoned item never costs a page.

The site-wide list is the same request without ``projects=``: every agency's news, newest
first. Each of its elements names its agency (or agencies) in ``projects``
(crawler/extract/projects.py) and becomes one item per agency it names; an element whose
``projects`` cannot be read is a Reject of the site-wide target, never a guess.

``site`` is where item links, images and body links point. The spider passes its configured base
URL, so that against a mirror or the local mock every link stays on that host; against gov.kz
it is the default, https://www.gov.kz.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from crawler.errors import LayoutChanged
from crawler.extract.fields import (
    BODY_TOO_BIG,
    SAMPLE_BYTES,
    absolute,
    json_type,
    load_json,
    parse_created_date,
    parse_item_id,
    raw_json,
    too_big,
    unreadable,
)
from crawler.extract.htmlbody import clean_body
from crawler.extract.projects import project_slugs
from crawler.extract.result import Extracted, collect
from crawler.items import GOVKZ_SITE, NewsItem, Reject, item_url
from crawler.sanitize import clean_line, html_to_text, truncate
from crawler.sync import SITE_WIDE, SITE_WIDE_SOURCE
from crawler.timeutil import localize

NEWS_PATH = "/api/v1/public/content-manager/news"

# The version of what extraction makes of a response: raise it with ANY change that can change
# an item from the same bytes: these parsers, GraphQL's (crawler/extract/graphql.py), the field
# parsers, body cleaning (htmlbody.py, crawler/sanitize.py), NewsItem's own cleaning
# (crawler/items.py) or the content hash (crawler/save_plan.py). A page memo
# (crawler/page_memo.py) records it: a memo of another version is never a hit, so the page is
# extracted anew instead of being judged by what older code made of its bytes.
EXTRACTION_VERSION = 1


# --- URLs and headers ---------------------------------------------------------------------------


def list_url(
    site: str, agency: str | None, page: int, size: int, since: datetime | None = None
) -> str:
    """One page of an agency's news (``agency`` None: the site-wide list, every agency's),
    newest first; with ``since``, only items created after it.

    The filter is ``gt:`` (strictly after): ``gte:`` answered 500. ``since`` is sent in UTC with
    a ``Z``, the API's own form, so no ``+`` has to survive the query string.
    """
    if page < 1 or size < 1:
        raise ValueError(f"page and size start at 1 (got page={page}, size={size})")
    projects = "" if agency is None else f"&projects=eq:{quote(agency, safe='')}"
    url = (
        f"{site.rstrip('/')}{NEWS_PATH}?sort-by=created_date:DESC"
        f"{projects}&page={page}&size={size}"
    )
    if since is not None:
        instant = localize(since).astimezone(UTC)
        stamp = instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"
        url += f"&created_date=gt:{stamp}"
    return url


def detail_url(site: str, item_id: int) -> str:
    return f"{site.rstrip('/')}{NEWS_PATH}/{int(item_id)}"


# --- One element -------------------------------------------------------------------------------


def element_outcome(
    original: Any, cleaned: Any, *, agency: str, lang: str, site: str, url: str
) -> NewsItem | Reject:
    """One API news object as an item, or as a Reject saying why it cannot be one, from the
    element as received (``original``, kept as a reject's raw) and its clean_tree copy.
    An element without a body gives an item whose body_html is "": the spider decides
    whether to fetch the detail.

    Every failure a field can have is caught here, for this element alone: the named ones
    (LayoutChanged from the field parsers) keep their reason, anything else is "unreadable"."""
    try:
        return _news_item(cleaned, agency=agency, lang=lang, site=site)
    except LayoutChanged as exc:
        reason = exc.reason
    except (ValueError, OverflowError, TypeError, UnicodeError) as exc:
        reason = unreadable(exc)
    return Reject(agency, lang, reason, raw=raw_json(original), url=url,
                  item_id=_usable_id(cleaned))


def _usable_id(element: Any) -> int | None:
    try:
        return parse_item_id(element.get("id")) if isinstance(element, dict) else None
    except LayoutChanged:
        return None


def _news_item(raw: Any, *, agency: str, lang: str, site: str) -> NewsItem:
    if not isinstance(raw, dict):
        raise LayoutChanged(f"{json_type(raw)}, not an object")
    if raw.get("id") is None:
        raise LayoutChanged("no id")
    item_id = parse_item_id(raw["id"])
    title = raw.get("title")
    if title is None:
        raise LayoutChanged("no title")
    if not isinstance(title, str):
        raise LayoutChanged(f"title not a string but {json_type(title)}")
    title = clean_line(title)
    if not title:
        raise LayoutChanged("title empty after cleaning")
    if raw.get("created_date") is None:
        raise LayoutChanged("no created_date")
    published = parse_created_date(raw["created_date"])

    body: str = raw["body"] if isinstance(raw.get("body"), str) else ""
    short: str = raw["short_description"] if isinstance(raw.get("short_description"), str) else ""
    if too_big(body) or too_big(short):
        raise LayoutChanged(BODY_TOO_BIG)
    body_html, body_text = clean_body(body, site)
    summary = html_to_text(short)
    return NewsItem(
        agency=agency,
        id=item_id,
        lang=lang,
        url=item_url(agency, item_id, lang, site.rstrip("/")),
        title=title,
        published=published,
        body_text=body_text,
        body_html=body_html,
        summary=truncate(summary or body_text),
        image=absolute(site, raw.get("heropic")),
        source="api",
    )


# --- Whole responses ----------------------------------------------------------------------------


def _describe_object(value: dict) -> str:
    error = value.get("error") or value.get("message")
    if isinstance(error, str):
        return f"an object with error {error!r}"
    return f"an object with keys {', '.join(sorted(map(str, value))[:8])}"


def _json_array(body: bytes, what: str) -> tuple[list[Any], list[Any]]:
    """A list page's JSON (as sent, and cleaned); anything but an array is LayoutChanged
    naming what it was."""
    original, data = load_json(body, what)
    if not isinstance(data, list):
        shape = _describe_object(data) if isinstance(data, dict) else json_type(data)
        raise LayoutChanged(f"{what}: expected a JSON array, got {shape}",
                            sample=body[:SAMPLE_BYTES])
    return original, data


def parse_news_list(
    body: bytes, *, agency: str, lang: str, site: str = GOVKZ_SITE, url: str = ""
) -> Extracted:
    """Items and rejects of one list page, in page order (an id listed twice is one item).

    ``[]`` (the page past the end) gives an empty result. Anything that is not a JSON array
    raises LayoutChanged naming what it was; an element of the array that cannot become an
    item is a Reject with its reason and raw JSON, and costs nothing else."""
    original, data = _json_array(body, "news list")
    return collect(
        element_outcome(raw, clean, agency=agency, lang=lang, site=site, url=url)
        for raw, clean in zip(original, data, strict=True)
    )


def parse_news_detail(
    body: bytes,
    *,
    agency: str,
    lang: str,
    site: str = GOVKZ_SITE,
    expected_id: int | None = None,
    url: str = "",
) -> Extracted:
    """The item of a detail answer (one JSON object with the list's fields): one item, or
    one Reject. With ``expected_id``, an answer about another item is a Reject "asked for X,
    got Y", and a reject without a usable id of its own carries ``expected_id``."""
    original, data = load_json(body, "news detail")
    if not isinstance(data, dict):
        raise LayoutChanged(
            f"news detail: expected a JSON object, got {json_type(data)}",
            sample=body[:SAMPLE_BYTES],
        )
    outcome = element_outcome(original, data, agency=agency, lang=lang, site=site, url=url)
    if isinstance(outcome, Reject):
        if outcome.item_id is None:
            outcome.item_id = expected_id
    elif expected_id is not None and outcome.id != expected_id:
        outcome = Reject(agency, lang, f"asked for {expected_id}, got {outcome.id}",
                         raw=raw_json(original), url=url, item_id=outcome.id)
    return collect([outcome])


# --- The site-wide list -------------------------------------------------------------------------


def site_element_outcomes(
    original: Any, cleaned: Any, *, lang: str, site: str, url: str
) -> list[NewsItem | Reject]:
    """One element of the site-wide list: an item per agency its ``projects`` names (the same
    id under each), or one Reject of the site-wide target (agency SITE_WIDE) saying why."""
    reason = None
    if isinstance(cleaned, dict):
        try:
            if cleaned.get("projects") is None:
                raise LayoutChanged("no projects")
            slugs = project_slugs(cleaned["projects"])
        except LayoutChanged as exc:
            reason = exc.reason
    else:
        slugs = [SITE_WIDE]  # element_outcome names what it is instead
    if reason is not None:
        return [Reject(SITE_WIDE, lang, reason, raw=raw_json(original), url=url,
                       item_id=_usable_id(cleaned))]
    outcomes: list[NewsItem | Reject] = []
    for slug in slugs:
        outcome = element_outcome(original, cleaned, agency=slug, lang=lang, site=site, url=url)
        if isinstance(outcome, Reject):
            # The same fault under every agency: one reject, of the walk that met it.
            outcome.agency = SITE_WIDE
            return [outcome]
        outcome.source = SITE_WIDE_SOURCE
        outcomes.append(outcome)
    return outcomes


def parse_site_news_list(body: bytes, *, lang: str, site: str = GOVKZ_SITE,
                         url: str = "") -> Extracted:
    """Items and rejects of one page of the site-wide list, in page order: each element filed
    under every agency its ``projects`` names. Not a JSON array: LayoutChanged, as for an
    agency's list (parse_news_list)."""
    original, data = _json_array(body, "site-wide news list")
    return collect(
        outcome
        for raw, clean in zip(original, data, strict=True)
        for outcome in site_element_outcomes(raw, clean, lang=lang, site=site, url=url)
    )


def parse_site_news_detail(
    body: bytes, *, agencies: list[str], lang: str, site: str = GOVKZ_SITE,
    expected_id: int | None = None, url: str = "",
) -> Extracted:
    """The detail answer of an item the site-wide list gave without a body, filed under the
    ``agencies`` that list named; one Reject of the site-wide target if it cannot be read."""
    items: list[NewsItem] = []
    for agency in agencies:
        found = parse_news_detail(body, agency=agency, lang=lang, site=site,
                                  expected_id=expected_id, url=url)
        for reject in found.rejects:
            reject.agency = SITE_WIDE
            return Extracted(rejects=[reject])
        for item in found.items:
            item.source = SITE_WIDE_SOURCE
        items += found.items
    return Extracted(items=items)
