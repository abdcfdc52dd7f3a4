"""What a publish costs: each item cleaned once, no query per entry, only the changed agencies'
feeds rendered, the indexes only when what they list changed, and the shortcuts give exactly
what the long way gives."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_feeds import FakeArchive, dataset, row

import crawler.feeds as feeds
from crawler.agencies import Agency, AgencyRegistry
from crawler.feeds import (
    EntryData,
    FeedMeta,
    entry_from_item,
    render_atom,
    render_json,
    render_rss,
    write_feeds,
)
from crawler.items import NewsItem, item_url
from crawler.sanitize import plain_text
from crawler.store import Archive

META = FeedMeta("t", "http://127.0.0.1:8080/feeds/x.atom", "https://www.gov.kz/", "d", "en")


class Counting(FakeArchive):
    """A FakeArchive that counts what write_feeds asks of it."""

    def __init__(self, rows: Any) -> None:
        super().__init__(rows)
        self.calls: Counter[Any] = Counter()

    def feed_items(self, agency: str | None = None, lang: str | None = None,
                   limit: int = 50) -> list[dict]:  # fmt: skip
        self.calls["feed_items", agency, lang] += 1
        return super().feed_items(agency, lang, limit)

    def translations(self, agency: str, item_id: int) -> dict[str, str]:
        self.calls["translations"] += 1
        return super().translations(agency, item_id)

    def translations_of(self, keys: Any) -> dict[tuple[str, int], dict[str, str]]:
        self.calls["translations_of"] += 1
        answer = FakeArchive.translations
        return {key: found for key in keys if (found := answer(self, *key))}


@pytest.fixture(scope="module")
def registry() -> AgencyRegistry:
    return AgencyRegistry.load()


# --- the plain-text shortcut ------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "", "   ", "Брифинг  министра\n\nобороны", "a\u00a0b", "tab\there", "e\u0301", "x\r\ny",
    "ctrl\x07char", "bidi\u202eover", "lone \ud800 surrogate", "\ufeffbom", "marks \ue000 \ue001",
    "a < b", "AT&amp;T", "&lt;b&gt;", "<p>markup</p>", "fish & chips", "x > y", "\ufffe\uffff",
])  # fmt: skip
def test_plain_equals_plain_text(text: str) -> None:
    assert feeds._plain(text) == plain_text(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(" \n\t\r\u00a0<&;")))
def test_plain_equals_plain_text_on_any_text(text: str) -> None:
    assert feeds._plain(text) == plain_text(text)


# --- cleaned once -----------------------------------------------------------------------------


HOSTILE = row("mod", 7, "en", "2025-05-20T09:00:00+05:00",
              title="A &amp;lt;b&amp;gt; title  with\nspaces", summary="<p>Sum &amp; more</p>",
              categories=["News", "<b>News</b>", " ", "Other"],
              body_html="<script>x()</script><p onclick='y'>hi <a href='/z'>l</a></p>")  # fmt: skip


@pytest.mark.parametrize("render", [render_atom, render_rss, render_json])
def test_a_clean_entry_renders_as_cleaning_it_again_would(render: Any) -> None:
    entry = entry_from_item(HOSTILE, author="<i>Ministry</i>",
                            translations={"ru": item_url("mod", 7, "ru")})
    assert entry is not None and entry.clean
    assert "<script" not in entry.content_html and "onclick" not in entry.content_html
    assert render(META, [entry]) == render(META, [replace(entry, clean=False)])


@pytest.mark.parametrize("render", [render_atom, render_rss, render_json])
def test_an_entry_from_elsewhere_is_still_cleaned(render: Any) -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    raw = EntryData(id="https://example.org/1", title="<b>Bold</b> title",
                    link="https://example.org/1", published=day, updated=day,
                    content_html="<script>alert(1)</script><p>ok</p>", summary="a &amp; b",
                    categories=("<i>x</i>",), author="<u>me</u>")  # fmt: skip
    out = render(META, [raw]).decode()
    assert "alert" not in out and "<b>" not in out and "&lt;b&gt;" not in out
    assert "Bold title" in out
    assert ("a &amp; b" if render is not render_json else "a & b") in out  # decoded once


def test_entry_from_item_cleans_each_field_once(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: Counter[str] = Counter()
    real = feeds.sanitize_html

    def sanitize(markup: str, **kwargs: Any) -> str:
        counted["sanitize"] += 1
        return real(markup, **kwargs)

    monkeypatch.setattr(feeds, "sanitize_html", sanitize)
    entry = entry_from_item(HOSTILE)
    assert entry is not None
    for render in (render_atom, render_rss, render_json):
        render(META, [entry])
    assert counted["sanitize"] == 1


# --- queries and the feeds rendered -----------------------------------------------------------


def test_no_query_per_entry(tmp_path: Path, registry: AgencyRegistry) -> None:
    source = Counting(dataset())
    write_feeds(source, tmp_path, registry=registry)
    assert source.calls["translations"] == 0
    agencies = {r["agency"] for r in source.rows if not r["incomplete"]}
    pairs = source.feed_groups()
    # One read per agency × language and per every-agency feed; an agency's mixed feed is
    # merged from its languages' reads, and translations come in one batch per feed at most.
    reads = {key for key in source.calls if key[0] == "feed_items"}
    every = {("feed_items", None, lang) for lang in (None, "kk", "ru", "en")}
    assert reads == {("feed_items", a, lang) for a, lang in pairs} | every
    assert all(source.calls[key] == 1 for key in reads)
    assert source.calls["translations_of"] <= len(pairs) + 4 + len(agencies)


@pytest.mark.parametrize("limit", [1, 2, 5, 50])
def test_the_mixed_feed_is_the_newest_of_all_languages(tmp_path: Path, registry: AgencyRegistry,
                                                       limit: int) -> None:  # fmt: skip
    import json

    source = FakeArchive(dataset())
    write_feeds(source, tmp_path, registry=registry, limit=limit)
    for agency in ("mod", "mfa-rabat"):
        doc = json.loads((tmp_path / f"{agency}.json").read_text(encoding="utf-8"))
        shown = {(i["url"], i["language"]) for i in doc["items"]}
        wanted = {(r["url"], r["lang"]) for r in source.feed_items(agency, None, limit)}
        assert shown == wanted


def test_an_incremental_publish_reads_only_the_changed_agency(tmp_path: Path,
                                                              registry: AgencyRegistry) -> None:
    write_feeds(FakeArchive(dataset()), tmp_path, registry=registry)
    source = Counting(dataset())
    write_feeds(source, tmp_path, registry=registry, agencies=["mfa-rabat"])
    read = {key[1] for key in source.calls if key[0] == "feed_items"}
    assert read == {"mfa-rabat", None}  # its feeds and the every-agency ones, nothing else


def test_the_indexes_are_rendered_only_when_what_they_list_changes(
    tmp_path: Path, registry: AgencyRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered: Counter[str] = Counter()
    real = feeds.render_opml

    def render_opml(*args: Any, **kwargs: Any) -> bytes:
        rendered["opml"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(feeds, "render_opml", render_opml)
    rows = dataset()
    write_feeds(FakeArchive(rows), tmp_path, registry=registry)
    assert rendered["opml"] == 4  # index.opml and one per language
    before = (tmp_path / "index.opml").read_bytes()

    write_feeds(FakeArchive(rows), tmp_path, registry=registry, agencies=["mod"])
    assert rendered["opml"] == 4  # the same feeds, the same names: not rendered again

    (tmp_path / "index.opml").unlink()  # a file gone: rendered, and back
    write_feeds(FakeArchive(rows), tmp_path, registry=registry, agencies=["mod"])
    assert rendered["opml"] == 8 and (tmp_path / "index.opml").read_bytes() == before

    renamed = AgencyRegistry(registry)
    renamed.merge([Agency("zz-unlisted", {"en": "Newly named"}, "other", None, True)])
    write_feeds(FakeArchive(rows), tmp_path, registry=renamed, agencies=["mod"])
    assert rendered["opml"] == 12 and b"Newly named" in (tmp_path / "index.opml").read_bytes()

    more = [*rows, row("mfa-rabat", 203, "ru", "2026-03-01T10:00:00+05:00")]
    write_feeds(FakeArchive(more), tmp_path, registry=renamed, agencies=["mfa-rabat"])
    assert rendered["opml"] == 16 and b"mfa-rabat/ru.atom" in (tmp_path / "index.opml").read_bytes()


# --- the archive's batch read -----------------------------------------------------------------


def test_translations_of_answers_what_translations_answers_per_item(archive: Archive) -> None:
    published = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
    for agency, item_id, lang in [("mod", 1, "ru"), ("mod", 1, "kk"), ("mod", 1, "en"),
                                  ("mod", 2, "ru"), ("mfa", 1, "en"), ("mfa", 3, "kk")]:
        archive.save_item(NewsItem(agency=agency, id=item_id, lang=lang,
                                   url=item_url(agency, item_id, lang), title=f"{agency} {item_id}",
                                   published=published, body_html="<p>b</p>"))  # fmt: skip
    keys = [("mod", 1), ("mod", 2), ("mfa", 1), ("mfa", 3), ("mfa", 99), ("mod", 1)]
    batch = archive.translations_of(keys)
    assert batch == {key: archive.translations(*key) for key in keys if archive.translations(*key)}
    assert batch[("mod", 1)] == {lang: item_url("mod", 1, lang) for lang in ("en", "kk", "ru")}
    assert archive.translations_of([]) == {}
