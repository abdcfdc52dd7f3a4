"""Publishing: bring DATA/feeds/ up to date with the archive (crawler.pipelines.publish).

Every feed whose agency and language had an item stored since it was last written is
rewritten, and every feed an enabled agency should have and does not have yet is written
(empty if need be), so a reader can subscribe to an agency before its first item.

What a crash leaves: each file is replaced atomically, its data synced before the rename, and
every directory renamed into is synced before the archive records the feeds as published
(Archive.feeds_published, crawler/feed_files.py). So a killed process or a power cut leaves
every file whole, old or new, and the feeds it did not record are rendered again by the next
publish, which rewrites whichever files still differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crawler.feed_dir import FeedDirectory
from crawler.feed_files import gz_path
from crawler.feeds import INDEX_NAMES, FeedReport, feed_rels


def _missing(directory: FeedDirectory, pairs: Iterable[tuple[str, str]]) -> set[str]:
    """Agencies with a feed file not written yet (in a language, or their mixed feed): newly
    enabled or discovered, written by an older version (no .json, no .gz copies), or a file
    deleted by hand."""
    return {agency for agency, lang in pairs
            if not all(map(directory.complete, feed_rels(agency, [lang])))}  # fmt: skip


def _aggregates_missing(directory: FeedDirectory, out: Path) -> bool:
    """Whether an every-agency feed or an index lacks a file (they are written on every
    publish that is not quiet, so it need not be more precise)."""
    return not all(map(directory.complete, feed_rels(None))) or not all(
        (out / name).is_file() and gz_path(out / name).is_file() for name in INDEX_NAMES)


def publish(
    settings: Any, *, full: bool = False, targets: Iterable[tuple[str, str]] | None = None
) -> FeedReport:
    """Write the feeds from the archive: those behind it (Archive.feeds_behind), whatever crawl
    stored the change, and those of the enabled agencies still missing; every feed when
    `full` or when the directory has no index yet.

    `targets` are the (agency, lang) pairs that must have feeds, as the daemon schedules them;
    by default the enabled agencies in the crawled languages, as `crawl` resolves them, plus
    the agencies the archive discovered (crawler.feed_catalog.feed_targets).
    """
    from crawler.config import agencies_from_settings, default
    from crawler.directory import load_registry
    from crawler.feed_catalog import feed_targets, with_archived
    from crawler.feeds import write_feeds
    from crawler.paths import db_path, feeds_dir
    from crawler.store import Archive

    out = feeds_dir(settings)
    registry = load_registry(settings)
    archive = Archive.open(db_path(settings))
    try:
        archived = archive.agencies()
        if targets is None:
            langs = settings.getlist("GOVKZ_LANGS")
            wanted = feed_targets(registry, agencies_from_settings(settings), langs, archived)
        else:
            wanted = [(agency, lang) for agency, lang in targets]
        behind = archive.feeds_behind()
        everything = full or not (out / "index.html").is_file()
        # Read once, for _missing and write_feeds alike; not at all when everything is written.
        directory = FeedDirectory(out, assume_empty=True) if everything \
            else FeedDirectory.load(out)
        missing = set() if everything else _missing(directory, wanted)
        quiet = not behind and not missing and not _aggregates_missing(directory, out)
        if not everything and quiet:
            directory.save()  # what it had to list, so the next quiet cycle need not
            return FeedReport()  # a quiet cycle: no feed is behind, so none is even rendered
        report = write_feeds(
            archive,
            out,
            base_url=settings.get("GOVKZ_PUBLIC_URL"),
            registry=with_archived(registry, archived),
            limit=settings.getint("GOVKZ_FEED_LIMIT", default("crawl.feed_limit")),
            agencies=None if everything else {agency for agency, _ in behind} | missing,
            enabled=wanted,
            directory=directory,
        )
        archive.feeds_published(behind)  # after write_feeds synced every file it wrote
        return report
    finally:
        archive.close()
