"""The mock gov.kz's site-wide news list: the list without projects= holds every agency's news,
newest first and paged, each item naming its agency in `projects` in the site's shape; it stays
cheap for thousands of agencies, and follows news published while it serves."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from mockgov_helpers import news

from crawler.mockgov import MockSite, serve_in_thread
from crawler.mockgov.serve import build_parser, build_site
from crawler.mockgov.site import PROJECTS_SHAPES
from crawler.timeutil import ALMATY, require_iso

LATER = datetime(2026, 7, 1, 9, 0, tzinfo=ALMATY)


def newest_first(items: list[dict]) -> bool:
    keys = [(require_iso(item["created_date"]), item["id"]) for item in items]
    return keys == sorted(keys, reverse=True)


@pytest.mark.parametrize(("shape", "projects"), [
    ("list", ["test-agency-003"]),
    ("slug", "test-agency-003"),
    ("objects", [{"id": 100_002, "slug": "test-agency-003",
                  "project_name": "Test agency No. 003"}]),
])
def test_each_item_names_its_agency_in_the_sites_shape(shape: str, projects: object) -> None:
    site = MockSite.synthetic(3, 2, projects_shape=shape)
    with serve_in_thread(site) as server:
        status, items = news(server, None, size=100, lang="en")
        _, own = news(server, "test-agency-003", size=100, lang="en")
    assert status == 200 and len(items) == 6 and newest_first(items)
    mine = [item for item in items if item["id"] in {i["id"] for i in own}]
    assert len(mine) == 2 and all(item["projects"] == projects for item in mine)
    assert all(item["projects"] == projects for item in own)  # the per-agency list too


def test_an_unknown_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown projects shape"):
        MockSite(projects_shape="numbers")


def test_thousands_of_agencies_page_the_whole_site_newest_first() -> None:
    site = MockSite.synthetic(3000, 2)
    every = site.select(None, "ru")
    assert len(every) == 6000 and len({s.agency for s in every}) == 3000
    with serve_in_thread(site) as server:
        pages = [news(server, None, page=n, size=100, lang="ru")[1] for n in (1, 2, 60, 61)]
    assert [item["id"] for item in pages[0]] == [s.id for s in every[:100]]
    assert [item["id"] for item in pages[1]] == [s.id for s in every[100:200]]
    assert [item["id"] for item in pages[2]] == [s.id for s in every[5900:]]
    assert pages[3] == []  # the end of the list
    assert newest_first(pages[0] + pages[1])


def test_news_published_while_serving_joins_the_site_wide_list_in_order() -> None:
    site = MockSite.synthetic(10, 2)
    site.select(None, "ru")  # built before the news below: they must be inserted in order
    newest = site.publish("zz-new", title="Новое ведомство", body="<p>b</p>", langs=["ru"],
                          created=LATER + timedelta(hours=1))
    middle = site.publish("test-agency-004", title="Позже", body="<p>b</p>", langs=["ru"],
                          created=LATER)
    english = site.publish("test-agency-005", title="Only English", body="<p>b</p>",
                           langs=["en"], created=LATER + timedelta(hours=2))
    with serve_in_thread(site) as server:
        _, first = news(server, None, size=3, lang="ru")
        _, after = news(server, None, size=100, lang="ru",
                        created_date="gt:2026-06-30T12:00:00.000+05:00")
        _, oldest = news(server, None, size=2, lang="ru", **{"sort-by": "created_date:ASC"})
    assert [item["id"] for item in first[:2]] == [newest, middle]
    assert first[0]["projects"] == ["zz-new"]
    assert english not in {item["id"] for item in first}
    assert [item["id"] for item in after] == [newest, middle]  # the filter of a re-walk
    assert [item["id"] for item in oldest] == [s.id for s in site.select(None, "ru")[::-1][:2]]


def test_an_item_may_name_other_agencies_or_a_hostile_value() -> None:
    site = MockSite()
    shared = site.publish("mod", title="Совместно", body="<p>b</p>", langs=["ru"],
                          projects=["mod", "mfa"])
    odd = site.publish("mod", title="Странно", body="<p>b</p>", langs=["ru"], projects=42)
    with serve_in_thread(site) as server:
        _, items = news(server, None, lang="ru")
    by_id = {item["id"]: item["projects"] for item in items}
    assert by_id == {shared: ["mod", "mfa"], odd: 42}


@pytest.mark.parametrize("shape", PROJECTS_SHAPES)
def test_the_command_line_sets_the_shape_for_thousands_of_agencies(shape: str) -> None:
    args = build_parser().parse_args(["--synthetic", "3000", "--items", "1",
                                      "--projects-shape", shape])
    site = build_site(args)
    assert site.projects_shape == shape and len(site.agencies()) == 3000
    assert len(site.items(None, "kk")) == 3000
    assert build_site(build_parser().parse_args([])).projects_shape == "list"
