"""Big archives, fast: rows written with sqlite3 executemany straight into the archive's own
schema (created by the project's migrations through Archive.open), FTS triggers included.

Row n (0-based, newest last) is news n // 3 in language LANGS[n % 3] of agency
(n // 3) % agencies; news are 2 minutes apart. Bodies are drawn from a small vocabulary in
which COMMON_WORD occurs in about half of the Russian rows.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from crawler.items import LANGS, item_url
from crawler.migrations import migrate
from crawler.store import Archive
from crawler.timeutil import ALMATY, isoformat

COMMON_WORD = "развитие"
SEARCH_INDEX = "create_items_search"  # the migration that indexes the rows it finds
FIRST_ID = 1_000_000
END = datetime(2026, 6, 30, 12, 0, tzinfo=ALMATY)
STEP = timedelta(minutes=2)
_VOCAB = {
    "ru": ("министр встреча программа регион совещание итоги проект граждане цифровизация "
           "образование здравоохранение бюджет поддержка инвестиции акимат область район "
           "заседание решение закон указ доклад вопрос работа").split(),
    "kk": ("министр кездесу даму бағдарлама өңір кеңес қорытынды жоба азаматтар білім "
           "денсаулық бюджет қолдау инвестициялар әкімдік облыс аудан отырыс шешім заң").split(),
    "en": ("minister meeting programme region session results project citizens budget "
           "support investment education healthcare akimat district decision law decree "
           "report question work development").split(),
}
COLUMNS = ("agency", "id", "lang", "published", "title", "url", "summary", "body_text",
           "body_html", "categories", "image", "views", "incomplete", "source", "content_hash",
           "version", "updated", "first_seen", "last_seen")


def slug(index: int) -> str:
    return f"bench-agency-{index + 1:04d}"


def row(n: int, total: int, agencies: int, rng: random.Random) -> tuple:
    news, which = divmod(n, len(LANGS))
    lang = LANGS[which]
    agency = slug(news % agencies)
    item_id = FIRST_ID + news
    words = _VOCAB[lang]
    title = " ".join(rng.choices(words, k=rng.randint(5, 10))).capitalize() + f" №{news}"
    paragraphs = []
    for _ in range(rng.randint(2, 4)):
        chosen = rng.choices(words, k=rng.randint(20, 45))
        if lang == "ru" and rng.random() < 0.5:
            chosen[rng.randrange(len(chosen))] = COMMON_WORD
        paragraphs.append(" ".join(chosen).capitalize() + ".")
    body_text = "\n\n".join(paragraphs)
    body_html = "".join(f"<p>{p}</p>" for p in paragraphs)
    published = isoformat(END - (total // len(LANGS) - 1 - news) * STEP)
    digest = hashlib.sha256(f"{title}\0{body_html}\0{body_text}\0".encode()).hexdigest()
    stamp = "2026-06-30T07:00:00+00:00"
    return (agency, item_id, lang, published, title, item_url(agency, item_id, lang),
            paragraphs[0][:200], body_text, body_html, '["Новости"]', None, 10 + n % 500, 0,
            "api", digest, 1, stamp, stamp, stamp)


def rows(total: int, agencies: int, seed: int = 0) -> Iterator[tuple]:
    rng = random.Random(seed)
    for n in range(total):
        yield row(n, total, agencies, rng)


def generate_archive(path: Path, items: int, agencies: int, *, seed: int = 0) -> Path:
    """An archive of `items` rows (items in every language) over `agencies` agencies."""
    # The schema up to the stemmed search index; the rows go in; then Archive.open applies the
    # remaining migrations, which index and count the rows already there, as on an upgrade
    # (rows written straight into a finished schema would be missing from items_search).
    db = Database(path)
    migrate(db, stop_before=SEARCH_INDEX)
    db.close()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = OFF")  # generated data: no need to survive a crash
        marks = ", ".join("?" * len(COLUMNS))
        with conn:
            conn.executemany(f"INSERT INTO items ({', '.join(COLUMNS)}) VALUES ({marks})",
                             rows(items, agencies, seed))
            conn.executemany(
                "INSERT INTO agencies (slug, name_en, first_seen, updated) VALUES (?, ?, ?, ?)",
                [(slug(i), f"Bench agency {i + 1}", "2026-06-30T07:00:00+00:00",
                  "2026-06-30T07:00:00+00:00") for i in range(agencies)])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    Archive.open(path).close()
    return path


def archive_bytes(path: Path) -> int:
    """The archive's size on disk: the database and its WAL and shared-memory files."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
               if p.exists())
