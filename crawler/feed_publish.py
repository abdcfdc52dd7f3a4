"""Publishing: bring DATA/feeds/ up to date with the archive (crawler.pipelines.publish).

Every feed whose agency and language had an item stored since it was last written is
rewritten, and every feed an enabled agency should have and does not have yet is written
(empty if need be), so a reader can subscribe to an agency before its first item.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from crawler.feeds import FORMATS, GZ, FeedReport


def _missing(present: Collection[str], pairs: Iterable[tuple[str, str]]) -> set[str]:
    """Agencies with a feed file not written yet: newly enabled or discovered, or a directory
    written by an older version (no .json, no .gz copies). `present`: feeds.present_files."""
    return {agency for agency, lang in pairs
            if not all(f"{agency}/{lang}.{ext}{gz}" in present
                       for ext in FORMATS for gz in ("", GZ))}  # fmt: skip


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
    from crawler.feeds import present_files, write_feeds
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
        present = present_files(out)  # one listing, for _missing and write_feeds alike
        missing = _missing(present, wanted)
        everything = full or "index.html" not in present
        if not everything and not behind and not missing:
            return FeedReport()  # a quiet cycle: no feed is behind, so none is even rendered
        report = write_feeds(
            archive,
            out,
            base_url=settings.get("GOVKZ_PUBLIC_URL"),
            registry=with_archived(registry, archived),
            limit=settings.getint("GOVKZ_FEED_LIMIT", default("crawl.feed_limit")),
            agencies=None if everything else {agency for agency, _ in behind} | missing,
            enabled=wanted,
            present=present,
        )
        archive.feeds_published(behind)
        return report
    finally:
        archive.close()
