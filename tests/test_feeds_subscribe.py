"""Feeds a reader subscribes to without duplicates: the OPMLs by kind, empty feeds for enabled
agencies, JSON Feed 1.1 beside every Atom/RSS file, and the item's picture as an enclosure."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedcheck
import feedparser
import pytest
from jsonfeed_check import check_json_feed
from lxml import etree
from test_feeds import ATOM, BASE, EXPECTED, FakeArchive, dataset, row

from crawler.agencies import Agency, AgencyRegistry
from crawler.config import Agencies
from crawler.feed_catalog import feed_targets, region_of, sections, with_archived
from crawler.feeds import (
    EntryData,
    FeedMeta,
    entry_from_item,
    image_type,
    image_url,
    render_atom,
    render_json,
    render_rss,
    write_feeds,
)
from crawler.items import item_url

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)


def agency(slug: str, kind: str, parent: str | None = None, *, enabled: bool = True,
           en: str | None = None) -> Agency:
    names = {"en": en or f"{slug} (en)", "ru": f"{slug} (ru)", "kk": f"{slug} (kk)"}
    return Agency(slug, names, kind, parent, enabled)


REGISTRY = AgencyRegistry([
    agency("gov", "government", en="Government"),
    agency("min-b", "ministry", "gov", en="Ministry B"),
    agency("min-a", "ministry", "gov", en="Ministry A"),
    agency("com", "committee", "min-a", en="Committee"),
    agency("region-x", "akimat", en="Akimat of X Region"),
    agency("region-x-town", "akimat", "region-x", en="Akimat of a town of X"),
    agency("region-x-village", "akimat", "region-x-town", en="Akimat of a village of X"),
    agency("region-y", "akimat", en="Akimat of Y Region"),
    agency("emb", "embassy", "min-b", en="Embassy"),
    agency("cons", "consulate", "min-b", en="Consulate"),
    agency("agency-z", "agency", en="Agency Z"),
    agency("quiet", "ministry", "gov", enabled=False, en="Quiet ministry"),
])  # fmt: skip


def outline_tree(path: Path) -> list[Any]:
    """[(group title, [children])] / feed xmlUrl, as nested lists."""

    def walk(node: etree._Element) -> list[Any]:
        out: list[Any] = []
        for child in node.findall("outline"):
            out.append(child.get("xmlUrl") or (child.get("text"), walk(child)))
        return out

    return walk(etree.parse(str(path), PARSER).getroot().find("body"))


def feed(rel: str) -> str:
    return f"{BASE}feeds/{rel}.atom"


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every registry agency enabled in ru (from the config, no items), some with items."""
    out = tmp_path_factory.mktemp("grouped")
    rows = [row("min-a", 1, "en", "2026-01-01T10:00:00+05:00"),
            row("region-x-village", 2, "kk", "2026-01-02T10:00:00+05:00"),
            row("discovered", 3, "ru", "2026-01-03T10:00:00+05:00")]  # fmt: skip
    enabled = feed_targets(REGISTRY, Agencies(), ["ru"])
    write_feeds(FakeArchive(rows), out, registry=REGISTRY, enabled=enabled)
    return out


def test_index_opml_groups_one_atom_feed_per_agency_and_language_by_kind(grouped: Path) -> None:
    assert feedcheck.check_opml((grouped / "index.opml").read_bytes()) == []
    assert outline_tree(grouped / "index.opml") == [
        ("Government", [feed("gov/ru")]),
        ("Ministries", [feed("min-a/ru"), feed("min-a/en"), feed("min-b/ru")]),  # kk, ru, en
        ("Committees and departments", [feed("com/ru")]),
        ("Akimats", [
            ("Akimat of X Region", [feed("region-x/ru"), feed("region-x-town/ru"),
                                    feed("region-x-village/kk"), feed("region-x-village/ru")]),
            ("Akimat of Y Region", [feed("region-y/ru")]),
        ]),
        ("Embassies, consulates and missions", [feed("cons/ru"), feed("emb/ru")]),
        ("Agencies and other bodies", [feed("agency-z/ru"), feed("discovered/ru")]),
    ]  # fmt: skip


@pytest.mark.parametrize("lang", ["ru", "kk", "en"])
def test_a_language_opml_lists_that_language_only(grouped: Path, lang: str) -> None:
    path = grouped / f"index.{lang}.opml"
    assert feedcheck.check_opml(path.read_bytes()) == []
    root = etree.parse(str(path), PARSER).getroot()
    feeds = [o for o in root.iter("outline") if o.get("xmlUrl")]
    expected = {"ru": 12, "kk": 1, "en": 1}[lang]
    assert len(feeds) == expected
    assert all(o.get("xmlUrl").endswith(f"/{lang}.atom") and o.get("language") == lang
               for o in feeds)  # fmt: skip
    # Titled in the language itself, without the "(ru, Atom)" a mixed list needs.
    for outline in feeds:
        slug = outline.get("xmlUrl").split("/feeds/")[1].split("/")[0]
        assert outline.get("text") == outline.get("title") == REGISTRY.name(slug, lang)
    groups = [o.get("text") for o in root.find("body").findall("outline")]
    if lang == "ru":
        assert groups[:2] == ["Правительство", "Министерства"]


def test_enabled_agencies_without_items_have_valid_empty_feeds(grouped: Path) -> None:
    for rel in ("gov/ru", "region-y/ru", "emb/ru", "gov"):
        for ext in ("atom", "rss", "json"):
            name = f"{rel}.{ext}"
            assert feedcheck.check_file(grouped / name, served_at=f"{BASE}feeds/{name}") == []
        assert feedparser.parse((grouped / f"{rel}.atom").read_bytes()).entries == []
        assert json.loads((grouped / f"{rel}.json").read_bytes())["items"] == []
    # A registry agency the config leaves out has none; its language only where it has items.
    assert not (grouped / "quiet").exists()
    assert not (grouped / "gov" / "en.atom").exists()


def test_a_missing_feed_is_written_even_when_its_agency_is_not_behind(
    tmp_path: Path,
) -> None:
    source = FakeArchive(dataset())
    write_feeds(source, tmp_path, registry=REGISTRY, enabled=[("gov", "ru")])
    (tmp_path / "gov" / "ru.json").unlink()
    (tmp_path / "mod" / "en.rss").unlink()
    report = write_feeds(source, tmp_path, registry=REGISTRY, agencies=[],
                         enabled=[("gov", "ru"), ("new", "kk")])
    written = sorted(p.relative_to(tmp_path).as_posix() for p in report.written)
    assert "gov/ru.json" in written and "mod/en.rss" in written
    assert {"new/kk.atom", "new/kk.rss", "new/kk.json"} <= set(written)
    assert "mfa-rabat/en.atom" not in written  # neither behind nor missing: left alone


# --- which agencies get feeds -------------------------------------------------------------


ROWS = [
    {"slug": "found-later", "enabled": True, "name_ru": "Новое", "kind": "akimat",
     "parent": "region-y"},
    {"slug": "off-in-archive", "enabled": False},
    {"slug": "gov", "enabled": True},  # the registry's: no second entry
    {"slug": "not a slug", "enabled": True},
]  # fmt: skip


@pytest.mark.parametrize(
    ("agencies", "expected"),
    [
        (Agencies(), {a.slug for a in REGISTRY if a.enabled} | {"found-later"}),
        (Agencies(enabled=("all",)), {a.slug for a in REGISTRY} | {"found-later"}),
        (Agencies(disabled=("emb", "found-later")),
         {a.slug for a in REGISTRY if a.enabled} - {"emb"}),
        (Agencies(enabled=("gov", "cons")), {"gov", "cons"}),  # its own list, nothing else
    ],
)  # fmt: skip
def test_feed_targets_follow_the_crawl_config_and_the_archive(
    agencies: Agencies, expected: set[str]
) -> None:
    pairs = feed_targets(REGISTRY, agencies, ["en", "ru"], ROWS)
    assert {slug for slug, _ in pairs} == expected
    assert len(pairs) == 2 * len(expected) and {lang for _, lang in pairs} == {"en", "ru"}


def test_agencies_the_archive_discovered_are_titled_and_grouped() -> None:
    merged = with_archived(REGISTRY, ROWS)
    assert merged.name("found-later", "ru") == "Новое"
    assert region_of(merged, "found-later") == "region-y"
    assert "found-later" not in REGISTRY  # the registry given stays as it was
    [akimats] = sections(merged, ["found-later"])
    assert [s.key for s in akimats.sections] == ["akimats/region-y"]


@pytest.mark.parametrize(
    ("slug", "region"),
    [("region-x", "region-x"), ("region-x-village", "region-x"), ("loop-a", "loop-b"),
     ("unknown", "unknown"), ("under-ministry", "under-ministry")],
)
def test_region_of_walks_up_akimats_only(slug: str, region: str) -> None:
    registry = AgencyRegistry([
        *REGISTRY, agency("loop-a", "akimat", "loop-b"), agency("loop-b", "akimat", "loop-a"),
        agency("under-ministry", "akimat", "min-a"),
    ])  # fmt: skip
    assert region_of(registry, slug) == region


# --- pictures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "url", "media_type"),
    [
        ("/uploads/2026/2/27/hero.jpg", "https://www.gov.kz/uploads/2026/2/27/hero.jpg",
         "image/jpeg"),
        ("https://cdn.example.org/a/b.PNG?v=2", "https://cdn.example.org/a/b.PNG?v=2",
         "image/png"),
        ("/uploads/фото 1.webp", "https://www.gov.kz/uploads/%D1%84%D0%BE%D1%82%D0%BE%201.webp",
         "image/webp"),
        ("/uploads/picture", "https://www.gov.kz/uploads/picture", "application/octet-stream"),
    ],
)
def test_the_picture_is_an_enclosure_in_every_format(
    reference: str, url: str, media_type: str
) -> None:
    assert (image_url(reference), image_type(url)) == (url, media_type)
    item = row("mfa-rabat", 7, "en", "2026-02-26T08:00:00+05:00", image=reference)
    entry = entry_from_item(item)
    assert entry is not None and entry.image == url
    meta = FeedMeta("t", f"{BASE}feeds/x.atom", "https://www.gov.kz/", "d", "en")
    atom, rss = render_atom(meta, [entry]), render_rss(meta, [entry])
    assert feedcheck.check_atom(atom, meta.self_url) == []
    rss_meta = FeedMeta("t", f"{BASE}feeds/x.rss", "https://www.gov.kz/", "d", "en")
    assert feedcheck.check_rss(render_rss(rss_meta, [entry]), rss_meta.self_url) == []
    for data in (atom, rss):
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0
        [enclosure] = parsed.entries[0].enclosures
        assert (enclosure.href, enclosure.type) == (url, media_type)
        assert parsed.entries[0].link == item["url"]  # still the one alternate link
    json_meta = FeedMeta("t", f"{BASE}feeds/x.json", "https://www.gov.kz/", "d", "en")
    doc = render_json(json_meta, [entry])
    assert check_json_feed(doc, json_meta.self_url) == []
    assert json.loads(doc)["items"][0]["image"] == url


@pytest.mark.parametrize("reference", [None, "", "  ", "javascript:alert(1)", "http://[bad"])
def test_no_picture_no_enclosure(reference: str | None) -> None:
    assert image_url(reference) is None
    entry = entry_from_item(row("mod", 1, "en", "2026-01-01T10:00:00+05:00", image=reference))
    assert entry is not None and entry.image is None
    meta = FeedMeta("t", f"{BASE}feeds/x.json", "https://www.gov.kz/", "d")
    assert "image" not in json.loads(render_json(meta, [entry]))["items"][0]
    assert b"enclosure" not in render_rss(meta, [entry]) + render_atom(meta, [entry])


# --- JSON Feed ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("feeds")
    rows = dataset()
    [rabat] = [r for r in rows if r["id"] == 201]
    rabat["image"] = "/uploads/hero.jpg"  # as mfa-rabat 202 has
    write_feeds(FakeArchive(rows), out, registry=AgencyRegistry.load())
    return out


JSON_FEEDS = sorted(name for name in EXPECTED if name.endswith(".json"))


@pytest.mark.parametrize("name", JSON_FEEDS)
def test_every_json_feed_is_json_feed_1_1(published: Path, name: str) -> None:
    assert check_json_feed((published / name).read_bytes(), f"{BASE}feeds/{name}") == []
    assert len(json.loads((published / name).read_bytes())["items"]) == EXPECTED[name]


def _atom_entries(path: Path) -> list[dict[str, Any]]:
    root = etree.parse(str(path), PARSER).getroot()
    out = []
    for entry in root.findall(f"{ATOM}entry"):
        links = {(ln.get("rel", "alternate"), ln.get("hreflang")): ln.get("href")
                 for ln in entry.findall(f"{ATOM}link")}  # fmt: skip
        out.append({
            "id": entry.findtext(f"{ATOM}id"), "title": entry.findtext(f"{ATOM}title"),
            "published": entry.findtext(f"{ATOM}published"),
            "updated": entry.findtext(f"{ATOM}updated"),
            "content": entry.findtext(f"{ATOM}content"),
            "tags": [c.get("term") for c in entry.findall(f"{ATOM}category")],
            "translations": sorted((lang, url) for (rel, lang), url in links.items()
                                   if rel == "related"),
            "image": links.get(("enclosure", None)),
        })  # fmt: skip
    return out


def _json_entries(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    doc = json.loads(path.read_bytes())
    items = [{
        "id": item["id"], "title": item["title"], "published": item["date_published"],
        "updated": item["date_modified"], "content": item.get("content_html"),
        "tags": item.get("tags", []),
        "translations": sorted((t["language"], t["url"])
                               for t in item.get("_govkz", {}).get("translations", [])),
        "image": item.get("image"),
    } for item in doc["items"]]  # fmt: skip
    return doc, items


@pytest.mark.parametrize("rel", sorted({name.rsplit(".", 1)[0] for name in EXPECTED}))
def test_json_feed_has_the_atom_feeds_items_ids_dates_and_translations(
    published: Path, rel: str
) -> None:
    doc, items = _json_entries(published / f"{rel}.json")
    assert items == _atom_entries(published / f"{rel}.atom")
    rss = [i.find("guid").text for i in etree.parse(str(published / f"{rel}.rss"), PARSER)
           .getroot().iter("item")]  # fmt: skip
    assert [item["id"] for item in items] == rss
    atom = etree.parse(str(published / f"{rel}.atom"), PARSER).getroot()
    assert doc["title"] == atom.findtext(f"{ATOM}title")
    assert doc.get("language") == atom.get("{http://www.w3.org/XML/1998/namespace}lang")
    languages = {item.get("language") for item in doc["items"]}
    lang = rel.split("/")[1] if "/" in rel else None
    assert languages <= ({lang} if lang else {"en", "ru", "kk"})


def test_json_feed_translations_and_image(published: Path) -> None:
    doc = json.loads((published / "mod/en.json").read_bytes())
    oldest = doc["items"][-1]
    assert oldest["id"] == item_url("mod", 100, "en")
    assert oldest["_govkz"] == {"translations": [
        {"language": "kk", "url": item_url("mod", 100, "kk")},
        {"language": "ru", "url": item_url("mod", 100, "ru")},
    ]}  # fmt: skip
    assert oldest["language"] == "en" and oldest["tags"] == ["News"]
    rabat = json.loads((published / "mfa-rabat/en.json").read_bytes())["items"]
    assert [item.get("image") for item in rabat] == ["https://www.gov.kz/uploads/hero.jpg"] * 2


def test_an_item_without_html_has_content_text() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    entry = EntryData("https://a.example/1", "Title", "https://a.example/1", when, when)
    meta = FeedMeta("t", f"{BASE}feeds/x.json", "https://www.gov.kz/", "d")
    doc = render_json(meta, [entry])
    assert check_json_feed(doc, meta.self_url) == []
    assert json.loads(doc)["items"][0]["content_text"] == "Title"


FEED_URL = "https://x.example/f.json"
VALID: dict[str, Any] = {
    "version": "https://jsonfeed.org/version/1.1", "title": "T",
    "feed_url": FEED_URL,
    "items": [{"id": "1", "url": "https://x.example/1", "content_html": "<p>x</p>",
               "date_published": "2026-01-01T00:00:00+05:00"}],
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("version"), "missing 'version'"),
        (lambda d: d.update(version="https://jsonfeed.org/version/1"), "not 'https://"),
        (lambda d: d.pop("title"), "missing 'title'"),
        (lambda d: d.update(items={}), "not an array"),
        (lambda d: d["items"][0].pop("id"), "missing 'id'"),
        (lambda d: d["items"][0].update(id=1), "not a string"),
        (lambda d: d["items"].append(dict(d["items"][0])), "duplicate id"),
        (lambda d: d["items"][0].pop("content_html"), "neither content_html nor content_text"),
        (lambda d: d["items"][0].update(date_published="2026-01-01 00:00"), "RFC 3339"),
        (lambda d: d["items"][0].update(url="/relative"), "not an absolute IRI"),
        (lambda d: d["items"][0].update(title="<b>x</b>"), "markup"),
        (lambda d: d["items"][0].update(content_html="<script>x()</script>"), "dangerous"),
        (lambda d: d["items"][0].update(tags="a"), "not an array"),
        (lambda d: d["items"][0].update(language="english language"), "RFC 5646"),
        (lambda d: d["items"][0].update(attachments=[{"url": "https://x.example/a"}]),
         "missing 'mime_type'"),
        (lambda d: d["items"][0].update(attachments=[{"url": "https://x.example/a",
                                                      "mime_type": "image"}]), "media type"),
        (lambda d: d["items"][0].update(authors=[{}]), "needs a name"),
        (lambda d: d.update(expired="no"), "not true or false"),
        (lambda d: d.update(hubs=[{"url": "https://x.example/h"}]), "missing 'type'"),
        (lambda d: d.update(updated="2026"), "unknown key 'updated'"),
        (lambda d: d.update(_ext=[1]), "extension must be an object"),
        (lambda d: d.update(feed_url="https://x.example/other.json"), "does not match"),
    ],
)
def test_the_json_feed_checker_catches_each_rule(change: Any, problem: str) -> None:
    assert check_json_feed(json.dumps(VALID).encode(), FEED_URL) == []
    doc = json.loads(json.dumps(VALID))
    change(doc)
    problems = check_json_feed(json.dumps(doc).encode(), FEED_URL)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("data", [b"{", b"\xff\xfe", b"[]", b'"feed"'])
def test_the_json_feed_checker_refuses_what_is_not_a_feed(data: bytes) -> None:
    assert check_json_feed(data) != []


# --- the directory's index.html -----------------------------------------------------------


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v or "" for k, v in attrs if k == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_index_html_links_every_feed_of_every_agency_and_escapes_names(tmp_path: Path) -> None:
    registry = AgencyRegistry([*REGISTRY, agency("evil", "ministry",
                                                 en="<script>alert(1)</script> & Co")])
    enabled = feed_targets(registry, Agencies(), ["ru", "en"])
    write_feeds(FakeArchive([]), tmp_path, registry=registry, enabled=enabled)
    assert feedcheck.check_file(tmp_path / "index.html") == []
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    links = Links()
    links.feed(page)
    hrefs = set(links.hrefs)
    for slug, lang in enabled:
        assert {f"{slug}/{lang}.atom", f"{slug}/{lang}.rss", f"{slug}/{lang}.json"} <= hrefs
    assert {"index.opml", "index.ru.opml", "all/ru.json"} <= hrefs
    assert all((tmp_path / href).is_file() for href in hrefs), hrefs - {
        h for h in hrefs if (tmp_path / h).is_file()}
    # Grouped like the OPML, in the same order.
    text = "".join(links.text)
    assert text.index("Government") < text.index("Ministries") < text.index("Akimats")


# --- one guid per item and language -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "lang", "expected"),
    [
        (item_url("mod", 5, "en"), "en", item_url("mod", 5, "en")),
        # An English list page linked its items to the Kazakh pages: the Kazakh item has that
        # page as its guid, so the English one takes its own.
        (item_url("mod", 5, "kk"), "en", item_url("mod", 5, "en")),
        ("https://gov.kz/memleket/entities/mod/press/news/details/5", "en",
         "https://gov.kz/memleket/entities/mod/press/news/details/5"),
        ("https://www.gov.kz/memleket/entities/mod/press/news?lang=kk#item-12", "en",
         "https://www.gov.kz/memleket/entities/mod/press/news?lang=kk#item-12"),
    ],
)
def test_every_item_and_language_has_a_guid_of_its_own(url: str, lang: str, expected: str) -> None:
    item = row("mod", 5, lang, "2026-01-01T10:00:00+05:00", url=url)
    entry = entry_from_item(item)
    assert entry is not None and (entry.id, entry.link) == (expected, url)


def test_a_wrong_language_link_never_duplicates_a_guid(tmp_path: Path) -> None:
    rows = [row("mod", 5, "en", "2026-01-01T10:00:00+05:00", url=item_url("mod", 5, "kk")),
            row("mod", 5, "kk", "2026-01-01T10:00:00+05:00")]  # fmt: skip
    write_feeds(FakeArchive(rows), tmp_path, registry=REGISTRY)
    for name in ("all.atom", "all.rss", "all.json", "mod.atom", "mod.json"):
        assert feedcheck.check_file(tmp_path / name, served_at=f"{BASE}feeds/{name}") == []
    ids = [e.id for e in feedparser.parse((tmp_path / "all.atom").read_bytes()).entries]
    assert sorted(ids) == [item_url("mod", 5, "en"), item_url("mod", 5, "kk")]


# --- publishing: what is behind, and what is missing --------------------------------------


def _settings(data: Path, **extra: str) -> Any:
    from crawler.runner import project_settings

    return project_settings({"GOVKZ_DATA": str(data), "GOVKZ_AGENCIES_ENABLED": "mod,mfa",
                             **extra})  # fmt: skip


def test_publish_writes_the_feeds_enabled_agencies_lack_then_stays_quiet(tmp_path: Path) -> None:
    from crawler.pipelines import publish
    from crawler.store import Archive

    settings = _settings(tmp_path, GOVKZ_LANGS="ru,en")
    first = publish(settings)  # an empty archive: every enabled agency × language, empty
    feeds = tmp_path / "feeds"
    for slug in ("mod", "mfa"):
        for lang in ("ru", "en"):
            name = f"{slug}/{lang}.json"
            assert feedcheck.check_file(feeds / name, served_at=f"{BASE}feeds/{name}") == []
    assert not (feeds / "mod" / "kk.atom").exists() and first.written
    assert publish(settings).feeds == 0  # nothing behind, nothing missing: nothing rendered
    (feeds / "mfa" / "ru.rss").unlink()
    assert feeds / "mfa" / "ru.rss" in publish(settings).written
    # An agency the archive learnt of later (not in the registry) gets its feeds too ...
    archive = Archive.open(tmp_path / "news.db")
    try:
        archive.upsert_agency("zz-found", names={"ru": "Найдено"}, kind="akimat")
    finally:
        archive.close()
    written = {p.relative_to(feeds).as_posix() for p in publish(
        _settings(tmp_path, GOVKZ_LANGS="ru,en", GOVKZ_AGENCIES_ENABLED="all")).written}
    assert {"zz-found/ru.atom", "zz-found/en.json", "index.ru.opml"} <= written
    opml = (feeds / "index.ru.opml").read_text(encoding="utf-8")
    assert 'text="Найдено"' in opml and "Акиматы" in opml


def test_publish_gives_the_daemons_own_targets_feeds(tmp_path: Path) -> None:
    from crawler.pipelines import publish

    report = publish(_settings(tmp_path), targets=[("demo-agency", "kk")])
    names = {p.relative_to(tmp_path / "feeds").as_posix() for p in report.written}
    assert {"demo-agency/kk.atom", "demo-agency/kk.rss", "demo-agency/kk.json"} <= names
    assert not any(name.startswith("mod/") for name in names)  # targets replace the config's
