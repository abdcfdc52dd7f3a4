"""The JSON news API extractor: every shape crawler/extract/api.py describes, and every way it can
break: a response of the wrong shape is a LayoutChanged, one bad element only a Reject."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from crawler.errors import LayoutChanged
from crawler.extract import api
from crawler.extract.fields import MAX_BODY_BYTES
from crawler.extract.htmlbody import clean_body
from crawler.extract.result import Extracted
from crawler.items import ITEM_URL_RE, Reject
from crawler.timeutil import ALMATY

FIXTURES = Path(__file__).parent / "fixtures" / "api"
MOCK = "http://127.0.0.1:8765"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str, **kwargs) -> list:
    """The items of a list fixture that must have no rejects."""
    result = api.parse_news_list(fixture(name), agency="pravstat", lang="ru", **kwargs)
    assert result.rejects == []
    return result.items


def page(*elements) -> Extracted:
    return api.parse_news_list(json.dumps(list(elements)).encode(), agency="a", lang="ru")


GOOD = {"id": 1, "title": "t", "created_date": "2026-01-01"}


# --- created_date ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected_utc"),
    [
        ("2026-02-27T10:15:30.123+05:00", datetime(2026, 2, 27, 5, 15, 30, 123000, tzinfo=UTC)),
        ("2026-02-27T05:15:30.123Z", datetime(2026, 2, 27, 5, 15, 30, 123000, tzinfo=UTC)),
        ("2026-02-27T05:15:30Z", datetime(2026, 2, 27, 5, 15, 30, tzinfo=UTC)),
        ("2026-02-27T10:15:30+0500", datetime(2026, 2, 27, 5, 15, 30, tzinfo=UTC)),
        ("2026-02-27T10:15:30.123456789+05:00", datetime(2026, 2, 27, 5, 15, 30, 123456, UTC)),
        # No offset: gov.kz local time, UTC+5 since 2024-03-01 ...
        ("2024-03-02T12:00:00", datetime(2024, 3, 2, 7, 0, tzinfo=UTC)),
        ("2026-02-27 10:15", datetime(2026, 2, 27, 5, 15, tzinfo=UTC)),
        # ... and UTC+6 before.
        ("2024-02-29T12:00:00", datetime(2024, 2, 29, 6, 0, tzinfo=UTC)),
        ("2024-02-29T12:00:00.500", datetime(2024, 2, 29, 6, 0, 0, 500000, tzinfo=UTC)),
        ("2023-12-31", datetime(2023, 12, 30, 18, 0, tzinfo=UTC)),
        ("2026-02-27", datetime(2026, 2, 26, 19, 0, tzinfo=UTC)),
        ("  2026-02-27T10:15:30+05:00 ", datetime(2026, 2, 27, 5, 15, 30, tzinfo=UTC)),
    ],
)
def test_created_date_forms(value: str, expected_utc: datetime) -> None:
    parsed = api.parse_created_date(value)
    assert parsed.tzinfo is not None
    assert parsed == expected_utc
    assert parsed.tzinfo == ALMATY  # presented in gov.kz local time


@pytest.mark.parametrize(
    ("value", "offset_hours"), [("2024-02-29T23:59:59", 6), ("2024-03-01T00:00:00", 5)]
)
def test_naive_dates_follow_almaty_offset_change(value: str, offset_hours: int) -> None:
    assert api.parse_created_date(value).utcoffset() == timedelta(hours=offset_hours)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "yesterday",
        "27.02.2026",
        "2026-02-30",
        "2026-13-01T00:00:00",
        "2026-W09-5",
        "20260227",
        1772167530000,
        "2026-02-27T10:15:30+05:00 extra",
    ],
)
def test_created_date_garbage_is_a_layout_change(value) -> None:
    with pytest.raises(LayoutChanged, match="bad created_date"):
        api.parse_created_date(value)


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-12:00",  # overflows when converted to Asia/Almaty
        "9999-12-31T23:59:59",
        "0001-01-01T00:00:00",  # overflows when converted to UTC
        "0001-01-01T00:00:00+14:00",
        "1899-12-31",
        "2100-01-01T00:00:00Z",
    ],
)
def test_created_date_out_of_range_is_named_not_an_overflow(value: str) -> None:
    with pytest.raises(LayoutChanged) as caught:
        api.parse_created_date(value)
    assert caught.value.reason == "date out of range"


def test_created_date_range_edges() -> None:
    assert api.parse_created_date("1900-01-01T00:00:00Z").year == 1900
    assert api.parse_created_date("2099-12-31T18:59:59Z").year == 2099


# --- list pages -----------------------------------------------------------------------------


def test_normal_list() -> None:
    items = parse("list_normal.json")
    assert [item.id for item in items] == [1171712, 1171695, 1171650]
    first = items[0]
    assert first.agency == "pravstat" and first.lang == "ru" and first.source == "api"
    assert first.url == (
        "https://www.gov.kz/memleket/entities/pravstat/press/news/details/1171712?lang=ru"
    )
    assert ITEM_URL_RE.match(first.url)
    assert first.title == "О проведении сельскохозяйственной переписи"  # white space folded
    assert first.published == datetime(2026, 2, 27, 10, 15, 30, 123000, tzinfo=ALMATY)
    assert first.summary == "Бюро национальной статистики сообщает о сроках переписи."
    assert first.image == "https://www.gov.kz/uploads/2026/2/27/hero_1171712.jpg"
    assert 'href="https://www.gov.kz/uploads/2026/2/27/perepis.pdf"' in first.body_html
    assert "<b>сообщает</b>" in first.body_html
    assert first.body_text == (
        "Бюро национальной статистики сообщает, что перепись пройдёт в июле.\n\n"
        "Подробности в положении."
    )
    assert not first.incomplete


def test_string_id_z_date_null_heropic_and_br() -> None:
    item = parse("list_normal.json")[1]
    assert item.id == 1171695 and isinstance(item.id, int)
    assert item.published == datetime(2026, 2, 27, 4, 0, tzinfo=UTC)
    assert item.published.utcoffset() == timedelta(hours=5)
    assert item.image is None
    assert item.body_text == "Посол провёл встречу.\nСтороны обсудили сотрудничество."
    # No short_description: the summary is the start of the text, on one line.
    assert item.summary == "Посол провёл встречу. Стороны обсудили сотрудничество."


def test_absolute_heropic_and_nbsp() -> None:
    item = parse("list_normal.json")[2]
    assert item.image == "https://cdn.example.org/img/itogi.png"
    assert item.body_text == "Первый абзац итогов.\n\nВторой абзац с неразрывным пробелом."


def test_naive_dates_in_a_list() -> None:
    items = parse("list_naive_dates.json")
    assert [item.published.utcoffset() for item in items] == [
        timedelta(hours=5),
        timedelta(hours=6),
        timedelta(hours=6),
    ]
    assert items[2].published == datetime(2023, 12, 31, tzinfo=ALMATY)


def test_whole_html_document_body_is_unwrapped() -> None:
    (item,) = parse("list_html_document_body.json")
    assert "<html" not in item.body_html and "<body" not in item.body_html
    assert "<head" not in item.body_html and "<title" not in item.body_html
    assert "Документ" not in item.body_text  # the <title> is not text a reader sees
    assert "color:red" not in item.body_text and "alert" not in item.body_text
    assert 'href="https://www.gov.kz/uploads/2026/1/15/prikaz.docx"' in item.body_html
    assert 'src="https://www.gov.kz/uploads/2026/1/15/scan.png"' in item.body_html
    assert 'href="https://adilet.zan.kz/rus/docs/V2600001"' in item.body_html
    assert item.body_text == "Текст приказа скачать.\n\nСсылка на Әділет."
    assert item.image == "https://www.gov.kz/uploads/2026/1/15/hero.jpg"  # no leading slash


def test_links_point_at_the_given_site() -> None:
    items = parse("list_normal.json", site=MOCK + "/")
    assert items[0].url == f"{MOCK}/memleket/entities/pravstat/press/news/details/1171712?lang=ru"
    assert items[0].image == f"{MOCK}/uploads/2026/2/27/hero_1171712.jpg"
    assert f'href="{MOCK}/uploads/2026/2/27/perepis.pdf"' in items[0].body_html
    assert items[2].image == "https://cdn.example.org/img/itogi.png"


def test_empty_list_is_the_end() -> None:
    assert parse("list_empty.json") == []
    assert api.parse_news_list(b"[]", agency="a", lang="ru") == Extracted()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("list_truncated.json", "not JSON: invalid"),
        ("list_html_page.html", "not JSON: an HTML page"),
        ("list_object_content.json", "expected a JSON array, got an object with keys content"),
        ("list_error_notallowed.json", "got an object with error 'notAllowed'"),
        ("detail.json", "expected a JSON array, got an object"),
    ],
)
def test_broken_list_pages_raise(name: str, reason: str) -> None:
    with pytest.raises(LayoutChanged) as caught:
        parse(name)
    assert reason in caught.value.reason
    assert caught.value.sample == fixture(name)[:2048]


def test_renamed_title_is_a_reject_not_a_layout_change() -> None:
    result = api.parse_news_list(
        fixture("list_renamed_title.json"), agency="pravstat", lang="ru", url="https://x/list"
    )
    assert result.items == []
    (reject,) = result.rejects
    assert (reject.reason, reject.item_id, reject.url) == ("no title", 1171712, "https://x/list")
    assert (reject.agency, reject.lang) == ("pravstat", "ru")
    assert json.loads(reject.raw) == json.loads(fixture("list_renamed_title.json"))[0]


@pytest.mark.parametrize(
    ("element", "reason", "item_id"),
    [
        ({"title": "t", "created_date": "2026-01-01"}, "no id", None),
        ({"id": None, "title": "t", "created_date": "2026-01-01"}, "no id", None),
        ({"id": 1, "title": "t"}, "no created_date", 1),
        ({"id": 1, "title": None, "created_date": None}, "no title", 1),
        ({"id": "12a", "title": "t", "created_date": "2026-01-01"}, "bad id '12a'", None),
        ({"id": "abc", "title": "t", "created_date": "2026-01-01"}, "bad id 'abc'", None),
        ({"id": "١٢", "title": "t", "created_date": "2026-01-01"}, "bad id '١٢'", None),
        ({"id": -5, "title": "t", "created_date": "2026-01-01"}, "bad id -5", None),
        ({"id": 0, "title": "t", "created_date": "2026-01-01"}, "bad id 0", None),
        ({"id": 2**63, "title": "t", "created_date": "2026-01-01"}, f"bad id {2**63}", None),
        ({"id": True, "title": "t", "created_date": "2026-01-01"}, "bad id True", None),
        ({"id": 1.5, "title": "t", "created_date": "2026-01-01"}, "bad id 1.5", None),
        ({"id": [1], "title": "t", "created_date": "2026-01-01"}, "bad id [1]", None),
        ({"id": 1, "title": ["t"], "created_date": "2026-01-01"}, "title not a string", 1),
        ({"id": 1, "title": "  ", "created_date": "2026-01-01"}, "title empty after cleaning", 1),
        ({"id": 1, "title": "\u202e\x07", "created_date": "2026-01-01"}, "title empty", 1),
        ({"id": 1, "title": "t", "created_date": "вчера"}, "bad created_date 'вчера'", 1),
        ({"id": 1, "title": "t", "created_date": 1772167530000}, "bad created_date 177", 1),
        ({"id": 1, "title": "t", "created_date": "2026-02-30"}, "bad created_date", 1),
        ({"id": 1, "title": "t", "created_date": "9999-12-31T23:59:59-12:00"}, "date out", 1),
        ({"id": 1, "title": "t", "created_date": "0001-01-01"}, "date out of range", 1),
        ("stray", "a string, not an object", None),
        (1, "a number, not an object", None),
        (None, "null, not an object", None),
        ([GOOD], "an array, not an object", None),
    ],
)
def test_bad_elements_are_named_rejects_and_cost_nothing_else(
    element, reason: str, item_id: int | None
) -> None:
    after = {**GOOD, "id": 2}
    result = page(GOOD, element, after)
    assert [item.id for item in result.items] == [1, 2]
    (reject,) = result.rejects
    assert reject.reason.startswith(reason), reject.reason
    assert reject.item_id == item_id
    assert json.loads(reject.raw) == element  # the element as it came
    assert (reject.agency, reject.lang, reject.url) == ("a", "ru", "")


def test_a_page_of_poison_keeps_every_good_item() -> None:
    """Good and poisoned elements on one page (control characters, a lone surrogate, an invalid
    UTF-8 byte, dates that overflow, malformed elements, a duplicate)."""
    result = api.parse_news_list(
        fixture("list_poison.json"), agency="pravstat", lang="ru", url="https://x/p1"
    )
    items = {item.id: item for item in result.items}
    assert list(items) == [1200001, 1200002, 1200003, 1200009, 1200010]
    assert items[1200001].title == "Хорошая новость"  # the duplicate later on the page lost
    assert items[1200002].body_text == "Тревога" and "\x07" not in items[1200002].body_html
    assert items[1200003].title == "Сло\ufffdмано"
    assert items[1200009].body_text == "a\ufffdb"
    assert items[1200010].title == "Сырой звонок"  # a raw control byte in a JSON string
    assert [(r.reason, r.item_id) for r in result.rejects] == [
        ("date out of range", 1200004),
        ("a number, not an object", None),
        ("no id", None),
        ("bad id 'abc'", None),
        ("date out of range", 1200005),
        ("title empty after cleaning", 1200006),
        ("no created_date", 1200007),
        ("bad created_date 'вчера'", 1200008),
        ("null, not an object", None),
        ("bad id 99999999999999999999", None),
        ("title not a string but an array", 1200011),
        ("a string, not an object", None),
    ]
    assert all(r.url == "https://x/p1" and r.raw for r in result.rejects)
    assert "9999-12-31T23:59:59-12:00" in result.rejects[0].raw


def test_a_body_over_5_mb_is_a_reject() -> None:
    big = {**GOOD, "id": 3, "body": "<p>" + "я" * (MAX_BODY_BYTES // 2) + "</p>"}
    result = page(GOOD, big)
    assert [item.id for item in result.items] == [1]
    (reject,) = result.rejects
    assert (reject.reason, reject.item_id) == ("body over 5 MB", 3)
    assert len(reject.raw) <= 64 * 1024
    just_under = {**GOOD, "id": 4, "body": "x" * (MAX_BODY_BYTES - 10)}
    assert [item.id for item in page(just_under).items] == [4]


def test_a_number_too_long_for_int_costs_only_its_element() -> None:
    body = b'[{"id": 1, "title": "t", "created_date": "2026-01-01"}, {"id": ' + b"9" * 5000 + b"}]"
    result = api.parse_news_list(body, agency="a", lang="ru")
    assert [item.id for item in result.items] == [1]
    assert result.rejects[0].reason == "bad id inf"


def test_duplicate_ids_on_one_page_are_one_item() -> None:
    result = page(GOOD, {**GOOD, "title": "edited?"}, {**GOOD, "id": 2})
    assert [(item.id, item.title) for item in result.items] == [(1, "t"), (2, "t")]
    assert result.rejects == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"null", "got null"),
        (b'"ok"', "got a string"),
        (b"42", "got a number"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON: nested too deep"),
    ],
)
def test_non_array_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(LayoutChanged) as caught:
        api.parse_news_list(body, agency="a", lang="ru")
    assert reason in caught.value.reason


def test_empty_title_string_is_a_reject() -> None:
    # Shape is fine, so no layout change; but an item without a title cannot be published.
    body = json.dumps([{"id": 7, "title": "  ", "created_date": "2026-01-01"}]).encode()
    result = api.parse_news_list(body, agency="a", lang="kk")
    assert result.items == []
    (reject,) = result.rejects
    assert (reject.reason, reject.item_id, reject.lang) == ("title empty after cleaning", 7, "kk")


def test_strings_are_cleaned_before_they_become_fields() -> None:
    element = {
        "id": "  7 ",
        "title": "A\u0007 \u202eB\r\nC\ud800",
        "created_date": "2026-01-01",
        "body": "<p>x\u0001y\ud83d</p>",
        "short_description": "s\u009fs",
        "heropic": "/img/\u0000a.jpg",
    }
    (item,) = page(element).items
    assert item.id == 7
    assert item.title == "A B C\ufffd"
    assert item.body_html == "<p>xy\ufffd</p>" and item.body_text == "xy\ufffd"
    assert item.summary == "ss"
    assert item.image == "https://www.gov.kz/img/a.jpg"


def test_an_unjoinable_heropic_costs_only_the_image() -> None:
    (item,) = page({**GOOD, "heropic": "http://[bad"}).items
    assert item.image is None


# --- missing bodies and the detail endpoint -----------------------------------------------------


def test_null_body_items_have_no_body() -> None:
    items = parse("list_null_body.json")
    assert items[0].body_html == "" and items[0].body_text == ""
    assert items[0].summary == "Кратко о новости."
    assert items[1].summary == ""
    assert items[2].body_html == "<p>Полный текст.</p>"


def test_detail() -> None:
    result = api.parse_news_detail(
        fixture("detail.json"), agency="pravstat", lang="ru", expected_id=1171800
    )
    assert result.rejects == []
    (item,) = result.items
    assert item.id == 1171800 and item.title == "Без текста в списке"
    assert item.body_html.startswith("<p>Полный текст") and "<body" not in item.body_html
    assert (
        'href="https://www.gov.kz/memleket/entities/pravstat/press/news/details/1171712?lang=ru"'
        in item.body_html
    )
    assert item.image == "https://www.gov.kz/uploads/2026/3/1/hero_1171800.jpg"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (fixture("detail_array.json"), "expected a JSON object, got an array"),
        (fixture("list_html_page.html"), "not JSON: an HTML page"),
        (b"null", "expected a JSON object, got null"),
        (b"", "not JSON: empty"),
    ],
)
def test_detail_of_the_wrong_shape(body: bytes, reason: str) -> None:
    with pytest.raises(LayoutChanged, match="news detail") as caught:
        api.parse_news_detail(body, agency="pravstat", lang="ru")
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("body", "expected_id", "reason", "item_id"),
    [
        (b'{"error": "notFound"}', None, "no id", None),
        (b'{"error": "notFound"}', 5, "no id", 5),  # what was asked for
        (fixture("detail.json"), 1, "asked for 1, got 1171800", 1171800),
        (b'{"id": 5, "title": "t", "created_date": "9999-12-31T23:59:59-12:00"}', 5,
         "date out of range", 5),
        (b'{"id": 5, "title": "\\u0007", "created_date": "2026-01-01"}', 5,
         "title empty after cleaning", 5),
        (b'{"id": "abc", "title": "t", "created_date": "2026-01-01"}', 5, "bad id 'abc'", 5),
    ],
)
def test_bad_detail_is_one_reject(
    body: bytes, expected_id: int | None, reason: str, item_id: int | None
) -> None:
    result = api.parse_news_detail(
        body, agency="pravstat", lang="ru", expected_id=expected_id, url="https://x/d"
    )
    assert result.items == []
    (reject,) = result.rejects
    assert isinstance(reject, Reject)
    assert (reject.reason, reject.item_id, reject.url) == (reason, item_id, "https://x/d")
    assert json.loads(reject.raw) == json.loads(body)


def test_detail_body_with_a_control_character_is_an_item() -> None:
    body = json.dumps({**GOOD, "id": 9, "body": "<p>a\u0007b</p>"}).encode()
    (item,) = api.parse_news_detail(body, agency="a", lang="ru", expected_id=9).items
    assert item.body_text == "ab"


# --- URLs -------------------------------------------------------------------------------------


def test_list_url() -> None:
    url = api.list_url("https://www.gov.kz/", "pravstat", 1, 100)
    assert url == (
        "https://www.gov.kz/api/v1/public/content-manager/news"
        "?sort-by=created_date:DESC&projects=eq:pravstat&page=1&size=100"
    )


@pytest.mark.parametrize(
    ("since", "stamp"),
    [
        (datetime(2026, 2, 27, 10, 15, 30, 123456, tzinfo=ALMATY), "2026-02-27T05:15:30.123Z"),
        (datetime(2026, 2, 27, 5, 0, tzinfo=UTC), "2026-02-27T05:00:00.000Z"),
        (datetime(2024, 2, 1, 6, 0), "2024-02-01T00:00:00.000Z"),  # naive: Almaty, then +6
    ],
)
def test_list_url_since_is_strictly_after_in_utc(since: datetime, stamp: str) -> None:
    url = api.list_url(MOCK, "mfa-rabat", 3, 20, since=since)
    query = parse_qs(urlsplit(url).query)
    assert query["created_date"] == [f"gt:{stamp}"]
    assert "gte:" not in url and "+" not in url
    assert query["page"] == ["3"] and query["size"] == ["20"]
    assert query["projects"] == ["eq:mfa-rabat"]
    assert url.startswith(f"{MOCK}/api/v1/public/content-manager/news?")


@pytest.mark.parametrize(("page", "size"), [(0, 10), (1, 0), (-1, 5)])
def test_list_url_rejects_bad_pages(page: int, size: int) -> None:
    with pytest.raises(ValueError):
        api.list_url(MOCK, "a", page, size)


def test_detail_url() -> None:
    assert api.detail_url(MOCK + "/", 1171800) == (
        f"{MOCK}/api/v1/public/content-manager/news/1171800"
    )


# --- body cleanup -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "html", "text"),
    [
        (None, "", ""),
        ("", "", ""),
        ("   ", "", ""),
        ("plain words", "plain words", "plain words"),
        ("<p>a</p><!-- note --><p>b</p>", "<p>a</p><p>b</p>", "a\n\nb"),
        ("<p>one<br><br><br>two</p>", "<p>one<br><br><br>two</p>", "one\n\ntwo"),
        ("<ul><li>x</li><li>y</li></ul>", "<ul><li>x</li><li>y</li></ul>", "x\n\ny"),
        (
            "<table><tr><td>a</td><td>b</td></tr></table>",
            "<table><tr><td>a</td><td>b</td></tr></table>",
            "a b",
        ),
        ('<?xml version="1.0" encoding="utf-8"?><p>x</p>', "<p>x</p>", "x"),
        ('<a href="//cdn.gov.kz/f.pdf">f</a>', '<a href="https://cdn.gov.kz/f.pdf">f</a>', "f"),
        ('<a href="#top">t</a>', '<a href="https://www.gov.kz/#top">t</a>', "t"),
        ('<a href="mailto:press@gov.kz">m</a>', '<a href="mailto:press@gov.kz">m</a>', "m"),
        ('<a href="http://[bad">b</a>', '<a href="http://[bad">b</a>', "b"),
    ],
)
def test_clean_body(markup, html: str, text: str) -> None:
    assert clean_body(markup, "https://www.gov.kz") == (html, text)


def test_long_body_summary_is_cut_at_a_word() -> None:
    words = " ".join(["слово"] * 100)
    body = json.dumps(
        [{"id": 3, "title": "t", "created_date": "2026-01-01", "body": f"<p>{words}</p>"}]
    ).encode()
    (item,) = api.parse_news_list(body, agency="a", lang="ru").items
    assert len(item.summary) <= 300 and item.summary.endswith("слово\u2026")
