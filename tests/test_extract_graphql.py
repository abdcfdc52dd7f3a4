"""The GraphQL request bodies and the parsing of their answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.errors import LayoutChanged
from crawler.extract import api, graphql

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
    assert 'news(_size: 20, _page: 1, _lang: "ru")' in body["query"]
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


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (fixture("errors.json"), "errors: Validation error of type FieldUndefined"),
        (fixture("no_slug.json"), "row 1 has no slug"),
        (b'{"errors": ["boom"], "data": {"projectdetails": []}}', "errors: boom"),
        (b'{"errors": {"message": "single"}}', "errors: single"),
        (b'{"data": null}', "no list at data.projectdetails"),
        (b'{"data": {"news": []}}', "no list at data.projectdetails"),
        (b'{"data": {"projectdetails": {"slug": "x"}}}', "no list at data.projectdetails"),
        (b'{"data": {"projectdetails": ["x"]}}', "row 0 is not an object"),
        (b"[]", "expected a JSON object"),
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_bad_projectdetails(body: bytes, reason: str) -> None:
    with pytest.raises(LayoutChanged, match="graphql projectdetails") as caught:
        graphql.parse_projectdetails(body)
    assert reason in caught.value.reason
    assert caught.value.sample == body[:2048]


def test_news_rows_feed_the_api_element_parser() -> None:
    (row,) = graphql.parse_news(fixture("news.json"))
    item = api.parse_news_element(row, agency="pravstat", lang="ru")
    assert item.id == 1171712  # a string id in GraphQL
    assert item.image == "https://www.gov.kz/uploads/h.jpg"
    assert item.summary == "Текст."


def test_news_errors() -> None:
    with pytest.raises(LayoutChanged, match="graphql news: errors: nope"):
        graphql.parse_news(b'{"errors": [{"message": "nope"}]}')
