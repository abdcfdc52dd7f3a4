"""The official per-agency RSS extractor: RSS 2.0, Atom, and what is not a feed; one bad
entry (or one invalid XML character) costs only its own entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.errors import LayoutChanged
from crawler.extract import rss
from crawler.extract.result import Extracted
from crawler.timeutil import ALMATY

FIXTURES = Path(__file__).parent / "fixtures" / "api" / "rss"
GOVKZ_ITEM = "https://www.gov.kz/memleket/entities/pravstat/press/news/details/{}?lang={}"


def read(name: str, lang: str = "ru", **kwargs) -> Extracted:
    body = (FIXTURES / name).read_bytes()
    return rss.parse_official_rss(body, agency="pravstat", lang=lang, **kwargs)


def test_rss_url() -> None:
    assert rss.rss_url("https://www.gov.kz/", "mfa-rabat", "kk") == (
        "https://www.gov.kz/api/v1/public/rss/mfa-rabat/news/kk"
    )


def test_rss2_items() -> None:
    result = read("official_rss2.xml")
    assert [item.id for item in result.items] == [1171712, 1171695, 1171650, 1171640]
    assert all(item.source == "rss" and item.lang == "ru" for item in result.items)
    assert [item.url for item in result.items] == [
        GOVKZ_ITEM.format(i, "ru") for i in (1171712, 1171695, 1171650, 1171640)
    ]
    first = result.items[0]
    assert first.title == "О проведении сельскохозяйственной переписи"
    assert first.published == datetime(2026, 2, 27, 10, 15, 30, tzinfo=ALMATY)
    assert first.categories == ["Статистика"]  # the blank category is dropped
    assert first.image == "https://www.gov.kz/uploads/2026/2/27/hero_1171712.jpg"
    assert 'href="https://www.gov.kz/uploads/2026/2/27/perepis.pdf"' in first.body_html
    assert first.body_text == "Перепись пройдёт в июле. Положение."


def test_rss2_content_encoded_wins_and_description_becomes_summary() -> None:
    item = read("official_rss2.xml").items[1]
    assert item.id == 1171695  # from the guid: the item has no <link>
    assert item.title == 'Встреча посла "в Рабате"'  # escaped HTML in a title is unescaped
    assert item.published == datetime(2026, 2, 27, 4, 0, tzinfo=UTC)
    assert item.body_html == "<p>Посол провёл встречу.</p><p>Стороны обсудили сотрудничество.</p>"
    assert item.body_text == "Посол провёл встречу.\n\nСтороны обсудили сотрудничество."
    assert item.summary == "Краткое описание встречи."


def test_rss2_mirror_link_and_unknown_zone_date() -> None:
    item = read("official_rss2.xml").items[2]
    assert item.id == 1171650  # a /details/{id} link with extra query parameters
    # "-0000" means "local time, zone unknown": gov.kz local time, UTC+6 before March 2024.
    assert item.published == datetime(2024, 2, 29, 12, 0, tzinfo=ALMATY)
    assert item.published.utcoffset() == timedelta(hours=6)


def test_rss2_dc_date() -> None:
    item = read("official_rss2.xml").items[3]
    assert item.published == datetime(2026, 2, 25, 9, 30, tzinfo=ALMATY)


def test_rss2_unplaceable_items_are_rejects_with_their_xml() -> None:
    rejects = read("official_rss2.xml", url="https://x/rss").rejects
    assert [(r.reason, r.item_id) for r in rejects] == [
        ("no news id", None),
        ("bad date 'вчера'", 1171630),
    ]
    assert rejects[0].raw.startswith("<item ") and "press/news?lang=ru</link>" in rejects[0].raw
    assert "<pubDate>вчера</pubDate>" in rejects[1].raw
    assert all((r.agency, r.lang, r.url) == ("pravstat", "ru", "https://x/rss") for r in rejects)


def test_poisoned_feed_keeps_every_good_entry() -> None:
    """Invalid XML characters (raw control bytes in text and in CDATA, a reference to a
    surrogate, an unescaped "&"), an overflowing date, unplaceable and duplicate entries."""
    result = read("official_rss_poison.xml", url="https://x/rss")
    items = {item.id: item for item in result.items}
    assert list(items) == [1300001, 1300002, 1300003, 1300004, 1300010]
    assert items[1300001].title == "Хорошая новость"  # not the later duplicate's title
    assert items[1300002].title == "Звонок в заголовке"
    assert items[1300002].body_text == "Тре вога" and "\x07" not in items[1300002].body_html
    assert items[1300003].title == "Сло\ufffdмано"
    assert items[1300004].categories == ["Наука техника"]  # the stray "&" is dropped
    assert items[1300010].body_text == "Текст."
    assert [(r.reason, r.item_id) for r in result.rejects] == [
        ("date out of range", 1300005),
        ("no news id", None),
        ("title empty after cleaning", 1300006),
        ("no news id", None),  # an id with 30 digits is none
        ("bad date 'вчера'", 1300007),
        ("no date", 1300008),
        ("no title", 1300009),
    ]
    assert all(r.raw.startswith("<item>") and r.url == "https://x/rss" for r in result.rejects)


def test_one_invalid_character_does_not_reject_the_whole_feed() -> None:
    entry = (
        "<item><title>{t}</title><pubDate>Fri, 27 Feb 2026 10:00:00 +0500</pubDate>"
        "<link>https://www.gov.kz/memleket/entities/a/press/news/details/{i}?lang=ru</link>"
        "<description><![CDATA[<p>{t}</p>]]></description></item>"
    )
    entries = [entry.format(t=t, i=i) for i, t in enumerate(["a", "b\x07c", "d\x00e", "f"], 1)]
    body = ("<rss><channel>" + "".join(entries) + "</channel></rss>").encode()
    result = rss.parse_official_rss(body, agency="a", lang="ru")
    assert [(i.id, i.title, i.body_text) for i in result.items] == [
        (1, "a", "a"), (2, "bc", "bc"), (3, "de", "de"), (4, "f", "f")
    ]
    assert result.rejects == []


def test_a_truncated_feed_keeps_the_entries_before_the_cut() -> None:
    body = (FIXTURES / "official_rss2.xml").read_bytes()
    cut = body[: body.index(b"<title>\xd0\x94\xd0\xb0\xd1\x82\xd0\xb0 \xd0\xb2 dc:date")]
    result = rss.parse_official_rss(cut, agency="pravstat", lang="ru")
    assert [item.id for item in result.items] == [1171712, 1171695, 1171650]


def test_atom_entry_poison() -> None:
    link = "https://www.gov.kz/memleket/entities/a/press/news/details/{}?lang=kk"
    body = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        f'<entry><title>ok\x07</title><link href="{link.format(1)}"/>'
        "<updated>2026-02-26T08:00:00Z</updated></entry>"
        f'<entry><title>old</title><link href="{link.format(2)}"/>'
        "<updated>0001-01-01T00:00:00Z</updated></entry>"
        f'<entry><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">&#xD800;</div>'
        f'</title><link href="{link.format(3)}"/><updated>2026-02-26T08:00:00Z</updated></entry>'
        "</feed>"
    ).encode()
    result = rss.parse_official_rss(body, agency="a", lang="kk")
    assert [(i.id, i.title) for i in result.items] == [(1, "ok"), (3, "\ufffd")]
    assert [(r.reason, r.item_id) for r in result.rejects] == [("date out of range", 2)]


def test_links_point_at_the_given_site() -> None:
    item = read("official_rss2.xml", site="http://127.0.0.1:8765").items[0]
    assert item.url == (
        "http://127.0.0.1:8765/memleket/entities/pravstat/press/news/details/1171712?lang=ru"
    )
    assert item.image == "http://127.0.0.1:8765/uploads/2026/2/27/hero_1171712.jpg"


def test_atom() -> None:
    result = read("official_atom.xml", lang="kk")
    assert [item.id for item in result.items] == [1171712, 1171700]
    first, second = result.items
    assert first.url == GOVKZ_ITEM.format(1171712, "kk")
    assert first.title == "Санақ туралы"
    assert first.published == datetime(2026, 2, 27, 10, 15, 30, tzinfo=ALMATY)  # published
    assert first.categories == ["Статистика"]
    assert first.summary == "Қысқаша."
    assert first.image == "https://www.gov.kz/uploads/2026/2/27/hero_1171712.jpg"
    assert 'href="https://www.gov.kz/uploads/x.pdf"' in first.body_html
    assert second.published == datetime(2026, 2, 26, 8, 0, tzinfo=UTC)  # only <updated>
    assert second.body_html == "<p>Мәтін бірінші.</p><p>Мәтін екінші.</p>"  # xhtml unwrapped
    (reject,) = result.rejects
    assert reject.reason == "no news id" and "urn:uuid:" in reject.raw


def test_empty_channel_is_valid() -> None:
    assert read("empty_channel.xml") == Extracted()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("no_channel.xml", "<rss> without a <channel>"),
        ("html_page.html", "not XML"),
        ("xhtml_page.xml", "not RSS or Atom"),
        ("error.json", "not XML"),
    ],
)
def test_not_a_feed(name: str, reason: str) -> None:
    with pytest.raises(LayoutChanged, match="official RSS") as caught:
        read(name)
    assert reason in caught.value.reason
    assert caught.value.sample == (FIXTURES / name).read_bytes()[:2048]


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"<rss><channel>", b"\x00\x01binary", b"{}", b"hello", b"<rss><channel><it"],
)
def test_garbage_bytes(body: bytes) -> None:
    with pytest.raises(LayoutChanged, match="not XML"):
        rss.parse_official_rss(body, agency="a", lang="ru")


def test_a_feed_cut_inside_its_only_entry_gives_that_entry_as_a_reject() -> None:
    result = rss.parse_official_rss(b"<rss><channel><item><title>t", agency="a", lang="ru")
    assert result.items == [] and [r.reason for r in result.rejects] == ["no news id"]


def test_bom_and_leading_white_space_are_tolerated() -> None:
    body = b"\xef\xbb\xbf\n  " + (FIXTURES / "empty_channel.xml").read_bytes()
    assert rss.parse_official_rss(body, agency="a", lang="ru").items == []


def test_external_entities_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<rss><channel><item><title>t &x;</title>"
        "<link>https://www.gov.kz/memleket/entities/a/press/news/details/5?lang=ru</link>"
        "<pubDate>Fri, 27 Feb 2026 10:00:00 +0500</pubDate></item></channel></rss>"
    ).encode()
    (item,) = rss.parse_official_rss(body, agency="a", lang="ru").items
    assert "TOP-SECRET" not in item.title and item.title.startswith("t")


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        ((GOVKZ_ITEM.format(1171712, "ru"),), 1171712),
        (("https://gov.kz/memleket/entities/x/press/news/details/42",), 42),
        (("http://127.0.0.1:1/memleket/entities/x/press/news/details/7/?utm=1",), 7),
        (("/memleket/entities/x/press/news/details/9#top",), 9),
        ((None, GOVKZ_ITEM.format(5, "kk")), 5),
        (("https://www.gov.kz/memleket/entities/x/press/news?lang=ru", "12345"), None),
        (("https://www.gov.kz/details/0",), None),
        (("https://www.gov.kz/details/12/more",), None),
        ((None, None), None),
    ],
)
def test_news_id(candidates: tuple, expected: int | None) -> None:
    assert rss.news_id(*candidates) == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Fri, 27 Feb 2026 10:15:30 +0500", datetime(2026, 2, 27, 5, 15, 30, tzinfo=UTC)),
        ("27 Feb 2026 10:15 +0500", datetime(2026, 2, 27, 5, 15, tzinfo=UTC)),
        ("Fri, 27 Feb 2026 05:15:30 GMT", datetime(2026, 2, 27, 5, 15, 30, tzinfo=UTC)),
        # A colon in the offset is a common slip; without care it would read as "no zone".
        ("Fri, 27 Feb 2026 05:15:30 +00:00", datetime(2026, 2, 27, 5, 15, 30, tzinfo=UTC)),
        # An unknown zone name: gov.kz local time.
        ("Fri, 27 Feb 2026 10:15:30 ALMT", datetime(2026, 2, 27, 5, 15, 30, tzinfo=UTC)),
        # ISO 8601 where RFC 822 belongs.
        ("2026-02-27T10:15:30+05:00", datetime(2026, 2, 27, 5, 15, 30, tzinfo=UTC)),
        ("2023-06-01T10:00:00", datetime(2023, 6, 1, 4, 0, tzinfo=UTC)),
    ],
)
def test_pub_date_forms(pub_date: str, expected: datetime) -> None:
    body = (
        "<rss><channel><item><title>t</title>"
        "<link>https://www.gov.kz/memleket/entities/a/press/news/details/5?lang=ru</link>"
        f"<pubDate>{pub_date}</pubDate></item></channel></rss>"
    ).encode()
    (item,) = rss.parse_official_rss(body, agency="a", lang="ru").items
    assert item.published == expected
    assert item.published.tzinfo == ALMATY
