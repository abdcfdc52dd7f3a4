"""The site-wide news list's extractor: an item's `projects`, in any of the shapes gov.kz may
use, files it under its agency (or agencies); an unknown shape is a Reject of the site-wide
target with its reason, never a guess, and a page where no element is readable has no item
(the spider's layout change)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.errors import LayoutChanged
from crawler.extract import api
from crawler.extract.fields import clean_tree
from crawler.extract.projects import project_slugs
from crawler.items import Reject, is_slug
from crawler.sync import SITE_WIDE, SITE_WIDE_SOURCE

FIXTURES = Path(__file__).parent / "fixtures" / "api" / "site_wide"
MOCK = "http://127.0.0.1:8765"


def site_page(name: str) -> api.Extracted:
    return api.parse_site_news_list((FIXTURES / name).read_bytes(), lang="ru", site=MOCK,
                                    url=f"{MOCK}/news")


def filed(result: api.Extracted) -> list[tuple[str, int]]:
    return [(item.agency, item.id) for item in result.items]


# --- project_slugs: each shape ------------------------------------------------------------


@pytest.mark.parametrize(("projects", "slugs"), [
    ("mod", ["mod"]),
    ("  mod ", ["mod"]),
    (["mod"], ["mod"]),
    (["mod", "mfa"], ["mod", "mfa"]),
    (["mod", "mod"], ["mod"]),
    ([{"id": 1, "slug": "mod"}], ["mod"]),
    ([{"id": 1, "alias": "mod"}], ["mod"]),
    ([{"slug": "mod", "alias": "other"}], ["mod"]),
    ([{"slug": "mod"}, {"alias": "mfa-rabat"}], ["mod", "mfa-rabat"]),
    ({"id": 3, "slug": "stat"}, ["stat"]),
    (["mod", {"slug": "mfa"}], ["mod", "mfa"]),
])
def test_known_shapes_name_their_agencies(projects: Any, slugs: list[str]) -> None:
    assert project_slugs(projects) == slugs


@pytest.mark.parametrize(("projects", "reason"), [
    (42, "projects: a number, not a slug, a list of slugs or a list of objects with slug/alias"),
    (None, "projects: null, not a slug, a list of slugs or a list of objects with slug/alias"),
    (True, "projects: a boolean, not a slug, a list of slugs or a list of objects with slug/"
           "alias"),
    ([], "projects: an empty list"),
    ({}, "projects: an object without slug or alias (keys: none)"),
    ([{"id": 7}], "projects[0]: an object without slug or alias (keys: id)"),
    ([{"id": 7, "name": "x"}], "projects[0]: an object without slug or alias (keys: id, name)"),
    ("", "projects: not an agency slug: ''"),
    ("Министерство", "projects: not an agency slug: 'Министерство'"),
    ("mod,mfa", "projects: not an agency slug: 'mod,mfa'"),
    (["mod", 7], "projects[1]: a number, not a slug or an object with slug/alias"),
    (["mod", None], "projects[1]: null, not a slug or an object with slug/alias"),
    ([["mod"]], "projects[0]: an array, not a slug or an object with slug/alias"),
    ([{"slug": 5}], "projects[0].slug: not an agency slug: a number 5"),
    ([{"alias": "a b"}], "projects[0].alias: not an agency slug: 'a b'"),
])
def test_unknown_shapes_are_named_never_guessed(projects: Any, reason: str) -> None:
    with pytest.raises(LayoutChanged) as raised:
        project_slugs(projects)
    assert raised.value.reason == reason


# --- whole pages (fixtures) ---------------------------------------------------------------


@pytest.mark.parametrize(("fixture", "expected"), [
    ("slug.json", [("mod", 1300003), ("mfa-rabat", 1300002), ("stat", 1300001)]),
    ("list.json", [("mod", 1300003), ("mod", 1300002), ("mfa", 1300002), ("stat", 1300001)]),
    ("objects.json", [("mod", 1300004), ("akimat-astana", 1300003), ("mod", 1300002),
                      ("mfa", 1300002), ("stat", 1300001)]),
])
def test_each_shape_files_every_item_under_its_agencies(fixture: str,
                                                        expected: list[tuple[str, int]]) -> None:
    result = site_page(fixture)
    assert result.rejects == []
    assert filed(result) == expected
    for item in result.items:
        assert item.source == SITE_WIDE_SOURCE and item.lang == "ru"
        # The link is the item's page under its own agency: one item, two agencies, two links.
        assert item.url == f"{MOCK}/memleket/entities/{item.agency}/press/news/details/" \
                           f"{item.id}?lang=ru"


def test_an_item_of_two_agencies_is_the_same_news_under_both() -> None:
    mod, mfa = (i for i in site_page("list.json").items if i.id == 1300002)
    assert (mod.agency, mfa.agency) == ("mod", "mfa")
    assert (mod.title, mod.body_html, mod.published) == (mfa.title, mfa.body_html, mfa.published)


def test_one_unreadable_projects_costs_only_its_element() -> None:
    result = site_page("poison.json")
    assert filed(result) == [("mod", 1300010), ("stat", 1300001)]
    reasons = {(r.item_id, r.reason) for r in result.rejects}
    assert reasons == {
        (1300009, "projects: a number, not a slug, a list of slugs or a list of objects with "
                  "slug/alias"),
        (1300008, "projects: an empty list"),
        (1300007, "projects[0]: an object without slug or alias (keys: id)"),
        (1300006, "projects: not an agency slug: 'Министерство обороны'"),
        (1300005, "no projects"),
        (1300004, "projects[1]: a number, not a slug or an object with slug/alias"),
        (1300003, "no projects"),
        (None, "no id"),
        (None, "a number, not an object"),
    }
    for reject in result.rejects:
        # Rejects of the site-wide walk, each with the element as it came.
        assert reject.agency == SITE_WIDE and reject.lang == "ru" and reject.url == f"{MOCK}/news"
        assert reject.raw and json.loads(reject.raw) is not None


def test_a_page_of_unknown_shape_has_no_item_but_every_element_as_a_reject() -> None:
    """Not one element readable: the spider makes that a layout change with a sample."""
    result = site_page("unknown_shape.json")
    assert result.items == []
    assert [r.item_id for r in result.rejects] == [1300003, 1300002, 1300001]
    assert {r.reason for r in result.rejects} == {
        "projects: a number, not a slug, a list of slugs or a list of objects with slug/alias"}


@pytest.mark.parametrize("body", [b'{"content": []}', b"<html></html>", b'"x"', b"null"])
def test_a_site_wide_answer_that_is_not_an_array_is_a_layout_change(body: bytes) -> None:
    with pytest.raises(LayoutChanged) as raised:
        api.parse_site_news_list(body, lang="en")
    assert raised.value.reason.startswith("site-wide news list")


def test_the_end_of_the_site_wide_list_is_empty() -> None:
    assert api.parse_site_news_list(b"[]", lang="kk") == api.Extracted()


# --- the detail of a body-less site-wide item ---------------------------------------------


def test_a_detail_is_filed_under_every_agency_the_list_named() -> None:
    body = json.dumps({"id": 7, "title": "T", "body": "<p>b</p>",
                       "created_date": "2026-07-01T10:00:00+05:00"}).encode()
    found = api.parse_site_news_detail(body, agencies=["mod", "mfa"], lang="en", expected_id=7)
    assert [(i.agency, i.id, i.source) for i in found.items] == [
        ("mod", 7, SITE_WIDE_SOURCE), ("mfa", 7, SITE_WIDE_SOURCE)]
    wrong = api.parse_site_news_detail(body, agencies=["mod", "mfa"], lang="en", expected_id=8)
    assert wrong.items == []
    assert [(r.agency, r.reason) for r in wrong.rejects] == [(SITE_WIDE, "asked for 8, got 7")]


# --- URLs ---------------------------------------------------------------------------------


def test_the_site_wide_list_url_has_no_projects_filter() -> None:
    assert api.list_url(MOCK, None, 3, 100) == (
        f"{MOCK}/api/v1/public/content-manager/news?sort-by=created_date:DESC&page=3&size=100")
    assert "projects=eq:mod&" in api.list_url(MOCK, "mod", 1, 10)


# --- hostile input ------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["mod", "mfa-rabat", "a.b_c", " x "]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["id", "slug", "alias", "name"]) | st.text(max_size=4),
                      children, max_size=4),
    max_leaves=12,
)
HOSTILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HOSTILE
@given(JSON)
def test_any_projects_value_gives_slugs_or_a_named_reason(projects: Any) -> None:
    try:
        slugs = project_slugs(projects)
    except LayoutChanged as exc:
        assert exc.reason.startswith("projects")
        return
    assert slugs and all(is_slug(s) for s in slugs) and len(set(slugs)) == len(slugs)


@HOSTILE
@given(st.lists(JSON, max_size=4))
def test_every_site_wide_element_is_items_or_one_reject(projects: list[Any]) -> None:
    elements = [{"id": 1000 + n, "title": f"t{n}", "body": "<p>b</p>",
                 "created_date": "2026-07-01T10:00:00+05:00", "projects": value}
                for n, value in enumerate(projects)]
    result = api.parse_site_news_list(json.dumps(elements).encode(), lang="ru")
    for n, value in enumerate(projects):
        mine = [i.agency for i in result.items if i.id == 1000 + n]
        rejected = [r for r in result.rejects if r.item_id == 1000 + n]
        cleaned = clean_tree(value)  # the text boundary runs first (crawler/sanitize.py)
        try:
            expected = project_slugs(cleaned) if cleaned is not None else None
        except LayoutChanged:
            expected = None
        if expected is None:
            assert mine == [] and len(rejected) == 1
            assert isinstance(rejected[0], Reject) and rejected[0].agency == SITE_WIDE
        else:
            assert mine == expected and rejected == []
