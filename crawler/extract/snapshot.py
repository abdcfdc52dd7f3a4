"""Saved gov.kz pages (text copied from the rendered page) -> NewsItems. Pure: no I/O.

Three page shapes occur (DESIGN.md §4); the manifest names each file's shape, `detect_layout`
guesses it for files the manifest does not describe:

- "sections":    a section line, a "More" line, then per item: title line, DD.MM.YYYY line,
                 one body line ending in "Source : <item URL>".
- "titled-list": a section line, then per item: "<title> DD.MM.YYYY", then a body line ending
                 in "Source : <item URL>" (or only the Source line); blank lines optional.
- "full-text":   per item: title line, paragraph lines, footer "DD.MM.YYYY, HH:MM <views>";
                 no links; the page may be cut off inside its last item.

Identity. A linked item is (agency slug, numeric id) taken from its "Source :" URL, and that URL
is its `url`. A full-text item has no link: its agency comes from the caller (the manifest), its
id is `crawler.items.synthetic_id(agency, title, published)` (negative, stable across snapshots),
and its url is the agency's press page with a fragment, `press_page_url(agency, lang) +
"#item-<-id>"`: unique and stable, and it points at a real page without claiming to be the
item's own gov.kz page (which we do not know).

Dates are gov.kz local time (Asia/Almaty): a bare date is that day at 00:00. A full-text item cut
off before its footer is kept with `incomplete=True` and `published=None`; a date is never
invented. The `lang` of every item is the page's language as the caller says, even where the
Source URLs carry another `?lang=` (the seeds' English pages link to `?lang=kk`).

One item listed under two sections is one item with both section names as categories. Blocks
that cannot be read (no Source link, a bad date) go to `skipped` with a reason; a page that
yields no item at all raises SnapshotError, so an unreadable page never passes as an empty one.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time

from crawler.errors import SnapshotError
from crawler.items import ITEM_URL_RE, LANGS, NewsItem, press_page_url, synthetic_id
from crawler.timeutil import almaty

LAYOUTS = ("sections", "titled-list", "full-text")
SUMMARY_CHARS = 300
# More than this share of control bytes (besides tab/newline/CR/FF/VT) means "not text".
_CONTROL_SHARE = 0.1

_DATE = r"\d{2}\.\d{2}\.\d{4}"
_BARE_DATE_RE = re.compile(rf"^{_DATE}$")
_TITLED_RE = re.compile(rf"^(?P<title>.*\S)\s+(?P<date>{_DATE})$")
_FOOTER_RE = re.compile(
    rf"^(?P<date>{_DATE}),?\s+(?P<hour>\d{{1,2}}):(?P<minute>\d{{2}})(?:\s+(?P<views>\d+))?$"
)
# Greedy body: the trailer is the LAST "Source :" on the line. No \b before "Source": the
# copied pages glue it to the preceding word ("...КазахстанSource : https://...").
_SOURCE_RE = re.compile(r"^(?P<body>.*)[Ss]ource\s*:\s*(?P<url>https?://\S+)$")


@dataclass
class SnapshotResult:
    """What a page yielded: merged items, unreadable blocks (what, reason), blocks seen."""

    items: list[NewsItem]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Item blocks read from the page before duplicates were merged into one item.
    blocks: int = 0


def decode_snapshot(data: bytes, name: str) -> str:
    """A saved page's bytes as text: UTF-8, BOM dropped, line ends normalized to "\\n"."""
    if not data:
        raise SnapshotError(name, "empty file")
    if b"\x00" in data:
        raise SnapshotError(name, "binary file (contains NUL bytes), not a saved page")
    sample = data[:4096]
    controls = sum(1 for byte in sample if (byte < 32 and byte not in b"\t\n\r\f\v") or byte == 127)
    if controls > len(sample) * _CONTROL_SHARE:
        raise SnapshotError(name, "binary file (many control characters), not a saved page")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SnapshotError(
            name,
            f"not UTF-8 text: byte 0x{data[exc.start]:02X} at byte offset {exc.start} "
            f"(line {line})",
        ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise SnapshotError(name, "empty file (only white space)")
    return text


def detect_layout(text: str) -> str | None:
    """The layout a page looks like, or None when it looks like none (or several) of them."""
    lines = [line for _, line in _lines(text)]
    sources = sum(1 for line in lines if _SOURCE_RE.match(line))
    bare = sum(1 for line in lines if _BARE_DATE_RE.match(line))
    titled = sum(1 for line in lines if _TITLED_RE.match(line) and not _SOURCE_RE.match(line))
    footers = sum(1 for line in lines if _FOOTER_RE.match(line))
    # Each shape's score counts the items it would find; both linked shapes need their links.
    scores = {
        "sections": min(bare, sources),
        "titled-list": min(titled, sources),
        "full-text": footers,
    }
    best = max(scores.values())
    winners = [layout for layout, score in scores.items() if score == best]
    return winners[0] if best and len(winners) == 1 else None


def extract_snapshot(
    text: str, *, layout: str, lang: str, source: str, agency: str | None = None
) -> SnapshotResult:
    """Every news item of a saved page (see the module docstring for the rules)."""
    if layout not in LAYOUTS:
        raise SnapshotError(source, f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    if lang not in LANGS:
        raise SnapshotError(source, f"unknown language {lang!r} (known: {', '.join(LANGS)})")
    if layout == "full-text" and not agency:
        raise SnapshotError(source, "layout full-text needs an agency (its items have no links)")
    page = _Page(lang=lang, source=source, agency=agency)
    readers = {
        "sections": _read_sections,
        "titled-list": _read_titled_list,
        "full-text": _read_full_text,
    }
    readers[layout](_lines(text), page)
    if not page.items:
        detail = ""
        if page.skipped:
            detail = f" ({len(page.skipped)} block(s) skipped, first: {page.skipped[0][1]})"
        raise SnapshotError(source, f"no items found for layout {layout}{detail}")
    return SnapshotResult(items=_merge(page.items), skipped=page.skipped, blocks=len(page.items))


@dataclass
class _Page:
    lang: str
    source: str
    agency: str | None
    items: list[NewsItem] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, number: int, text: str, reason: str) -> None:
        short = text if len(text) <= 60 else text[:59] + "…"
        self.skipped.append((f"line {number} {short!r}", reason))

    def add_linked(
        self,
        number: int,
        title: str,
        day: str,
        body: list[str],
        url: str | None,
        section: str | None,
    ) -> None:
        if url is None:
            self.skip(number, title, "no 'Source :' link after the item")
            return
        match = ITEM_URL_RE.match(url)
        if not match:
            self.skip(number, title, f"Source link is not a gov.kz news item: {url}")
            return
        try:
            published = almaty(_parse_date(day))
        except ValueError:
            self.skip(number, title, f"invalid date {day}")
            return
        self.items.append(
            _item(
                self,
                match["slug"],
                int(match["id"]),
                url,
                title,
                published,
                body,
                categories=[section] if section else [],
            )
        )


def _read_sections(lines: list[tuple[int, str]], page: _Page) -> None:
    def starts_section(k: int) -> bool:
        return (
            k + 1 < len(lines)
            and lines[k + 1][1].casefold() == "more"
            and not _SOURCE_RE.match(lines[k][1])
        )

    def starts_item(k: int) -> bool:
        return (
            k + 1 < len(lines)
            and bool(_BARE_DATE_RE.match(lines[k + 1][1]))
            and not _SOURCE_RE.match(lines[k][1])
        )

    section: str | None = None
    i = 0
    while i < len(lines):
        number, line = lines[i]
        if starts_section(i):
            section, i = line, i + 2
        elif starts_item(i):
            body: list[str] = []
            url = None
            j = i + 2
            while j < len(lines):
                trailer = _SOURCE_RE.match(lines[j][1])
                if trailer:
                    body.append(trailer["body"].strip())
                    url, j = trailer["url"], j + 1
                    break
                if starts_item(j) or starts_section(j):
                    break
                body.append(lines[j][1])
                j += 1
            # The date line is the item's date; a body beginning with a date keeps it.
            day = lines[i + 1][1]
            page.add_linked(number, _title(line, day), day, body, url, section)
            i = j
        else:
            page.skip(number, line, "not part of any item")
            i += 1


def _read_titled_list(lines: list[tuple[int, str]], page: _Page) -> None:
    section: str | None = None
    section_at: tuple[int, str] | None = None
    used = False  # whether the current section line has had an item under it
    current: tuple[int, str, str] | None = None  # (line number, title, date)
    body: list[str] = []
    for number, line in lines:
        # The trailer first: a body line may itself end with a date.
        trailer = _SOURCE_RE.match(line)
        titled = None if trailer else _TITLED_RE.match(line)
        if trailer:
            if current is None:
                page.skip(number, line, "Source link without a title line above it")
                continue
            body.append(trailer["body"].strip())
            page.add_linked(*current, body, trailer["url"], section)
            current, body, used = None, [], True
        elif titled:
            if current is not None:
                page.add_linked(*current, body, None, section)
            current, body, used = (number, titled["title"], titled["date"]), [], True
        elif current is not None:
            body.append(line)
        else:
            if section_at is not None and not used:
                page.skip(*section_at, "not part of any item")
            section, section_at, used = line, (number, line), False
    if current is not None:
        page.add_linked(*current, body, None, section)


def _read_full_text(lines: list[tuple[int, str]], page: _Page) -> None:
    chunk: list[tuple[int, str]] = []
    for number, line in lines:
        footer = _FOOTER_RE.match(line)
        if not footer:
            chunk.append((number, line))
            continue
        if not chunk:
            page.skip(number, line, "footer without an item above it")
            continue
        (first, title), paragraphs = chunk[0], [text for _, text in chunk[1:]]
        chunk = []
        try:
            published = almaty(
                _parse_date(footer["date"]), time(int(footer["hour"]), int(footer["minute"]))
            )
        except ValueError:
            page.skip(first, title, f"invalid date or time in footer {line!r}")
            continue
        views = int(footer["views"]) if footer["views"] else None
        page.items.append(
            _unlinked_item(page, _title(title, footer["date"]), published, paragraphs, views)
        )
    if chunk:
        # Cut off before its footer: archived as incomplete, never given a guessed date.
        (_, title), paragraphs = chunk[0], [text for _, text in chunk[1:]]
        page.items.append(_unlinked_item(page, _title(title, None), None, paragraphs, None))


def _unlinked_item(
    page: _Page, title: str, published: datetime | None, paragraphs: list[str], views: int | None
) -> NewsItem:
    agency = page.agency or ""
    item_id = synthetic_id(agency, title, published)
    url = f"{press_page_url(agency, page.lang)}#item-{-item_id}"
    item = _item(page, agency, item_id, url, title, published, paragraphs, categories=[])
    item.views, item.incomplete = views, published is None
    return item


def _item(
    page: _Page,
    agency: str,
    item_id: int,
    url: str,
    title: str,
    published: datetime | None,
    paragraphs: list[str],
    *,
    categories: list[str],
) -> NewsItem:
    paragraphs = [p for p in paragraphs if p]
    body_text = "\n\n".join(paragraphs)
    return NewsItem(
        agency=agency,
        id=item_id,
        lang=page.lang,
        url=url,
        title=title,
        published=published,
        body_text=body_text,
        body_html="\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs),
        categories=categories,
        summary=_summary(body_text),
        source=page.source,
        incomplete=published is None,
    )


def _merge(items: list[NewsItem]) -> list[NewsItem]:
    """One item per identity, in order of first appearance, categories united in that order."""
    merged: dict[tuple[str, int, str], NewsItem] = {}
    for item in items:
        first = merged.setdefault(item.key, item)
        if first is not item:
            first.categories += [c for c in item.categories if c not in first.categories]
    return list(merged.values())


def _lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines (1-based numbers) with runs of white space folded to one space."""
    folded = ((n, " ".join(line.split())) for n, line in enumerate(text.split("\n"), 1))
    return [(n, line) for n, line in folded if line]


def _parse_date(text: str) -> date:
    day, month, year = (int(part) for part in text.split("."))
    return date(year, month, day)


def _title(text: str, day: str | None) -> str:
    """A title without a trailing copy of its own date (dates inside the title stay)."""
    match = _TITLED_RE.match(text)
    return match["title"] if match and match["date"] == day else text


def _summary(text: str) -> str:
    """The first ~SUMMARY_CHARS characters, cut at a word boundary, "…" when cut."""
    flat = " ".join(text.split())
    if len(flat) <= SUMMARY_CHARS:
        return flat
    head = flat[: SUMMARY_CHARS + 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else flat[:SUMMARY_CHARS]
    return cut.rstrip(" ,;:.–—-") + "…"
