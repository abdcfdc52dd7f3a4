"""Property tests of the extractors' one promise (crawler/extract/result.py): whatever gov.kz sends,
every element becomes an item or a named Reject, never another exception, and only a response of the
wrong shape is a LayoutChanged. And every item that comes out can be published: it renders into Atom
and RSS that lxml parses and feedparser reads without complaint.

Strings come from every code point (lone surrogates and controls included) mixed with the
characters that broke things before; no database is involved.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone

import feedparser
import lxml.etree
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.errors import LayoutChanged, SnapshotError
from crawler.extract import api, graphql, rss
from crawler.extract.fields import EARLIEST, LATEST, MAX_ITEM_ID, clean_tree
from crawler.extract.htmlbody import clean_body
from crawler.extract.result import Extracted
from crawler.extract.snapshot import LAYOUTS, detect_layout, extract_snapshot
from crawler.feeds import FeedMeta, entry_from_item, render_atom, render_rss
from crawler.items import GOVKZ_SITE, NewsItem, Reject
from crawler.sanitize import html_to_text
from crawler.timeutil import ALMATY, isoformat

SETTINGS = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FEW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What the boundary must never let into a field.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Every reason a JSON element can be rejected for. "unreadable: …" (an exception no field
# parser named) is deliberately not here: it would mean a case nobody thought of.
JSON_REASONS = re.compile(
    r"^(no id|no title|no created_date|title empty after cleaning|date out of range"
    r"|body over 5 MB|(a number|a string|a boolean|null|an array), not an object"
    r"|bad id .+|bad created_date .+|title not a string but .+|asked for \d+, got \d+)$",
    re.DOTALL,
)
RSS_REASONS = re.compile(
    r"^(no news id|no title|title empty after cleaning|no date|bad date .+|date out of range"
    r"|body over 5 MB)$",
    re.DOTALL,
)
SNAPSHOT_REASONS = re.compile(
    r"^(not part of any item|no 'Source :' link after the item|Source link is not a gov\.kz "
    r"news item: .*|invalid date .+|date out of range|bad id .+|Source link without a title "
    r"line above it|footer without an item above it|invalid date or time in footer .+)$",
    re.DOTALL,
)

# --- strategies ---------------------------------------------------------------------------------

NASTY = list("\x00\x07\x0b\x0c\x1b\x7f\x85\x9f\ud800\udbff\udc00\udfff\ufffe\uffff\ufeff")
NASTY += list("\u202e\u2066\u200b\u2028\u00a0\r\n\t <>&\"';]")
PIECES = ["]]>", "&#7;", "&#xD800;", "&amp;", "\r\n", "\ud83d\ude00"]
TEXT = st.lists(
    st.characters(codec=None) | st.sampled_from(NASTY) | st.sampled_from(PIECES), max_size=16
).map("".join)
SMALL = st.text(alphabet=st.characters(codec=None), max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | SMALL,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SMALL, inner, max_size=3),
    max_leaves=6,
)
TAGS = st.sampled_from(["<p>", "</p>", "<br>", "<b>", "</div>", "<html><body>", "<script>x",
                        '<a href="/uploads/a b.pdf">', '<img src="http://[bad">', "<!--", "&amp;"])
HTMLISH = st.lists(TAGS | TEXT, max_size=5).map("".join)
OFFSETS = st.sampled_from(["", "Z", "+05:00", "-12:00", "+14:00", "+0500", "+99:00", "-2359"])
ISO_DATES = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
    st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
    st.integers(0, 60), st.integers(0, 60), OFFSETS,
)
GOOD_DATES = st.datetimes(datetime(1990, 1, 1), datetime(2090, 1, 1)).map(
    lambda d: d.isoformat(timespec="milliseconds") + "+05:00"
)
EDGE_DATES = st.sampled_from(
    ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00", "0001-01-01T00:00:00+14:00",
     "1900-01-01", "2100-01-01T00:00:00Z", "2026-02-30", "2026-02-27T24:00:00", "2026-02-27"]
)
DATES = GOOD_DATES | ISO_DATES | EDGE_DATES | TEXT | JSON_VALUES
IDS = (
    st.integers(1, 2_000_000) | st.integers(1, 2_000_000).map(str)
    | st.integers(-(2**70), 2**70) | st.sampled_from(["abc", " 12 ", "١٢", "0", "1e3", "²"])
    | TEXT | JSON_VALUES
)
PLAUSIBLE = st.fixed_dictionaries(
    {},
    optional={
        "id": IDS,
        "title": TEXT | JSON_VALUES,
        "created_date": DATES,
        "body": HTMLISH | JSON_VALUES,
        "short_description": HTMLISH | st.none(),
        "heropic": TEXT | st.sampled_from(["/uploads/h.jpg", "http://[bad", None]),
        "projects": JSON_VALUES,
    },
)
# Plausible keys mixed with arbitrary ones (which never replace a plausible one).
OBJECTS = st.builds(lambda known, other: {**other, **known}, PLAUSIBLE,
                    st.dictionaries(SMALL, JSON_VALUES, max_size=2))
ELEMENTS = OBJECTS | OBJECTS | OBJECTS | JSON_VALUES
# Plausible elements, so that items (not only rejects) come out often enough to be checked.
LIKELY = st.fixed_dictionaries(
    {"id": st.integers(1, 50), "title": TEXT, "created_date": GOOD_DATES | EDGE_DATES},
    optional={"body": HTMLISH, "short_description": HTMLISH, "heropic": TEXT},
)


def json_body(elements: object, ascii_only: bool) -> bytes:
    """JSON as a server might send it: with \\u escapes, or raw UTF-8 in which a lone
    surrogate becomes bytes that are not valid UTF-8."""
    return json.dumps(elements, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


# --- checks -------------------------------------------------------------------------------------

META = FeedMeta(
    title="t", self_url="http://127.0.0.1:8080/feeds/a.atom",
    alternate_url="https://www.gov.kz/memleket/entities/a/press/news?lang=ru", description="d",
)


def archive_row(item: NewsItem) -> dict:
    """The item as crawler/store.py keeps it and Archive.feed_items hands it out."""
    published = isoformat(item.published.astimezone(ALMATY)) if item.published else None
    return {
        "agency": item.agency, "id": item.id, "lang": item.lang, "url": item.url,
        "title": item.title, "published": published, "body_text": item.body_text,
        "body_html": item.body_html, "categories": list(item.categories),
        "summary": item.summary, "image": item.image, "views": item.views,
        "incomplete": item.incomplete, "source": item.source, "version": 1,
        "updated": published,
    }


def check_items(items: list[NewsItem], agency: str = "a") -> None:
    """Every item is sound and renders into feeds that parse."""
    for item in items:
        assert isinstance(item, NewsItem)
        assert 0 < item.id <= MAX_ITEM_ID or item.id < 0  # negative: snapshot's synthetic ids
        assert item.title and item.title == " ".join(item.title.split())
        if item.published is not None:
            assert item.published.tzinfo is not None
            assert EARLIEST <= item.published < LATEST
            item.published.astimezone(UTC)  # never an OverflowError downstream
        for text in (item.title, item.url, item.body_html, item.body_text, item.summary,
                     item.image or "", *item.categories):
            assert not FORBIDDEN.search(text), (item.id, text)
    render_feeds([item for item in items if not item.incomplete])


def render_feeds(items: list[NewsItem]) -> None:
    entries = [entry_from_item(archive_row(item)) for item in items]
    assert all(entries)
    for render in (render_atom, render_rss):
        data = render(META, entries)
        lxml.etree.fromstring(data)
        parsed = feedparser.parse(data)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert len(parsed.entries) == len(entries)


@pytest.mark.parametrize("field", ["title", "summary", "body_text"])
def test_feeds_survive_a_character_reference_to_a_control(field: str) -> None:
    item = NewsItem(
        agency="a", id=1, lang="ru", url="https://www.gov.kz/memleket/entities/a/press/news/"
        "details/1?lang=ru", title="t", published=datetime(2026, 1, 1, tzinfo=ALMATY),
    )
    setattr(item, field, "x &#7; y")
    render_feeds([item])


def check_rejects(rejects: list[Reject], reasons: re.Pattern, url: str = "") -> None:
    for reject in rejects:
        assert isinstance(reject, Reject)
        assert reasons.match(reject.reason), reject.reason
        assert isinstance(reject.raw, str) and reject.url == url
        assert reject.item_id is None or 0 < reject.item_id <= MAX_ITEM_ID


def duplicates(items_with_ids: list[int]) -> int:
    return len(items_with_ids) - len(set(items_with_ids))


def one_by_one(elements: list) -> tuple[int, int]:
    """(items, rejects) of the elements parsed one at a time: what a page must account for."""
    outcomes = [
        api.element_outcome(e, clean_tree(e), agency="a", lang="ru", site=GOVKZ_SITE, url="")
        for e in elements
    ]
    ids = [o.id for o in outcomes if isinstance(o, NewsItem)]
    return len(ids) - duplicates(ids), len(outcomes) - len(ids)


# --- JSON: API list, detail, GraphQL ------------------------------------------------------------


@SETTINGS
@given(st.lists(ELEMENTS | LIKELY, max_size=6), st.booleans())
def test_every_list_element_is_an_item_or_a_named_reject(elements: list, ascii_only: bool) -> None:
    result = api.parse_news_list(
        json_body(elements, ascii_only), agency="a", lang="ru", url="https://x/l"
    )
    assert isinstance(result, Extracted)
    check_rejects(result.rejects, JSON_REASONS, url="https://x/l")
    check_items(result.items)
    ids = [item.id for item in result.items]
    assert len(set(ids)) == len(ids)  # one item per id and page
    # Every element is accounted for: an item, a reject, or a later copy of an item's id.
    assert (len(result.items), len(result.rejects)) == one_by_one(elements)


@SETTINGS
@given(ELEMENTS | LIKELY, st.none() | st.integers(1, 50), st.booleans())
def test_a_detail_answer_is_one_item_or_one_reject(
    element: object, expected_id: int | None, ascii_only: bool
) -> None:
    body = json_body(element, ascii_only)
    try:
        result = api.parse_news_detail(body, agency="a", lang="ru", expected_id=expected_id)
    except LayoutChanged as exc:
        assert not isinstance(element, dict)  # only a non-object is the wrong shape
        assert exc.reason.startswith("news detail: expected a JSON object")
        return
    assert len(result.items) + len(result.rejects) == 1
    check_rejects(result.rejects, JSON_REASONS)
    check_items(result.items)
    if result.items and expected_id is not None:
        assert result.items[0].id == expected_id


@FEW
@given(st.lists(ELEMENTS | LIKELY, max_size=5), st.booleans())
def test_graphql_news_rows_are_items_or_rejects(rows: list, ascii_only: bool) -> None:
    body = json_body({"data": {"news": rows}}, ascii_only)
    result = graphql.parse_graphql_news(body, agency="a", lang="ru")
    check_rejects(result.rejects, JSON_REASONS)
    check_items(result.items)
    assert (len(result.items), len(result.rejects)) == one_by_one(rows)


AGENCY_ROWS = JSON_VALUES | st.fixed_dictionaries(
    {},
    optional={"slug": TEXT | st.sampled_from(["mfa-rabat", "a.b_c"]),
              "project_name": TEXT | JSON_VALUES, "parent_govorg": JSON_VALUES},
)


@FEW
@given(st.lists(AGENCY_ROWS, max_size=5))
def test_projectdetails_rows_are_agencies_or_skipped(rows: list) -> None:
    agencies, skipped = graphql.parse_projectdetails_rows(
        json.dumps({"data": {"projectdetails": rows}}).encode()
    )
    assert len(agencies) + len(skipped) <= len(rows)
    for agency in agencies:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", agency["slug"])
        assert not FORBIDDEN.search(agency["name"] or "")


# --- RSS ----------------------------------------------------------------------------------------

RFC822 = st.builds(
    lambda d, off: d.replace(tzinfo=timezone(timedelta(minutes=off))).strftime(
        "%a, %d %b %Y %H:%M:%S %z"
    ),
    st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)),
    st.integers(-23 * 60, 23 * 60),
)
LINKS = st.integers(0, 10**25).map(
    "https://www.gov.kz/memleket/entities/a/press/news/details/{}?lang=ru".format
) | TEXT


def raw(text: str) -> bytes:
    """Text as bytes in a document: a lone surrogate becomes bytes that are not UTF-8."""
    return text.encode("utf-8", "surrogatepass")


def escaped(text: str) -> bytes:
    """Text that cannot open or close an element, but keeps every invalid character."""
    return raw(html.escape(text, quote=False))


def rss_entry(fields: dict, quote: object) -> bytes:
    parts = [b"<item>"]
    for tag, value in fields.items():
        parts.append(b"<%s>%s</%s>" % (tag.encode(), quote(value), tag.encode()))
    return b"".join(parts) + b"</item>"


GOOD_RFC822 = st.datetimes(datetime(1990, 1, 1), datetime(2090, 1, 1)).map(
    lambda d: d.strftime("%a, %d %b %Y %H:%M:%S +0500")
)
ENTRY_FIELDS = st.fixed_dictionaries(
    {"link": LINKS},
    optional={"title": TEXT, "pubDate": RFC822 | ISO_DATES | TEXT, "description": HTMLISH,
              "guid": LINKS, "category": TEXT},
) | st.fixed_dictionaries(  # plausible entries, so that items come out often enough
    {"link": st.integers(1, 30).map(
        "https://www.gov.kz/memleket/entities/a/press/news/details/{}?lang=ru".format
    ), "title": TEXT, "pubDate": GOOD_RFC822 | GOOD_DATES},
    optional={"description": HTMLISH, "category": TEXT},
)


def rss_document(entries: list[bytes]) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
        + b"".join(entries) + b"</channel></rss>"
    )


@SETTINGS
@given(st.lists(ENTRY_FIELDS, max_size=5))
def test_every_rss_entry_is_an_item_or_a_named_reject(entries: list[dict]) -> None:
    """Invalid XML characters and bytes inside otherwise well-formed entries never cost an
    entry: each one is an item or a reject (or a later copy of an item's id)."""
    body = rss_document([rss_entry(fields, escaped) for fields in entries])
    result = rss.parse_official_rss(body, agency="a", lang="ru", url="u")
    check_rejects(result.rejects, RSS_REASONS, url="u")
    check_items(result.items)
    # An entry is accounted for even when it has no usable id (a reject).
    assert len(result.items) + len(result.rejects) <= len(entries)
    placed = [rss.news_id(f["link"], f.get("guid")) for f in entries]
    lost = len(entries) - len(result.items) - len(result.rejects)
    assert lost <= duplicates([i for i in placed if i is not None])


@SETTINGS
@given(st.lists(ENTRY_FIELDS, max_size=4), TEXT)
def test_rss_with_raw_markup_in_its_texts_never_fails_but_as_layout_changed(
    entries: list[dict], tail: str
) -> None:
    """The same texts unescaped: they may break the structure, but the result is a result
    or a LayoutChanged, never another exception."""
    body = rss_document([rss_entry(fields, raw) for fields in entries]) + raw(tail)
    try:
        result = rss.parse_official_rss(body, agency="a", lang="ru")
    except LayoutChanged as exc:
        assert exc.reason.startswith("official RSS: ")
        return
    check_rejects(result.rejects, RSS_REASONS)
    check_items(result.items)


@FEW
@given(st.binary(max_size=200) | TEXT.map(raw))
def test_any_bytes_as_rss(body: bytes) -> None:
    try:
        result = rss.parse_official_rss(body, agency="a", lang="ru")
    except LayoutChanged:
        return
    check_rejects(result.rejects, RSS_REASONS)
    check_items(result.items)


# --- snapshots ----------------------------------------------------------------------------------

LINE = st.text(
    alphabet=st.one_of(st.characters(codec=None, exclude_characters="\r\n"),
                       st.sampled_from([c for c in NASTY if c not in "\r\n"])),
    max_size=16,
)
DAYS = st.builds(
    "{:02d}.{:02d}.{:04d}".format, st.integers(0, 40), st.integers(0, 14), st.integers(0, 9999)
) | st.dates(date(1990, 1, 1), date(2090, 1, 1)).map(lambda d: d.strftime("%d.%m.%Y"))
SNAPSHOT_LINK = "https://www.gov.kz/memleket/entities/a/press/news/details/{}?lang=kk"


@SETTINGS
@given(st.lists(st.tuples(LINE, DAYS, LINE, st.integers(0, 10**22)), min_size=1, max_size=5))
def test_every_snapshot_block_is_an_item_or_a_named_reject(blocks: list[tuple]) -> None:
    """A sections page of well-formed blocks around arbitrary titles, dates, bodies and ids:
    each block becomes an item or a reject, whatever the characters in it."""
    ids = list(range(1, len(blocks) + 1))
    lines = ["News", "More"]
    for (title, day, body, item_id), n in zip(blocks, ids, strict=True):
        number = item_id if item_id % 3 == 0 else n  # every third an id that may be no id
        lines += [f"T {title} x", day, f"B {body} x.Source : {SNAPSHOT_LINK.format(number)}"]
    try:
        result = extract_snapshot(
            "\n".join(lines), layout="sections", lang="en", source="snapshot:p"
        )
    except SnapshotError as exc:
        assert exc.reason.startswith("no items found for layout sections")
        return
    check_rejects(result.rejects, SNAPSHOT_REASONS)
    check_items(result.items)
    # Each block is an item, a reject, or a later copy of an item's id (merged into it).
    assert 0 < len(result.items) + len(result.rejects) <= len(blocks)
    assert all(reject.raw.count("\n") == 2 for reject in result.rejects)


@SETTINGS
@given(st.lists(LINE | DAYS | st.sampled_from(
    ["More", "News", "01.08.2025, 14:40 10", "Source : " + SNAPSHOT_LINK.format(5),
     "T 21.05.2025", "x.Source : " + SNAPSHOT_LINK.format(0)]), max_size=12),
    st.sampled_from(LAYOUTS), st.sampled_from(["\n", "\r\n", "\r"]))
def test_any_snapshot_text_is_a_result_or_a_snapshot_error(
    lines: list[str], layout: str, newline: str
) -> None:
    text = newline.join(lines)
    assert detect_layout(text) in (*LAYOUTS, None)
    try:
        result = extract_snapshot(text, layout=layout, lang="en", source="snapshot:p",
                                  agency="primeminister")
    except SnapshotError as exc:
        assert exc.reason.startswith("no items found")
        return
    check_rejects(result.rejects, SNAPSHOT_REASONS)
    check_items(result.items)


# --- bodies -------------------------------------------------------------------------------------


@SETTINGS
@given(HTMLISH | TEXT)
def test_html_bodies_never_raise(markup: str) -> None:
    body_html, body_text = clean_body(markup, "https://www.gov.kz")
    for text in (body_html, body_text, html_to_text(markup)):
        assert isinstance(text, str) and not FORBIDDEN.search(text)
