"""Feeds: every file write_feeds produces is valid (feedcheck + feedparser), stable, safe."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedcheck
import feedparser
import pytest
from lxml import etree
from store_helpers import memory_archive

from crawler.agencies import Agency, AgencyRegistry
from crawler.feed_dir import STATE
from crawler.feeds import (
    EMPTY_FEED_UPDATED,
    INDEX_KEY,
    EntryData,
    FeedMeta,
    FeedSource,
    entry_from_item,
    render_atom,
    render_rss,
    write_feeds,
    write_if_changed,
)
from crawler.items import item_url

BASE = "http://127.0.0.1:8080/"
ATOM = "{http://www.w3.org/2005/Atom}"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)


def row(agency: str, item_id: int, lang: str, published: str, **fields: Any) -> dict[str, Any]:
    """An item row as Archive.feed_items returns it."""
    return {
        "agency": agency, "id": item_id, "lang": lang, "url": item_url(agency, item_id, lang),
        "title": f"{agency} news {item_id} ({lang})", "published": published,
        # An `updated` that differs from `published` means an edit, i.e. a second version.
        "version": 2 if fields.get("updated", published) != published else 1,
        "updated": fields.pop("updated", published), "body_text": "", "summary": "",
        "body_html": f"<p>Body of {item_id} in {lang}.</p>", "categories": ["News"],
        "image": None, "views": None, "incomplete": False, "source": "test",
        "content_hash": "h", "first_seen": published, "last_seen": published,
        **fields,
    }  # fmt: skip


class FakeArchive:
    """The FeedSource protocol over a list of rows (the real store is tested at the end)."""

    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self.rows = list(rows)

    def feed_items(
        self, agency: str | None = None, lang: str | None = None, limit: int = 50
    ) -> list[dict]:
        found = [
            r
            for r in self.rows
            if (agency is None or r["agency"] == agency)
            and (lang is None or r["lang"] == lang)
            and not r["incomplete"]
        ]
        found.sort(key=lambda r: (datetime.fromisoformat(r["published"]), r["id"]), reverse=True)
        return [dict(r) for r in found[:limit]]

    def feed_groups(self) -> list[tuple[str, str]]:
        return sorted({(r["agency"], r["lang"]) for r in self.rows if not r["incomplete"]})

    def translations(self, agency: str, item_id: int) -> dict[str, str]:
        return {
            r["lang"]: r["url"] for r in self.rows if (r["agency"], r["id"]) == (agency, item_id)
        }

    def translations_of(
        self, keys: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], dict[str, str]]:
        return {key: found for key in keys if (found := self.translations(*key))}


def dataset() -> list[dict[str, Any]]:
    rows = [row("mod", 100 + n, "en", f"2025-05-{10 + n:02d}T09:00:00+05:00") for n in range(6)]
    rows += [row("mod", 100 + n, "ru", f"2025-05-{10 + n:02d}T09:00:00+05:00") for n in range(3)]
    rows += [row("mod", 100, "kk", "2025-05-10T09:00:00+05:00", categories=["Жаңалықтар"])]
    rows += [
        row("mfa-rabat", 201, "en", "2026-02-27T12:30:00+05:00",
            updated="2026-02-27T14:00:00+05:00"),
        row("mfa-rabat", 202, "en", "2026-02-26T08:00:00+06:00", image="/uploads/hero.jpg"),
        row("zz-unlisted", 301, "ru", "2024-01-05T10:00:00+06:00", body_html="",
            body_text="Первая строка\nВторая & строка"),
        row("mod", 999, "en", "2025-05-30T09:00:00+05:00", incomplete=True),
    ]  # fmt: skip
    return rows


# feed (path relative to out_dir, without the format's extension) -> entries it must hold
FEEDS = {
    "all": 13, "all/en": 8, "all/ru": 4, "all/kk": 1,
    "mod": 10, "mod/en": 6, "mod/ru": 3, "mod/kk": 1,
    "mfa-rabat": 2, "mfa-rabat/en": 2,
    "zz-unlisted": 1, "zz-unlisted/ru": 1,
}  # fmt: skip
FORMATS = ("atom", "rss", "json")
# file -> number of entries it must hold: every feed in every format
EXPECTED = {f"{rel}.{ext}": n for rel, n in FEEDS.items() for ext in FORMATS}
XML_FEEDS = sorted(name for name in EXPECTED if not name.endswith(".json"))
# The per-agency-per-language feeds: what the OPML lists (as Atom), each item in one of them.
UNITS = ["mod/en", "mod/ru", "mod/kk", "mfa-rabat/en", "zz-unlisted/ru"]
INDEXES = {"index.opml", "index.kk.opml", "index.ru.opml", "index.en.opml", "index.html"}


@pytest.fixture(scope="module")
def registry() -> AgencyRegistry:
    return AgencyRegistry.load()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, registry: AgencyRegistry) -> Path:
    out = tmp_path_factory.mktemp("feeds")
    write_feeds(FakeArchive(dataset()), out, registry=registry)
    return out


def parse(path: Path) -> etree._Element:
    return etree.fromstring(path.read_bytes(), PARSER)


def files(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def test_write_feeds_writes_every_feed_and_the_opml(published: Path) -> None:
    # Each with its gzip copy, the hidden digest that tells whether the indexes are current and
    # the hidden record of what the directory holds (crawler/feed_dir.py).
    written = set(EXPECTED) | INDEXES
    assert files(published) == written | {f"{name}.gz" for name in written} | {INDEX_KEY, STATE}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_feed_passes_the_validator_checks(published: Path, name: str) -> None:
    assert feedcheck.check_file(published / name, served_at=f"{BASE}feeds/{name}") == []


@pytest.mark.parametrize("name", XML_FEEDS)
def test_every_feed_reads_cleanly_in_feedparser(published: Path, name: str) -> None:
    parsed = feedparser.parse((published / name).read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert len(parsed.entries) == EXPECTED[name]
    assert parsed.version == ("atom10" if name.endswith(".atom") else "rss20")
    for entry in parsed.entries:
        assert entry.link.startswith("https://www.gov.kz/memleket/entities/")
        assert entry.id == entry.link
        assert entry.published_parsed
        if name.endswith(".atom"):
            assert entry.updated_parsed >= entry.published_parsed


def test_opml_lists_every_feed(published: Path) -> None:
    assert feedcheck.check_opml((published / "index.opml").read_bytes()) == []
    outlines = parse(published / "index.opml").iter("outline")
    urls = [o.get("xmlUrl") for o in outlines if o.get("xmlUrl")]
    assert sorted(urls) == sorted(f"{BASE}feeds/{rel}.atom" for rel in UNITS)


@pytest.mark.parametrize("name", ["mod/en.atom", "mod/en.rss", "all.atom", "mod.rss"])
def test_entries_are_newest_first(published: Path, name: str) -> None:
    parsed = feedparser.parse((published / name).read_bytes())
    dates = [e.published_parsed for e in parsed.entries]
    assert dates == sorted(dates, reverse=True)


def test_feed_metadata_per_agency_and_language(published: Path) -> None:
    en = parse(published / "mod/en.atom")
    assert en.findtext(f"{ATOM}title") == "Ministry of Defence of the Republic of Kazakhstan"
    assert en.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    links = {ln.get("rel"): ln.get("href") for ln in en.findall(f"{ATOM}link")}
    assert links == {
        "self": f"{BASE}feeds/mod/en.atom",
        "alternate": "https://www.gov.kz/memleket/entities/mod/press/news?lang=en",
    }
    assert en.findtext(f"{ATOM}id") == f"{BASE}feeds/mod/en.atom"
    kk = parse(published / "mod/kk.rss").find("channel")
    assert kk.findtext("title") == "Қазақстан Республикасы Қорғаныс министрлігі"
    assert kk.findtext("language") == "kk"
    assert kk.findtext("link") == "https://www.gov.kz/memleket/entities/mod/press/news?lang=kk"
    mixed = parse(published / "mod.atom")
    assert mixed.findtext(f"{ATOM}title") == "Ministry of Defence of the Republic of Kazakhstan"
    assert mixed.get("{http://www.w3.org/XML/1998/namespace}lang") is None
    # An agency the registry does not know is titled by its slug.
    assert parse(published / "zz-unlisted/ru.atom").findtext(f"{ATOM}title") == "zz-unlisted"
    every = parse(published / "all.rss").find("channel")
    assert every.findtext("link") == "https://www.gov.kz/"


def test_feed_updated_is_the_newest_entry_not_the_clock(published: Path) -> None:
    rabat = parse(published / "mfa-rabat/en.atom")
    assert rabat.findtext(f"{ATOM}updated") == "2026-02-27T14:00:00+05:00"
    entries = rabat.findall(f"{ATOM}entry")
    # The edited item: updated later than published; the other: updated = published.
    assert entries[0].findtext(f"{ATOM}updated") == "2026-02-27T14:00:00+05:00"
    assert entries[0].findtext(f"{ATOM}published") == "2026-02-27T12:30:00+05:00"
    assert entries[1].findtext(f"{ATOM}updated") == entries[1].findtext(f"{ATOM}published")
    channel = parse(published / "mfa-rabat/en.rss").find("channel")
    assert channel.findtext("lastBuildDate") == "Fri, 27 Feb 2026 14:00:00 +0500"


def test_entry_content_guid_categories_and_translations(published: Path) -> None:
    entry = parse(published / "mod/en.atom").findall(f"{ATOM}entry")[-1]  # id 100, oldest
    url = item_url("mod", 100, "en")
    assert entry.findtext(f"{ATOM}id") == url
    links = [(ln.get("rel", "alternate"), ln.get("hreflang"), ln.get("href"))
             for ln in entry.findall(f"{ATOM}link")]  # fmt: skip
    assert sorted(links, key=str) == sorted(
        [
            ("alternate", None, url),  # the one alternate: readers must open the item itself
            ("related", "kk", item_url("mod", 100, "kk")),
            ("related", "ru", item_url("mod", 100, "ru")),
        ],
        key=str,
    )
    assert entry.find(f"{ATOM}content").get("type") == "html"
    assert entry.findtext(f"{ATOM}content") == "<p>Body of 100 in en.</p>"
    assert entry.findtext(f"{ATOM}summary") == "Body of 100 in en."
    assert [c.get("term") for c in entry.findall(f"{ATOM}category")] == ["News"]
    item = parse(published / "mod/kk.rss").find("channel/item")
    guid = item.find("guid")
    assert (guid.text, guid.get("isPermaLink")) == (item_url("mod", 100, "kk"), "true")
    assert item.findtext("category") == "Жаңалықтар"


def test_plain_text_bodies_and_hero_images_become_html(published: Path) -> None:
    body = parse(published / "zz-unlisted/ru.atom").find(f"{ATOM}entry").findtext(f"{ATOM}content")
    assert body == "<p>Первая строка</p><p>Вторая &amp; строка</p>"
    rabat = parse(published / "mfa-rabat/en.atom").findall(f"{ATOM}entry")[1]
    assert rabat.findtext(f"{ATOM}content").startswith(
        '<p><img src="https://www.gov.kz/uploads/hero.jpg" alt=""></p>'
    )


def test_second_run_with_same_data_writes_nothing(tmp_path: Path, registry: AgencyRegistry) -> None:
    source = FakeArchive(dataset())
    first = write_feeds(source, tmp_path, registry=registry)
    assert len(first.written) == first.feeds == len(EXPECTED) + len(INDEXES)
    # The hidden bookkeeping aside: the indexes' digest holds the mtimes set to 0 below, and
    # the directory's record the mtime of the directory that digest is rewritten in.
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")
              if p.is_file() and p.name != INDEX_KEY and p != tmp_path / STATE}  # fmt: skip
    contents = {p: p.read_bytes() for p in stamps}
    for path in stamps:  # make any rewrite visible in the mtime, whatever the clock resolution
        os.utime(path, ns=(0, 0))
    second = write_feeds(source, tmp_path, registry=registry)
    assert second.written == []
    assert second.unchanged == second.feeds == first.feeds
    assert all(p.stat().st_mtime_ns == 0 and p.read_bytes() == contents[p] for p in stamps)
    # No temporary files left (the indexes' digest and the directory's record are none).
    assert not [p for p in tmp_path.rglob(".*") if p.is_file() and p.name not in (INDEX_KEY, STATE)]


def test_an_edit_rewrites_only_the_feeds_that_show_it(
    tmp_path: Path, registry: AgencyRegistry
) -> None:
    rows = dataset()
    write_feeds(FakeArchive(rows), tmp_path, registry=registry)
    rows[0] = {**rows[0], "title": "Edited title", "updated": "2025-05-20T10:00:00+05:00"}
    report = write_feeds(FakeArchive(rows), tmp_path, registry=registry)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in report.written)
    assert written == sorted(f"{rel}.{ext}" for rel in ("all", "all/en", "mod", "mod/en")
                             for ext in FORMATS)  # fmt: skip


def test_agencies_argument_limits_what_is_rewritten(
    tmp_path: Path, registry: AgencyRegistry
) -> None:
    rows = dataset()
    write_feeds(FakeArchive(rows), tmp_path, registry=registry)
    before = (tmp_path / "mod" / "en.atom").read_bytes()
    rows.append(row("mod", 150, "en", "2025-06-01T09:00:00+05:00"))
    rows.append(row("mfa-rabat", 250, "en", "2026-03-01T09:00:00+05:00"))
    report = write_feeds(FakeArchive(rows), tmp_path, registry=registry, agencies=["mfa-rabat"])
    written = sorted(p.relative_to(tmp_path).as_posix() for p in report.written)
    assert written == sorted(f"{rel}.{ext}" for rel in ("all", "all/en", "mfa-rabat",
                                                        "mfa-rabat/en") for ext in FORMATS)
    assert (tmp_path / "mod" / "en.atom").read_bytes() == before
    # mfa-rabat's 2 feeds and the 4 every-agency feeds in 3 formats, then the 5 indexes; of
    # those, all/ru, all/kk and the indexes are unchanged.
    assert (report.feeds, report.unchanged) == (6 * 3 + 5, 2 * 3 + 5)


def test_limit_keeps_the_newest(tmp_path: Path, registry: AgencyRegistry) -> None:
    write_feeds(FakeArchive(dataset()), tmp_path, registry=registry, limit=2)
    parsed = feedparser.parse((tmp_path / "mod/en.rss").read_bytes())
    assert [e.link for e in parsed.entries] == [
        item_url("mod", 105, "en"),
        item_url("mod", 104, "en"),
    ]


@pytest.mark.parametrize(
    "base", ["https://feeds.example.org/govkz", "https://feeds.example.org/govkz/"]
)
def test_self_links_follow_the_public_url(
    tmp_path: Path, registry: AgencyRegistry, base: str
) -> None:
    write_feeds(FakeArchive(dataset()), tmp_path, registry=registry, base_url=base)
    for name in EXPECTED:
        served = f"https://feeds.example.org/govkz/feeds/{name}"
        assert feedcheck.check_file(tmp_path / name, served_at=served) == []


def test_an_empty_archive_still_gives_valid_documents(
    tmp_path: Path, registry: AgencyRegistry
) -> None:
    report = write_feeds(FakeArchive([]), tmp_path, registry=registry)
    every = {f"{rel}.{ext}" for rel in ("all", "all/kk", "all/ru", "all/en") for ext in FORMATS}
    written = every | INDEXES
    assert files(tmp_path) == written | {f"{name}.gz" for name in written} | {INDEX_KEY, STATE}
    assert report.feeds == len(every) + len(INDEXES)
    for name in sorted(every):
        assert feedcheck.check_file(tmp_path / name, served_at=f"{BASE}feeds/{name}") == []
    for opml in sorted(INDEXES - {"index.html"}):
        assert feedcheck.check_opml((tmp_path / opml).read_bytes()) == []
    for name in ("all.atom", "all.rss"):
        assert feedcheck.check_file(tmp_path / name, served_at=f"{BASE}feeds/{name}") == []
        parsed = feedparser.parse((tmp_path / name).read_bytes())
        assert parsed.bozo == 0 and parsed.entries == []
    assert parse(tmp_path / "all.atom").findtext(f"{ATOM}updated") == EMPTY_FEED_UPDATED.isoformat()


# --- hostile content --------------------------------------------------------------------------

HOSTILE = [
    pytest.param("<script>alert('x')</script>Budget", "Budget", id="script-in-title"),
    pytest.param("Tom & Jerry", "Tom & Jerry", id="ampersand"),
    # Escaped markup in a text field is decoded, and a tag that appears is dropped too.
    pytest.param("AT&amp;T &lt;b&gt;bold&lt;/b&gt;", "AT&T bold", id="entities"),
    pytest.param("5 &lt; 7 &amp;amp; 9 > 8", "5 < 7 & 9 > 8", id="double-escaped"),
    pytest.param("nul\x00 vt\x0b ff\x0c", "nul vt ff", id="control-chars"),
    pytest.param("bad \ufffe\uffff end", "bad end", id="non-characters"),
    pytest.param("lone \ud800 surrogate", "lone surrogate", id="lone-surrogate"),
    pytest.param("]]> cdata <![CDATA[x]]>", "]]> cdata", id="cdata-markers"),
    pytest.param("Қазақстан 😀 «quotes»", "Қазақстан 😀 «quotes»", id="unicode"),
]
HOSTILE_BODY = (
    "<html><head><title>doc</title><style>b{}</style></head><body>"
    "<p onclick='x()'>Body &amp; more \x00\x0b\ufffe</p><script>alert('body')</script>"
    "<a href='javascript:alert(1)'>js</a><a href='/uploads/doc.pdf'>doc</a>"
    "<img src='x' onerror='alert(2)'><iframe src='https://evil.example'></iframe>"
    "</body></html>"
)


def _plain_fields(root: etree._Element, fmt: str) -> list[str]:
    """Every plain-text field of the entries: titles, summaries/descriptions, categories."""
    if fmt == "atom":
        fields = [el.text or "" for el in root.iter(f"{ATOM}title", f"{ATOM}summary")]
        return fields + [c.get("term") for c in root.iter(f"{ATOM}category")]
    return [el.text or "" for el in root.iter("title", "description", "category")]


@pytest.mark.parametrize(("title", "expected"), HOSTILE)
@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_hostile_items_never_break_or_reach_a_feed(
    tmp_path: Path, registry: AgencyRegistry, title: str, expected: str, fmt: str
) -> None:
    rows = [
        row("mod", 1, "en", "2025-05-20T09:00:00+05:00", title=title, body_html=HOSTILE_BODY,
            summary=title, categories=[title, "News"]),
        row("mod", 2, "en", "2025-05-21T09:00:00+05:00", title=title, body_html="",
            body_text=f"{title}\nsecond line"),
    ]  # fmt: skip
    write_feeds(FakeArchive(rows), tmp_path, registry=registry)
    for name in (f"mod/en.{fmt}", f"mod.{fmt}", f"all.{fmt}"):
        path = tmp_path / name
        data = path.read_bytes()
        root = etree.fromstring(data, PARSER)  # strict XML 1.0
        # No script element, event handler or javascript: URL in any HTML; links absolute.
        assert feedcheck.check_file(path, served_at=f"{BASE}feeds/{name}") == []
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert [e.title for e in parsed.entries] == [expected, expected]
        text = "".join(root.itertext())
        for evil in ("alert('body')", "alert(1)", "alert(2)", "onclick", "onerror", "javascript:",
                     "evil.example", "<title>doc"):  # fmt: skip
            assert evil not in text, (name, evil)
        for field in _plain_fields(root, fmt):
            assert "<script" not in field and "alert(" not in field, (name, field)
        assert "https://www.gov.kz/uploads/doc.pdf" in text
        assert "Body &amp; more" in text  # escaped once inside the HTML, not lost or doubled
        if fmt == "atom":
            terms = [c.get("term") for c in root.iter(f"{ATOM}category")]
            assert terms == ["News", expected, "News"]  # newest entry (id 2) first


# --- the rendering helpers on their own --------------------------------------------------------


def _entry(n: int, **fields: Any) -> EntryData:
    when = datetime(2025, 1, n, 12, tzinfo=UTC)
    base = {
        "id": f"tag:govkz-monitor,2025:incident-{n}",
        "title": f"Incident {n}",
        "link": f"http://127.0.0.1:8080/incidents/{n}",
        "published": when,
        "updated": when,
    }
    return EntryData(**{**base, **fields})  # fmt: skip


META = FeedMeta(
    title="govkz-monitor incidents",
    self_url="http://127.0.0.1:8080/feeds/incidents.atom",
    alternate_url="http://127.0.0.1:8080/health",
    description="Agencies that stopped answering",
)


@pytest.mark.parametrize("render", [render_atom, render_rss])
def test_render_helpers_sort_and_are_deterministic(render: Any) -> None:
    entries = [_entry(2), _entry(5), _entry(1), _entry(3)]
    first = render(META, entries)
    assert first == render(META, list(reversed(entries)))
    parsed = feedparser.parse(first)
    assert parsed.bozo == 0
    assert [e.title for e in parsed.entries] == [
        "Incident 5",
        "Incident 3",
        "Incident 2",
        "Incident 1",
    ]


def test_an_entry_is_never_updated_before_it_was_published() -> None:
    early = datetime(2024, 12, 1, tzinfo=UTC)
    root = etree.fromstring(render_atom(META, [_entry(3, updated=early)]), PARSER)
    entry = root.find(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}updated") == entry.findtext(f"{ATOM}published")
    assert root.findtext(f"{ATOM}updated") == "2025-01-03T12:00:00+00:00"


def test_render_rss_guid_is_not_a_permalink_for_a_tag_uri() -> None:
    root = etree.fromstring(render_rss(META, [_entry(1)]), PARSER)
    guid = root.find("channel/item/guid")
    assert (guid.text, guid.get("isPermaLink")) == ("tag:govkz-monitor,2025:incident-1", "false")
    meta = FeedMeta(**{**META.__dict__, "self_url": "http://127.0.0.1:8080/feeds/incidents.rss"})
    assert feedcheck.check_rss(render_rss(meta, [_entry(1)]), meta.self_url) == []


def test_render_sanitizes_content_given_by_any_caller() -> None:
    entry = _entry(1, content_html="<p>ok</p><script>alert(1)</script>", title="a\x00b")
    data = render_atom(META, [entry])
    assert b"alert(1)" not in data
    assert feedcheck.check_atom(data, META.self_url) == []
    assert feedparser.parse(data).entries[0].title == "ab"


@pytest.mark.parametrize(
    "fields",
    [{"incomplete": True}, {"published": None}, {"published": "not a date"}, {"url": ""}],
)
def test_rows_that_cannot_be_published_are_skipped(fields: dict[str, Any]) -> None:
    assert entry_from_item({**row("mod", 1, "en", "2025-05-20T09:00:00+05:00"), **fields}) is None


def test_naive_dates_are_almaty_time_and_a_blank_title_falls_back() -> None:
    item = row("mod", 1, "en", "2025-05-20T09:00:00", title="<script>x</script>", body_html="")
    entry = entry_from_item(item)
    assert entry is not None
    assert entry.published.isoformat() == "2025-05-20T09:00:00+05:00"
    assert entry.title == "mod #1"


def test_write_if_changed(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "f.xml"
    assert write_if_changed(path, b"one") is True
    assert write_if_changed(path, b"one") is False
    assert write_if_changed(path, b"two") is True
    assert path.read_bytes() == b"two"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.xml", "f.xml.gz"]


def test_fake_archive_satisfies_the_protocol() -> None:
    source: FeedSource = FakeArchive([])
    assert source.feed_groups() == []


# --- feedcheck catches what the validator would --------------------------------------------------


def _valid_atom() -> bytes:
    return render_atom(META, [_entry(1, content_html="<p>x</p>")])


def _mutate(data: bytes, replacements: tuple[tuple[bytes, bytes], ...]) -> bytes:
    for old, new in replacements:
        assert old in data, old  # a mutation that matches nothing would test nothing
        data = data.replace(old, new)
    return data


HTML_P = b"&lt;p&gt;x"
ATOM_BREAKAGES = [
    (((b'rel="self"', b'rel="related"'),), "self"),
    (((b"feeds/incidents.atom", b"feeds/other.atom"),), "does not match"),
    (((b"<id>tag:", b"<id>relative-"),), "absolute IRI"),
    (((b"2025-01-01T12:00:00+00:00</upd", b"2025-01-01 12:00</upd"),), "RFC 3339"),
    (((HTML_P, b"&lt;script&gt;x&lt;/script&gt;" + HTML_P),), "dangerous"),
    (((HTML_P, b'&lt;a href="/rel"&gt;r&lt;/a&gt;' + HTML_P),), "relative"),
    (((b"<title>Incident 1", b"<title>Incident &lt;/b&gt; 1"),), "HTML markup"),
    (((b"<title>Incident 1</title>", b""),), "RELAX NG"),
    (((b"Incident 1", b"Incident \x0b1"),), "well-formed"),
    (((b"<author>", b"<contributor>"), (b"</author>", b"</contributor>")), "author"),
]
RSS_BREAKAGES = [
    (((b"<guid", b"<nope"), (b"</guid>", b"</nope>")), "guid"),
    (((b"Wed, 01 Jan 2025", b"2025-01-01"),), "RFC 822"),
    (((b"Wed, 01 Jan 2025", b"Wed, 01 Jan 1960"),), "implausible"),
    (((b'rel="self"', b'rel="hub"'),), "self"),
    (((b"<description>", b"<summary>"), (b"</description>", b"</summary>")), "description"),
]


@pytest.mark.parametrize(("replacements", "problem"), ATOM_BREAKAGES)
def test_feedcheck_reports_atom_problems(replacements: Any, problem: str) -> None:
    valid = render_atom(META, [_entry(1, content_html="<p>x</p>")])
    assert feedcheck.check_atom(valid, META.self_url) == []
    problems = feedcheck.check_atom(_mutate(valid, replacements), META.self_url)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(("replacements", "problem"), RSS_BREAKAGES)
def test_feedcheck_reports_rss_problems(replacements: Any, problem: str) -> None:
    meta = FeedMeta(**{**META.__dict__, "self_url": "http://127.0.0.1:8080/feeds/incidents.rss"})
    valid = render_rss(meta, [_entry(1, summary="s")])
    assert feedcheck.check_rss(valid, meta.self_url) == []
    problems = feedcheck.check_rss(_mutate(valid, replacements), meta.self_url)
    assert any(problem in p for p in problems), problems


OPML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?><opml version="2.0"><head/><body>'


@pytest.mark.parametrize(
    ("opml", "problem"),
    [
        (OPML_HEAD + b'<outline text="x" title="x" type="rss"/></body></opml>', "xmlUrl"),
        (OPML_HEAD + b'<outline text="x" title="x" xmlUrl="http://a/f"/></body></opml>', "type"),
        (OPML_HEAD.replace(b'"2.0"', b'"3.0"') + b"</body></opml>", "OPML"),
        (OPML_HEAD + b"</body></opml>", "no outline"),
    ],
)
def test_feedcheck_reports_opml_problems(opml: bytes, problem: str) -> None:
    assert any(problem in p for p in feedcheck.check_opml(opml))


# --- with the real archive ---------------------------------------------------------------------


def test_feeds_from_a_real_archive(tmp_path: Path) -> None:
    from crawler.items import NewsItem
    from crawler.timeutil import ALMATY

    with memory_archive() as archive:
        for lang, title in (("en", "Exercise & drills"), ("ru", "Учения"), ("kk", "Жаттығу")):
            archive.save_item(
                NewsItem(
                    agency="mod", id=996722, lang=lang, url=item_url("mod", 996722, lang),
                    title=title, published=datetime(2025, 5, 20, 9, 30, tzinfo=ALMATY),
                    body_html="<p>Text <a href='/uploads/x.pdf'>x</a></p><script>bad()</script>",
                    categories=["Defence"],
                ),
                now=datetime(2025, 5, 20, 10, 0, tzinfo=UTC),
            )  # fmt: skip
        archive.save_item(
            NewsItem(agency="mod", id=1, lang="en", url=item_url("mod", 1, "en"), title="Cut off",
                     published=None, incomplete=True),
        )  # fmt: skip
        registry = AgencyRegistry([Agency("mod", {"en": "MoD", "ru": "МО"}, "ministry", None)])
        report = write_feeds(archive, tmp_path, registry=registry)
    names = {p.relative_to(tmp_path).as_posix() for p in report.written}
    assert names == INDEXES | {
        f"{rel}.{ext}" for rel in ("all", "all/en", "all/ru", "all/kk", "mod", "mod/en",
                                   "mod/ru", "mod/kk") for ext in FORMATS
    }  # fmt: skip
    for name in sorted(names - {"index.html"}):
        served = None if name.endswith(".opml") else f"{BASE}feeds/{name}"
        assert feedcheck.check_file(tmp_path / name, served_at=served) == [], name
    parsed = feedparser.parse((tmp_path / "mod/en.atom").read_bytes())
    assert parsed.bozo == 0 and len(parsed.entries) == 1
    entry = parsed.entries[0]
    assert entry.title == "Exercise & drills"
    assert {ln.get("hreflang") for ln in entry.links} == {None, "ru", "kk"}
    assert "bad()" not in entry.content[0].value
    assert parsed.feed.title == "MoD"
    assert feedparser.parse((tmp_path / "mod/kk.rss").read_bytes()).feed.title == "MoD"
    assert len(feedparser.parse((tmp_path / "mod.rss").read_bytes()).entries) == 3
