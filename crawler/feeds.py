"""RSS 2.0 and Atom feeds (feedgen) and the OPML index, written from the archive.

The only module that builds feed XML. Everything that reaches a feed passes through
crawler.sanitize: titles and summaries become plain text, bodies allowlisted HTML, and no
string keeps a character XML forbids. A feed's dates come from its items, never from the
clock, so unchanged news renders to identical bytes and the file is left alone.
"""

from __future__ import annotations

import html
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from feedgen.ext.base import BaseEntryExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from crawler.agencies import AgencyRegistry
from crawler.items import GOVKZ_SITE, LANGS, press_page_url
from crawler.sanitize import SUMMARY_CHARS, plain_text, sanitize_html, text_to_html, truncate
from crawler.timeutil import localize, parse_iso

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080/"
GENERATOR = "govkz-monitor"
# The `updated` of a feed without entries: a fixed date, so an empty feed is stable too.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)
ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"

_DESCRIPTIONS = {
    "en": "Press news published on gov.kz: {name}",
    "ru": "Новости пресс-службы на gov.kz: {name}",
    "kk": "gov.kz сайтындағы баспасөз жаңалықтары: {name}",
    None: "Press news published on gov.kz, all languages: {name}",
}
ALL_TITLE = "gov.kz: news of all agencies"
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}


class FeedSource(Protocol):
    """What the feeds need from the archive (crawler.store.Archive implements it)."""

    def feed_items(
        self, agency: str | None = None, lang: str | None = None, limit: int = 50
    ) -> list[dict]: ...

    def feed_groups(self) -> list[tuple[str, str]]: ...

    def translations(self, agency: str, item_id: int) -> dict[str, str]: ...


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
    content_html: str = ""  # sanitized again when rendered
    summary: str = ""  # plain text
    categories: tuple[str, ...] = ()
    lang: str | None = None
    author: str | None = None
    translations: tuple[tuple[str, str], ...] = ()  # (lang, url) of the same news elsewhere


@dataclass
class FeedReport:
    written: list[Path] = field(default_factory=list)
    unchanged: int = 0
    feeds: int = 0  # documents rendered (feeds + the OPML): len(written) + unchanged


# --- rendering --------------------------------------------------------------------------------


def _plain(text: str | None) -> str:
    return plain_text(text or "")


def _second(value: datetime) -> datetime:
    return localize(value).replace(microsecond=0)


def _ordered(entries: Iterable[EntryData]) -> list[EntryData]:
    # Newest first; the id breaks ties so equal dates still render in a stable order.
    return sorted(entries, key=lambda e: (_second(e.published), e.id), reverse=True)


def _entry_updated(entry: EntryData) -> datetime:
    # Atom: an entry is updated no earlier than it is published.
    return max(_second(entry.updated), _second(entry.published))


def _updated(entries: Sequence[EntryData]) -> datetime:
    return max((_entry_updated(e) for e in entries), default=EMPTY_FEED_UPDATED)


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
    """Atom links to the same news in the other languages: rel="related" with hreflang.

    Not rel="alternate", although a translation is one: readers disagree on which of several
    alternates is "the" link (feedparser takes the last, others the first or the first with an
    explicit rel), so the item's own page stays the entry's only alternate. An extension
    because feedgen 1.0 drops rel/type/hreflang from the entry links it renders itself."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []

    def extend_atom(self, entry: Any) -> Any:
        for lang, url in self.links:
            attrs = {"href": url, "rel": "related", "type": "text/html", "hreflang": lang}
            attrs["title"] = LANGUAGE_NAMES.get(lang, lang)
            etree.SubElement(entry, "link", attrs)
        return entry


def _add_entry(fg: FeedGenerator, entry: EntryData, *, atom: bool) -> None:
    fe = fg.add_entry(order="append")  # feedgen prepends by default
    fe.guid(entry.id, permalink=entry.id == entry.link)
    fe.title(_plain(entry.title) or entry.link)
    fe.link(href=entry.link, rel="alternate")  # rendered as a bare href in Atom (see above)
    if atom:
        fe.register_extension("translations", _TranslationLinks, atom=True, rss=False)
        fe.translations.links = [
            (lang, url) for lang, url in entry.translations
            if lang != entry.lang and url != entry.link
        ]  # fmt: skip
    fe.published(_second(entry.published))
    fe.updated(_entry_updated(entry))
    content = sanitize_html(entry.content_html)
    if content:
        fe.content(content, type="html")
    summary = _plain(entry.summary)
    if summary:
        fe.summary(summary)
    for term in dict.fromkeys(_plain(c) for c in entry.categories):
        if term:
            fe.category(term=term)
    if entry.author and _plain(entry.author):
        fe.author(name=_plain(entry.author))


def render_atom(meta: FeedMeta, entries: Iterable[EntryData]) -> bytes:
    """An Atom 1.0 document; entries newest first, `updated` = the newest entry's."""
    ordered = _ordered(entries)
    fg = _generator(meta, ordered)
    fg.id(meta.self_url)
    fg.author(name=_plain(meta.author) or "gov.kz")
    fg.link(href=meta.alternate_url, rel="alternate", type="text/html")
    fg.link(href=meta.self_url, rel="self", type=ATOM_TYPE)
    for entry in ordered:
        _add_entry(fg, entry, atom=True)
    return fg.atom_str(pretty=True, encoding="UTF-8")


def render_rss(meta: FeedMeta, entries: Iterable[EntryData]) -> bytes:
    """An RSS 2.0 document with an atom:link rel="self"; items newest first."""
    ordered = _ordered(entries)
    fg = _generator(meta, ordered)
    # feedgen uses the *last* link as the channel <link>: self first, the web page last.
    fg.link(href=meta.self_url, rel="self", type=RSS_TYPE)
    fg.link(href=meta.alternate_url, rel="alternate")
    for entry in ordered:
        _add_entry(fg, entry, atom=False)
    return fg.rss_str(pretty=True, encoding="UTF-8")


# --- archive rows -> entries ------------------------------------------------------------------


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
    text = plain_text(body)
    summary = plain_text(item.get("summary") or "") or truncate(text, SUMMARY_CHARS)
    title = plain_text(item.get("title") or "") or truncate(text, 80)
    return EntryData(
        id=item["url"],
        title=title or f"{item.get('agency', '')} #{item.get('id', '')}",
        link=item["url"],
        published=published,
        updated=max(updated, published),
        content_html=sanitize_html(body),
        summary=summary,
        categories=tuple(item.get("categories") or ()),
        lang=item.get("lang"),
        author=author,
        translations=tuple(sorted((translations or {}).items())),
    )


# --- writing ----------------------------------------------------------------------------------


def write_if_changed(path: Path, data: bytes) -> bool:
    """Replace `path` atomically with `data` unless it already holds exactly these bytes."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from a separate web server
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _lang_order(lang: str) -> tuple[int, str]:
    return (LANGS.index(lang) if lang in LANGS else len(LANGS), lang)


@dataclass(frozen=True)
class _Plan:
    """One feed to write, in both formats: `rel` is its path under out_dir, sans extension."""

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


def _plans(groups: Iterable[tuple[str, str]], registry: AgencyRegistry) -> list[_Plan]:
    plans = [_Plan("all", None, None, ALL_TITLE, GOVKZ_SITE + "/", "gov.kz")]
    langs: dict[str, list[str]] = {}
    for agency, lang in sorted(set(groups)):
        langs.setdefault(agency, []).append(lang)
    for agency, found in langs.items():
        name = registry.name(agency, "en")  # falls back to ru, kk, the slug
        plans.append(_Plan(agency, agency, None, name, press_page_url(agency, "en"), name))
        for lang in sorted(found, key=_lang_order):
            name, page = registry.name(agency, lang), press_page_url(agency, lang)
            plans.append(_Plan(f"{agency}/{lang}", agency, lang, name, page, name))
    return plans


def _entries(
    source: FeedSource,
    registry: AgencyRegistry,
    plan: _Plan,
    limit: int,
    translations: dict[tuple[str, int], dict[str, str]],
) -> list[EntryData]:
    out = []
    for item in source.feed_items(plan.agency, plan.lang, limit):
        key = (item.get("agency") or "", item.get("id"))
        if key not in translations:  # the same item recurs in up to three feeds
            translations[key] = dict(source.translations(*key)) if key[1] is not None else {}
        author = registry.name(key[0], item.get("lang") or "en")
        entry = entry_from_item(item, author=author, translations=translations[key])
        if entry is not None:
            out.append(entry)
    return out


def write_feeds(
    source: FeedSource,
    out_dir: Path,
    *,
    base_url: str | None = DEFAULT_PUBLIC_URL,
    registry: AgencyRegistry,
    limit: int = 50,
    agencies: Iterable[str] | None = None,
) -> FeedReport:
    """Write the feeds of every agency with items (or only of `agencies`), plus `all` and
    index.opml, which are always refreshed and always list every agency's feeds.

    Files: {slug}.atom/.rss (all languages), {slug}/{lang}.atom/.rss, all.atom/.rss, index.opml.
    Self links are base_url + "feeds/" + the file's path; the OPML is served at base_url + "opml".
    """
    out_dir = Path(out_dir)
    base = (base_url or DEFAULT_PUBLIC_URL).rstrip("/") + "/"
    plans = _plans(source.feed_groups(), registry)
    wanted = None if agencies is None else set(agencies)
    report = FeedReport()
    cache: dict[tuple[str, int], dict[str, str]] = {}
    for plan in plans:
        if plan.agency is not None and wanted is not None and plan.agency not in wanted:
            continue
        found = _entries(source, registry, plan, limit, cache)
        _record(report, out_dir / f"{plan.rel}.atom", render_atom(plan.meta(base, "atom"), found))
        _record(report, out_dir / f"{plan.rel}.rss", render_rss(plan.meta(base, "rss"), found))
    listed = [plan.meta(base, ext) for plan in plans for ext in ("atom", "rss")]
    _record(report, out_dir / "index.opml", render_opml(listed))
    return report


def _record(report: FeedReport, path: Path, data: bytes) -> None:
    report.feeds += 1
    if write_if_changed(path, data):
        report.written.append(path)
    else:
        report.unchanged += 1


# --- OPML -------------------------------------------------------------------------------------


def render_opml(feeds: Iterable[FeedMeta], title: str = "gov.kz press news feeds") -> bytes:
    """OPML 2.0 listing the given feeds (not a feed itself, so plain ElementTree)."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = ET.SubElement(root, "body")
    for meta in feeds:
        label = "Atom" if meta.self_url.endswith(".atom") else "RSS"
        text = f"{_plain(meta.title)} ({meta.lang or 'all languages'}, {label})"
        attrs = {"text": text, "title": text, "type": "rss", "xmlUrl": meta.self_url}
        attrs["htmlUrl"] = meta.alternate_url
        if meta.lang:
            attrs["language"] = meta.lang
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"
