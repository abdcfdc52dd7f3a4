"""Search: word forms in Russian, Kazakh and English, the query language, filters, newest-first
order, the shadow index kept current by the store and filled by its migration, hostile input,
and the `search` command."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from crawler.cli import main
from crawler.items import NewsItem, item_url
from crawler.migrations import MIGRATIONS, migrate
from crawler.search import QueryError, facet_token, index_text, kazakh_stem, parse, stem
from crawler.store import Archive
from crawler.timeutil import ALMATY

DAY0 = datetime(2026, 3, 2, 10, 0, tzinfo=ALMATY)


def make(item_id: int, lang: str, title: str, body: str = "", *, day: int = 0,
         agency: str = "mfa", **over: Any) -> NewsItem:
    fields: dict[str, Any] = {
        "agency": agency, "id": item_id, "lang": lang, "title": title, "body_text": body,
        "body_html": "", "published": DAY0 + timedelta(days=day), "categories": [],
        "source": "api", "url": item_url(agency, item_id, lang),
    }  # fmt: skip
    return NewsItem(**(fields | over))


# Each item a day newer than the one before, so newest first is highest id first.
ITEMS = [
    make(1, "ru", "Брифинг официального представителя МИД", "Состоялся брифинг в Астане."),
    make(2, "ru", "Итоги брифинга", "Подробности брифинга по вопросам Марокко.", day=1),
    make(3, "en", "Briefing on Kazakhstan and the EU", "The briefing covered trade.", day=2),
    make(4, "en", "Ministry briefings held", "Officials met in Morocco.", day=3),
    make(5, "kk", "Брифинг өтті", "Министрлігінде брифингте Қазақстан туралы айтылды.", day=4),
    make(6, "kk", "Сыртқы істер министрлігі", "Министрлікке хат келді.", day=5),
    make(7, "ru", "Министр обороны провёл совещание", "Учения пройдут в сентябре.", day=6,
         agency="mod"),
    make(8, "ru", "Совещание министра обороны", "Обороны министр выступил.", day=7,
         agency="mod"),
    make(9, "en", "Tender announced", "A tender for IT services.", day=8, agency="mod"),
]


@pytest.fixture
def archive(archive: Archive) -> Archive:
    """The shared empty archive (tests/conftest.py), holding ITEMS."""
    archive.upsert_agency("mfa", names={"en": "Ministry of Foreign Affairs",
                                        "ru": "Министерство иностранных дел"})
    for item in ITEMS:
        archive.save_item(item)
    return archive


def ids(hits: list[dict]) -> list[int]:
    return [hit["id"] for hit in hits]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("брифинг", [5, 2, 1]),
        ("брифинга", [5, 2, 1]),  # the genitive finds the nominative, and the Kazakh forms
        ("Брифингов", [2, 1]),  # a Russian plural: no Kazakh item has that ending
        ("briefings", [4, 3]),
        ("briefing", [4, 3]),
        ("брифин*", [5, 2, 1]),
        ("brief*", [4, 3]),
        ("брифинга*", [5, 2, 1]),  # a prefix longer than the key still finds it
        ("Kazakhstan OR Morocco", [4, 3]),
        ("Марокко OR Kazakhstan", [3, 2]),
        ("briefing Kazakhstan OR Morocco", [4, 3]),  # OR binds tighter than the space
        ('"министр обороны"', [8, 7]),  # a phrase of word forms: министра обороны too
        ('"обороны министр"', [8]),
        ("министр обороны", [8, 7]),
        ("брифинг -Астане", [5, 2]),
        ('брифинг -"итоги брифинга"', [5, 1]),
        ("briefing -Morocco -trade", []),
        ("министрлік", [6, 5]),  # Kazakh: министрлігі, министрлігінде, министрлікке
        ("министрлігі", [6, 5]),
        ("қазақстан", [5]),
        ("Қазақстанның", [5]),
        ("TENDER", [9]),
        ("ёлка", []),
        ("nothing-like-this", []),
    ],
)
def test_word_forms_and_the_query_language(archive: Archive, query: str,
                                           expected: list[int]) -> None:
    assert ids(archive.search(query)) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"lang": "ru"}, [2, 1]),
        ({"lang": "kk"}, [5]),
        ({"lang": "en"}, []),
        ({"agency": "mfa"}, [5, 2, 1]),
        ({"agency": "mod"}, []),
        ({"agency": "mf"}, []),  # a slug is a whole token, never a prefix
        ({"since": DAY0 + timedelta(days=1)}, [5, 2]),
        ({"since": "2026-03-06"}, [5]),  # a bare date: its midnight in Almaty
        ({"since": date(2026, 3, 7)}, []),
        ({"agency": "mfa", "lang": "ru", "since": DAY0}, [2, 1]),
    ],
)
def test_filters(archive: Archive, filters: dict[str, Any], expected: list[int]) -> None:
    assert ids(archive.search("брифинг", **filters)) == expected


def test_filters_narrow_without_a_prefix_match_of_slugs(archive: Archive) -> None:
    archive.save_item(make(20, "ru", "Брифинг посольства", agency="mfa-rabat", day=20))
    assert ids(archive.search("брифинг", agency="mfa")) == [5, 2, 1]
    assert ids(archive.search("брифинг", agency="mfa-rabat")) == [20]


def test_newest_first_by_publication_not_by_arrival(archive: Archive) -> None:
    archive.save_item(make(30, "en", "Tender results", day=-10, agency="mod"))  # stored last
    archive.save_item(make(31, "en", "Tender extended", day=30, agency="mod"))
    assert ids(archive.search("tender")) == [31, 9, 30]
    assert ids(archive.search("tender", limit=2)) == [31, 9]
    assert archive.search("tender", limit=0) == []


def test_a_hit_has_the_item_its_agency_name_and_a_snippet(archive: Archive) -> None:
    [hit] = archive.search("Астане")
    assert {k: v for k, v in hit.items() if k not in ("agency_name", "snippet")} == \
        archive.get_item("mfa", 1, "ru")
    assert hit["agency_name"] == "Министерство иностранных дел"  # in the hit's language
    assert "Астане" in hit["snippet"]
    [english] = archive.search("Morocco", lang="en")
    assert english["agency_name"] == "Ministry of Foreign Affairs"
    [unnamed] = archive.search("tender")
    assert unnamed["agency_name"] is None and unnamed["lang"] == "en"


def test_the_snippet_is_a_line_around_the_first_match() -> None:
    body = ("Вступление. " * 40) + "Главное: брифинги прошли\nуспешно. " + ("Конец. " * 40)
    snippet = parse("брифинг").snippet("Заголовок", body, "ru")
    assert "брифинги прошли успешно" in snippet and "\n" not in snippet
    assert snippet.startswith("…") and snippet.endswith("…") and len(snippet) < 300
    assert parse("нет").snippet("Заголовок", "Коротко.", "ru") == "Коротко."


def test_edits_and_completed_items_are_reindexed(archive: Archive) -> None:
    archive.save_item(make(9, "en", "Tender cancelled", "No tender this year.", day=8,
                           agency="mod"))
    assert ids(archive.search("cancelled")) == [9]
    assert ids(archive.search("services")) == []  # the old text is no longer found
    assert ids(archive.search("tender")) == [9]  # once, not once per version
    # An incomplete (undated) item is found by when it was first seen, then by its date.
    archive.save_item(make(40, "ru", "Тендер объявлен", published=None, incomplete=True))
    assert ids(archive.search("тендер")) == [40]
    archive.save_item(make(40, "ru", "Тендер объявлен", day=-5))
    assert ids(archive.search("тендер", since=DAY0 - timedelta(days=6))) == [40]
    assert ids(archive.search("тендер OR tender")) == [9, 40]


def test_an_unchanged_save_does_not_touch_the_index(archive: Archive) -> None:
    before = archive.db.execute("SELECT count(*) FROM items_search_keys").fetchone()
    archive.save_item(ITEMS[0])
    assert archive.db.execute("SELECT count(*) FROM items_search_keys").fetchone() == before


def test_search_stamp_grows_with_every_stored_change(archive: Archive) -> None:
    first = archive.search_stamp()
    archive.save_item(ITEMS[0])  # unchanged
    assert archive.search_stamp() == first
    archive.save_item(make(50, "en", "Tender again", day=50))
    assert archive.search_stamp() > first


@pytest.mark.parametrize(
    "query", ["", "   ", '"', "*", "(", "-", "--", '""', "OR", "OR OR", "- * ( ) :"]
)
def test_a_query_with_nothing_to_look_for_finds_nothing(archive: Archive, query: str) -> None:
    assert parse(query).empty
    assert archive.search(query) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("-брифинг", "not only words to leave out"),
        ('-"a b" -c', "not only words to leave out"),
        ("x" * 1001, "too long"),
        (" ".join(f"w{i}" for i in range(33)), "too many words"),
    ],
)
def test_a_query_that_cannot_run_is_a_query_error(archive: Archive, query: str,
                                                  message: str) -> None:
    with pytest.raises(QueryError, match=message):
        archive.search(query)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("NOT", []), ("AND OR", [3]), ("x AND y", []), ("NEAR(брифинг x)", []),
        ("title:брифинг", []), ("title: брифинг", []), ("{title}: брифинг", []),
        ('a"b', []), ("^брифинг", [5, 2, 1]), ("брифинг + Астане", [1]), ("'брифинг'", [5, 2, 1]),
        ("брифинг\x00Астане", []), ("\ud800", []), ("брифинг OR", [5, 2, 1]),
        ("OR брифинг", [5, 2, 1]), ("брифинг OR OR Kazakhstan", [5, 3, 2, 1]),
    ],
)
def test_fts5_syntax_in_user_input_is_inert(archive: Archive, query: str,
                                            expected: list[int]) -> None:
    # Operators other than OR are words or separators; "title:брифинг" is one run of two words.
    assert ids(archive.search(query)) == expected


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=80) | st.text(alphabet='"-*():^+ ORNTAxбф', max_size=30),
       lang=st.sampled_from([None, "ru", "kk", "en"]),
       agency=st.sampled_from([None, "mfa", "", "x'\"y"]))
def test_any_string_gives_results_or_a_query_error(archive: Archive, query: str,
                                                   lang: str | None, agency: str | None) -> None:
    try:
        hits = archive.search(query, agency=agency, lang=lang)
    except QueryError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    except sqlite3.Error as exc:  # the point of the test: never the database's own error
        pytest.fail(f"{query!r}: {exc}")
    assert all(hit["lang"] == lang for hit in hits if lang)


# --- the stemming rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "forms",
    [
        ["министрлік", "министрлігі", "министрлікке", "министрлігінің", "министрліктерінің"],
        ["брифинг", "брифинга", "брифингте", "брифингі"],
        ["жаттығу", "жаттығуы", "жаттығуға"],
        ["ел", "елдер", "елге"],
        ["қазақстан", "қазақстанға", "қазақстанның", "қазақстанда"],
    ],
)
def test_kazakh_forms_share_a_key(forms: list[str]) -> None:
    assert len({kazakh_stem(form) for form in forms}) == 1, [kazakh_stem(f) for f in forms]


@pytest.mark.parametrize("word", ["елі", "ана", "су", "ат"])
def test_kazakh_short_roots_are_kept(word: str) -> None:
    assert kazakh_stem(word) == word


@pytest.mark.parametrize(
    ("word", "prof", "key"),
    [("брифинга", "ru", "брифинг"), ("briefings", "ru", "brief"), ("briefings", "kk", "brief"),
     ("2026", "kk", "2026"), ("ёлки", "ru", stem("елки", "ru"))],
)
def test_stems(word: str, prof: str, key: str) -> None:
    assert stem(word, prof) == key


def test_index_text_keeps_word_order_for_phrases() -> None:
    assert index_text("Министр ОБОРОНЫ, Kazakhstan's briefings", "ru") == \
        "министр оборон kazakhstan s brief"
    assert facet_token("mfa-rabat") != facet_token("mfa") and " " not in facet_token("a b")


# --- the migration ----------------------------------------------------------------------------


def test_the_migration_indexes_existing_items_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    old = Database(path)
    migrate(old, stop_before="create_items_search")
    rows = [{"agency": "mfa", "id": n, "lang": ("ru", "kk", "en")[n % 3],
             "published": (DAY0 + timedelta(minutes=n)).isoformat(), "title": f"Брифинг {n}",
             "url": f"https://www.gov.kz/{n}", "body_text": "briefings", "content_hash": "h",
             "updated": "2026-03-01T00:00:00+00:00", "first_seen": "2026-03-01T00:00:00+00:00",
             "last_seen": "2026-03-01T00:00:00+00:00"} for n in range(2500)]  # fmt: skip
    rows.append({**rows[0], "id": 9999, "published": None})  # undated: by first_seen
    old["items"].insert_all(rows)
    old.close()

    archive = Archive.open(path)
    try:
        assert ids(archive.search("брифинга", limit=3)) == [2499, 2498, 2497]
        assert ids(archive.search("брифинг", lang="kk", limit=2)) == [2497, 2494]
        assert len(archive.search("briefing", limit=5000)) == 2501
        assert ids(archive.search("брифинг", since="2026-03-02T10:00:00+05:00", limit=1)) == \
            [2499]
    finally:
        archive.close()
    assert "create_items_search" in [fn.__name__ for fn in MIGRATIONS]


def test_the_hot_query_walks_the_index_in_order(archive: Archive) -> None:
    # No "USE TEMP B-TREE FOR ORDER BY": newest-first top-N stops at N, however common the word.
    plan = archive.db.execute(
        "EXPLAIN QUERY PLAN SELECT items.* FROM items_search "
        "JOIN items_search_keys AS k ON k.key = items_search.rowid "
        "JOIN items ON items.agency = k.agency AND items.id = k.id AND items.lang = k.lang "
        "WHERE items_search MATCH ? ORDER BY items_search.rowid DESC LIMIT 20", ["x"]
    ).fetchall()
    details = " | ".join(row[3] for row in plan)
    assert "TEMP B-TREE" not in details and "SCAN items " not in details, details


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def data(tmp_path: Path) -> Path:
    store = Archive.open(tmp_path / "news.db")
    for item in ITEMS:
        store.save_item(item)
    store.close()
    (tmp_path / "empty.toml").write_text("", encoding="utf-8")
    return tmp_path


def cli(data: Path, *args: str) -> int:
    return main(["--config", str(data / "empty.toml"), "search", "--data", str(data), *args])


def test_the_command_shows_language_and_agency(data: Path, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    assert cli(data, "брифинга") == 0
    out = capsys.readouterr().out
    assert "[kk] mfa/5" in out and "[ru] mfa/1" in out and out.rstrip().endswith("3 result(s)")
    assert out.index("mfa/5") < out.index("mfa/2") < out.index("mfa/1")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["брифинг", "--lang", "ru"], [2, 1]),
        (["брифинг", "--agency", "mfa", "--since", "2026-03-03", "--limit", "1"], [5]),
        (["Kazakhstan OR Morocco", "--lang", "en"], [4, 3]),
    ],
)
def test_the_command_filters_and_prints_json(data: Path, capsys: pytest.CaptureFixture[str],
                                             args: list[str], expected: list[int]) -> None:
    assert cli(data, *args, "--json") == 0
    hits = json.loads(capsys.readouterr().out)
    assert [hit["id"] for hit in hits] == expected
    assert set(hits[0]) == {"agency", "agency_name", "id", "lang", "published", "title", "url",
                            "snippet"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--", "-брифинг"], "argument query: a query needs a word"),
        (["x", "--agency", "no-such-agency-zz"], "unknown agency"),
        (["x", "--agency", "Bad Slug"], "not an agency slug"),
        (["x", "--since", "yesterday"], "not a date"),
        (["x", "--limit", "0"], "must be 1 or more"),
        (["x", "--lang", "de"], "invalid choice"),
    ],
)
def test_the_command_refuses_bad_usage_in_one_line(
    data: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse's own errors exit
        raise SystemExit(cli(data, *args))
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
