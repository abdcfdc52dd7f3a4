"""The GraphQL request bodies and the parsing of their answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.errors import LayoutChanged
from crawler.extract import graphql
from crawler.extract.result import Extracted

FIXTURES = Path(__file__).parent / "fixtures" / "api" / "graphql"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_projectdetails_query() -> None:
    body = graphql.projectdetails_query(page=2, size=100, lang="kk")
    assert json.loads(json.dumps(body)) == body  # JSON-serialisable as it is
    query = body["query"]
    assert 'projectdetails(_size: 100, _page: 2, _lang: "kk")' in query
    assert "slug project_name parent_govorg { id }" in query
    assert query.count("{") == query.count("}")
    assert body["operationName"] == "Agencies" and "query Agencies" in query


def test_news_query() -> None:
    body = graphql.news_query(1, 20, "ru")
    assert 'news(_size: 20, _page: 1, _lang: "ru", _sort: "created_date:DESC")' in body["query"]
    for name in graphql.NEWS_FIELDS:
        assert f" {name} " in body["query"]
    assert graphql.news_query(1, 5, "en", fields=("id", "title"))["query"].endswith(
        "{ id title } }"
    )


@pytest.mark.parametrize(
    ("page", "size", "lang"),
    [
        (0, 10, "ru"),
        (1, 0, "ru"),
        ("1", 10, "ru"),
        (1, True, "ru"),
        (1, 10, "de"),
        (1, 10, 'ru") { x } #'),
    ],
)
def test_query_arguments_are_checked(page, size, lang) -> None:
    with pytest.raises(ValueError):
        graphql.projectdetails_query(page, size, lang)
    with pytest.raises(ValueError):
        graphql.news_query(page, size, lang)


@pytest.mark.parametrize(("page", "lang", "first", "args"), [
    (1, "ru", 1, 'projects: "EQ:mod", _size: 5, _page: 1, _lang: "ru"'),
    (0, "kz", 0, 'projects: "EQ:mod", _size: 5, _page: 0, _lang: "kz"'),
])
def test_news_query_of_one_agency(page: int, lang: str, first: int, args: str) -> None:
    query = graphql.news_query(page, 5, lang, agency="mod", first_page=first)["query"]
    assert f'news({args}, _sort: "created_date:DESC")' in query


@pytest.mark.parametrize("agency", ['mod") { x } #', "", "Mod Ministry"])
def test_news_query_agency_is_checked(agency: str) -> None:
    with pytest.raises(ValueError, match="slug"):
        graphql.news_query(1, 5, "ru", agency=agency)


def test_news_query_field_names_are_checked() -> None:
    with pytest.raises(ValueError, match="field name"):
        graphql.news_query(1, 1, "ru", fields=("id", "title } secret {"))


def test_graphql_url() -> None:
    assert graphql.graphql_url("http://127.0.0.1:8765/") == "http://127.0.0.1:8765/graphql"


def test_parse_projectdetails() -> None:
    assert graphql.parse_projectdetails(fixture("projectdetails.json")) == [
        {
            "slug": "pravstat",
            "name": "Бюро национальной статистики Агентства по стратегическому планированию "
            "и реформам",
            "parent": "3412",
        },
        {
            "slug": "mfa-rabat",
            "name": "Посольство Республики Казахстан в Королевстве Марокко",
            "parent": "118",
        },
        {"slug": "primeminister", "name": "Канцелярия Премьер-Министра", "parent": None},
        {"slug": "abay-kurchatov", "name": "", "parent": None},
    ]


def test_empty_page_is_the_end() -> None:
    assert graphql.parse_projectdetails(fixture("projectdetails_empty.json")) == []
    assert graphql.parse_projectdetails_rows(fixture("projectdetails_empty.json")) == ([], [])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (fixture("errors.json"), "errors: Validation error of type FieldUndefined"),
        (b'{"errors": ["boom"], "data": {"projectdetails": []}}', "errors: boom"),
        (b'{"errors": {"message": "single"}}', "errors: single"),
        (b'{"errors": [{"message": "a\\u0007b"}], "data": null}', "errors: ab"),
        (b'{"data": null}', "no list at data.projectdetails"),
        (b'{"data": {"news": []}}', "no list at data.projectdetails"),
        (b'{"data": {"projectdetails": {"slug": "x"}}}', "no list at data.projectdetails"),
        (b"[]", "expected a JSON object"),
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_bad_projectdetails(body: bytes, reason: str) -> None:
    for parse in (graphql.parse_projectdetails, graphql.parse_projectdetails_rows):
        with pytest.raises(LayoutChanged, match="graphql projectdetails") as caught:
            parse(body)
        assert reason in caught.value.reason
        assert caught.value.sample == body[:2048]


@pytest.mark.parametrize(
    ("body", "slugs", "problems"),
    [
        (fixture("no_slug.json"), ["pravstat"], ["row 1: no slug"]),
        (b'{"data": {"projectdetails": ["x"]}}', [], ["row 0: a string, not an object"]),
    ],
)
def test_bad_rows_are_skipped_not_fatal(body: bytes, slugs: list, problems: list) -> None:
    rows, skipped = graphql.parse_projectdetails_rows(body)
    assert [row["slug"] for row in rows] == slugs and skipped == problems
    assert graphql.parse_projectdetails(body) == rows


def test_projectdetails_poison() -> None:
    rows, skipped = graphql.parse_projectdetails_rows(fixture("projectdetails_poison.json"))
    assert rows == [
        {"slug": "pravstat", "name": "Бюро статистики", "parent": "3412"},
        {"slug": "mfa-rabat", "name": "", "parent": "118"},
        {"slug": "akimat", "name": "Аким\ufffdат", "parent": None},
    ]
    assert skipped == [
        "row 1: a string, not an object",
        "row 2: no slug",
        "row 3: bad slug 'bad slug/..'",
        "row 6: bad slug '\\u202e'",  # repr shows what cannot be seen
    ]


def test_news_rows_go_through_the_api_element_parser() -> None:
    result = graphql.parse_graphql_news(fixture("news.json"), agency="pravstat", lang="ru")
    assert result.rejects == []
    (item,) = result.items
    assert item.id == 1171712  # a string id in GraphQL
    assert item.image == "https://www.gov.kz/uploads/h.jpg"
    assert item.summary == "Текст."
    assert item.source == "api"


def test_news_poison_keeps_every_good_row() -> None:
    result = graphql.parse_graphql_news(
        fixture("news_poison.json"), agency="pravstat", lang="ru", url="http://m/graphql"
    )
    assert [item.id for item in result.items] == [1171712, 1171713, 1171714]
    empty, signal = result.items[1], result.items[2]
    assert (empty.body_html, empty.body_text, empty.summary) == ("", "", "")  # null body
    assert signal.body_text == "ab" and signal.summary == "Кра\ufffdтко"
    assert [(r.reason, r.item_id) for r in result.rejects] == [
        ("null, not an object", None),  # the row the server could not resolve (see errors)
        ("bad id 'abc'", None),
        ("date out of range", 1171715),
        ("no id", None),
    ]
    assert all(r.url == "http://m/graphql" and r.raw for r in result.rejects)


def test_news_empty_page() -> None:
    body = b'{"data": {"news": []}}'
    assert graphql.parse_graphql_news(body, agency="a", lang="ru") == Extracted()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"errors": [{"message": "nope"}]}', "graphql news: errors: nope"),
        (b'{"errors": [{"message": "nope"}], "data": {"news": []}}', "graphql news: errors"),
        (b'{"data": {"news": null}}', "graphql news: no list at data.news"),
        (b"<html></html>", "graphql news: not JSON"),
    ],
)
def test_news_of_the_wrong_shape(body: bytes, reason: str) -> None:
    with pytest.raises(LayoutChanged, match=reason):
        graphql.parse_graphql_news(body, agency="a", lang="ru")
