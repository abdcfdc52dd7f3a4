"""The reader's pages as pure functions: what each shows, and that outside text stays text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pages_helpers import parse

from crawler.agencies import Agency
from scheduler import pages
from scheduler.pages import AgencyEntry, feed_links, render_diff
from scheduler.site_pages import combine_agencies
from scheduler.worddiff import word_diff

EVIL = "<script>alert('x')</script>&amp;\"'<img src=x onerror=alert(1)>"

MOD = AgencyEntry("mod", {"en": "Ministry of Defence", "ru": "Министерство обороны",
                          "kk": "Қорғаныс министрлігі"}, "ministry", True, 3)
ITEM = {
    "agency": "mod", "id": 1200, "lang": "en", "title": "Briefing", "version": 2,
    "published": "2026-03-02T10:30:00+05:00", "url": "https://www.gov.kz/x?lang=en",
    "body_html": "<p>Body <b>bold</b></p>", "body_text": "Body bold", "incomplete": False,
    "summary": "", "updated": "2026-03-02T06:00:00+00:00",
}
VERSIONS = [
    {"version": 1, "title": "Briefing", "body_text": "The minister met the press.",
     "seen_at": "2026-03-02T05:31:00+00:00"},
    {"version": 2, "title": "Briefing today", "body_text": "The minister met the free press.",
     "seen_at": "2026-03-02T06:00:00+00:00"},
]


def test_home_groups_agencies_by_kind_in_order() -> None:
    agencies = [
        AgencyEntry("astana", {"en": "Akimat of Astana"}, "akimat", True, 5),
        MOD,
        AgencyEntry("primeminister", {"en": "Government"}, "government", True, 0),
        AgencyEntry("odd", {}, "no-such-kind", False, 1),
    ]
    dom = parse(pages.render_home(agencies))
    assert dom.all_text("h2").split(")")[:-1] == [
        "Government (1", "Ministries (1", "Akimats (1", "Other (1"]
    assert {"/agency/mod", "/agency/astana", "/agency/odd", "/status", "/opml",
            "/feeds/all.atom"} <= set(dom.anchors)
    assert "3 items" in dom.all_text("li") and "1 item" in dom.all_text("li")
    assert "form" in dom.tags and "script" not in dom.tags


def test_agency_page_links_every_feed_and_autodiscovers_them() -> None:
    dom = parse(pages.render_agency(MOD, [ITEM], {"en": 2, "ru": 1}, ("en", "ru")))
    alternates = {(link["type"], link["href"]) for link in dom.links if link["rel"] == "alternate"}
    for rel in ("mod", "mod/ru", "mod/en"):
        assert ("application/atom+xml", f"/feeds/{rel}.atom") in alternates
        assert ("application/rss+xml", f"/feeds/{rel}.rss") in alternates
        assert ("application/feed+json", f"/feeds/{rel}.json") in alternates
    assert len(alternates) == 9
    assert "https://www.gov.kz/memleket/entities/mod/press/news?lang=kk" in dom.anchors
    assert "/item/mod/1200?lang=en" in dom.anchors
    assert "Қорғаныс министрлігі" in dom.all_text("li")
    assert "2026-03-02 10:30" in dom.all_text("time")


def test_item_page_shows_languages_body_and_word_diff() -> None:
    ru = {**ITEM, "lang": "ru", "title": "Брифинг"}
    dom = parse(pages.render_item(MOD, {"en": ITEM, "ru": ru}, "en", VERSIONS))
    assert dom.all_text("h1") == "Briefing"
    assert "/item/mod/1200?lang=ru" in dom.anchors
    assert "/item/mod/1200?lang=en" not in dom.anchors  # the current tab is not a link
    assert dom.all_text("b") == "bold"
    assert dom.all_text("ins") == " todayfree "
    assert "del" not in dom.tags
    # Almaty time: 05:31 UTC is 10:31 at UTC+5.
    assert "2026-03-02 10:31" in dom.all_text("time")
    assert "Version 2" in dom.all_text("summary")


def test_item_body_is_sanitized_again() -> None:
    # A row edited by hand in the archive: the page still drops what the allowlist refuses.
    item = {**ITEM, "body_html": '<p onclick="x()">ok</p><script>alert(1)</script>'
                                 '<a href="javascript:alert(1)">j</a><style>*{}</style>'}
    body = pages.render_item(MOD, {"en": item}, "en", VERSIONS[:1])
    dom = parse(body)
    assert "script" not in dom.tags and dom.tags.count("style") == 1  # the page's own
    assert b"onclick" not in body and b"javascript:" not in body
    assert "No edits since it was first seen" in dom.all_text("p")


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=60))
def test_any_title_is_shown_as_text(title: str) -> None:
    item = {**ITEM, "title": title}
    dom = parse(pages.render_item(MOD, {"en": item}, "en", []))
    assert dom.all_text("h1") == title
    assert dom.tags.count("script") == 0


@pytest.mark.parametrize("where", ["title", "name", "query", "snippet", "diff", "error"])
def test_hostile_text_is_escaped_everywhere(where: str) -> None:
    evil_agency = AgencyEntry("evil", {"en": EVIL}, "ministry", True, 1)
    hit = {**ITEM, "agency": "evil", "title": EVIL, "snippet": EVIL}
    body = {
        "title": lambda: pages.render_item(MOD, {"en": {**ITEM, "title": EVIL}}, "en", []),
        "name": lambda: pages.render_home([evil_agency]),
        "query": lambda: pages.render_search(EVIL, [], agencies=[evil_agency]),
        "snippet": lambda: pages.render_search("x", [hit], agencies=[evil_agency]),
        "diff": lambda: pages.render_diff(word_diff("a", EVIL)).encode(),
        "error": lambda: pages.render_error(404, EVIL, EVIL),
    }[where]()
    assert EVIL.encode() not in body
    assert b"<script>" not in body and b"<img" not in body
    assert b"&lt;script&gt;" in body


def test_search_page_shows_language_agency_and_subscribe_link() -> None:
    hits = [{**ITEM, "snippet": "the minister [met] the press"},
            {**ITEM, "lang": "kk", "id": -5, "title": "Брифинг", "body_text": "мәтін " * 100}]
    dom = parse(pages.render_search("брифинг OR briefing", hits, agency="mod", lang="",
                                    agencies=[MOD]))
    feed = "/search.atom?q=%D0%B1%D1%80%D0%B8%D1%84%D0%B8%D0%BD%D0%B3+OR+briefing&agency=mod"
    assert feed in dom.anchors
    assert {"rel": "alternate", "type": "application/atom+xml",
            "title": "Search: брифинг OR briefing", "href": feed} in dom.links
    assert ["/item/mod/1200?lang=en", "/item/mod/-5?lang=kk"] == [
        a for a in dom.anchors if a.startswith("/item/")]
    assert "2 results" in dom.all_text("p")
    assert dom.all_text("span").count("en") >= 1 and "kk" in dom.all_text("span")
    assert "the minister [met] the press" in dom.all_text("li")
    assert "мәтін мәтін" in dom.all_text("li") and "…" in dom.all_text("li")  # truncated body


def test_search_page_without_a_query_has_no_feed_link() -> None:
    dom = parse(pages.render_search("", [], agencies=[MOD]))
    assert not [link for link in dom.links if link["rel"] == "alternate"]
    assert "select" in dom.tags


@pytest.mark.parametrize(
    ("old", "new", "shown"),
    [
        ("a b", "a c", "a <del>b</del><ins>c</ins>"),
        ("x " + "w" * 400 + " y", "x " + "w" * 400 + " z",
         " … " + "w" * 79 + " <del>y</del><ins>z</ins>"),
    ],
    ids=["short", "long-context-shortened"],
)
def test_diff_rendering(old: str, new: str, shown: str) -> None:
    assert render_diff(word_diff(old, new)).startswith(shown)


def test_feed_links_order_and_types() -> None:
    links = feed_links(MOD, ["ru", "en", "kk"])
    assert [link.path for link in links[:4]] == ["mod.atom", "mod.rss", "mod.json", "mod/kk.atom"]
    assert links[-1].url == "/feeds/mod/en.json" and links[-1].mime == "application/feed+json"


def test_combine_agencies_merges_registry_archive_and_counts() -> None:
    registry = [Agency("mod", {"en": "Defence"}, "ministry", enabled=True),
                Agency("quiet", {"en": "Quiet"}, "committee", enabled=False)]
    rows = [{"slug": "mod", "name_ru": "Оборона", "name_kk": None, "name_en": "Old name",
             "kind": "other"},
            {"slug": "dir-only", "name_en": "From the directory", "kind": "akimat"},
            {"slug": "archived", "name_en": "Archived", "name_ru": None, "kind": "embassy"}]
    entries = {e.slug: e for e in combine_agencies(registry, rows, {"mod": 4, "archived": 2,
                                                                    "orphan": 1})}
    assert sorted(entries) == ["archived", "mod", "orphan"]  # not the quiet nor directory-only
    assert entries["mod"].names == {"en": "Defence", "ru": "Оборона"}
    assert (entries["mod"].kind, entries["mod"].items) == ("ministry", 4)
    assert (entries["archived"].kind, entries["archived"].name()) == ("embassy", "Archived")
    assert (entries["orphan"].kind, entries["orphan"].name()) == ("other", "orphan")
