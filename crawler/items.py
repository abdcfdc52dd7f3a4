"""The one contract between extraction, pipelines, the archive and the feeds."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

GOVKZ_SITE = "https://www.gov.kz"
LANGS = ("kk", "ru", "en")

# https://www.gov.kz/memleket/entities/{slug}/press/news/details/{id}?lang=xx
ITEM_URL_RE = re.compile(
    r"^https?://(?:www\.)?gov\.kz/memleket/entities/(?P<slug>[A-Za-z0-9_.-]+)"
    r"/press/news/details/(?P<id>\d+)(?:\?lang=(?P<lang>[a-z]{2}))?\s*$"
)


def item_url(slug: str, item_id: int, lang: str, site: str = GOVKZ_SITE) -> str:
    """The public page of a news item: its link and its feed guid."""
    return f"{site}/memleket/entities/{slug}/press/news/details/{item_id}?lang={lang}"


def press_page_url(slug: str, lang: str, site: str = GOVKZ_SITE) -> str:
    """An agency's press news page on gov.kz (the feeds' alternate link)."""
    return f"{site}/memleket/entities/{slug}/press/news?lang={lang}"


def synthetic_id(agency: str, title: str, published: datetime | None) -> int:
    """A stable id for an item whose page gave no source link (layout "full-text").

    Rule: the negative of the first 48 bits of SHA-256 over "agency\\ntitle\\nYYYY-MM-DDTHH:MM"
    (the local publication minute, or "undated" for a cut-off item), the title with its white
    space folded. Negative, so it can never collide with gov.kz's own positive ids; the same
    item on a later snapshot of the same page gets the same id.
    """
    when = published.strftime("%Y-%m-%dT%H:%M") if published else "undated"
    key = f"{agency}\n{' '.join(title.split())}\n{when}".encode()
    return -int.from_bytes(hashlib.sha256(key).digest()[:6], "big")


@dataclass
class NewsItem:
    """One news item of one agency in one language.

    Identity is (agency, id, lang). ``published`` is always timezone-aware; it is None only
    for an ``incomplete`` item (a page cut off before its date), which is archived but never
    published in a feed.
    """

    agency: str
    id: int
    lang: str
    url: str
    title: str
    published: datetime | None
    body_text: str = ""
    body_html: str = ""
    categories: list[str] = field(default_factory=list)
    summary: str = ""
    image: str | None = None
    views: int | None = None
    incomplete: bool = False
    # Where the item came from: "snapshot:<file>", "api", "rss", ... (for crawl summaries).
    source: str = ""

    def __post_init__(self) -> None:
        if self.published is not None and self.published.tzinfo is None:
            raise ValueError(f"naive published datetime for {self.agency}/{self.id}")
        if self.published is None and not self.incomplete:
            raise ValueError(f"{self.agency}/{self.id}: only an incomplete item may lack a date")

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.agency, self.id, self.lang)


@dataclass
class SyncMark:
    """End of a completed walk of one agency's list in one language: the archive's high-water
    mark moves to ``newest`` (yielded after the walk's items, so a crash never skips any)."""

    agency: str
    lang: str
    newest: datetime | None


@dataclass
class ResponseSample:
    """A response of a shape the extractors do not know, kept so a person can look at it."""

    agency: str
    lang: str
    url: str
    status: int
    reason: str
    body: bytes


@dataclass
class AgencyRecord:
    """One agency as gov.kz's directory (GraphQL `projectdetails`) lists it, in one language."""

    slug: str
    lang: str
    name: str
    parent: str | None = None
