"""gov.kz's official per-agency RSS (DESIGN.md §3): ``GET /api/v1/public/rss/{slug}/news/{lang}``.

Its item format is not known, so this reads RSS 2.0 and, defensively, Atom, and is strict only
where it must be: the document has to be XML with a channel (or a feed), and an item is kept
only when its link or guid names a gov.kz news id, so it gets the same identity (and URL) as the
same item read from the JSON API. Items it cannot place are skipped and reported, not guessed.
"""

from __future__ import annotations

import copy
import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urljoin

import lxml.etree

from crawler.errors import LayoutChanged
from crawler.extract.api import SAMPLE_BYTES, parse_created_date
from crawler.extract.htmlbody import clean_body, html_to_text, summarize
from crawler.items import GOVKZ_SITE, ITEM_URL_RE, NewsItem, item_url
from crawler.timeutil import ALMATY, localize

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
# Any link whose path ends in /details/{id}, e.g. on a mirror or with extra query parameters.
_DETAILS_RE = re.compile(r"/details/(\d+)/?(?:[?#].*)?$")
# "+05:00" is a common slip in RFC 822 dates; email.utils would read it as "no zone".
_COLON_OFFSET_RE = re.compile(r"([+-]\d{2}):(\d{2})$")
# No DTDs, no entity expansion, no network: a feed is data, not instructions to the parser.
_PARSER = lxml.etree.XMLParser(
    recover=False, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


@dataclass
class RssResult:
    items: list[NewsItem] = field(default_factory=list)
    # One line per entry that was not turned into an item, saying why.
    skipped: list[str] = field(default_factory=list)


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
        if digits and int(digits) > 0:
            return int(digits)
    return None


def _parse_date(*candidates: str | None) -> datetime | None:
    """RFC 822 (RSS), else ISO 8601 (dc:date, Atom); naive is gov.kz local time."""
    for value in candidates:
        if not value or not value.strip():
            continue
        try:
            rfc822 = _COLON_OFFSET_RE.sub(r"\1\2", value.strip())
            return localize(parsedate_to_datetime(rfc822)).astimezone(ALMATY)
        except (TypeError, ValueError, IndexError):
            pass
        try:
            return parse_created_date(value.strip())
        except LayoutChanged:
            pass
    return None


def _plain(value: str | None) -> str:
    """A title as plain text: RSS titles are often escaped HTML."""
    text = value or ""
    if "<" in text or "&" in text:
        text = html_to_text(text)
    return " ".join(text.split())


def _text(element: lxml.etree._Element, path: str) -> str | None:
    found = element.find(path)
    return found.text if found is not None else None


def _item(
    entry: lxml.etree._Element, fields: dict, *, agency: str, lang: str, site: str
) -> NewsItem | str:
    """An item, or the reason why ``entry`` cannot be one."""
    item_id = news_id(fields["link"], fields["guid"])
    if item_id is None:
        return f"no news id in link {fields['link']!r} or guid {fields['guid']!r}"
    title = _plain(fields["title"])
    if not title:
        return f"{item_id}: no title"
    published = _parse_date(*fields["dates"])
    if published is None:
        return f"{item_id}: no readable date in {[d for d in fields['dates'] if d]!r}"
    body_html, body_text = clean_body(fields["body"], site)
    summary = html_to_text(fields["summary"]) if fields["summary"] else ""
    image = urljoin(site.rstrip("/") + "/", fields["image"]) if fields["image"] else None
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
        summary=summarize(summary or body_text),
        image=image,
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
        "title": _text(entry, "title"),
        "dates": [_text(entry, "pubDate"), _text(entry, f"{DC}date")],
        "body": encoded or description,
        "summary": description if encoded else None,
        "categories": [c.text for c in entry.findall("category")],
        "image": image,
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
            return element.text
        wrapper = copy.deepcopy(wrapper)
        for el in wrapper.iter():
            if isinstance(el.tag, str):
                el.tag = lxml.etree.QName(el).localname
        lxml.etree.cleanup_namespaces(wrapper)
        inner = html.escape(wrapper.text or "", quote=False)
        return inner + "".join(
            lxml.etree.tostring(child, encoding="unicode", method="html") for child in wrapper
        )
    if kind in ("html", "text/html"):
        return element.text
    return html.escape(element.text or "", quote=False)


def _atom_fields(entry: lxml.etree._Element) -> dict:
    links = entry.findall(f"{ATOM}link")
    alternate = next((lk.get("href") for lk in links if lk.get("rel", "alternate") == "alternate"),
                     None)
    image = next(
        (lk.get("href") for lk in links
         if lk.get("rel") == "enclosure" and (lk.get("type") or "").startswith("image/")),
        None,
    )
    content = _atom_html(entry.find(f"{ATOM}content"))
    summary = _atom_html(entry.find(f"{ATOM}summary"))
    return {
        "link": alternate,
        "guid": _text(entry, f"{ATOM}id"),
        "title": html_to_text(_atom_html(entry.find(f"{ATOM}title"))),
        "dates": [_text(entry, f"{ATOM}published"), _text(entry, f"{ATOM}updated")],
        "body": content or summary,
        "summary": summary if content else None,
        "categories": [c.get("term") for c in entry.findall(f"{ATOM}category")],
        "image": image,
    }


def parse_official_rss(
    body: bytes, *, agency: str, lang: str, site: str = GOVKZ_SITE
) -> RssResult:
    """Items of an official RSS 2.0 (or Atom) document; LayoutChanged unless it is one."""
    sample = body[:SAMPLE_BYTES]
    try:
        root = lxml.etree.fromstring(body.removeprefix(b"\xef\xbb\xbf").lstrip(), _PARSER)
    except lxml.etree.XMLSyntaxError as exc:
        raise LayoutChanged(f"official RSS: not XML ({exc})", sample=sample) from exc
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise LayoutChanged("official RSS: <rss> without a <channel>", sample=sample)
        entries, read = channel.findall("item"), _rss_fields
    elif root.tag == f"{ATOM}feed":
        entries, read = root.findall(f"{ATOM}entry"), _atom_fields
    else:
        raise LayoutChanged(f"official RSS: not RSS or Atom: <{root.tag}>", sample=sample)

    result = RssResult()
    for index, entry in enumerate(entries):
        outcome = _item(entry, read(entry), agency=agency, lang=lang, site=site)
        if isinstance(outcome, NewsItem):
            result.items.append(outcome)
        else:
            result.skipped.append(f"official RSS {agency}/{lang} entry {index}: {outcome}")
    return result
