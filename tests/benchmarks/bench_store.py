"""The archive: ingestion through Archive.save_item beside sqlite3 executemany, bytes per item,
and the hot queries at size with their EXPLAIN QUERY PLAN."""

from __future__ import annotations

import re
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from crawler.items import NewsItem
from crawler.search import facet_token, index_text, key_range
from crawler.store import Archive
from crawler.timeutil import parse_iso
from tests.benchmarks import datagen
from tests.benchmarks.harness import Bench, Result, group, progress, side_by_side

# --- ingestion ------------------------------------------------------------------------------


def news_items(count: int, agencies: int, seed: int = 1) -> list[NewsItem]:
    """`count` items as an extractor yields them (the same rows the generator writes)."""
    items = []
    for values in datagen.rows(count, agencies, seed):
        row = dict(zip(datagen.COLUMNS, values, strict=True))
        items.append(NewsItem(
            agency=row["agency"], id=row["id"], lang=row["lang"], url=row["url"],
            title=row["title"], published=parse_iso(row["published"]),
            body_text=row["body_text"], body_html=row["body_html"], categories=["Новости"],
            summary=row["summary"], views=row["views"], source="api",
        ))
    return items


# Items per save: a news list page (GOVKZ_PAGE_SIZE's default), what the pipelines store in
# one transaction.
PAGE = 50


def ingest_project(path: Path, items: list[NewsItem]) -> float:
    """Seconds to store `items` through Archive.save_items, a page at a time, one
    transaction per page, as the pipelines do (a fresh archive)."""
    archive = Archive.open(path)
    try:
        start = time.perf_counter()
        for first in range(0, len(items), PAGE):
            archive.save_items(items[first : first + PAGE])
        return time.perf_counter() - start
    finally:
        archive.close()


def ingest_baseline(path: Path, items: list[NewsItem]) -> float:
    """Seconds to insert the same rows with executemany in one transaction, into the same
    schema (the FTS triggers fire the same way): the items and their stemmed search index
    (its text computed here, as the content hash is: it is data an ingest must write)."""
    Archive.open(path).close()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        start = time.perf_counter()
        stamp = "2026-06-30T07:00:00+00:00"
        rows = [(i.agency, i.id, i.lang, i.published.isoformat() if i.published else None,
                 i.title, i.url, i.summary, i.body_text, i.body_html, '["Новости"]', i.image,
                 i.views, 0, i.source, Archive.content_hash(i), 1, stamp, stamp, stamp)
                for i in items]
        taken: dict[int, int] = {}  # first key of a second -> slots used
        keys, texts = [], []
        for i in items:
            first = key_range(i.published or parse_iso(stamp))[0]
            key = first + taken.get(first, 0)
            taken[first] = key - first + 1
            keys.append((key, i.agency, i.id, i.lang))
            texts.append((key, index_text(i.title, i.lang), index_text(i.body_text, i.lang),
                          facet_token(i.agency), facet_token(i.lang)))
        marks = ", ".join("?" * len(datagen.COLUMNS))
        with conn:
            conn.executemany(
                f"INSERT INTO items ({', '.join(datagen.COLUMNS)}) VALUES ({marks})", rows)
            conn.executemany("INSERT INTO items_search_keys (key, agency, id, lang) "
                             "VALUES (?, ?, ?, ?)", keys)
            conn.executemany("INSERT INTO items_search (rowid, title, body, agency, lang) "
                             "VALUES (?, ?, ?, ?, ?)", texts)
        return time.perf_counter() - start
    finally:
        conn.close()


@group("ingest", ("ingest", "bytes_per_item"))
def ingest(bench: Bench) -> Iterable[Result]:
    n = bench.sizes.ingest_items
    items = news_items(n, 50)
    runs = iter(range(1_000_000))
    last: dict[str, Path] = {}

    def fresh(kind: str) -> Path:
        path = bench.dir(f"ingest-{kind}-{next(runs)}") / "news.db"
        last[kind] = path
        return path

    ours, theirs = side_by_side(lambda: ingest_project(fresh("project"), items),
                                lambda: ingest_baseline(fresh("baseline"), items),
                                bench.sizes.repeats)
    yield Result("ingest", n / ours, n / theirs, "items/s", target=0.7, op=">=",
                 note=f"{n} items, {PAGE} per transaction; ratio = project / baseline "
                 "throughput (the baseline writes the items and the stemmed search index in "
                 "one transaction)")
    sizes = {}
    for kind, path in last.items():
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        sizes[kind] = datagen.archive_bytes(path) / n
    yield Result("bytes_per_item", sizes["project"], sizes["baseline"], "B/item",
                 note="archive after save_items vs the same rows stored once (items + FTS + "
                 "the stemmed search index)")


# --- queries at size --------------------------------------------------------------------------


def query_archive(bench: Bench) -> tuple[Path, int]:
    """The shared big archive (generated once per run)."""
    if "query_archive" not in bench.cache:
        items, agencies = bench.sizes.query_items, bench.sizes.query_agencies
        progress(f"generating an archive of {items:,} items, {agencies:,} agencies")
        path = datagen.generate_archive(bench.dir("query") / "news.db", items, agencies)
        bench.cache["query_archive"] = (path, agencies)
    return bench.cache["query_archive"]


class Tracer:
    """The SQL an entry point runs (sqlite3's trace callback gives it with values bound)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def __enter__(self) -> Tracer:
        self.conn.set_trace_callback(self.statements.append)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.set_trace_callback(None)


# A covering index answers from the index alone; any other scan of an items table visits
# every row, through an index or not.
SCAN_RE = re.compile(r"\bSCAN (items|item_versions)\b(?! USING COVERING INDEX)")


def explain(conn: sqlite3.Connection, statements: list[str]) -> tuple[list[str], bool]:
    """EXPLAIN QUERY PLAN of each SELECT on the items tables (items, item_versions and the
    item_counts that stand in for them); True when any scans a whole items table (other than
    through a covering index)."""
    lines, scans = [], False
    for sql in dict.fromkeys(s for s in statements if s.lstrip().upper().startswith(
            ("SELECT", "WITH")) and "sqlite_master" not in s and "item" in s):
        lines.append(f"  {' '.join(sql.split())[:300]}")
        for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"):
            detail = row[-1]
            flagged = bool(SCAN_RE.search(detail))
            scans = scans or flagged
            lines.append(f"    {'!! ' if flagged else ''}{detail}")
    return lines, scans


def _timed_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # a warm cache, as on a serving path
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


@group("queries", ("q_latest50_agency", "q_fts_common", "q_feed_groups", "q_item_counts"))
def queries(bench: Bench) -> Iterable[Result]:
    path, agencies = query_archive(bench)
    archive = Archive.open(path)
    conn = archive.db.conn
    some = datagen.slug(agencies // 2)
    cases: list[tuple[str, Callable[[], Any], float | None, str]] = [
        ("q_latest50_agency", lambda: archive.feed_items(some, None, 50), 2.0,
         f"feed_items({some!r}, any language, 50)"),
        ("q_fts_common", lambda: archive.search(datagen.COMMON_WORD, limit=20), 50.0,
         f"search({datagen.COMMON_WORD!r}, limit=20)"),
        ("q_feed_groups", archive.feed_groups, None, "feed_groups()"),
        ("q_item_counts", archive.item_counts, None, "item_counts()"),
    ]
    repeats = max(3, bench.sizes.repeats)
    try:
        for name, call, budget, label in cases:
            with Tracer(conn) as tracer:
                call()
            plan, scans = explain(conn, tracer.statements)
            bench.plans += [f"{name}: {label}", *plan]
            ms = _timed_ms(call, repeats if budget else max(1, repeats // 2))
            note = f"{label} at {bench.sizes.query_items:,} items"
            if scans:
                note += "; SCAN of items without an index"
            yield Result(name, ms, None, "ms", target=budget, op="<", on="value",
                         check=not scans, note=note)
    finally:
        archive.close()
