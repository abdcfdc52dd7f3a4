"""Archives for tests: migrated in memory, the schema exactly as Archive.open leaves it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlite_utils import Database

from crawler.migrations import migrate
from crawler.store import Archive


@contextmanager
def memory_archive() -> Iterator[Archive]:
    """A migrated in-memory archive, closed after the block (the `archive` fixture is one of
    these; a test that needs several opens them here)."""
    db = Database(memory=True)
    migrate(db)
    archive = Archive(db)
    try:
        yield archive
    finally:
        archive.close()
