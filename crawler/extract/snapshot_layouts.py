"""The three page shapes of saved gov.kz pages (see crawler/extract/snapshot.py), read block by
block: each block of lines becomes an item on the Page, or a Reject with its reason and its lines
as they are in the page. Nothing a block holds costs another block.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time

from crawler.errors import LayoutChanged
from crawler.extract.fields import OUT_OF_RANGE, parse_item_id, to_local, unreadable
from crawler.items import ITEM_URL_RE, NewsItem, Reject, press_page_url, synthetic_id
from crawler.sanitize import truncate
from crawler.timeutil import almaty

# A view count longer than this is not one (and would not fit the archive's integer).
_MAX_VIEWS_DIGITS = 15

_DATE = r"\d{2}\.\d{2}\.\d{4}"
BARE_DATE_RE = re.compile(rf"^{_DATE}$")
TITLED_RE = re.compile(rf"^(?P<title>.*\S)\s+(?P<date>{_DATE})$")
FOOTER_RE = re.compile(
    rf"^(?P<date>{_DATE}),?\s+(?P<hour>\d{{1,2}}):(?P<minute>\d{{2}})(?:\s+(?P<views>\d+))?$"
)
# Greedy body: the trailer is the LAST "Source :" on the line. No \b before "Source": the
# copied pages glue it to the preceding word ("...КазахстанSource : https://...").
SOURCE_RE = re.compile(r"^(?P<body>.*)[Ss]ource\s*:\s*(?P<url>https?://\S+)$")


@dataclass
class Page:
    """What a reader has found on one page so far: items, and rejects with their lines."""

    lang: str
    source: str
    agency: str | None
    url: str
    text: list[str]  # the page's lines, for the raw text of rejects
    items: list[NewsItem] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def reject(
        self,
        lines: tuple[int, int],
        reason: str,
        agency: str | None = None,
        item_id: int | None = None,
    ) -> None:
        """A block (first and last line numbers, 1-based) that cannot become an item."""
        raw = "\n".join(self.text[lines[0] - 1 : lines[1]])
        self.rejects.append(
            Reject(agency or self.agency or "", self.lang, reason, raw=raw, url=self.url,
                   item_id=item_id)
        )

    def add_linked(
        self,
        lines: tuple[int, int],
        title: str,
        day: str,
        body: list[str],
        url: str | None,
        section: str | None,
    ) -> None:
        if url is None:
            self.reject(lines, "no 'Source :' link after the item")
            return
        match = ITEM_URL_RE.match(url)
        if not match:
            self.reject(lines, f"Source link is not a gov.kz news item: {url[:100]}")
            return
        item_id = None
        try:
            item_id = parse_item_id(match["id"])
            published = _published(day)
            self.items.append(
                _item(self, match["slug"], item_id, url, title, published, body,
                      categories=[section] if section else [])
            )
        except LayoutChanged as exc:
            self.reject(lines, exc.reason, match["slug"], item_id)
        except (ValueError, OverflowError, TypeError, UnicodeError) as exc:
            self.reject(lines, unreadable(exc), match["slug"], item_id)


def read_sections(lines: list[tuple[int, str]], page: Page) -> None:
    def starts_section(k: int) -> bool:
        return (
            k + 1 < len(lines)
            and lines[k + 1][1].casefold() == "more"
            and not SOURCE_RE.match(lines[k][1])
        )

    def starts_item(k: int) -> bool:
        return (
            k + 1 < len(lines)
            and bool(BARE_DATE_RE.match(lines[k + 1][1]))
            and not SOURCE_RE.match(lines[k][1])
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
            last = lines[i + 1][0]
            j = i + 2
            while j < len(lines):
                trailer = SOURCE_RE.match(lines[j][1])
                if trailer:
                    body.append(trailer["body"].strip())
                    url, last, j = trailer["url"], lines[j][0], j + 1
                    break
                if starts_item(j) or starts_section(j):
                    break
                body.append(lines[j][1])
                last = lines[j][0]
                j += 1
            # The date line is the item's date; a body beginning with a date keeps it.
            day = lines[i + 1][1]
            page.add_linked((number, last), _title(line, day), day, body, url, section)
            i = j
        else:
            page.reject((number, number), "not part of any item")
            i += 1


def read_titled_list(lines: list[tuple[int, str]], page: Page) -> None:
    section: str | None = None
    section_at: int | None = None  # the line number of the current section line
    used = False  # whether the current section line has had an item under it
    current: tuple[int, str, str] | None = None  # (line number, title, date)
    last = 0  # the last line number of the current item
    body: list[str] = []
    for number, line in lines:
        # The trailer first: a body line may itself end with a date.
        trailer = SOURCE_RE.match(line)
        titled = None if trailer else TITLED_RE.match(line)
        if trailer:
            if current is None:
                page.reject((number, number), "Source link without a title line above it")
                continue
            body.append(trailer["body"].strip())
            page.add_linked((current[0], number), *current[1:], body, trailer["url"], section)
            current, body, used = None, [], True
        elif titled:
            if current is not None:
                page.add_linked((current[0], last), *current[1:], body, None, section)
            current, body, used = (number, titled["title"], titled["date"]), [], True
            last = number
        elif current is not None:
            body.append(line)
            last = number
        else:
            if section_at is not None and not used:
                page.reject((section_at, section_at), "not part of any item")
            section, section_at, used = line, number, False
    if current is not None:
        page.add_linked((current[0], last), *current[1:], body, None, section)


def read_full_text(lines: list[tuple[int, str]], page: Page) -> None:
    chunk: list[tuple[int, str]] = []
    for number, line in lines:
        footer = FOOTER_RE.match(line)
        if not footer:
            chunk.append((number, line))
            continue
        if not chunk:
            page.reject((number, number), "footer without an item above it")
            continue
        (first, title), paragraphs = chunk[0], [text for _, text in chunk[1:]]
        chunk = []
        bad_footer = f"invalid date or time in footer {line[:60]!r}"
        try:
            published = _published(
                footer["date"], time(int(footer["hour"]), int(footer["minute"]))
            )
            views = footer["views"] or ""
            count = int(views) if 0 < len(views) <= _MAX_VIEWS_DIGITS else None
            page.items.append(
                _unlinked_item(page, _title(title, footer["date"]), published, paragraphs, count)
            )
        except LayoutChanged as exc:
            page.reject((first, number), exc.reason if exc.reason == OUT_OF_RANGE else bad_footer)
        except ValueError:  # time(25, 61)
            page.reject((first, number), bad_footer)
        except (OverflowError, TypeError, UnicodeError) as exc:
            page.reject((first, number), unreadable(exc))
    if chunk:
        # Cut off before its footer: archived as incomplete, never given a guessed date.
        (_, title), paragraphs = chunk[0], [text for _, text in chunk[1:]]
        page.items.append(_unlinked_item(page, _title(title, None), None, paragraphs, None))


def _unlinked_item(
    page: Page, title: str, published: datetime | None, paragraphs: list[str], views: int | None
) -> NewsItem:
    agency = page.agency or ""
    item_id = synthetic_id(agency, title, published)
    url = f"{press_page_url(agency, page.lang)}#item-{-item_id}"
    item = _item(page, agency, item_id, url, title, published, paragraphs, categories=[])
    item.views, item.incomplete = views, published is None
    return item


def _item(
    page: Page,
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
        summary=truncate(body_text),
        source=page.source,
        incomplete=published is None,
    )


def lines_of(text: str) -> list[tuple[int, str]]:
    """Non-blank lines (1-based numbers) with runs of white space folded to one space."""
    folded = ((n, " ".join(line.split())) for n, line in enumerate(text.split("\n"), 1))
    return [(n, line) for n, line in folded if line]


def _published(text: str, at: time | None = None) -> datetime:
    """The aware local time of a DD.MM.YYYY date (and time): LayoutChanged "invalid date …"
    when there is no such day, OUT_OF_RANGE for year 1 and the like."""
    try:
        day, month, year = (int(part) for part in text.split("."))
        local = almaty(date(year, month, day), at)
    except ValueError:
        raise LayoutChanged(f"invalid date {text}") from None
    return to_local(local)


def _title(text: str, day: str | None) -> str:
    """A title without a trailing copy of its own date (dates inside the title stay)."""
    match = TITLED_RE.match(text)
    return match["title"] if match and match["date"] == day else text


READERS = {"sections": read_sections, "titled-list": read_titled_list, "full-text": read_full_text}
