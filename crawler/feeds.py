"""RSS 2.0 and Atom feeds (feedgen), JSON Feed 1.1 and the OPML indexes, written from the archive.

The only module that builds feed XML; JSON Feed is rendered here too, so the three formats of a
feed always carry the same entries. Everything that reaches a feed passes through
crawler.sanitize: titles and summaries become plain text, bodies allowlisted HTML, and no
string keeps a character XML forbids. A feed's dates come from its items, never from the
clock, so unchanged news renders to identical bytes and the file is left alone.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from crawler.agencies import AgencyRegistry
from crawler.feed_catalog import Section, sections
from crawler.feed_dir import FeedDirectory, feed_files
from crawler.feed_files import (  # noqa: F401 - gz_path, gz_fresh: re-exported for callers
    FORMATS,
    GZ,
    StagedWrites,
    gz_fresh,
    gz_path,
    write_if_changed,
)
from crawler.items import GOVKZ_SITE, ITEM_URL_RE, LANGS, item_url, press_page_url
from crawler.sanitize import (
    GOVKZ_BASE,
    SUMMARY_CHARS,
    clean_text,
    plain_text,
    sanitize_html,
    strip_invalid_xml_chars,
    text_to_html,
    truncate,
)
from crawler.timeutil import localize, parse_iso

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080/"
GENERATOR = "govkz-monitor"
# The `updated` of a feed without entries: a fixed date, so an empty feed is stable too.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)
ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"
JSON_FEED_TYPE = "application/feed+json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
# The JSON Feed extension object (spec: custom names start with "_") for what the spec lacks:
# the same news in the other languages.
JSON_EXTENSION = "_govkz"
# An enclosure needs a media type; the picture's extension is all we know of it. A fixed table
# rather than mimetypes, whose answers depend on the machine's /etc/mime.types.
IMAGE_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg", ".jfif": "image/jpeg",
    ".png": "image/png", ".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif",
    ".svg": "image/svg+xml", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".heic": "image/heic", ".ico": "image/vnd.microsoft.icon",
}  # fmt: skip
UNKNOWN_TYPE = "application/octet-stream"
# Characters kept as they are when a picture's URL is percent-encoded (as crawler.sanitize does
# for the <img> of a body, so both name the same URL).
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"

_DESCRIPTIONS = {
    "en": "Press news published on gov.kz: {name}",
    "ru": "Новости пресс-службы на gov.kz: {name}",
    "kk": "gov.kz сайтындағы баспасөз жаңалықтары: {name}",
    None: "Press news published on gov.kz, all languages: {name}",
}
ALL_TITLE = "gov.kz: news of all agencies"
ALL_TITLES = {
    "en": "gov.kz: news of all agencies in English",
    "ru": "gov.kz: новости всех ведомств на русском",
    "kk": "gov.kz: барлық мекемелердің қазақша жаңалықтары",
}
OPML_TITLES = {
    None: "gov.kz press news feeds",
    "en": "gov.kz press news feeds in English",
    "ru": "Ленты новостей gov.kz на русском",
    "kk": "gov.kz жаңалықтар арналары, қазақша",
}
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}


class FeedSource(Protocol):
    """What the feeds need from the archive (crawler.store.Archive implements it)."""

    def feed_items(
        self, agency: str | None = None, lang: str | None = None, limit: int = 50
    ) -> list[dict]: ...

    def feed_groups(self) -> list[tuple[str, str]]: ...

    def translations(self, agency: str, item_id: int) -> dict[str, str]: ...

    def translations_of(
        self, keys: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], dict[str, str]]: ...


@dataclass(frozen=True)
class FeedMeta:
    title: str
    self_url: str  # where the file is served: its Atom id and rel="self" link
    alternate_url: str  # the web page the feed mirrors
    description: str
    lang: str | None = None
    author: str = "gov.kz"


@dataclass(frozen=True)
class EntryData:
    id: str  # an absolute IRI; for gov.kz news the item page URL
    title: str  # plain text
    link: str
    published: datetime
    updated: datetime
    content_html: str = ""  # allowlisted (crawler.sanitize) when rendered, unless `clean`
    summary: str = ""  # plain text
    categories: tuple[str, ...] = ()
    lang: str | None = None
    author: str | None = None
    translations: tuple[tuple[str, str], ...] = ()  # (lang, url) of the same news elsewhere
    image: str | None = None  # the item's picture, an absolute URL: enclosure / JSON `image`
    # True when the fields are already what a feed shows (entry_from_item's entries): plain
    # text, allowlisted content_html, dates to the second; rendering then cleans nothing again.
    clean: bool = False


@dataclass
class FeedReport:
    written: list[Path] = field(default_factory=list)
    unchanged: int = 0
    feeds: int = 0  # documents rendered (feeds + the OPML): len(written) + unchanged


# --- rendering --------------------------------------------------------------------------------


# A text without markup, entities, a byte-order mark or the private-use characters
# crawler.sanitize uses as break marks is already what plain_text makes of it once its white
# space is folded and its characters cleaned: no HTML parse needed. Titles and summaries are
# almost always such text, and the parse was most of a feed's rendering time.
_NEEDS_PARSE = re.compile("[<&\ufeff\ue000\ue001]")


def _plain(text: str | None) -> str:
    """plain_text(text), without parsing HTML when the text cannot hold any (same result)."""
    if not text:
        return ""
    if _NEEDS_PARSE.search(text) is None:
        return " ".join(clean_text(strip_invalid_xml_chars(text)).replace("\xa0", " ").split())
    return plain_text(text)


def _terms(categories: Iterable[str]) -> tuple[str, ...]:
    """Categories as plain text, each once, in their order, empty ones left out."""
    return tuple(term for term in dict.fromkeys(_plain(c) for c in categories) if term)


def _second(value: datetime) -> datetime:
    return localize(value).replace(microsecond=0)


def _cleaned(entry: EntryData) -> EntryData:
    """The entry as feeds show it: plain-text fields, allowlisted content, seconds-precise
    dates. An entry made clean (entry_from_item's) is returned as it is: cleaning twice
    would cost as much again and change nothing."""
    if entry.clean:
        return entry
    author = _plain(entry.author) if entry.author else ""
    published = _second(entry.published)
    return replace(
        entry,
        title=_plain(entry.title) or entry.link,
        published=published,
        # Atom: an entry is updated no earlier than it is published.
        updated=max(_second(entry.updated), published),
        content_html=sanitize_html(entry.content_html),
        summary=_plain(entry.summary),
        categories=_terms(entry.categories),
        author=author or None,
        clean=True,
    )


def _ordered(entries: Iterable[EntryData]) -> list[EntryData]:
    # Newest first; the id breaks ties so equal dates still render in a stable order.
    return sorted(map(_cleaned, entries), key=lambda e: (e.published, e.id), reverse=True)


def _updated(entries: Sequence[EntryData]) -> datetime:
    return max((e.updated for e in entries), default=EMPTY_FEED_UPDATED)


def _generator(meta: FeedMeta, entries: list[EntryData]) -> FeedGenerator:
    fg = FeedGenerator()
    fg.title(_plain(meta.title))
    fg.description(_plain(meta.description))  # also the Atom subtitle
    fg.updated(_updated(entries))  # also RSS lastBuildDate
    fg.generator(GENERATOR)
    if meta.lang:
        fg.language(meta.lang)
    return fg


class _TranslationLinks(BaseEntryExtension):
    """Atom links to the same news in the other languages: rel="related" with hreflang, and
    the picture as rel="enclosure".

    Not rel="alternate", although a translation is one: readers disagree on which of several
    alternates is "the" link (feedparser takes the last, others the first or the first with an
    explicit rel), so the item's own page stays the entry's only alternate. An extension
    because feedgen 1.0 drops rel/type/hreflang from the entry links it renders itself (an
    enclosure given to feedgen would come out as a second, bare alternate link)."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []
        self.enclosure: tuple[str, str] | None = None  # (url, media type)

    def extend_atom(self, entry: Any) -> Any:
        for lang, url in self.links:
            attrs = {"href": url, "rel": "related", "type": "text/html", "hreflang": lang}
            attrs["title"] = LANGUAGE_NAMES.get(lang, lang)
            etree.SubElement(entry, "link", attrs)
        if self.enclosure is not None:
            url, media_type = self.enclosure
            etree.SubElement(entry, "link", {"href": url, "rel": "enclosure", "type": media_type})
        return entry


def image_type(url: str) -> str:
    """The media type of a picture, guessed from its URL's extension."""
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return IMAGE_TYPES.get(suffix, UNKNOWN_TYPE)


def image_url(reference: str | None) -> str | None:
    """A picture reference (gov.kz's `heropic` is site-relative) as an absolute http(s) URL,
    encoded as in item bodies; None for none or one that cannot be a link."""
    if not reference or not reference.strip():
        return None
    try:
        url = quote(urljoin(GOVKZ_BASE + "/", reference.strip()), safe=_URL_SAFE)
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _other_languages(entry: EntryData) -> list[tuple[str, str]]:
    return [(lang, url) for lang, url in entry.translations
            if lang != entry.lang and url != entry.link]  # fmt: skip


class RenderCache:
    """Each entry's feedgen objects and JSON item, made once and reused by every feed it is
    in (its agency × language feed, its agency's, the every-agency ones) during one publish.
    A feedgen FeedEntry renders afresh into every document it is added to, so sharing one is
    safe; keys are the (clean, immutable) entries themselves."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, EntryData], Any] = {}

    def get(self, fmt: str, entry: EntryData, make: Any) -> Any:
        key = (fmt, entry)
        found = self._made.get(key)
        if found is None:
            found = self._made[key] = make(entry)
        return found


def _feed_entry(entry: EntryData, *, atom: bool) -> FeedEntry:
    """A feedgen entry of a clean entry (see _cleaned)."""
    fe = FeedEntry()
    fe.guid(entry.id, permalink=entry.id == entry.link)
    fe.title(entry.title)
    fe.link(href=entry.link, rel="alternate")  # rendered as a bare href in Atom (see above)
    if atom:
        fe.register_extension("translations", _TranslationLinks, atom=True, rss=False)
        fe.translations.links = _other_languages(entry)
        if entry.image:
            fe.translations.enclosure = (entry.image, image_type(entry.image))
    elif entry.image:
        # RSS knows no size for it: 0 is what the RSS Advisory Board says to send then.
        fe.enclosure(entry.image, 0, image_type(entry.image))
    fe.published(entry.published)
    fe.updated(entry.updated)
    if entry.content_html:
        fe.content(entry.content_html, type="html")
    if entry.summary:
        fe.summary(entry.summary)
    for term in entry.categories:
        fe.category(term=term)
    if entry.author:
        fe.author(name=entry.author)
    return fe


def _atom_entry(entry: EntryData) -> FeedEntry:
    return _feed_entry(entry, atom=True)


def _rss_entry(entry: EntryData) -> FeedEntry:
    return _feed_entry(entry, atom=False)


def render_atom(
    meta: FeedMeta, entries: Iterable[EntryData], *, cache: RenderCache | None = None
) -> bytes:
    """An Atom 1.0 document; entries newest first, `updated` = the newest entry's."""
    ordered = _ordered(entries)
    cache = cache or RenderCache()
    fg = _generator(meta, ordered)
    fg.id(meta.self_url)
    fg.author(name=_plain(meta.author) or "gov.kz")
    fg.link(href=meta.alternate_url, rel="alternate", type="text/html")
    fg.link(href=meta.self_url, rel="self", type=ATOM_TYPE)
    for entry in ordered:
        fg.add_entry(cache.get("atom", entry, _atom_entry), order="append")
    return fg.atom_str(pretty=True, encoding="UTF-8")


def render_rss(
    meta: FeedMeta, entries: Iterable[EntryData], *, cache: RenderCache | None = None
) -> bytes:
    """An RSS 2.0 document with an atom:link rel="self"; items newest first."""
    ordered = _ordered(entries)
    cache = cache or RenderCache()
    fg = _generator(meta, ordered)
    # feedgen uses the *last* link as the channel <link>: self first, the web page last.
    fg.link(href=meta.self_url, rel="self", type=RSS_TYPE)
    fg.link(href=meta.alternate_url, rel="alternate")
    for entry in ordered:
        fg.add_entry(cache.get("rss", entry, _rss_entry), order="append")
    return fg.rss_str(pretty=True, encoding="UTF-8")


def _json_item(entry: EntryData) -> dict[str, Any]:
    item: dict[str, Any] = {"id": entry.id, "url": entry.link, "title": entry.title}
    if entry.content_html:
        item["content_html"] = entry.content_html
    else:  # the spec wants one of the two
        item["content_text"] = entry.summary or entry.title
    if entry.summary:
        item["summary"] = entry.summary
    if entry.image:
        item["image"] = entry.image
    item["date_published"] = entry.published.isoformat()
    item["date_modified"] = entry.updated.isoformat()
    if entry.author:
        item["authors"] = [{"name": entry.author}]
    if entry.categories:
        item["tags"] = list(entry.categories)
    if entry.lang:
        item["language"] = entry.lang
    others = _other_languages(entry)
    if others:
        item[JSON_EXTENSION] = {
            "translations": [{"language": lang, "url": url} for lang, url in others]
        }
    return item


def render_json(
    meta: FeedMeta, entries: Iterable[EntryData], *, cache: RenderCache | None = None
) -> bytes:
    """A JSON Feed 1.1 document with the entries of render_atom/render_rss, in their order, with
    the same ids (the guid), dates, languages, translations and pictures.

    The feed's own fields indented, each item on one line: json's C encoder writes compact
    JSON only (indenting falls back to its Python one, a tenth of the speed), and each item's
    line is encoded once for every feed it is in."""
    doc: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": _plain(meta.title) or meta.self_url,
        "home_page_url": meta.alternate_url,
        "feed_url": meta.self_url,
        "description": _plain(meta.description),
        "authors": [{"name": _plain(meta.author) or "gov.kz"}],
    }
    if meta.lang:
        doc["language"] = meta.lang
    cache = cache or RenderCache()
    lines = [cache.get("json", entry, _json_line) for entry in _ordered(entries)]
    head = json.dumps(doc, ensure_ascii=False, indent=2)[: -len("\n}")]
    items = "[\n" + ",\n".join(lines) + "\n  ]" if lines else "[]"
    return f'{head},\n  "items": {items}\n}}\n'.encode()


def _json_line(entry: EntryData) -> str:
    """An entry as one line of a JSON Feed's items (JSON text never holds a raw newline)."""
    return "    " + json.dumps(_json_item(entry), ensure_ascii=False, separators=(", ", ": "))


# --- archive rows -> entries ------------------------------------------------------------------


def entry_id(item: Mapping[str, Any]) -> str:
    """The entry's id (Atom id, RSS guid, JSON Feed id): the item's page, `url`.

    But a saved list page can link its items to their pages in another language (an English
    list with ?lang=kk links), and then the item stored in that language has the same page;
    two entries with one guid would be one item to a reader. Such an item's id is its page in
    its own language, so every (agency, id, lang) keeps a guid of its own."""
    url = str(item["url"])
    found, lang = ITEM_URL_RE.match(url), item.get("lang")
    if found and found["lang"] and isinstance(lang, str) and found["lang"] != lang:
        return item_url(found["slug"], int(found["id"]), lang)
    return url


def entry_from_item(
    item: Mapping[str, Any],
    *,
    author: str | None = None,
    translations: Mapping[str, str] | None = None,
) -> EntryData | None:
    """An archive row (Archive.feed_items) as a feed entry; None for a row that cannot be
    published (incomplete, or without a date or a link)."""
    published = parse_iso(item.get("published"))
    if published is None or item.get("incomplete") or not item.get("url"):
        return None
    # A never-edited item was last updated when it was published (the archive's `updated` is
    # then only when we first saw it); an edited one when we saw its newest version.
    edited = (item.get("version") or 1) > 1
    updated = (parse_iso(item.get("updated")) if edited else None) or published
    body = item.get("body_html") or text_to_html(item.get("body_text") or "")
    image = item.get("image")
    if image and image not in body:
        body = f'<p><img src="{html.escape(image)}" alt=""></p>{body}'
    summary, title = _plain(item.get("summary")), _plain(item.get("title"))
    if not summary or not title:  # only then is the body's text needed: parsing it is dear
        text = plain_text(body)
        summary = summary or truncate(text, SUMMARY_CHARS)
        title = title or truncate(text, 80)
    published = _second(published)
    # Made clean here, once: the entry is rendered in three formats and up to four feeds.
    return EntryData(
        image=image_url(image),
        id=entry_id(item),
        title=title or _plain(f"{item.get('agency', '')} #{item.get('id', '')}") or item["url"],
        link=item["url"],
        published=published,
        updated=max(_second(updated), published),
        content_html=sanitize_html(body),
        summary=summary,
        categories=_terms(item.get("categories") or ()),
        lang=item.get("lang"),
        author=(_plain(author) or None) if author else None,
        translations=tuple(sorted((translations or {}).items())),
        clean=True,
    )


# --- writing ----------------------------------------------------------------------------------

# How files get into the directory (atomic, synced, a .gz copy each): crawler.feed_files.


def _lang_order(lang: str) -> tuple[int, str]:
    return (LANGS.index(lang) if lang in LANGS else len(LANGS), lang)


_RENDER = {"atom": render_atom, "rss": render_rss, "json": render_json}
# The every-agency feeds: all.* (all languages, kept for its subscribers) and all/{lang}.*. An
# agency with this slug would overwrite them, so it gets none (the config's "all" keyword
# already keeps it from being enabled by name).
ALL_REL = "all"


@dataclass(frozen=True)
class _Plan:
    """One feed to write, in every format: `rel` is its path under out_dir, sans extension."""

    rel: str
    agency: str | None
    lang: str | None
    title: str
    alternate: str
    author: str

    def meta(self, base: str, ext: str) -> FeedMeta:
        description = _DESCRIPTIONS.get(self.lang, _DESCRIPTIONS[None]).format(name=self.title)
        self_url = f"{base}feeds/{self.rel}.{ext}"
        return FeedMeta(self.title, self_url, self.alternate, description, self.lang, self.author)

    def files(self) -> list[str]:
        """Its files, relative to the feeds directory, each with its .gz copy."""
        return feed_files(self.rel)


def _agency_plan(registry: AgencyRegistry, agency: str, lang: str) -> _Plan:
    name, page = registry.name(agency, lang), press_page_url(agency, lang)
    return _Plan(f"{agency}/{lang}", agency, lang, name, page, name)


def _by_agency(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """{agency: its languages in LANGS order} of (agency, lang) pairs, agencies sorted."""
    langs: dict[str, set[str]] = {}
    for agency, lang in pairs:
        if agency != ALL_REL:
            langs.setdefault(agency, set()).add(lang)
    return {agency: sorted(langs[agency], key=_lang_order) for agency in sorted(langs)}


def _plans(agency: str | None, langs: Sequence[str], registry: AgencyRegistry) -> list[_Plan]:
    """The feeds of one agency (its mixed feed, then one per language), or with agency None
    the every-agency ones."""
    if agency is None:
        site = GOVKZ_SITE + "/"
        return [_Plan(ALL_REL, None, None, ALL_TITLE, site, "gov.kz"),
                *(_Plan(f"{ALL_REL}/{lang}", None, lang, ALL_TITLES[lang], site, "gov.kz")
                  for lang in LANGS)]  # fmt: skip
    name = registry.name(agency, "en")  # falls back to ru, kk, the slug
    return [_Plan(agency, agency, None, name, press_page_url(agency, "en"), name),
            *(_agency_plan(registry, agency, lang) for lang in langs)]  # fmt: skip


def feed_rels(agency: str | None, langs: Sequence[str] = ()) -> list[str]:
    """The feeds (paths sans extension) of an agency in `langs`: its mixed-language feed and
    one per language; with agency None the every-agency ones (each language, and all)."""
    if agency is None:
        return [ALL_REL, *(f"{ALL_REL}/{lang}" for lang in LANGS)]
    return [agency, *(f"{agency}/{lang}" for lang in langs)]


def _newest(rows: Iterable[dict], limit: int) -> list[dict]:
    """The `limit` newest of `rows` in the archive's order (published, then id, newest first;
    the language last, so equal ones come out the same way every time)."""
    key = lambda r: (r.get("published") or "", r.get("id") or 0, r.get("lang") or "")  # noqa: E731
    return sorted(rows, key=key, reverse=True)[:limit]


class _AgencyEntries:
    """The entries of one agency's feeds (or of the every-agency feeds, agency None), each
    item read, translated and cleaned once: its agency × language feed, its agency's mixed
    feed and the every-agency feeds show the same entry. Made afresh per agency, so a publish
    of 3,000 agencies holds one agency's entries at a time."""

    def __init__(self, source: FeedSource, registry: AgencyRegistry, limit: int,
                 agency: str | None, langs: Sequence[str]) -> None:  # fmt: skip
        self._source, self._registry, self._limit = source, registry, limit
        self._agency, self._langs = agency, langs
        self._rows: dict[str | None, list[dict]] = {}
        self._entries: dict[tuple[str, Any, str], EntryData | None] = {}
        self.render = RenderCache()

    def rows(self, lang: str | None) -> list[dict]:
        if lang not in self._rows:
            if self._agency is not None and lang is None:
                # An agency's newest in any language are among its newest in each: merged from
                # those (read anyway for its per-language feeds) instead of one more query.
                found = _newest((r for one in self._langs for r in self.rows(one)), self._limit)
            else:
                found = self._source.feed_items(self._agency, lang, self._limit)
            self._rows[lang] = found
        return self._rows[lang]

    def of(self, lang: str | None) -> list[EntryData]:
        rows = self.rows(lang)
        keys = [(str(r.get("agency") or ""), r.get("id"), str(r.get("lang") or ""))
                for r in rows]  # fmt: skip
        new = [key for key in keys if key not in self._entries]
        ids = {(agency, item_id) for agency, item_id, _ in new if isinstance(item_id, int)}
        translations = self._source.translations_of(ids) if ids else {}
        for key, row in zip(keys, rows, strict=True):
            if key in self._entries:
                continue
            agency, item_id, item_lang = key
            author = self._registry.name(agency, item_lang or "en")
            others = translations.get((agency, item_id), {}) if isinstance(item_id, int) else {}
            self._entries[key] = entry_from_item(row, author=author, translations=others)
        return [entry for key in keys if (entry := self._entries[key]) is not None]


def write_feeds(
    source: FeedSource,
    out_dir: Path,
    *,
    base_url: str | None = DEFAULT_PUBLIC_URL,
    registry: AgencyRegistry,
    limit: int = 50,
    agencies: Iterable[str] | None = None,
    enabled: Iterable[tuple[str, str]] = (),
    directory: FeedDirectory | None = None,
) -> FeedReport:
    """Write the feeds of every agency × language with items or in `enabled` (those without
    items get valid empty feeds), plus the every-agency feeds and the indexes, which are always
    refreshed and always list every agency's feeds. With `agencies`, only those agencies'
    feeds are rewritten, and any other feed whose files are missing.

    Files, each feed in .atom, .rss and .json, each file with its .gz copy (feed_files):
    {slug}/{lang} (the unit readers subscribe to), {slug} (all languages), all/{lang}, all
    (all languages); index.opml (every {slug}/{lang} Atom feed, grouped by kind),
    index.{lang}.opml (one language), index.html (the feeds directory's page). Self links are
    base_url + "feeds/" + the file's path. Only files whose bytes change are replaced; every
    file is in place, synced, when this returns. `directory`: what out_dir holds
    (FeedDirectory.load), when the caller has read it already; its record is saved here.
    """
    out_dir = Path(out_dir)
    base = (base_url or DEFAULT_PUBLIC_URL).rstrip("/") + "/"
    by_agency = _by_agency([*source.feed_groups(), *enabled])
    wanted = None if agencies is None else set(agencies)
    if directory is None:
        # Everything is written: nothing to look up.
        directory = FeedDirectory(out_dir, assume_empty=wanted is None)
        if wanted is not None:
            directory = FeedDirectory.load(out_dir)
    report = FeedReport()
    with StagedWrites() as staged:
        done: list[str] = []  # feeds staged whole, in place once committed
        for agency in [None, *by_agency]:
            langs = by_agency.get(agency or "", ())
            stale = agency is None or wanted is None or agency in wanted
            rels = feed_rels(agency, langs)
            if not stale and all(directory.complete(rel) for rel in rels):
                continue  # by far the most agencies of an incremental publish: no plan made
            entries = _AgencyEntries(source, registry, limit, agency, langs)
            for plan in _plans(agency, langs, registry):
                if not stale and directory.complete(plan.rel):
                    continue
                found = entries.of(plan.lang)
                for ext in FORMATS:
                    data = _RENDER[ext](plan.meta(base, ext), found, cache=entries.render)
                    _record(report, staged, out_dir / f"{plan.rel}.{ext}", data)
                done.append(plan.rel)
            if len(staged) >= COMMIT_FILES:
                _commit(staged, directory, done)
        _commit(staged, directory, done)
        # A full rewrite renders the indexes whatever the digest says (see INDEX_KEY).
        _write_indexes(report, staged, out_dir, base, registry, by_agency,
                       reuse=wanted is not None)  # fmt: skip
    report.written = staged.written
    report.unchanged += staged.unchanged
    directory.save()
    return report


# Files staged before they are renamed into place together: enough to keep the writer threads
# busy while feeds render, few enough that new feeds reach readers during a full rewrite.
COMMIT_FILES = 600


def _commit(staged: StagedWrites, directory: FeedDirectory, done: list[str]) -> None:
    staged.commit()
    for rel in done:
        directory.written(rel)
    done.clear()


def _record(report: FeedReport, staged: StagedWrites, path: Path, data: bytes) -> None:
    report.feeds += 1
    staged.put(path, data)


# --- OPML and the directory index -------------------------------------------------------------


@dataclass(frozen=True)
class OpmlGroup:
    """An OPML outline that holds feeds (and groups) rather than being one."""

    title: str
    feeds: tuple[FeedMeta, ...] = ()
    groups: tuple[OpmlGroup, ...] = ()


def _opml_group(
    section: Section,
    lang: str | None,
    by_agency: Mapping[str, Sequence[str]],
    registry: AgencyRegistry,
    base: str,
) -> OpmlGroup | None:
    feeds = tuple(
        _agency_plan(registry, agency, found).meta(base, "atom")
        for agency in section.agencies
        for found in by_agency.get(agency, ())
        if lang is None or found == lang
    )
    groups = tuple(
        group for sub in section.sections
        if (group := _opml_group(sub, lang, by_agency, registry, base)) is not None
    )  # fmt: skip
    if not feeds and not groups:
        return None
    return OpmlGroup(section.title(lang or "en"), feeds, groups)


def opml_groups(
    registry: AgencyRegistry,
    by_agency: Mapping[str, Sequence[str]],
    base: str,
    lang: str | None = None,
) -> list[OpmlGroup]:
    """The Atom feed of every agency × language (of `lang` only, when given), grouped by kind."""
    slugs = [agency for agency, langs in by_agency.items() if lang is None or lang in langs]
    found = (_opml_group(s, lang, by_agency, registry, base)
             for s in sections(registry, slugs, lang or "en"))  # fmt: skip
    return [group for group in found if group is not None]


def _write_indexes(
    report: FeedReport,
    staged: StagedWrites,
    out_dir: Path,
    base: str,
    registry: AgencyRegistry,
    by_agency: Mapping[str, Sequence[str]],
    *,
    reuse: bool = False,
) -> None:
    from crawler.feed_index import render_index  # HTML, not a feed: its own module

    names = INDEX_NAMES
    key = _index_key(base, registry, by_agency)
    if reuse and _indexes_current(out_dir, key, names):
        report.feeds += len(names)
        report.unchanged += len(names)
        return
    groups = opml_groups(registry, by_agency, base)
    _record(report, staged, out_dir / INDEX_FILES[0],
            render_opml(groups, OPML_TITLES[None], tag_language=True))
    for lang in LANGS:
        _record(report, staged, out_dir / f"index.{lang}.opml",
                render_opml(opml_groups(registry, by_agency, base, lang), OPML_TITLES[lang],
                            tag_language=False))
    _record(report, staged, out_dir / "index.html",
            render_index(sections(registry, by_agency), by_agency, registry))
    staged.commit()  # the marks remembered are those of the files in place
    _remember_indexes(out_dir, key, names)


# The indexes list every agency's feeds: for 3,000 agencies, rendering them is seconds on every
# publish, while what they are made of (the feeds there are, the registry's names and kinds,
# the public URL) rarely changes. A digest of that, and what the files were when written, is
# kept beside them (a hidden file: the server refuses those); equal digest, untouched files:
# the indexes are current and are not rendered at all.
INDEX_FILES = ("index.opml", *(f"index.{lang}.opml" for lang in LANGS))
INDEX_NAMES = (*INDEX_FILES, "index.html")  # every file _write_indexes writes
INDEX_KEY = ".index.key"


@cache
def _renderer_digest() -> str:
    """The code that renders the indexes: a new version renders them anew."""
    here = Path(__file__).parent
    code = b"".join((here / name).read_bytes()
                    for name in ("feeds.py", "feed_index.py", "feed_catalog.py"))  # fmt: skip
    return hashlib.sha256(code).hexdigest()


def _index_key(base: str, registry: AgencyRegistry, by_agency: Mapping[str, Sequence[str]]
               ) -> str:  # fmt: skip
    made_of = repr((_renderer_digest(), base,
                    sorted((a, list(langs)) for a, langs in by_agency.items()),
                    list(registry)))  # fmt: skip
    return hashlib.sha256(made_of.encode("utf-8")).hexdigest()


def _file_marks(out_dir: Path, names: Iterable[str]) -> dict[str, list[int]] | None:
    marks = {}
    for name in names:
        for path in (out_dir / name, gz_path(out_dir / name)):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
            marks[path.name] = [st.st_size, st.st_mtime_ns]
    return marks


def _indexes_current(out_dir: Path, key: str, names: Sequence[str]) -> bool:
    try:
        kept = json.loads((out_dir / INDEX_KEY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    marks = _file_marks(out_dir, names)
    return isinstance(kept, dict) and kept.get("key") == key and kept.get("files") == marks


def _remember_indexes(out_dir: Path, key: str, names: Sequence[str]) -> None:
    kept = {"key": key, "files": _file_marks(out_dir, names)}
    write_if_changed(out_dir / INDEX_KEY, json.dumps(kept, sort_keys=True).encode(), gz=False)


def _feed_outline(parent: ET.Element, meta: FeedMeta, *, tag_language: bool) -> None:
    label = "Atom" if meta.self_url.endswith(".atom") else "RSS"
    if tag_language:
        text = f"{_plain(meta.title)} ({meta.lang or 'all languages'}, {label})"
    else:
        text = _plain(meta.title)
    attrs = {"text": text, "title": text, "type": "rss", "xmlUrl": meta.self_url}
    attrs["htmlUrl"] = meta.alternate_url
    if meta.lang:
        attrs["language"] = meta.lang
    ET.SubElement(parent, "outline", attrs)


def _group_outline(parent: ET.Element, group: OpmlGroup, *, tag_language: bool) -> None:
    node = ET.SubElement(parent, "outline", {"text": _plain(group.title),
                                             "title": _plain(group.title)})  # fmt: skip
    for meta in group.feeds:
        _feed_outline(node, meta, tag_language=tag_language)
    for sub in group.groups:
        _group_outline(node, sub, tag_language=tag_language)


def render_opml(
    feeds: Iterable[FeedMeta | OpmlGroup],
    title: str = OPML_TITLES[None],
    *,
    tag_language: bool = True,
) -> bytes:
    """OPML 2.0 listing the given feeds and groups of feeds (not a feed itself, so plain
    ElementTree). `tag_language` adds the language and format to each feed's text, for a list
    that mixes languages. A list with no feed at all still holds the one outline OPML requires,
    a note that subscribes to nothing."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = ET.SubElement(root, "body")
    for node in feeds:
        if isinstance(node, OpmlGroup):
            _group_outline(body, node, tag_language=tag_language)
        else:
            _feed_outline(body, node, tag_language=tag_language)
    if not len(body):
        ET.SubElement(body, "outline", {"text": "No feeds yet", "title": "No feeds yet"})
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"
