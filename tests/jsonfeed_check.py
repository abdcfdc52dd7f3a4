"""A strict JSON Feed 1.1 checker (https://www.jsonfeed.org/version/1.1/), for the tests.

No schema can be downloaded here, so the spec's rules are written out: the top-level and item
fields it defines, which are required, the type of each, one of content_html/content_text per
item, author and attachment objects, RFC 3339 dates, RFC 5646 languages, and extension keys
("_" then a letter, an object). Stricter than the spec where a reader would be let down: an
unknown key without "_" is a problem, URLs must be absolute, ids unique and non-empty, plain
text fields free of markup, HTML content free of scripts and relative links (as in
feedcheck), and `feed_url` the location the document is served at. Returns a list of
problems; an empty list means the document passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from feedcheck import LANGUAGE, MEDIA_TYPE, _iri, _rfc3339, check_html, check_plain

VERSION = "https://jsonfeed.org/version/1.1"
EXTENSION = re.compile(r"^_[A-Za-z]")

Check = Callable[[Any, str], list[str]]


def _string(value: Any, where: str) -> list[str]:
    return [] if isinstance(value, str) else [f"{where}: not a string: {value!r}"]


def _url(value: Any, where: str) -> list[str]:
    return _string(value, where) or _iri(value, where)


def _text(value: Any, where: str) -> list[str]:
    return _string(value, where) or check_plain(value, where)


def _date(value: Any, where: str) -> list[str]:
    return _string(value, where) or _rfc3339(value, where)


def _language(value: Any, where: str) -> list[str]:
    if problems := _string(value, where):
        return problems
    return [] if LANGUAGE.match(value) else [f"{where}: not an RFC 5646 language: {value!r}"]


def _boolean(value: Any, where: str) -> list[str]:
    return [] if isinstance(value, bool) else [f"{where}: not true or false: {value!r}"]


def _number(value: Any, where: str) -> list[str]:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return [] if ok else [f"{where}: not a non-negative number: {value!r}"]


def _html(value: Any, where: str) -> list[str]:
    return _string(value, where) or check_html(value, where)


def _object(value: Any, where: str, fields: Mapping[str, Check], required: tuple[str, ...] = (),
            ) -> list[str]:
    """An object of the spec: known fields typed, required ones present, extensions objects."""
    if not isinstance(value, dict):
        return [f"{where}: not an object: {value!r}"]
    problems = [f"{where}: missing {name!r}" for name in required if name not in value]
    for key, item in value.items():
        if key in fields:
            problems += fields[key](item, f"{where}.{key}")
        elif EXTENSION.match(key):
            if not isinstance(item, dict):
                problems.append(f"{where}.{key}: an extension must be an object")
        else:
            problems.append(f"{where}: unknown key {key!r} (extensions start with '_')")
    return problems


def _author(value: Any, where: str) -> list[str]:
    fields = {"name": _text, "url": _url, "avatar": _url}
    problems = _object(value, where, fields)
    if not problems and not any(value.get(k) for k in fields):
        problems.append(f"{where}: an author needs a name, url or avatar")
    return problems


def _array(check: Check) -> Check:
    def checked(value: Any, where: str) -> list[str]:
        if not isinstance(value, list):
            return [f"{where}: not an array: {value!r}"]
        return [p for n, item in enumerate(value) for p in check(item, f"{where}[{n}]")]

    return checked


def _tag(value: Any, where: str) -> list[str]:
    problems = _text(value, where)
    return problems or ([f"{where}: blank tag"] if not value.strip() else [])


def _media_type(value: Any, where: str) -> list[str]:
    if problems := _string(value, where):
        return problems
    return [] if MEDIA_TYPE.match(value) else [f"{where}: not a media type: {value!r}"]


def _attachment(value: Any, where: str) -> list[str]:
    fields = {"url": _url, "mime_type": _media_type, "title": _text,
              "size_in_bytes": _number, "duration_in_seconds": _number}  # fmt: skip
    return _object(value, where, fields, required=("url", "mime_type"))


def _hub(value: Any, where: str) -> list[str]:
    return _object(value, where, {"type": _string, "url": _url}, required=("type", "url"))


ITEM_FIELDS: dict[str, Check] = {
    "id": _string, "url": _url, "external_url": _url, "title": _text,
    "content_html": _html, "content_text": _string, "summary": _text,
    "image": _url, "banner_image": _url, "date_published": _date, "date_modified": _date,
    "authors": _array(_author), "author": _author, "tags": _array(_tag),
    "language": _language, "attachments": _array(_attachment),
}  # fmt: skip
FEED_FIELDS: dict[str, Check] = {
    "version": _string, "title": _text, "home_page_url": _url, "feed_url": _url,
    "description": _text, "user_comment": _string, "next_url": _url, "icon": _url,
    "favicon": _url, "authors": _array(_author), "author": _author, "language": _language,
    "expired": _boolean, "hubs": _array(_hub), "items": lambda value, where: [],
}  # fmt: skip


def _item(value: Any, where: str, ids: set[str]) -> list[str]:
    problems = _object(value, where, ITEM_FIELDS, required=("id",))
    if not isinstance(value, dict):
        return problems
    item_id = value.get("id")
    if isinstance(item_id, str):
        if not item_id.strip():
            problems.append(f"{where}: blank id")
        elif item_id in ids:
            problems.append(f"{where}: duplicate id {item_id!r}")
        ids.add(item_id)
    if "content_html" not in value and "content_text" not in value:
        problems.append(f"{where}: neither content_html nor content_text")
    return problems


def check_json_feed(data: bytes, served_at: str | None = None) -> list[str]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return [f"not UTF-8: {exc}"]
    except json.JSONDecodeError as exc:
        return [f"not JSON: {exc}"]
    problems = _object(doc, "feed", FEED_FIELDS, required=("version", "title", "items"))
    if not isinstance(doc, dict):
        return problems
    if doc.get("version") != VERSION:
        problems.append(f"feed.version is {doc.get('version')!r}, not {VERSION!r}")
    if isinstance(doc.get("title"), str) and not doc["title"].strip():
        problems.append("feed.title: blank")
    if served_at is not None and doc.get("feed_url") != served_at:
        problems.append(f"feed_url {doc.get('feed_url')!r} does not match document location "
                        f"{served_at!r}")
    items = doc.get("items")
    if not isinstance(items, list):
        return [*problems, f"feed.items: not an array: {items!r}"]
    ids: set[str] = set()
    for n, item in enumerate(items):
        problems += _item(item, f"items[{n}]", ids)
    return problems
