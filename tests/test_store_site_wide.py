"""The archive's side of the site-wide stream: agencies discovered in the news, and the stored
content hashes of a page whose items belong to many agencies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crawler.items import NewsItem, item_url
from crawler.store import CHUNK, Archive
from crawler.timeutil import ALMATY

T0 = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)


def item(agency: str, item_id: int, lang: str = "ru", title: str = "Новость") -> NewsItem:
    return NewsItem(agency=agency, id=item_id, lang=lang, url=item_url(agency, item_id, lang),
                    title=f"{title} {item_id}",
                    published=datetime(2026, 7, 1, 10, tzinfo=ALMATY) + timedelta(minutes=item_id),
                    body_text="b", body_html="<p>b</p>", source="api:site-wide")


def test_a_discovered_agency_is_named_by_its_slug_and_marked(archive: Archive) -> None:
    assert archive.discover_agency("zz-new", now=T0) is True
    [row] = archive.agencies()
    assert row == {
        "slug": "zz-new", "name_kk": "zz-new", "name_ru": "zz-new", "name_en": "zz-new",
        "enabled": True, "parent": None, "kind": None, "first_seen": "2026-09-01T06:00:00+00:00",
        "updated": "2026-09-01T06:00:00+00:00", "source": "discovered",
    }  # fmt: skip


def test_discovering_a_known_agency_changes_nothing(archive: Archive) -> None:
    archive.upsert_agency("mod", names={"ru": "Минобороны"}, kind="ministry", now=T0)
    before = archive.agencies()
    assert archive.discover_agency("mod", now=T0 + timedelta(days=1)) is False
    assert archive.discover_agency("mod") is False
    assert archive.agencies() == before
    assert before[0]["source"] is None  # from the registry or the directory, not the news


def test_a_refresh_names_a_discovered_agency(archive: Archive) -> None:
    archive.discover_agency("zz-new", now=T0)
    archive.upsert_agency("zz-new", names={lang: f"Name {lang}" for lang in ("kk", "ru", "en")},
                          parent="mod", now=T0 + timedelta(hours=1))
    [row] = archive.agencies()
    assert (row["name_kk"], row["name_ru"], row["name_en"], row["parent"]) == (
        "Name kk", "Name ru", "Name en", "mod")
    assert row["source"] == "discovered"  # how the archive first learned of it


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_known_hashes_filed_is_per_agency_and_id(archive: Archive, lang: str) -> None:
    stored = [item("mod", 1, lang), item("mfa", 1, lang), item("mod", 2, lang),
              item("stat", 3, "kk")]
    for one in stored:
        archive.save_item(one)
    asked = [("mod", 1), ("mfa", 1), ("stat", 1), ("mod", 2), ("mfa", 2), ("stat", 3)]
    found = archive.known_hashes_filed(lang, asked)
    assert found == {(one.agency, one.id): Archive.content_hash(one) for one in stored[:3]}
    assert archive.known_hashes_filed(lang, []) == {}


def test_known_hashes_filed_takes_more_ids_than_one_query(archive: Archive) -> None:
    wanted = [(f"a{n % 7}", n) for n in range(1, 2 * CHUNK + 2)]
    for agency, item_id in wanted[::97]:
        archive.save_item(item(agency, item_id))
    found = archive.known_hashes_filed("ru", wanted)
    assert set(found) == set(wanted[::97])
