"""The archive: save semantics (new / unchanged / updated), versions, queries, FTS, crawl log,
agencies, files on disk and failure modes."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from crawler.errors import StoreError
from crawler.items import NewsItem, item_url
from crawler.liveness import start_time
from crawler.problems import Problem, ProblemKind
from crawler.store import CHUNK, Archive, SaveResult
from crawler.store_monitor import Target
from crawler.timeutil import ALMATY, almaty

T0 = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
PUBLISHED = almaty(date(2026, 8, 31), time(10, 30))


def iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def make_item(**over: Any) -> NewsItem:
    fields: dict[str, Any] = {
        "agency": "mod",
        "id": 1001,
        "lang": "ru",
        "title": "Министр обороны провёл совещание",
        "published": PUBLISHED,
        "body_text": "На совещании обсудили подготовку к учениям.",
        "body_html": "<p>На совещании обсудили подготовку к учениям.</p>",
        "categories": ["Новости"],
        "source": "api",
    }
    fields |= over
    fields.setdefault("url", item_url(fields["agency"], fields["id"], fields["lang"]))
    return NewsItem(**fields)


def incomplete(**over: Any) -> NewsItem:
    return make_item(published=None, incomplete=True, **over)


def get(archive: Archive, item: NewsItem) -> dict[str, Any]:
    row = archive.get_item(*item.key)
    assert row is not None
    return row


# --- new, unchanged, updated --------------------------------------------------------------


def test_a_new_item_is_stored_with_its_first_version(archive: Archive) -> None:
    crawl = archive.begin_crawl("replay", now=T0)
    item = make_item(views=12, image="https://www.gov.kz/uploads/a.jpg", summary="Кратко")

    assert archive.save_item(item, crawl_id=crawl, now=T0) is SaveResult.NEW

    row = get(archive, item)
    assert row == {
        "agency": "mod", "id": 1001, "lang": "ru", "url": item.url, "title": item.title,
        "published": "2026-08-31T10:30:00+05:00", "summary": "Кратко",
        "body_text": item.body_text, "body_html": item.body_html, "categories": ["Новости"],
        "image": "https://www.gov.kz/uploads/a.jpg", "views": 12, "incomplete": False,
        "source": "api", "content_hash": Archive.content_hash(item), "version": 1,
        "updated": iso(T0), "first_seen": iso(T0), "last_seen": iso(T0),
    }  # fmt: skip
    [version] = archive.versions(*item.key)
    assert version == {
        "agency": "mod", "id": 1001, "lang": "ru", "version": 1, "title": item.title,
        "body_text": item.body_text, "body_html": item.body_html,
        "content_hash": row["content_hash"], "seen_at": iso(T0), "crawl_id": crawl,
    }  # fmt: skip


def test_saving_the_same_item_twice_changes_only_last_seen(archive: Archive) -> None:
    item = make_item(views=5, image="a.jpg", summary="s")
    archive.save_item(item, now=T0)
    before, versions = get(archive, item), archive.versions(*item.key)

    assert archive.save_item(make_item(views=5, image="a.jpg", summary="s"), now=T1) is (
        SaveResult.UNCHANGED
    )

    assert get(archive, item) == {**before, "last_seen": iso(T1)}
    assert archive.versions(*item.key) == versions


@pytest.mark.parametrize(
    ("first", "second", "field", "expected"),
    [
        ({"views": None}, {"views": 42}, "views", 42),
        ({"views": 42}, {"views": None}, "views", 42),
        ({"views": 42}, {"views": 50}, "views", 50),
        ({"categories": ["a", "b"]}, {"categories": ["c", "a"]}, "categories", ["a", "b", "c"]),
        ({"categories": []}, {"categories": ["x", "x"]}, "categories", ["x"]),
        ({"image": None}, {"image": "new.jpg"}, "image", "new.jpg"),
        ({"image": "old.jpg"}, {"image": "new.jpg"}, "image", "old.jpg"),
        ({"summary": ""}, {"summary": "new"}, "summary", "new"),
        ({"summary": "old"}, {"summary": "new"}, "summary", "old"),
    ],
)
def test_an_unchanged_item_refreshes_its_metadata(
    archive: Archive, first: dict, second: dict, field: str, expected: Any
) -> None:
    archive.save_item(make_item(**first), now=T0)
    before = get(archive, make_item())

    assert archive.save_item(make_item(**second), now=T1) is SaveResult.UNCHANGED

    assert get(archive, make_item()) == {**before, field: expected, "last_seen": iso(T1)}
    assert len(archive.versions("mod", 1001, "ru")) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Министр обороны провёл расширенное совещание"},
        {"body_text": "Текст исправлен."},
        {"body_html": "<p>На совещании обсудили подготовку к учениям.</p><p>Фото</p>"},
    ],
)
def test_a_content_change_is_an_update_with_a_new_version(
    archive: Archive, change: dict[str, str]
) -> None:
    archive.save_item(make_item(), crawl_id=None, now=T0)
    crawl = archive.begin_crawl("crawl", "mod/ru", now=T1)
    edited = make_item(**change, source="rss")

    assert archive.save_item(edited, crawl_id=crawl, now=T1) is SaveResult.UPDATED

    row = get(archive, edited)
    [field] = change
    assert row[field] == change[field]
    assert row["version"] == 2
    assert row["content_hash"] == Archive.content_hash(edited) != Archive.content_hash(make_item())
    assert (row["first_seen"], row["updated"], row["last_seen"]) == (iso(T0), iso(T1), iso(T1))
    assert row["source"] == "rss"
    first, second = archive.versions(*edited.key)
    original = getattr(make_item(), field)
    assert (first["version"], first[field], first["crawl_id"]) == (1, original, None)
    assert (second["version"], second[field]) == (2, change[field])
    assert (second["seen_at"], second["crawl_id"]) == (iso(T1), crawl)
    # Saving the edited item again is not another version.
    assert archive.save_item(edited, now=T2) is SaveResult.UNCHANGED
    assert len(archive.versions(*edited.key)) == 2


@pytest.mark.parametrize(("new_summary", "expected"), [("", "old"), ("new", "new")])
def test_an_update_keeps_the_old_summary_only_when_none_is_given(
    archive: Archive, new_summary: str, expected: str
) -> None:
    archive.save_item(make_item(summary="old"), now=T0)
    archive.save_item(make_item(summary=new_summary, body_text="edited"), now=T1)
    assert get(archive, make_item())["summary"] == expected


@pytest.mark.parametrize("body_changes", [False, True])
def test_an_incomplete_item_that_arrives_complete_is_updated(
    archive: Archive, body_changes: bool
) -> None:
    archive.save_item(incomplete(body_text="Начало текста"), now=T0)
    assert get(archive, make_item())["incomplete"] is True
    assert archive.feed_items() == []

    complete = make_item(body_text="Начало текста" + (" и конец." if body_changes else ""))
    assert archive.save_item(complete, now=T1) is SaveResult.UPDATED

    row = get(archive, complete)
    assert (row["incomplete"], row["published"]) == (False, "2026-08-31T10:30:00+05:00")
    assert row["body_text"] == complete.body_text
    assert row["version"] == (2 if body_changes else 1)
    assert row["updated"] == (iso(T1) if body_changes else iso(T0))
    assert [r["version"] for r in archive.versions(*complete.key)] == [1, 2][: row["version"]]
    assert [r["id"] for r in archive.feed_items()] == [1001]


def test_a_complete_item_is_never_downgraded_by_an_incomplete_copy(archive: Archive) -> None:
    archive.save_item(make_item(views=3), now=T0)
    before = get(archive, make_item())

    cut_off = incomplete(body_text="На совещ", views=99, categories=["Другое"], image="x.jpg")
    assert archive.save_item(cut_off, now=T1) is SaveResult.UNCHANGED

    assert get(archive, make_item()) == {**before, "last_seen": iso(T1)}
    assert len(archive.versions(*cut_off.key)) == 1


def test_an_incomplete_item_is_archived_but_not_in_feeds(archive: Archive) -> None:
    assert archive.save_item(incomplete(), now=T0) is SaveResult.NEW
    assert get(archive, make_item())["published"] is None
    assert archive.feed_items() == []
    assert archive.feed_groups() == []


@pytest.mark.parametrize(
    ("published", "stored"),
    [
        (datetime(2026, 8, 31, 5, 30, tzinfo=UTC), "2026-08-31T10:30:00+05:00"),
        (datetime(2023, 12, 31, 18, 0, tzinfo=UTC), "2024-01-01T00:00:00+06:00"),
        (almaty(date(2024, 3, 1), time(9, 0)), "2024-03-01T09:00:00+05:00"),
    ],
)
def test_published_is_stored_in_gov_kz_local_time(
    archive: Archive, published: datetime, stored: str
) -> None:
    archive.save_item(make_item(published=published), now=T0)
    assert get(archive, make_item())["published"] == stored


def test_timestamps_are_utc_with_an_offset_whatever_now_is(archive: Archive) -> None:
    archive.save_item(make_item(), now=almaty(date(2026, 9, 1), time(11, 0)))
    assert get(archive, make_item())["first_seen"] == "2026-09-01T06:00:00+00:00"
    archive.save_item(make_item())  # default now: the current time, still with an offset
    assert datetime.fromisoformat(get(archive, make_item())["last_seen"]).utcoffset() == timedelta()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"title": "x"}, {"title": "y"}),
        ({"body_text": "x"}, {"body_text": "y"}),
        ({"body_html": "<p>x</p>"}, {"body_html": "<p>y</p>"}),
        ({"title": "ab", "body_html": ""}, {"title": "a", "body_html": "b"}),
    ],
)
def test_content_hash_sees_title_and_both_bodies(a: dict, b: dict) -> None:
    assert Archive.content_hash(make_item(**a)) != Archive.content_hash(make_item(**b))


def test_content_hash_ignores_metadata() -> None:
    plain = make_item()
    decorated = make_item(views=7, categories=["x"], image="i.jpg", summary="s", source="rss")
    assert Archive.content_hash(plain) == Archive.content_hash(decorated)


# --- crash safety and concurrency ---------------------------------------------------------


def test_a_crash_mid_save_leaves_nothing_half_written(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither the item, its version nor its feed mark: a save that fails moves no mark, so
    the feeds are never told of a change the archive does not hold. (The search index is
    written after the item and its version, before the feed mark.)"""

    def crash(*args: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(Archive, "_index_search", crash)
    with pytest.raises(RuntimeError):
        archive.save_item(make_item(), now=T0)
    assert archive.get_item("mod", 1001, "ru") is None
    assert archive.versions("mod", 1001, "ru") == []
    assert archive.feeds_behind() == {}
    assert archive.db["feed_marks"].count == 0

    monkeypatch.undo()
    archive.save_item(make_item(), now=T0)
    before = get(archive, make_item())
    monkeypatch.setattr(Archive, "_index_search", crash)
    with pytest.raises(RuntimeError):
        archive.save_item(make_item(title="Правка"), now=T1)
    assert get(archive, make_item()) == before
    assert len(archive.versions("mod", 1001, "ru")) == 1
    assert archive.feeds_behind() == {("mod", "ru"): 1}


def test_a_reader_sees_whole_items_while_a_writer_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "news.db"
    writer, reader = Archive.open(path), Archive.open(path)
    seen: list[tuple[Any, int]] = []
    original = writer._index_search

    def index_then_peek(entries: list[tuple[NewsItem, datetime]]) -> None:
        original(entries)
        # The writer's transaction is open: the reader must see the state before it.
        for item, _ in entries:
            row = reader.get_item(*item.key)
            seen.append((row and row["version"], len(reader.versions(*item.key))))

    monkeypatch.setattr(writer, "_index_search", index_then_peek)
    writer.save_item(make_item(), now=T0)
    writer.save_item(make_item(title="Правка"), now=T1)

    assert seen == [(None, 0), (1, 1)]
    assert get(reader, make_item())["title"] == "Правка"
    assert len(reader.versions("mod", 1001, "ru")) == 2
    writer.close()
    reader.close()


# --- queries ------------------------------------------------------------------------------


def test_known_hashes_returns_only_stored_ids_of_that_agency_and_language(
    archive: Archive,
) -> None:
    for item_id in (1, 2, 3):
        archive.save_item(make_item(id=item_id, title=f"Новость {item_id}"), now=T0)
    archive.save_item(make_item(id=4, lang="kk"), now=T0)
    archive.save_item(make_item(id=5, agency="mvd"), now=T0)

    hashes = archive.known_hashes("mod", "ru", [1, 3, 4, 5, 99])

    expected = {i: Archive.content_hash(make_item(id=i, title=f"Новость {i}")) for i in (1, 3)}
    assert hashes == expected
    assert archive.known_hashes("mod", "ru", []) == {}


def test_known_hashes_handles_more_ids_than_one_query_takes(archive: Archive) -> None:
    stored = range(1, CHUNK + 101)
    for item_id in stored:
        archive.save_item(make_item(id=item_id), now=T0)
    hashes = archive.known_hashes("mod", "ru", range(1, 2 * CHUNK + 1))
    assert sorted(hashes) == list(stored)


def test_feed_items_are_complete_newest_first_and_filtered(archive: Archive) -> None:
    day = date(2026, 8, 30)
    archive.save_item(make_item(id=10, published=almaty(day, time(9))), now=T0)
    archive.save_item(make_item(id=12, published=almaty(day, time(9))), now=T0)
    archive.save_item(make_item(id=11, published=almaty(day, time(18))), now=T0)
    archive.save_item(make_item(id=13, lang="kk", published=almaty(day, time(20))), now=T0)
    archive.save_item(make_item(id=14, agency="mvd", published=almaty(day, time(21))), now=T0)
    archive.save_item(incomplete(id=15), now=T0)

    assert [r["id"] for r in archive.feed_items()] == [14, 13, 11, 12, 10]
    assert [r["id"] for r in archive.feed_items(agency="mod")] == [13, 11, 12, 10]
    assert [r["id"] for r in archive.feed_items(agency="mod", lang="ru")] == [11, 12, 10]
    assert [r["id"] for r in archive.feed_items(lang="ru", limit=2)] == [14, 11]
    row = archive.feed_items(agency="mvd")[0]
    assert (row["categories"], row["incomplete"]) == (["Новости"], False)
    assert archive.feed_groups() == [("mod", "kk"), ("mod", "ru"), ("mvd", "ru")]


def test_translations_map_each_stored_language_to_its_url(archive: Archive) -> None:
    for lang in ("ru", "kk", "en"):
        archive.save_item(make_item(lang=lang), now=T0)
    archive.save_item(make_item(id=1002, lang="en"), now=T0)
    assert archive.translations("mod", 1001) == {
        lang: item_url("mod", 1001, lang) for lang in ("en", "kk", "ru")
    }
    assert archive.translations("mod", 5) == {}


# --- full-text search ---------------------------------------------------------------------


@pytest.fixture
def searchable(archive: Archive) -> Archive:
    archive.save_item(make_item(id=1, title="Министр обороны провёл совещание"), now=T0)
    archive.save_item(
        make_item(id=2, lang="en", title="Defence minister met veterans", body_text="Veterans"),
        now=T0,
    )
    archive.save_item(
        make_item(id=3, lang="kk", title="ҚОРҒАНЫС министрлігі", body_text="Әскери жаттығу өтті"),
        now=T0,
    )
    return archive


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("minister", [2]),
        ("VETERANS", [2]),
        ("министр", [1]),
        ("МИНИСТР обороны", [1]),
        ("учениям", [1]),
        ("қорғаныс", [3]),
        ("әскери жаттығу", [3]),
        ("министр veterans", []),
    ],
)
def test_search_finds_words_in_title_and_body(
    searchable: Archive, query: str, ids: list[int]
) -> None:
    assert [row["id"] for row in searchable.search(query)] == ids


@pytest.mark.parametrize(
    "query", ["", "   ", "NOT", '"', "*", "title:x", "(", "AND OR", "-", 'a"b', "NEAR(x y)"]
)
def test_search_takes_fts_syntax_in_user_input_literally(searchable: Archive, query: str) -> None:
    assert searchable.search(query) == []


def test_search_follows_edits_and_decodes_rows(searchable: Archive) -> None:
    searchable.save_item(make_item(id=1, title="Совещание", body_text="Учения отменены"), now=T1)
    assert searchable.search("министр") == []
    [row] = searchable.search("отменены")
    assert (row["id"], row["categories"], row["incomplete"]) == (1, ["Новости"], False)
    # the item's columns, no rowid; plus what a hit adds (tests/test_search.py)
    assert row.pop("snippet") == "Учения отменены" and row.pop("agency_name") is None
    assert row == searchable.get_item("mod", 1, "ru")
    searchable.save_item(make_item(id=1, title="Совещание", body_text="Учения отменены"), now=T2)
    assert [r["id"] for r in searchable.search("отменены")] == [1]


def test_a_quoted_phrase_is_a_phrase(searchable: Archive) -> None:
    # sqlite-utils' quote_fts(): quotes group words into a phrase, and only then.
    assert [row["id"] for row in searchable.search('"министр обороны"')] == [1]
    assert searchable.search('"обороны министр"') == []
    assert [row["id"] for row in searchable.search("обороны министр")] == [1]


def test_search_limit(archive: Archive) -> None:
    for item_id in range(1, 6):
        archive.save_item(make_item(id=item_id), now=T0)
    assert len(archive.search("совещание", limit=3)) == 3


# --- agencies and crawls ------------------------------------------------------------------


def test_upsert_agency_never_erases_earlier_names(archive: Archive) -> None:
    archive.upsert_agency(
        "mod", names={"kk": "Қорғаныс министрлігі", "ru": "Минобороны"}, kind="ministry", now=T0
    )
    archive.upsert_agency("mod", names={"en": "Ministry of Defence", "ru": ""}, now=T1)
    archive.upsert_agency("mod", now=T2)

    [agency] = archive.agencies()
    assert agency == {
        "slug": "mod", "name_kk": "Қорғаныс министрлігі", "name_ru": "Минобороны",
        "name_en": "Ministry of Defence", "enabled": True, "parent": None, "kind": "ministry",
        "first_seen": iso(T0), "updated": iso(T1), "source": None,
    }  # fmt: skip


def test_upsert_agency_updates_fields(archive: Archive) -> None:
    archive.upsert_agency("kgd", names={"ru": "КГД"}, now=T0)
    archive.upsert_agency("mfa-de", enabled=False, parent="mfa", kind="embassy", now=T0)
    archive.upsert_agency("kgd", parent="minfin", enabled=None, now=T1)

    kgd, embassy = archive.agencies()
    assert (kgd["slug"], kgd["parent"], kgd["enabled"], kgd["updated"]) == (
        "kgd", "minfin", True, iso(T1),
    )  # fmt: skip
    assert (embassy["enabled"], embassy["kind"], embassy["name_ru"]) == (False, "embassy", None)


@pytest.mark.parametrize(
    "kwargs", [{"names": {"de": "Verteidigung"}}, {"colour": "red"}, {"first_seen": "x"}]
)
def test_upsert_agency_refuses_unknown_fields(archive: Archive, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        archive.upsert_agency("mod", **kwargs)
    assert archive.agencies() == []


def test_crawl_bookkeeping(archive: Archive) -> None:
    first = archive.begin_crawl("replay", "seeds", now=T0)
    second = archive.begin_crawl("crawl", now=T1)
    assert second > first
    assert archive.crawls()[0]["status"] == "running"
    problems = [
        Problem(ProblemKind.HTTP_ERROR, "mod/ru", "400 notAllowed", "https://x.test/api"),
        Problem(ProblemKind.REJECTED, "mod/ru", "no id"),
        Problem(ProblemKind.STORE, "feeds", "ошибка"),
    ]

    archive.finish_crawl(
        first,
        status="partial",
        counts={"found": 7, "new": 5, "updated": 1, "unchanged": 1, "rejected": 2, "errors": 1},
        errors=["mod/ru: 400 notAllowed", "ошибка"],
        problems=problems,
        strategy="k6",
        requests=12,
        now=T2,
    )

    newest, oldest = archive.crawls()
    assert newest["id"] == second and newest["finished"] is None
    assert (newest["pid"], newest["pid_started"]) == (os.getpid(), start_time(os.getpid()))
    assert newest["problems"] == []
    assert oldest == {
        "id": first, "kind": "replay", "target": "seeds", "started": iso(T0),
        "finished": iso(T2), "status": "partial", "found": 7, "new": 5, "updated": 1,
        "unchanged": 1, "rejected": 2, "incomplete": 0,
        "errors": ["mod/ru: 400 notAllowed", "ошибка"], "error_count": 2, "problems": problems,
        "strategy": "k6", "requests": 12, "pid": os.getpid(),
        "pid_started": start_time(os.getpid()),
    }  # fmt: skip
    assert [c["id"] for c in archive.crawls(limit=1)] == [second]
    # The column is JSON that people read in Datasette: the text stays readable.
    [raw] = archive.db.execute("SELECT problems FROM crawls WHERE id = ?", [first]).fetchall()
    assert "ошибка" in raw[0] and '"kind": "store"' in raw[0]


def test_begin_crawl_records_the_process_it_is_given(archive: Archive) -> None:
    crawl = archive.begin_crawl("crawl", "mod/ru", pid=os.getppid(), now=T0)
    [row] = archive.crawls()
    assert (row["id"], row["pid"], row["pid_started"]) == (
        crawl, os.getppid(), start_time(os.getppid()),
    )  # fmt: skip


def test_a_crawl_row_decodes_problems_of_a_kind_it_does_not_know(archive: Archive) -> None:
    crawl = archive.begin_crawl("crawl", now=T0)
    archive.db.execute(
        "UPDATE crawls SET problems = ? WHERE id = ?",
        ['[{"kind": "from_a_newer_version", "target": "mod/ru", "message": "m"}]', crawl],
    )
    assert archive.crawls()[0]["problems"] == [Problem(ProblemKind.UNEXPECTED, "mod/ru", "m")]


@pytest.mark.parametrize(
    ("crawl_id", "status"), [(None, "done"), (None, "skipped"), (999, "ok"), (999, "killed")]
)
def test_finish_crawl_refuses_bad_input(
    archive: Archive, crawl_id: int | None, status: str
) -> None:
    crawl_id = crawl_id or archive.begin_crawl("crawl", now=T0)
    with pytest.raises(ValueError):
        archive.finish_crawl(crawl_id, status=status, counts={}, errors=[])


# --- walk marks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "since",
    [
        T1,
        T1.astimezone(ALMATY),  # the same instant in gov.kz time
        T1 + timedelta(microseconds=600_000),  # walked_at is whole seconds
        datetime(2026, 9, 1, 12, 0),  # naive: gov.kz local time (07:00 UTC)
    ],
)
def test_walked_since_compares_instants_whatever_the_offset(
    archive: Archive, since: datetime
) -> None:
    monitor = archive.monitor
    monitor.set_high_water("mod", "ru", PUBLISHED, now=T0)
    monitor.set_high_water("mod", "kk", None, now=T1)  # an empty list is a walk too
    monitor.set_high_water("mvd", "ru", PUBLISHED, now=T2.astimezone(ALMATY))
    assert monitor.walked_since(since) == {Target("mod", "kk"), Target("mvd", "ru")}
    assert monitor.walked_since(T2 + timedelta(seconds=1)) == set()


# --- files on disk ------------------------------------------------------------------------


def test_open_creates_the_directory_uses_wal_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "data" / "deep" / "news.db"
    archive = Archive.open(path)
    assert isinstance(archive.db, Database)
    assert archive.db.journal_mode == "wal"
    archive.save_item(make_item(), now=T0)
    archive.close()

    again = Archive.open(path)
    assert get(again, make_item())["first_seen"] == iso(T0)
    again.close()


def test_open_under_a_regular_file_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as err:
        Archive.open(blocker / "news.db")
    assert str(blocker) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: a read-only directory does not stop root from writing",
)
def test_open_in_a_read_only_directory_is_a_store_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="cannot open archive"):
            Archive.open(locked / "news.db")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("content", [b"hello, this is not sqlite" * 100, b"\x00\xff" * 4096])
def test_open_a_file_that_is_not_a_database_is_a_store_error(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "news.db"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not a database") as err:
        Archive.open(path)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == content


def test_a_write_failure_is_a_store_error(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path / "news.db")
    archive.save_item(make_item(), now=T0)
    # Another connection holds the write lock for longer than this one waits.
    blocker = sqlite3.connect(tmp_path / "news.db")
    blocker.execute("BEGIN IMMEDIATE")
    archive.db.execute("PRAGMA busy_timeout = 0")
    try:
        with pytest.raises(StoreError, match="locked"):
            archive.save_item(make_item(title="Правка"), now=T1)
    finally:
        blocker.rollback()
        blocker.close()
    assert archive.save_item(make_item(title="Правка"), now=T1) is SaveResult.UPDATED
    archive.close()
