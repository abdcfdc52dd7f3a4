"""The one contract between extraction, pipelines, the archive and the feeds."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from crawler.sanitize import clean_line, clean_text

GOVKZ_SITE = "https://www.gov.kz"
LANGS = ("kk", "ru", "en")

# An agency slug, the part of a gov.kz address after /memleket/entities/: ASCII letters, digits
# and "_.-", starting with a letter or digit. Every slug in crawler/data/agencies.toml is
# lower-case words joined by hyphens ("mfa-rabat"), but gov.kz's ~2,000 slugs were never all
# seen: the rule is as wide as is safe in a URL path and a feed file name, so no real agency is
# refused. The one rule for agencies.toml, the manifest, GraphQL's directory, item URLs and
# the archive.
SLUG_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
SLUG_RE = re.compile(SLUG_PATTERN, re.ASCII)

# https://www.gov.kz/memleket/entities/{slug}/press/news/details/{id}?lang=xx
ITEM_URL_RE = re.compile(
    rf"^https?://(?:www\.)?gov\.kz/memleket/entities/(?P<slug>{SLUG_PATTERN})"
    r"/press/news/details/(?P<id>\d+)(?:\?lang=(?P<lang>[a-z]{2}))?\s*$"
)


def is_slug(value: object) -> bool:
    """Whether ``value`` is a string that is a whole agency slug (SLUG_RE, no trailing newline)."""
    return isinstance(value, str) and SLUG_RE.fullmatch(value) is not None


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
        # The text boundary's guarantee: whatever an extractor did, no field of an item holds
        # a control character, a lone surrogate or (in the title) a bidi override.
        self.title = clean_line(self.title)
        self.url = clean_text(self.url).strip()
        self.body_text = clean_text(self.body_text)
        self.body_html = clean_text(self.body_html)
        self.summary = clean_text(self.summary)
        self.categories = [c for c in (clean_line(c) for c in self.categories) if c]
        self.image = clean_text(self.image).strip() or None if self.image else None
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
    """One agency as gov.kz's directory (GraphQL `projectdetails`) lists it, in one language.
    A name that cleans to nothing falls back to the slug."""

    slug: str
    lang: str
    name: str
    parent: str | None = None

    def __post_init__(self) -> None:
        self.name = clean_line(self.name or "") or self.slug


# Longest raw text kept with a reject: enough to see what was wrong, bounded for the archive.
RAW_LIMIT = 64 * 1024


@dataclass
class Reject:
    """An element of a response that could not become an item: kept, with its raw text and
    the reason, in the archive's `rejects` table, so nothing is lost silently. Its neighbours
    are stored as usual; a reject never fails the page it came on."""

    agency: str
    lang: str
    reason: str  # short and specific: "no id", "bad id 'abc'", "date out of range", ...
    raw: str = ""  # the element as received (JSON text, XML, snapshot lines)
    url: str = ""  # the response it came in
    item_id: int | None = None  # when the element named a usable id

    def __post_init__(self) -> None:
        self.reason = clean_line(self.reason)
        self.raw = clean_text(self.raw)[:RAW_LIMIT]

    @property
    def target(self) -> str:
        return f"{self.agency}/{self.lang}"

    def describe(self) -> str:
        """One line for a crawl's output: agency, id when there is one, reason."""
        what = f"{self.agency}/{self.item_id}" if self.item_id is not None else self.agency
        return f"{what} ({self.lang}): {self.reason}"


@dataclass(frozen=True)
class PageMemo:
    """What page 1 of an incremental walk was when it was last entirely quiet (every item
    stored with the same content hash, no reject, no detail request, the walk ending there):
    the `digest` of its request and response bytes and of the extraction version
    (crawler/page_memo.py), its newest and oldest date, how many of its items the list gave
    with a body (`found`: what the crawl summary counts as found and unchanged),
    (agency, id, content_hash) of every item and the extraction `version`. The next crawl
    recognises the same page by its digest and ends the walk without extracting it
    (crawler/spiders/govkz.py). Kept per walk: `agency` is the agency or SITE_WIDE ("*")."""

    agency: str
    lang: str
    digest: str
    newest: datetime | None
    oldest: datetime | None
    found: int
    items: tuple[tuple[str, int, str], ...]
    version: int  # crawler/extract/api.py EXTRACTION_VERSION of the code that made it

    @property
    def keys(self) -> list[tuple[str, int, str]]:
        """(agency, id, lang) of the page's items: NewsPage.seen of a memo hit."""
        return [(agency, item_id, self.lang) for agency, item_id, _ in self.items]


@dataclass
class NewsPage:
    """What one response gave (a news list page, a detail, an RSS feed, a saved page): its
    items and rejects, stored by the pipelines in one transaction, so a page costs one write
    transaction however many items it has, and a crash leaves all of it or none.

    `seen`: (agency, id, lang) of the items the spider judged unchanged by their stored hash
    alone (body-less list entries, not in `items`): their `last_seen` is refreshed in the same
    transaction. `marks`: the SyncMark of the walk this response ends, recorded after the
    items, in the same transaction. `memo`: the walk's PageMemo to keep, stored after (or
    with) the items it describes, never before; `forget_memo`: (agency, lang) of a walk whose
    page 1 was not quiet, whose stored memo goes."""

    items: list[NewsItem] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    seen: list[tuple[str, int, str]] = field(default_factory=list)
    marks: list[SyncMark] = field(default_factory=list)
    memo: PageMemo | None = None
    forget_memo: tuple[str, str] | None = None

    @property
    def empty(self) -> bool:
        return not (self.items or self.rejects or self.seen or self.marks or self.memo
                    or self.forget_memo)
