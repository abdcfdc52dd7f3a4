"""gov.kz's JSON news API (DESIGN.md §3): request URLs, and response bodies turned into items.

List: ``GET /api/v1/public/content-manager/news?sort-by=created_date:DESC&projects=eq:{slug}
&page={n}&size={k}`` answers a bare JSON array, 1-based pages, ``[]`` past the end. Detail:
``GET /api/v1/public/content-manager/news/{id}`` (assumed: one object of the same fields).
The language is chosen by the Accept-Language header, not the URL.

Every shape assumption fails loudly with LayoutChanged: garbage is never an empty page.

``site`` is where item links, images and body links point. The spider passes its configured base
URL, so that against a mirror or the local mock every link stays on that host; against gov.kz
it is the default, https://www.gov.kz.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urljoin

from crawler.errors import LayoutChanged
from crawler.extract.htmlbody import clean_body, html_to_text, summarize
from crawler.items import GOVKZ_SITE, LANGS, NewsItem, item_url
from crawler.timeutil import ALMATY, localize

NEWS_PATH = "/api/v1/public/content-manager/news"
REQUIRED_FIELDS = ("id", "title", "created_date")
SAMPLE_BYTES = 2048

# The forms of created_date seen: 2026-02-27T10:15:30.123+05:00, ...Z, no offset, a plain date.
# fromisoformat alone would also take week dates and other forms gov.kz never sends.
_ISO_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)


# --- URLs and headers ---------------------------------------------------------------------------


def list_url(site: str, agency: str, page: int, size: int, since: datetime | None = None) -> str:
    """One page of an agency's news, newest first; with ``since``, only items created after it.

    The filter is ``gt:`` (strictly after): ``gte:`` answered 500. ``since`` is sent in UTC with
    a ``Z``, the API's own form, so no ``+`` has to survive the query string.
    """
    if page < 1 or size < 1:
        raise ValueError(f"page and size start at 1 (got page={page}, size={size})")
    url = (
        f"{site.rstrip('/')}{NEWS_PATH}?sort-by=created_date:DESC"
        f"&projects=eq:{quote(agency, safe='')}&page={page}&size={size}"
    )
    if since is not None:
        instant = localize(since).astimezone(UTC)
        stamp = instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"
        url += f"&created_date=gt:{stamp}"
    return url


def detail_url(site: str, item_id: int) -> str:
    return f"{site.rstrip('/')}{NEWS_PATH}/{int(item_id)}"


def language_headers(lang: str) -> dict[str, str]:
    """The request headers that choose the language of the API's answers."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}")
    return {"Accept-Language": lang}


# --- Field parsers ------------------------------------------------------------------------------


def parse_created_date(value: str | None) -> datetime:
    """An aware datetime, in gov.kz local time, from any form of ``created_date`` seen.

    A value without an offset is gov.kz local time (Asia/Almaty: UTC+6 before 2024-03-01,
    UTC+5 since); one with an offset or ``Z`` keeps its instant.
    """
    if not isinstance(value, str) or not _ISO_RE.match(value.strip()):
        raise LayoutChanged(f"created_date: not an ISO 8601 date: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:  # e.g. month 13: the right shape, an impossible date
        raise LayoutChanged(f"created_date: {exc}: {value!r}") from exc
    return localize(parsed).astimezone(ALMATY)


def _item_id(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LayoutChanged(f"id: not a positive integer: {value!r}")
    return value


def needs_detail(raw: dict) -> bool:
    """Whether a list element came without its body, so the detail endpoint must be asked."""
    body = raw.get("body")
    return not isinstance(body, str) or not body.strip()


def parse_news_element(raw: Any, *, agency: str, lang: str, site: str = GOVKZ_SITE) -> NewsItem:
    """One API news object as an item. An element without a body gives an item whose
    body_html is "" (see needs_detail): the caller decides whether to fetch the detail."""
    if not isinstance(raw, dict):
        raise LayoutChanged(f"a {type(raw).__name__}, not an object")
    missing = [name for name in REQUIRED_FIELDS if raw.get(name) is None]
    if missing:
        raise LayoutChanged(f"no {', '.join(missing)} (fields: {', '.join(sorted(raw))})")
    item_id = _item_id(raw["id"])
    title = raw["title"]
    if not isinstance(title, str):
        raise LayoutChanged(f"title: not a string: {title!r}")
    published = parse_created_date(raw["created_date"])

    body = raw.get("body")
    body_html, body_text = clean_body(body if isinstance(body, str) else "", site)
    short = raw.get("short_description")
    summary = html_to_text(short) if isinstance(short, str) else ""
    heropic = raw.get("heropic")
    image = urljoin(site.rstrip("/") + "/", heropic.strip()) if _filled(heropic) else None
    return NewsItem(
        agency=agency,
        id=item_id,
        lang=lang,
        url=item_url(agency, item_id, lang, site.rstrip("/")),
        title=" ".join(title.split()),
        published=published,
        body_text=body_text,
        body_html=body_html,
        summary=summarize(summary or body_text),
        image=image,
        source="api",
    )


def _filled(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


# --- Whole responses ----------------------------------------------------------------------------


def _load_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        head = body.lstrip()[:1]
        kind = "an HTML page" if head == b"<" else "empty" if not head else f"invalid ({exc})"
        raise LayoutChanged(f"{what}: not JSON: {kind}", sample=body[:SAMPLE_BYTES]) from exc


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _describe_object(value: dict) -> str:
    error = value.get("error") or value.get("message")
    if isinstance(error, str):
        return f"an object with error {error!r}"
    return f"an object with keys {', '.join(sorted(value)[:8])}"


def parse_news_list(
    body: bytes, *, agency: str, lang: str, site: str = GOVKZ_SITE
) -> list[NewsItem]:
    """Items of one list page. ``[]`` (the page past the end) gives an empty list; anything
    that is not a JSON array of news objects raises LayoutChanged naming what was wrong."""
    data = _load_json(body, "news list")
    if not isinstance(data, list):
        shape = _describe_object(data) if isinstance(data, dict) else _json_type(data)
        raise LayoutChanged(
            f"news list: expected a JSON array, got {shape}", sample=body[:SAMPLE_BYTES]
        )
    items = []
    for index, raw in enumerate(data):
        try:
            items.append(parse_news_element(raw, agency=agency, lang=lang, site=site))
        except LayoutChanged as exc:
            raise LayoutChanged(
                f"news list: element {index}: {exc.reason}", sample=body[:SAMPLE_BYTES]
            ) from exc
    return items


def raw_elements(body: bytes) -> list[dict]:
    """The raw objects of a list page (for needs_detail), with the same checks as
    parse_news_list; call it on a body parse_news_list accepted."""
    data = _load_json(body, "news list")
    if not isinstance(data, list) or not all(isinstance(raw, dict) for raw in data):
        raise LayoutChanged("news list: expected a JSON array of objects", body[:SAMPLE_BYTES])
    return data


def parse_news_detail(
    body: bytes,
    *,
    agency: str,
    lang: str,
    site: str = GOVKZ_SITE,
    expected_id: int | None = None,
) -> NewsItem:
    """The item of a detail answer: one JSON object with the list's fields. With
    ``expected_id``, an answer about another item is a LayoutChanged too."""
    data = _load_json(body, "news detail")
    if not isinstance(data, dict):
        raise LayoutChanged(
            f"news detail: expected a JSON object, got {_json_type(data)}",
            sample=body[:SAMPLE_BYTES],
        )
    try:
        item = parse_news_element(data, agency=agency, lang=lang, site=site)
    except LayoutChanged as exc:
        raise LayoutChanged(f"news detail: {exc.reason}", sample=body[:SAMPLE_BYTES]) from exc
    if expected_id is not None and item.id != expected_id:
        raise LayoutChanged(
            f"news detail: asked for {expected_id}, got {item.id}", sample=body[:SAMPLE_BYTES]
        )
    return item
