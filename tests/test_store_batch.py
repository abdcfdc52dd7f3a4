"""The archive at scale: a page of items in one transaction (Archive.save_items), an unchanged
item costing no write of its own, versions storing a text only once it is superseded, and the
per-group counts that spare the feed and status paths a scan of `items`."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scrapy.exceptions import DropItem
from scrapy.settings import Settings
from sqlite_utils import Database
from store_helpers import memory_archive

from crawler.errors import StoreError
from crawler.items import NewsItem, NewsPage, Reject, SyncMark, item_url
from crawler.migrations import migrate
from crawler.pipelines import ArchivePipeline, ValidateItemPipeline
from crawler.save_plan import SaveResult, distinct_runs
from crawler.store import Archive
from crawler.summary import summary_for
from crawler.timeutil import ALMATY

T0 = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
PUBLISHED = datetime(2026, 8, 31, 10, 0, tzinfo=ALMATY)


def news(item_id: int = 1, **over: Any) -> NewsItem:
    fields: dict[str, Any] = {
        "agency": "mod", "id": item_id, "lang": "ru",
        "title": f"Министр обороны провёл совещание {item_id}",
        "published": PUBLISHED + timedelta(minutes=item_id),
        "body_text": f"На совещании обсудили учения номер {item_id}.",
        "body_html": f"<p>На совещании обсудили учения номер {item_id}.</p>",
        "categories": ["Новости"], "source": "api",
    }  # fmt: skip
    fields |= over
    fields.setdefault("url", item_url(fields["agency"], fields["id"], fields["lang"]))
    return NewsItem(**fields)


class Statements:
    """The SQL a connection runs while the block runs."""

    def __init__(self, archive: Archive) -> None:
        self.conn = archive.db.conn
        self.sql: list[str] = []

    def __enter__(self) -> Statements:
        self.conn.set_trace_callback(self.sql.append)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.set_trace_callback(None)

    @property
    def commits(self) -> int:
        return sum(s.lstrip().upper().startswith("COMMIT") for s in self.sql)

    @property
    def writes(self) -> list[str]:
        return [s for s in self.sql if s.lstrip().upper().startswith(("INSERT", "UPDATE",
                                                                      "DELETE"))]


def state(archive: Archive) -> dict[str, Any]:
    """Everything a save writes, comparable between two archives."""
    db = archive.db
    keys = [(r["agency"], r["id"], r["lang"]) for r in db["items"].rows_where(order_by="rowid")]
    return {
        "items": list(db["items"].rows_where(order_by="agency, id, lang")),
        "versions": [archive.versions(*key) for key in keys],
        "raw_versions": list(db["item_versions"].rows_where(order_by="agency, id, lang, version")),
        "marks": list(db["feed_marks"].rows_where(order_by="agency, lang")),
        "counts": list(db["item_counts"].rows_where(order_by="agency, lang")),
        "search": [[(h["agency"], h["id"], h["lang"]) for h in archive.search(word, limit=50)]
                   for word in ("министр", "совещание", "учения", "правка")],
    }


# Sequences of saves (each inner list one batch, in order) that must end the same whether the
# items are saved one by one or a batch at a time.
SCENARIOS = {
    "new page": [[news(1), news(2), news(3, lang="kk"), news(4, agency="mvd")]],
    "quiet again": [[news(1), news(2)], [news(1), news(2)]],
    "metadata": [[news(1, views=3)], [news(1, views=9, categories=["А"], image="i.jpg")]],
    "edit": [[news(1), news(2)], [news(1, title="Правка заголовка"), news(2)]],
    "two edits": [[news(1)], [news(1, body_text="Правка")], [news(1, body_html="<p>x</p>")]],
    "cut off then whole": [
        [news(1, published=None, incomplete=True)],
        [news(1)],
    ],
    "never downgraded": [[news(1)], [news(1, published=None, incomplete=True)]],
    "same key twice in a page": [[news(1), news(1, title="Правка заголовка"), news(1)]],
    "same second": [[news(1, published=PUBLISHED), news(2, published=PUBLISHED),
                     news(1, lang="kk", published=PUBLISHED)]],
}


@pytest.mark.parametrize("batches", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_a_batch_ends_as_the_same_items_saved_one_by_one(batches: list[list[NewsItem]]) -> None:
    with memory_archive() as one, memory_archive() as many:
        for n, batch in enumerate(batches):
            now = T0 + timedelta(hours=n)
            singly = [one.save_item(item, crawl_id=None, now=now) for item in batch]
            assert many.save_items(batch, now=now) == singly
        assert state(many) == state(one)


def test_results_say_new_updated_unchanged(archive: Archive) -> None:
    assert archive.save_items([news(1), news(2)], now=T0) == [SaveResult.NEW] * 2
    assert archive.save_items([news(1), news(2, title="Правка"), news(3)], now=T1) == [
        SaveResult.UNCHANGED, SaveResult.UPDATED, SaveResult.NEW]
    assert archive.save_items([], now=T2) == []


def test_a_page_is_one_transaction(archive: Archive) -> None:
    page = [news(i) for i in range(1, 51)]
    with Statements(archive) as traced:
        archive.save_items(page, now=T0)
    assert traced.commits == 1


def test_an_unchanged_page_costs_one_read_and_one_write(archive: Archive) -> None:
    page = [news(i) for i in range(1, 51)]
    archive.save_items(page, now=T0)
    with Statements(archive) as traced:
        assert set(archive.save_items(page, now=T1)) == {SaveResult.UNCHANGED}
    reads = [s for s in traced.sql if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1 and traced.commits == 1
    [write] = traced.writes
    assert write.startswith("UPDATE items SET last_seen")
    assert {r["last_seen"] for r in archive.db["items"].rows} == {T1.isoformat()}


def test_a_page_bumps_each_feed_once_by_its_changes(archive: Archive) -> None:
    with Statements(archive) as traced:
        archive.save_items([news(1), news(2), news(3, lang="kk")], now=T0)
    bumps = [s for s in traced.writes if s.startswith("INSERT INTO feed_marks")]
    assert len(bumps) == 2
    assert archive.feeds_behind() == {("mod", "ru"): 2, ("mod", "kk"): 1}


def test_a_crash_mid_page_leaves_none_of_it(archive: Archive,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    archive.save_items([news(1)], now=T0)
    before = state(archive)

    def crash(*args: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Archive, "_index_search", crash)
    with pytest.raises(StoreError, match="disk I/O error"):
        archive.save_items([news(1, title="Правка"), news(2), news(3)], now=T1)
    assert state(archive) == before


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([1, 2, 3], [[1, 2, 3]]),
        ([1, 1], [[1], [1]]),
        ([1, 2, 1, 3, 2], [[1, 2], [1, 3, 2]]),
        ([], []),
    ],
)
def test_distinct_runs_never_repeat_a_key(items: list[int], expected: list[list[int]]) -> None:
    runs = distinct_runs(news(i) for i in items)
    assert [[item.id for item in run] for run in runs] == expected


# --- versions: a text stored once ------------------------------------------------------------


def test_the_current_version_holds_no_copy_of_the_text(archive: Archive) -> None:
    item = news(1)
    archive.save_items([item], crawl_id=None, now=T0)
    [raw] = archive.db["item_versions"].rows
    assert (raw["title"], raw["body_text"], raw["body_html"]) == (None, None, None)
    [version] = archive.versions(*item.key)
    assert (version["title"], version["body_text"], version["body_html"]) == (
        item.title, item.body_text, item.body_html)


def test_an_edit_leaves_the_old_text_with_its_version(archive: Archive) -> None:
    first, second, third = news(1), news(1, title="Правка"), news(1, body_text="Ещё правка")
    for n, item in enumerate((first, second, third)):
        archive.save_items([item], now=T0 + timedelta(hours=n))
    raw = list(archive.db["item_versions"].rows_where(order_by="version"))
    assert [r["title"] for r in raw] == [first.title, second.title, None]
    assert [r["body_text"] for r in raw] == [first.body_text, second.body_text, None]
    versions = archive.versions(*first.key)
    assert [(v["version"], v["title"], v["body_text"]) for v in versions] == [
        (1, first.title, first.body_text), (2, second.title, second.body_text),
        (3, third.title, third.body_text)]
    assert [v["seen_at"] for v in versions] == [T0.isoformat(), T1.isoformat(), T2.isoformat()]


def test_an_edit_of_an_item_stored_without_versions_keeps_its_old_text(
    archive: Archive,
) -> None:
    """Rows written behind the store's back (sqlite-utils, a generator) have no version row:
    the first edit writes the superseded version whole."""
    archive.save_items([news(1)], now=T0)
    archive.db.execute("DELETE FROM item_versions")
    archive.save_items([news(1, title="Правка")], now=T1)
    versions = archive.versions("mod", 1, "ru")
    assert [(v["version"], v["title"]) for v in versions] == [(1, news(1).title), (2, "Правка")]


def old_archive(path: Path) -> Database:
    """An archive from before archive_at_scale, its versions holding full texts, filled as the
    store of that time did (one row per version)."""
    db = Database(path)
    migrate(db, stop_before="archive_at_scale")
    stamp = T0.isoformat()
    base = {"url": "u", "summary": "", "categories": "[]", "source": "api", "first_seen": stamp,
            "last_seen": stamp, "updated": stamp}
    for item_id, lang, versions, incomplete in ((1, "ru", 1, 0), (2, "ru", 3, 0),
                                                (3, "kk", 1, 1)):
        texts = [(f"Заголовок {item_id} v{v}", f"Текст {v}", f"<p>Текст {v}</p>")
                 for v in range(1, versions + 1)]
        title, body_text, body_html = texts[-1]
        db["items"].insert({
            **base, "agency": "mod", "id": item_id, "lang": lang, "title": title,
            "body_text": body_text, "body_html": body_html, "content_hash": f"h{versions}",
            "version": versions, "incomplete": incomplete,
            "published": None if incomplete else PUBLISHED.isoformat(),
        })  # fmt: skip
        for v, (t, bt, bh) in enumerate(texts, start=1):
            db["item_versions"].insert({
                "agency": "mod", "id": item_id, "lang": lang, "version": v, "title": t,
                "body_text": bt, "body_html": bh, "content_hash": f"h{v}", "seen_at": stamp,
            })  # fmt: skip
    return db


def test_the_upgrade_drops_the_current_copies_and_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    db = old_archive(path)
    before = {key: list(db["item_versions"].rows_where(
        "agency = ? AND id = ? AND lang = ?", list(key), order_by="version"))
        for key in (("mod", 1, "ru"), ("mod", 2, "ru"), ("mod", 3, "kk"))}
    db.close()

    archive = Archive.open(path)
    try:
        for key, rows in before.items():
            assert archive.versions(*key) == rows
        raw = list(archive.db["item_versions"].rows_where(order_by="id, version"))
        assert [(r["id"], r["version"], r["title"] is None) for r in raw] == [
            (1, 1, True), (2, 1, False), (2, 2, False), (2, 3, True), (3, 1, True)]
        assert archive.item_counts() == {"mod": 3}
        assert archive.lang_counts("mod") == {"kk": 1, "ru": 2}
        assert archive.feed_groups() == [("mod", "ru")]
    finally:
        archive.close()


# --- counts kept by triggers ---------------------------------------------------------------


def counted_from_items(archive: Archive) -> dict[str, Any]:
    """What the counts must say, computed the slow way."""
    rows = list(archive.db.query(
        "SELECT agency, lang, count(*) AS n, sum(incomplete = 0 AND published IS NOT NULL) AS c "
        "FROM items GROUP BY agency, lang ORDER BY agency, lang"))
    agencies: dict[str, int] = {}
    for row in rows:
        agencies[row["agency"]] = agencies.get(row["agency"], 0) + row["n"]
    return {"groups": [(r["agency"], r["lang"]) for r in rows if r["c"]],
            "agencies": agencies}


@pytest.mark.parametrize(
    "steps",
    [
        ["save"],
        ["save", "complete"],
        ["save", "delete"],
        ["save", "sql insert"],
        ["save", "complete", "delete", "sql insert"],
    ],
)
def test_counts_follow_every_writer(archive: Archive, steps: list[str]) -> None:
    for step in steps:
        if step == "save":
            archive.save_items([news(1), news(2, lang="kk"), news(3, agency="mvd"),
                                news(4, published=None, incomplete=True, agency="mfa")], now=T0)
        elif step == "complete":
            archive.save_items([news(4, agency="mfa")], now=T1)
        elif step == "delete":
            archive.db.execute("DELETE FROM items WHERE agency = 'mvd'")
        else:  # rows inserted behind the store's back (sqlite-utils, Datasette users)
            archive.db["items"].insert({
                "agency": "mvd", "id": 9, "lang": "en", "title": "t", "url": "u",
                "content_hash": "h", "updated": "t", "first_seen": "t", "last_seen": "t",
                "published": PUBLISHED.isoformat()})
        expected = counted_from_items(archive)
        assert archive.feed_groups() == expected["groups"]
        assert archive.item_counts() == expected["agencies"]
        for agency in ("mod", "mvd", "mfa"):
            rows = archive.db.query("SELECT lang, count(*) AS n FROM items WHERE agency = ? "
                                    "GROUP BY lang", [agency])
            assert archive.lang_counts(agency) == {r["lang"]: r["n"] for r in rows}


READS_ITEMS = re.compile(r"\b(from|join)\s+items\b(?!_)", re.IGNORECASE)


@pytest.mark.parametrize("call", ["feed_groups", "item_counts", "lang_counts"])
def test_the_group_queries_never_read_items(archive: Archive, call: str) -> None:
    archive.save_items([news(i) for i in range(1, 6)], now=T0)
    with Statements(archive) as traced:
        getattr(archive, call)(*(["mod"] if call == "lang_counts" else []))
    assert traced.sql
    assert not [s for s in traced.sql if READS_ITEMS.search(s.replace('"', ""))]


@pytest.mark.parametrize("lang", [None, "ru"])
def test_the_latest_of_an_agency_is_an_index_walk(archive: Archive, lang: str | None) -> None:
    archive.save_items([news(i, lang=("ru", "kk", "en")[i % 3]) for i in range(1, 30)], now=T0)
    with Statements(archive) as traced:
        got = archive.feed_items("mod", lang, 5)
    assert [(r["published"], r["id"]) for r in got] == sorted(
        [(r["published"], r["id"]) for r in archive.feed_items("mod", lang, 100)],
        reverse=True)[:5]
    [sql] = [s for s in traced.sql if READS_ITEMS.search(s.replace('"', ""))]
    plan = " ".join(row[-1] for row in archive.db.conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
    assert "idx_items_agency_published" in plan and "TEMP B-TREE" not in plan


# --- touch -----------------------------------------------------------------------------------


def test_touch_refreshes_only_the_keys_it_is_given(archive: Archive) -> None:
    archive.save_items([news(1), news(2), news(1, lang="kk")], now=T0)
    with Statements(archive) as traced:
        archive.touch([("mod", 1, "ru"), ("mod", 1, "ru"), ("mod", 99, "ru")], now=T1)
    assert len(traced.writes) == 1
    seen = {(r["id"], r["lang"]): r["last_seen"] for r in archive.db["items"].rows}
    assert seen == {(1, "ru"): T1.isoformat(), (2, "ru"): T0.isoformat(),
                    (1, "kk"): T0.isoformat()}


# --- the pipelines: a page in, one transaction --------------------------------------------------


@pytest.fixture
def pipelines(tmp_path: Path) -> Iterator[tuple[Any, ValidateItemPipeline, ArchivePipeline]]:
    crawler = SimpleNamespace(settings=Settings({"GOVKZ_DATA": str(tmp_path)}),
                              spider=SimpleNamespace(name="govkz", target="site"))
    validate, store = ValidateItemPipeline(crawler), ArchivePipeline(crawler)
    store.open_spider()
    yield crawler, validate, store
    store.archive.close()


def through(validate: ValidateItemPipeline, store: ArchivePipeline, element: Any) -> Any:
    return store.process_item(validate.process_item(element))


def test_a_page_through_the_pipelines_is_one_transaction_and_counted_per_item(
    pipelines: tuple[Any, ValidateItemPipeline, ArchivePipeline],
) -> None:
    crawler, validate, store = pipelines
    page = NewsPage(items=[news(1), news(2), news(3, agency="bad slug!")],
                    rejects=[Reject("mod", "ru", "no id", raw="{}")],
                    marks=[SyncMark("mod", "ru", PUBLISHED)])
    with Statements(store.archive) as traced:
        through(validate, store, page)
    assert traced.commits == 1
    target = summary_for(crawler).target("mod/ru")
    assert (target.found, target.new, target.rejected) == (2, 2, 1)
    assert summary_for(crawler).target("bad slug!/ru").rejected == 1
    assert store.archive.monitor.high_water("mod", "ru") == PUBLISHED

    quiet = NewsPage(items=[news(1)], seen=[("mod", 2, "ru")],
                     marks=[SyncMark("mod", "ru", PUBLISHED)])
    with Statements(store.archive) as traced:
        through(validate, store, quiet)
    assert traced.commits == 0  # a quiet page's bookkeeping waits: tests/test_quiet_writes.py
    assert (target.found, target.new, target.unchanged) == (3, 2, 1)
    assert store.archive.db["rejects"].count == 2


def test_a_page_that_cannot_be_stored_says_so_for_each_item(
    pipelines: tuple[Any, ValidateItemPipeline, ArchivePipeline],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crawler, validate, store = pipelines

    def full(*args: Any, **kwargs: Any) -> None:
        raise StoreError("cannot save: database or disk is full")

    monkeypatch.setattr(store.archive, "save_items", full)
    with pytest.raises(DropItem):
        through(validate, store, NewsPage(items=[news(1), news(2)],
                                          marks=[SyncMark("mod", "ru", PUBLISHED)]))
    target = summary_for(crawler).target("mod/ru")
    assert target.found == 2 and target.new == 0
    assert [p.kind.value for p in target.problems] == ["store", "store"]
    assert store.archive.monitor.high_water("mod", "ru") is None  # no mark past lost items


def test_an_unexpected_error_in_a_page_costs_only_the_item_that_causes_it(
    pipelines: tuple[Any, ValidateItemPipeline, ArchivePipeline],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crawler, validate, store = pipelines
    original = store.archive.save_items

    def fragile(items: list[NewsItem], **kwargs: Any) -> list[SaveResult]:
        if any(item.id == 2 for item in items):
            raise RuntimeError("a bug")
        return original(items, **kwargs)

    monkeypatch.setattr(store.archive, "save_items", fragile)
    through(validate, store, NewsPage(items=[news(1), news(2), news(3)]))
    target = summary_for(crawler).target("mod/ru")
    assert (target.found, target.new) == (3, 2)
    assert [p.kind.value for p in target.problems] == ["unexpected"]
    assert {r["id"] for r in store.archive.db["items"].rows} == {1, 3}
