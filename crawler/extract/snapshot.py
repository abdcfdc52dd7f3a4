"""Saved gov.kz pages (text copied from the rendered page) -> NewsItems. Pure: no I/O.

Three page shapes occur (README, "Replaying saved pages"; `seeds/manifest.toml`); the manifest names
each file's shape, `detect_layout` guesses it for files the manifest does not describe:

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

One item listed under two sections is one item with both section names as categories. A block
that cannot be read (no Source link, a bad date, an impossible id) is a Reject with its reason
and its lines as they are on the page, and costs no other block; a page that yields no item at
all raises SnapshotError, so an unreadable page never passes as an empty one. The text passes
clean_text (control characters, lone surrogates) before anything reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crawler.errors import SnapshotError
from crawler.extract.snapshot_layouts import (
    BARE_DATE_RE,
    FOOTER_RE,
    READERS,
    SOURCE_RE,
    TITLED_RE,
    Page,
    lines_of,
)
from crawler.items import LANGS, NewsItem, Reject
from crawler.sanitize import clean_text

LAYOUTS = ("sections", "titled-list", "full-text")
# More than this share of control bytes (besides tab/newline/CR/FF/VT) means "not text".
_CONTROL_SHARE = 0.1


@dataclass
class SnapshotResult:
    """What a page yielded: merged items (a block seen twice is one item) and the blocks that
    could not be read."""

    items: list[NewsItem]
    rejects: list[Reject] = field(default_factory=list)


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
    lines = [line for _, line in lines_of(clean_text(text))]
    sources = sum(1 for line in lines if SOURCE_RE.match(line))
    bare = sum(1 for line in lines if BARE_DATE_RE.match(line))
    titled = sum(1 for line in lines if TITLED_RE.match(line) and not SOURCE_RE.match(line))
    footers = sum(1 for line in lines if FOOTER_RE.match(line))
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
    text: str,
    *,
    layout: str,
    lang: str,
    source: str,
    agency: str | None = None,
    url: str = "",
) -> SnapshotResult:
    """Every news item of a saved page (see the module docstring for the rules). ``url`` is
    where the page was read from, kept with each reject."""
    if layout not in LAYOUTS:
        raise SnapshotError(source, f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    if lang not in LANGS:
        raise SnapshotError(source, f"unknown language {lang!r} (known: {', '.join(LANGS)})")
    if layout == "full-text" and not agency:
        raise SnapshotError(source, "layout full-text needs an agency (its items have no links)")
    text = clean_text(text)
    page = Page(lang=lang, source=source, agency=agency, url=url, text=text.split("\n"))
    READERS[layout](lines_of(text), page)
    if not page.items:
        detail = ""
        if page.rejects:
            detail = f" ({len(page.rejects)} block(s) rejected, first: {page.rejects[0].reason})"
        raise SnapshotError(source, f"no items found for layout {layout}{detail}")
    return SnapshotResult(items=_merge(page.items), rejects=page.rejects)


def _merge(items: list[NewsItem]) -> list[NewsItem]:
    """One item per identity, in order of first appearance, categories united in that order."""
    merged: dict[tuple[str, int, str], NewsItem] = {}
    for item in items:
        first = merged.setdefault(item.key, item)
        if first is not item:
            first.categories += [c for c in item.categories if c not in first.categories]
    return list(merged.values())
