"""gov.kz's official per-agency RSS, ``GET /api/v1/public/rss/{slug}/news/{lang}``: the last
access path (README, "Crawling gov.kz", "Access paths").

Its item format is not known, so this reads RSS 2.0 and, defensively, Atom, and is strict only
where it must be: the document has to be RSS or Atom, and an item is kept only when its link or
guid names a gov.kz news id, so it gets the same identity (and URL) as the same item read from
the JSON API. Entries it cannot place are Rejects (with their XML), not guesses.

One invalid character (a control character, an unescaped "&") must not cost the whole feed.
Control bytes XML forbids are removed before parsing (libxml2's recovery alone loses the rest of
an element, sometimes of the document, at one inside CDATA); a document that is still not
well-formed is read again with recovery, and is refused (LayoutChanged "not XML") only when even
that finds no entry. Every text taken out of the tree passes clean_text.
"""

from __future__ import annotations

import copy
import html
import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import lxml.etree

from crawler.errors import LayoutChanged
from crawler.extract.fields import (
    BODY_TOO_BIG,
    OUT_OF_RANGE,
    SAMPLE_BYTES,
    absolute,
    parse_created_date,
    parse_item_id,
    short,
    to_local,
    too_big,
    unreadable,
)
from crawler.extract.htmlbody import clean_body
from crawler.extract.result import Extracted, collect
from crawler.items import GOVKZ_SITE, ITEM_URL_RE, NewsItem, Reject, item_url
from crawler.sanitize import clean_line, clean_text, html_to_text, truncate

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
# Any link whose path ends in /details/{id}, e.g. on a mirror or with extra query parameters.
_DETAILS_RE = re.compile(r"/details/(\d+)/?(?:[?#].*)?$")
# "+05:00" is a common slip in RFC 822 dates; email.utils would read it as "no zone".
_COLON_OFFSET_RE = re.compile(r"([+-]\d{2}):(\d{2})$")
# A character reference to a surrogate: libxml2's recovery keeps it as bytes that are not
# UTF-8, and lxml then raises on reading the text. It is what clean_text makes of one: U+FFFD.
_CHAR_REF_RE = re.compile(rb"&#(x[0-9A-Fa-f]{1,8}|[0-9]{1,10});")
# C0 controls XML 1.0 forbids. In UTF-8 and every single-byte encoding these bytes are those
# characters and nothing else (never part of a multi-byte sequence), so they can be dropped as
# bytes; not in UTF-16/32, recognised by a BOM or a NUL among the first bytes.
_FORBIDDEN_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_UTF8_NONCHARS_RE = re.compile(b"\xef\xbf[\xbe\xbf]")  # U+FFFE, U+FFFF in UTF-8
_DECLARED_RE = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)""")
# No DTDs, no entity expansion, no network: a feed is data, not instructions to the parser.
_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": True}
_STRICT = lxml.etree.XMLParser(recover=False, **_OPTIONS)
_RECOVER = lxml.etree.XMLParser(recover=True, **_OPTIONS)


def rss_url(site: str, slug: str, lang: str) -> str:
    return f"{site.rstrip('/')}/api/v1/public/rss/{quote(slug, safe='')}/news/{lang}"


def news_id(*candidates: str | None) -> int | None:
    """The gov.kz news id named by the first candidate (a link or a guid) that names one."""
    for value in candidates:
        text = (value or "").strip()
        match = ITEM_URL_RE.match(text)
        digits = match.group("id") if match else None
        if digits is None and (tail := _DETAILS_RE.search(text)):
            digits = tail.group(1)
        try:
            return parse_item_id(digits)
        except LayoutChanged:  # no digits, 0, or more than an id can be
            continue
    return None


def _parse_date(*candidates: str | None) -> datetime:
    """RFC 822 (RSS), else ISO 8601 (dc:date, Atom); naive is gov.kz local time. The first
    candidate that reads wins; LayoutChanged "no date", "bad date '…'" or OUT_OF_RANGE."""
    values = [value.strip() for value in candidates if value and value.strip()]
    out_of_range = False
    for value in values:
        try:
            return to_local(parsedate_to_datetime(_COLON_OFFSET_RE.sub(r"\1\2", value)))
        except LayoutChanged:
            out_of_range = True
            continue
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
        try:
            return parse_created_date(value)
        except LayoutChanged as exc:
            out_of_range = out_of_range or exc.reason == OUT_OF_RANGE
    if not values:
        raise LayoutChanged("no date")
    raise LayoutChanged(OUT_OF_RANGE if out_of_range else f"bad date {short(values[0])}")


def _plain(value: str | None) -> str | None:
    """A title as plain text: RSS titles are often escaped HTML."""
    if value is None:
        return None
    return html_to_text(value, one_line=True) if "<" in value or "&" in value else value


def _text(element: lxml.etree._Element, path: str) -> str | None:
    found = element.find(path)
    return _clean(found.text) if found is not None else None


def _clean(value: str | None) -> str | None:
    return clean_text(value) if value is not None else None


def _item(fields: dict, *, agency: str, lang: str, site: str) -> NewsItem:
    """The item of one entry's fields; LayoutChanged with the reason it cannot be one."""
    item_id = news_id(fields["link"], fields["guid"])
    if item_id is None:
        raise LayoutChanged("no news id")
    if fields["title"] is None:
        raise LayoutChanged("no title")
    title = clean_line(fields["title"])
    if not title:
        raise LayoutChanged("title empty after cleaning")
    published = _parse_date(*fields["dates"])
    if too_big(fields["body"] or "") or too_big(fields["summary"] or ""):
        raise LayoutChanged(BODY_TOO_BIG)
    body_html, body_text = clean_body(fields["body"], site)
    summary = html_to_text(fields["summary"]) if fields["summary"] else ""
    return NewsItem(
        agency=agency,
        id=item_id,
        lang=lang,
        url=item_url(agency, item_id, lang, site.rstrip("/")),
        title=title,
        published=published,
        body_text=body_text,
        body_html=body_html,
        categories=[c.strip() for c in fields["categories"] if c and c.strip()],
        summary=truncate(summary or body_text),
        image=absolute(site, fields["image"]),
        source="rss",
    )


def _rss_fields(entry: lxml.etree._Element) -> dict:
    encoded = _text(entry, f"{CONTENT}encoded")
    description = _text(entry, "description")
    image = next(
        (
            enc.get("url")
            for enc in entry.findall("enclosure")
            if (enc.get("type") or "").startswith("image/") and enc.get("url")
        ),
        None,
    )
    return {
        "link": _text(entry, "link"),
        "guid": _text(entry, "guid"),
        "title": _plain(_text(entry, "title")),
        "dates": [_text(entry, "pubDate"), _text(entry, f"{DC}date")],
        "body": encoded or description,
        "summary": description if encoded else None,
        "categories": [_clean(c.text) for c in entry.findall("category")],
        "image": _clean(image),
    }


def _atom_html(element: lxml.etree._Element | None) -> str | None:
    """The HTML of an Atom text construct, whatever its type."""
    if element is None:
        return None
    kind = element.get("type", "text")
    if kind == "xhtml":
        # Content is the children of one XHTML <div> wrapper; drop the namespace to get HTML.
        wrapper = next(iter(element), None)
        if wrapper is None:
            return _clean(element.text)
        wrapper = copy.deepcopy(wrapper)
        for el in wrapper.iter():
            if isinstance(el.tag, str):
                el.tag = lxml.etree.QName(el).localname
        lxml.etree.cleanup_namespaces(wrapper)
        inner = html.escape(wrapper.text or "", quote=False)
        return clean_text(inner + "".join(
            lxml.etree.tostring(child, encoding="unicode", method="html") for child in wrapper
        ))
    if kind in ("html", "text/html"):
        return _clean(element.text)
    return html.escape(clean_text(element.text or ""), quote=False)


def _atom_fields(entry: lxml.etree._Element) -> dict:
    links = entry.findall(f"{ATOM}link")
    alternate = _clean(next(
        (lk.get("href") for lk in links if lk.get("rel", "alternate") == "alternate"), None
    ))
    image = next(
        (lk.get("href") for lk in links
         if lk.get("rel") == "enclosure" and (lk.get("type") or "").startswith("image/")),
        None,
    )
    title = _atom_html(entry.find(f"{ATOM}title"))
    content = _atom_html(entry.find(f"{ATOM}content"))
    summary = _atom_html(entry.find(f"{ATOM}summary"))
    return {
        "link": alternate,
        "guid": _text(entry, f"{ATOM}id"),
        "title": html_to_text(title, one_line=True) if title is not None else None,
        "dates": [_text(entry, f"{ATOM}published"), _text(entry, f"{ATOM}updated")],
        "body": content or summary,
        "summary": summary if content else None,
        "categories": [_clean(c.get("term")) for c in entry.findall(f"{ATOM}category")],
        "image": _clean(image),
    }


def _surrogate_free(match: re.Match[bytes]) -> bytes:
    digits = match.group(1)
    value = int(digits[1:], 16) if digits[:1] == b"x" else int(digits)
    return b"&#xFFFD;" if 0xD800 <= value <= 0xDFFF else match.group(0)


def _xml_chars(data: bytes) -> bytes:
    """``data`` without the characters XML forbids that can be found as bytes, and with
    references to surrogates replaced by U+FFFD."""
    if data[:2] in (b"\xfe\xff", b"\xff\xfe") or b"\x00" in data[:4]:
        return data  # UTF-16 or UTF-32: left to the parser's recovery
    data = data.translate(None, _FORBIDDEN_BYTES)
    declared = _DECLARED_RE.match(data)
    if declared is None or declared.group(1).lower() in (b"utf-8", b"utf8"):
        data = _UTF8_NONCHARS_RE.sub(b"", data)
    return _CHAR_REF_RE.sub(_surrogate_free, data)


def _entries(body: bytes, sample: bytes) -> tuple[list[lxml.etree._Element], str]:
    """The entries of the document and how to read them ("rss" or "atom")."""
    data = _xml_chars(body.removeprefix(b"\xef\xbb\xbf").lstrip())
    if not data.strip():
        raise LayoutChanged("official RSS: not XML (empty body)", sample=sample)
    error = None
    try:
        root = lxml.etree.fromstring(data, _STRICT)
    except lxml.etree.XMLSyntaxError as exc:
        error = exc
        try:
            root = lxml.etree.fromstring(data, _RECOVER)
        except lxml.etree.XMLSyntaxError:
            root = None
    if root is None:
        raise LayoutChanged(f"official RSS: not XML ({error})", sample=sample)
    if root.tag == "rss":
        channel = root.find("channel")
        entries, kind = (channel.findall("item") if channel is not None else []), "rss"
    elif root.tag == f"{ATOM}feed":
        channel, entries, kind = root, root.findall(f"{ATOM}entry"), "atom"
    else:
        channel, entries, kind = None, [], ""
    if error is not None and not entries:
        # Recovery saved nothing: what came was not a feed with a glitch but not a feed.
        raise LayoutChanged(f"official RSS: not XML ({error})", sample=sample)
    if not kind:
        raise LayoutChanged(f"official RSS: not RSS or Atom: <{root.tag}>", sample=sample)
    if channel is None:
        raise LayoutChanged("official RSS: <rss> without a <channel>", sample=sample)
    return entries, kind


def _entry_outcome(
    entry: lxml.etree._Element, kind: str, *, agency: str, lang: str, site: str, url: str
) -> NewsItem | Reject:
    """One entry as an item, or as a Reject with its reason and XML: nothing in one entry
    (a text lxml cannot decode, an impossible date) costs the others."""
    fields: dict = {}
    try:
        fields = _rss_fields(entry) if kind == "rss" else _atom_fields(entry)
        return _item(fields, agency=agency, lang=lang, site=site)
    except LayoutChanged as exc:
        reason = exc.reason
    except (ValueError, OverflowError, TypeError, UnicodeError) as exc:
        reason = unreadable(exc)
    item_id = news_id(fields.get("link"), fields.get("guid")) if fields else None
    try:
        raw = lxml.etree.tostring(entry, encoding="unicode", with_tail=False)
    except (ValueError, UnicodeError):
        raw = ""
    return Reject(agency, lang, reason, raw=raw, url=url, item_id=item_id)


def parse_official_rss(
    body: bytes, *, agency: str, lang: str, site: str = GOVKZ_SITE, url: str = ""
) -> Extracted:
    """Items and rejects of an official RSS 2.0 (or Atom) document, in document order.

    LayoutChanged when it is not one: not XML even after recovery, an empty body, another
    root element, an <rss> without a <channel>."""
    entries, kind = _entries(body, body[:SAMPLE_BYTES])
    return collect(
        _entry_outcome(entry, kind, agency=agency, lang=lang, site=site, url=url)
        for entry in entries
    )
