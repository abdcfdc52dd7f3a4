"""The snapshot extractor: fixture directories (input.txt + meta.toml -> expected.json), the
shipped seeds, each known trap of the three page layouts, and decoding of raw bytes."""

from __future__ import annotations

import html
import json
import re
import tomllib
from datetime import datetime
from pathlib import Path

import pytest

from crawler.errors import SnapshotError
from crawler.extract.snapshot import (
    SnapshotResult,
    decode_snapshot,
    detect_layout,
    extract_snapshot,
)
from crawler.items import ITEM_URL_RE, NewsItem, Reject, press_page_url, synthetic_id
from crawler.seeds import load_manifest, seed_files
from crawler.timeutil import ALMATY, isoformat

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "snapshot"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
# expected.json keys that are checks on body_text rather than NewsItem fields
REQUIRED = {
    "agency",
    "id",
    "lang",
    "url",
    "title",
    "published",
    "categories",
    "views",
    "incomplete",
}


def serialize(item: NewsItem) -> dict:
    return {
        "agency": item.agency,
        "id": item.id,
        "lang": item.lang,
        "url": item.url,
        "title": item.title,
        "published": isoformat(item.published) if item.published else None,
        "body_text": item.body_text,
        "body_html": item.body_html,
        "summary": item.summary,
        "categories": item.categories,
        "views": item.views,
        "incomplete": item.incomplete,
    }


def reject_summary(reject: Reject) -> dict:
    """A reject as expected.json describes it: its raw text by its first line and length."""
    lines = reject.raw.split("\n")
    return {
        "reason": reject.reason,
        "agency": reject.agency,
        "item_id": reject.item_id,
        "raw_startswith": lines[0].strip()[:60],
        "raw_lines": len(lines),
    }


def run_case(case: str) -> tuple[dict, SnapshotResult]:
    folder = FIXTURES / case
    meta = tomllib.loads((folder / "meta.toml").read_text(encoding="utf-8"))
    text = decode_snapshot((folder / "input.txt").read_bytes(), f"{case}/input.txt")
    result = extract_snapshot(
        text,
        layout=meta["layout"],
        lang=meta["lang"],
        agency=meta.get("agency"),
        source=f"snapshot:{case}",
    )
    return meta, result


def extract_seed(name: str) -> SnapshotResult:
    spec = load_manifest(SEEDS)[name]
    text = decode_snapshot((SEEDS / name).read_bytes(), name)
    return extract_snapshot(
        text, layout=spec.layout, lang=spec.lang, agency=spec.agency, source=f"snapshot:{name}"
    )


def extract(text: str, layout: str, agency: str | None = None, url: str = "") -> SnapshotResult:
    return extract_snapshot(
        text, layout=layout, lang="en", agency=agency, source="snapshot:t", url=url
    )


# ---------------------------------------------------------------- fixture directories


def test_every_fixture_directory_is_complete() -> None:
    assert len(CASES) >= 16
    for case in CASES:
        names = {p.name for p in (FIXTURES / case).iterdir()}
        assert {"input.txt", "meta.toml", "expected.json"} <= names, case


@pytest.mark.parametrize("case", CASES)
def test_fixture(case: str) -> None:
    meta, result = run_case(case)
    expected = json.loads((FIXTURES / case / "expected.json").read_text(encoding="utf-8"))
    assert [reject_summary(r) for r in result.rejects] == expected["rejects"]
    assert all(r.lang == meta["lang"] and r.url == "" for r in result.rejects)
    assert len(result.items) == len(expected["items"])
    for got, want in zip(result.items, expected["items"], strict=True):
        actual = serialize(got)
        for key, value in want.items():
            if key == "body_text_startswith":
                assert got.body_text.startswith(value), (got.id, key)
            elif key == "body_text_endswith":
                assert got.body_text.endswith(value), (got.id, key)
            elif key == "body_paragraphs":
                assert len(got.body_text.split("\n\n")) == value, (got.id, key)
            else:
                assert actual[key] == value, (got.id, key)
        # Every item is checked on every field; long bodies may be checked by their ends.
        assert REQUIRED <= set(want), (got.id, REQUIRED - set(want))
        assert "body_text" in want or {"body_text_startswith", "body_text_endswith"} <= set(want)
        assert got.lang == meta["lang"]
        assert got.source == f"snapshot:{case}"


@pytest.mark.parametrize("case", CASES)
def test_fixture_invariants(case: str) -> None:
    """What holds for every item whatever the page: no trailer, no trailing own date, HTML and
    summary derived from the plain text, aware dates."""
    _, result = run_case(case)
    for item in result.items:
        assert "Source :" not in item.body_text and "Source:" not in item.body_text
        paragraphs = item.body_text.split("\n\n") if item.body_text else []
        assert item.body_html == "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        flat = " ".join(item.body_text.split())
        if len(flat) <= 300:
            assert item.summary == flat
        else:
            assert item.summary.endswith("…") and len(item.summary) <= 301
            assert flat.startswith(item.summary[:-1])
            assert flat[len(item.summary) - 1] in " ,;:.–—-"  # cut at a word boundary
        if item.published is not None:
            assert item.published.tzinfo is not None
            assert not item.title.endswith(item.published.strftime(" %d.%m.%Y"))
        assert item.incomplete == (item.published is None)


# ---------------------------------------------------------------- the shipped seeds


def test_seed_000_sections() -> None:
    result = extract_seed("000_4ec7fd5933ffcd57.txt")
    assert (len(result.items), result.rejects) == (5, [])
    assert all(item.categories == ["News", "Society"] for item in result.items)
    assert [(i.agency, i.id) for i in result.items] == [
        ("pravstat", 1171712),
        ("mfa-rabat", 1171695),
        ("kostanai-bmalin-audany-akimat", 1171653),
        ("abay-kurchatov", 1171659),
        ("mangystau-munaily-mangystau", 1171661),
    ]
    first, last = result.items[0], result.items[-1]
    assert first.title.startswith("The Committee on Legal Statistics and Special Records")
    assert first.title.endswith("Crime Forecasting and Early Prevention.")
    assert first.published == datetime(2026, 2, 27, tzinfo=ALMATY)
    assert first.url == (
        "https://www.gov.kz/memleket/entities/pravstat/press/news/details/1171712?lang=kk"
    )
    assert first.lang == "en" and first.views is None and not first.incomplete
    assert last.title.startswith("Garbage collection, solid waste treatment")
    assert last.body_text.startswith("27.02.2026 in the village of Mangystau:Garbage cleaning")
    assert last.body_text.endswith("Contractor institution-Tazalyk-S.")
    assert last.source == "snapshot:000_4ec7fd5933ffcd57.txt"


def test_seed_001_titled_list() -> None:
    result = extract_seed("001_28f041a508a280bb.txt")
    assert (len(result.items), result.rejects) == (20, [])
    assert all(item.categories == ["Law"] for item in result.items)
    first, last = result.items[0], result.items[-1]
    assert (first.agency, first.id) == ("mfa", 997859)
    assert first.title == (
        "International Cooperation in the Sphere of School Education were Discussed at the "
        "Kazakh Foreign Ministry"
    )
    assert first.published == datetime(2025, 5, 21, tzinfo=ALMATY)
    assert first.body_text.endswith("School opened a new campus in Astana in 2024.")
    assert (last.agency, last.id) == ("mod", 995971)
    assert last.title == (
        "Military training: singer Ibrahim Eskendir and strongman Timur Spatayev put on "
        "military uniform"
    )
    assert last.published == datetime(2025, 5, 20, tzinfo=ALMATY)
    assert last.body_text == "" and last.body_html == "" and last.summary == ""
    source_only = [i.id for i in result.items if not i.body_text]
    assert source_only == [997786, 997624, 997505, 997178, 997093, 996912, 996722, 996408, 995971]


def test_seed_004_full_text() -> None:
    result = extract_seed("004_4bfc0a0de863c664.txt")
    assert (len(result.items), result.rejects) == (9, [])
    dated, cut = result.items[:8], result.items[8]
    assert all(not i.incomplete and i.published for i in dated)
    assert all(i.agency == "primeminister" and i.id < 0 for i in result.items)
    first = result.items[0]
    assert first.title == "Crimes down by 9,000 in Kazakhstan since early 2025 - Interior Ministry"
    assert first.published == datetime(2025, 8, 8, 12, 43, tzinfo=ALMATY)
    assert first.views == 2936
    assert first.id == synthetic_id("primeminister", first.title, first.published)
    assert first.url == press_page_url("primeminister", "en") + f"#item-{-first.id}"
    assert dated[-1].title == (
        "Key goal of transport policy is to boost air service, Kazakh President"
    )
    assert (dated[-1].published, dated[-1].views) == (
        datetime(2025, 8, 1, 13, 58, tzinfo=ALMATY),
        33946,
    )
    assert cut.title == "Kazakhstan launches Center for Combating Disinformation"
    assert (cut.incomplete, cut.published, cut.views) == (True, None, None)
    assert cut.id == synthetic_id("primeminister", cut.title, None)
    assert cut.body_text.endswith("emerged in the national information space.")
    assert len({i.id for i in result.items}) == 9


@pytest.mark.parametrize(
    ("name", "layout"),
    [
        ("000_4ec7fd5933ffcd57.txt", "sections"),
        ("001_28f041a508a280bb.txt", "titled-list"),
        ("004_4bfc0a0de863c664.txt", "full-text"),
    ],
)
def test_detect_layout_on_each_seed(name: str, layout: str) -> None:
    text = decode_snapshot((SEEDS / name).read_bytes(), name)
    assert detect_layout(text) == layout
    assert load_manifest(SEEDS)[name].layout == layout


def test_every_seed_in_the_manifest_extracts() -> None:
    for path in seed_files(SEEDS):
        assert extract_seed(path.name).items


@pytest.mark.parametrize(
    "text",
    ["", "just some words\nand more words\n", "News\nMore\n", "27.02.2026\n27.02.2026\n"],
)
def test_detect_layout_none_for_unknown_pages(text: str) -> None:
    assert detect_layout(text) is None


# ---------------------------------------------------------------- the traps, one test each

LINK = "https://www.gov.kz/memleket/entities/{slug}/press/news/details/{id}?lang=kk"


def test_trap_body_starting_with_a_date_keeps_it() -> None:
    text = (
        "News\nMore\nClean-up day\n27.02.2026\n"
        f"26.02.2026 volunteers cleaned the park.Source : {LINK.format(slug='a', id=5)}\n"
    )
    (item,) = extract(text, "sections").items
    assert item.published == datetime(2026, 2, 27, tzinfo=ALMATY)
    assert item.body_text == "26.02.2026 volunteers cleaned the park."


def test_trap_russian_body_under_english_title() -> None:
    text = (
        "News\nMore\nCouncil meeting held\n27.02.2026\n"
        f"Состоялось заседание совета.Source : {LINK.format(slug='pravstat', id=7)}\n"
    )
    (item,) = extract(text, "sections").items
    assert (item.title, item.body_text, item.lang) == (
        "Council meeting held",
        "Состоялось заседание совета.",
        "en",
    )


def test_trap_duplicates_across_sections_merge_categories_in_order() -> None:
    block = "Same item\n27.02.2026\nBody.Source : " + LINK.format(slug="a", id=1) + "\n"
    other = "Other item\n27.02.2026\nBody.Source : " + LINK.format(slug="a", id=2) + "\n"
    text = "Society\nMore\n" + block + "News\nMore\n" + other + block + "Society\nMore\n" + block
    result = extract(text, "sections")
    assert [(i.id, i.categories) for i in result.items] == [
        (1, ["Society", "News"]),
        (2, ["News"]),
    ]


def test_trap_missing_blank_line_between_titled_items() -> None:
    text = (
        "Law\nFirst 21.05.2025\n"
        f"Body one.Source : {LINK.format(slug='a', id=1)}\n"
        f"Second 20.05.2025\nSource : {LINK.format(slug='b', id=2)}\n"
        f"Third 20.05.2025\nBody three.Source : {LINK.format(slug='c', id=3)}\n"
    )
    result = extract(text, "titled-list")
    assert [(i.agency, i.title, i.body_text) for i in result.items] == [
        ("a", "First", "Body one."),
        ("b", "Second", ""),
        ("c", "Third", "Body three."),
    ]


def test_trap_last_full_text_item_without_footer_is_incomplete() -> None:
    text = "First\nPara one.\n01.08.2025, 14:40 10\nSecond\nPara cut of"
    result = extract(text, "full-text", agency="primeminister")
    first, cut = result.items
    assert first.published == datetime(2025, 8, 1, 14, 40, tzinfo=ALMATY)
    assert (cut.title, cut.body_text, cut.published, cut.incomplete) == (
        "Second",
        "Para cut of",
        None,
        True,
    )
    assert cut.id == synthetic_id("primeminister", "Second", None)
    assert result.rejects == []  # kept as an item; the pipeline reports incomplete items


def test_trap_cut_off_right_after_the_title() -> None:
    text = "First\nPara.\n01.08.2025, 14:40 10\nOnly a title survived"
    cut = extract(text, "full-text", agency="primeminister").items[-1]
    assert (cut.title, cut.body_text, cut.body_html, cut.incomplete) == (
        "Only a title survived",
        "",
        "",
        True,
    )


def test_trap_item_with_only_a_source_line() -> None:
    text = f"Law\nA title 21.05.2025\nSource : {LINK.format(slug='mod', id=997786)}\n"
    (item,) = extract(text, "titled-list").items
    assert (item.title, item.body_text, item.summary, item.body_html) == ("A title", "", "", "")
    assert item.url == LINK.format(slug="mod", id=997786)


@pytest.mark.parametrize(
    "trailer",
    [
        "Text.Source : {url}",
        "Text.  Source   :   {url}   ",
        "Text.Source: {url}",
        "Text.\tSource :\t{url}",
        "Text. Source :{url}",
    ],
)
def test_source_trailer_spacing(trailer: str) -> None:
    url = LINK.format(slug="pravstat", id=1171712)
    text = "News\nMore\nTitle\n27.02.2026\n" + trailer.format(url=url) + "\n"
    (item,) = extract(text, "sections").items
    assert (item.agency, item.id, item.url, item.body_text) == ("pravstat", 1171712, url, "Text.")


def test_only_a_trailing_date_leaves_the_title() -> None:
    text = (
        "Law\nPlan for 01.06.2025 – 05.06.2025 approved 20.05.2025\n"
        f"Body.Source : {LINK.format(slug='a', id=1)}\n"
    )
    (item,) = extract(text, "titled-list").items
    assert item.title == "Plan for 01.06.2025 – 05.06.2025 approved"
    assert item.published == datetime(2025, 5, 20, tzinfo=ALMATY)


# ---------------------------------------------------------------- robustness and errors


@pytest.mark.parametrize(
    ("layout", "text", "reason"),
    [
        ("sections", "News\nMore\nTitle\n27.02.2026\nBody with no link\n", "no 'Source :' link"),
        ("titled-list", "Law\nTitle 20.05.2025\nBody with no link\n", "no 'Source :' link"),
        (
            "sections",
            "News\nMore\nTitle\n31.02.2026\nB.Source : " + LINK.format(slug="a", id=1),
            "invalid date 31.02.2026",
        ),
        (
            "titled-list",
            "Law\nTitle 20.05.2025\nB.Source : https://example.org/1\n",
            "not a gov.kz news item",
        ),
    ],
)
def test_unreadable_block_is_skipped_and_never_silent(layout: str, text: str, reason: str) -> None:
    with pytest.raises(SnapshotError, match=f"no items found for layout {layout}") as err:
        extract(text, layout)
    assert reason in err.value.reason


def test_junk_lines_do_not_crash() -> None:
    text = (
        "Menu\n\tNews  \nMore\nrandom junk\n  Title  \n 27.02.2026 \n"
        f"Body.Source : {LINK.format(slug='a', id=1)}   \n"
        f"27.02.2026\nSource : {LINK.format(slug='a', id=2)}\nFooter\n"
    )
    result = extract(text, "sections")
    assert [(i.id, i.title, i.categories) for i in result.items] == [(1, "Title", ["News"])]
    assert [r.reason for r in result.rejects] == ["not part of any item"] * 5
    assert [r.raw for r in result.rejects] == [
        "Menu", "random junk", "27.02.2026", f"Source : {LINK.format(slug='a', id=2)}", "Footer"
    ]


@pytest.mark.parametrize(
    ("layout", "text"),
    [
        ("sections", "nothing here\nat all\n"),
        ("titled-list", "Law\n"),
        ("full-text", "01.08.2025, 14:40 10\n"),
    ],
)
def test_no_items_raises(layout: str, text: str) -> None:
    with pytest.raises(SnapshotError, match=f"no items found for layout {layout}"):
        extract(text, layout, agency="x")


# ---------------------------------------------------------------- poison: one block, one reject


def test_control_characters_and_surrogates_are_cleaned_not_fatal() -> None:
    text = (
        "News\x07\nMore\nTi\ud800tle\x00 with \u202ebidi\n27.02.2026\n"
        f"Bo\x1bdy\ud83d.Source : {LINK.format(slug='a', id=5)}\r\n"
    )
    assert detect_layout(text) == "sections"
    (item,) = extract(text, "sections").items
    assert item.title == "Ti\ufffdtle with bidi"
    assert item.body_text == "Body\ufffd."
    assert item.categories == ["News"]


@pytest.mark.parametrize(
    ("block", "reason", "item_id"),
    [
        ("Old\n01.01.0001\nB.Source : {link}", "date out of range", 7),
        ("New\n31.12.9999\nB.Source : {link}", "date out of range", 7),
        ("Gone\n00.01.2026\nB.Source : {link}", "invalid date 00.01.2026", 7),
    ],
)
def test_impossible_dates_are_rejects_and_cost_nothing_else(
    block: str, reason: str, item_id: int
) -> None:
    good = [f"Good\n27.02.2026\nG.Source : {LINK.format(slug='a', id=n)}\n" for n in (1, 2)]
    bad = block.format(link=LINK.format(slug="b", id=7)) + "\n"
    text = "News\nMore\n" + good[0] + bad + good[1]
    result = extract(text, "sections", url="file:///p.txt")
    assert [i.id for i in result.items] == [1, 2]
    (reject,) = result.rejects
    assert (reject.reason, reject.item_id, reject.agency) == (reason, item_id, "b")
    assert reject.raw == bad.rstrip("\n") and reject.url == "file:///p.txt"


@pytest.mark.parametrize("item_id", ["0", "9" * 20, "9" * 5000])
def test_ids_that_are_none_are_rejects(item_id: str) -> None:
    text = (
        f"Law\nA 21.05.2025\nSource : {LINK.format(slug='a', id=1)}\n"
        f"B 21.05.2025\nSource : {LINK.format(slug='a', id=item_id)}\n"
    )
    result = extract(text, "titled-list")
    assert [i.id for i in result.items] == [1]
    (reject,) = result.rejects
    assert reject.reason.startswith("bad id '") and reject.item_id is None


def test_full_text_poison_footers() -> None:
    text = (
        "First\nPara.\n01.08.2025, 14:40 10\n"
        "Bad hour\nPara.\n01.08.2025, 25:61 10\n"
        "Year one\nPara.\n01.01.0001, 10:00 10\n"
        "Absurd views\nPara.\n02.08.2025, 10:00 " + "9" * 5000 + "\n"
    )
    result = extract(text, "full-text", agency="primeminister")
    assert [(i.title, i.views) for i in result.items] == [("First", 10), ("Absurd views", None)]
    assert [(r.reason, r.agency, r.raw.split("\n")[0]) for r in result.rejects] == [
        ("invalid date or time in footer '01.08.2025, 25:61 10'", "primeminister", "Bad hour"),
        ("date out of range", "primeminister", "Year one"),
    ]


def test_unknown_layout_and_language_and_missing_agency() -> None:
    with pytest.raises(SnapshotError, match="unknown layout 'cards'") as err:
        extract("x\n", "cards")
    assert err.value.path == "snapshot:t"
    with pytest.raises(SnapshotError, match="unknown language 'de'"):
        extract_snapshot("x", layout="sections", lang="de", source="s")
    with pytest.raises(SnapshotError, match="needs an agency"):
        extract("T\nP\n01.08.2025, 14:40 1\n", "full-text")


def test_full_text_url_is_stable_and_not_an_item_page() -> None:
    text = "T\nP\n01.08.2025, 14:40 1\n"
    a = extract(text, "full-text", agency="primeminister").items[0]
    # The same item on a later copy of the page, below a newer item.
    later = "Newer\nQ\n02.08.2025, 10:00 5\n" + text
    b = extract(later, "full-text", agency="primeminister").items[1]
    assert (a.id, a.url) == (b.id, b.url)
    assert not ITEM_URL_RE.match(a.url)
    assert a.url.startswith(
        "https://www.gov.kz/memleket/entities/primeminister/press/news?lang=en#"
    )


def test_summary_cuts_at_a_word_boundary() -> None:
    words = " ".join(f"word{n:03d}" for n in range(100))  # 799 characters
    text = f"T\n{words}\n01.08.2025, 14:40 1\n"
    summary = extract(text, "full-text", agency="a").items[0].summary
    assert summary.endswith("…") and len(summary) <= 301
    assert re.fullmatch(r"(word\d{3} )*word\d{3}…", summary)


# ---------------------------------------------------------------- decode_snapshot


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"  \n\t\r\n ", "only white space"),
        (b"\xef\xbb\xbf\n", "only white space"),
        (b"News\x00More", "binary file (contains NUL bytes)"),
        (bytes(range(1, 32)) * 4, "binary file (many control characters)"),
        ("News\nCaf\u00e9 opened\n".encode("latin-1"), "byte 0xE9 at byte offset 8 (line 2)"),
        ("News\nMore\n".encode("utf-16"), "binary file"),
    ],
)
def test_decode_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(SnapshotError) as err:
        decode_snapshot(data, "page.txt")
    assert reason in err.value.reason
    assert err.value.path == "page.txt"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\xef\xbb\xbfNews\nMore\n", "News\nMore\n"),
        (b"News\r\nMore\r\n", "News\nMore\n"),
        (b"News\rMore\r", "News\nMore\n"),
        ("Қазақстан\r\n".encode(), "Қазақстан\n"),
    ],
)
def test_decode_accepts(data: bytes, text: str) -> None:
    assert decode_snapshot(data, "page.txt") == text


def test_crlf_page_extracts_like_lf() -> None:
    raw = (SEEDS / "001_28f041a508a280bb.txt").read_bytes()
    lf = extract_seed("001_28f041a508a280bb.txt").items
    crlf_text = decode_snapshot(b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n"), "crlf.txt")
    crlf = extract_snapshot(
        crlf_text, layout="titled-list", lang="en", source="snapshot:001_28f041a508a280bb.txt"
    ).items
    assert [serialize(i) for i in crlf] == [serialize(i) for i in lf]
