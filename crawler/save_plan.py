"""What storing a batch of items (a page) changes in the archive, decided without SQL.

crawler/store.py (Archive.save_items) reads what it needs of the stored rows in one query, asks
`plan_save` what to write, and writes the plan in one transaction with a handful of batched
statements: rows inserted, columns updated, `last_seen` refreshed, versions, the search index
and the feed marks. Kept apart from the SQL so the rules (new / updated / unchanged, what an
edit keeps) read in one place and are tested without a database.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from crawler.items import NewsItem
from crawler.timeutil import ALMATY, isoformat, localize, parse_iso, require_iso

Key = tuple[str, int, str]

# An `items` row, in the order plan_save builds new rows.
ITEM_COLUMNS = (
    "agency", "id", "lang", "published", "title", "url", "summary", "body_text", "body_html",
    "categories", "image", "views", "incomplete", "source", "content_hash", "version",
    "updated", "first_seen", "last_seen",
)  # fmt: skip
# An `item_versions` row of a new current version; its texts are NULL: they are the item's own
# until a later version supersedes it (crawler/migrations.py, archive_at_scale).
VERSION_COLUMNS = ("agency", "id", "lang", "version", "content_hash", "seen_at", "crawl_id")
# What deciding a re-seen item's fate reads of its stored row (never the bodies).
STORED_COLUMNS = (
    "published", "incomplete", "content_hash", "version", "views", "categories", "image",
    "summary", "source", "first_seen",
)  # fmt: skip


class SaveResult(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def content_hash(item: NewsItem) -> str:
    """SHA-256 of what a reader sees change: title, body_html and body_text."""
    digest = hashlib.sha256()
    for part in (item.title, item.body_html, item.body_text):
        digest.update(part.encode())
        digest.update(b"\0")  # a separator, so ("ab", "") and ("a", "b") differ
    return digest.hexdigest()


def published_text(value: datetime | None) -> str | None:
    # gov.kz local time for every item, so that string order is time order (except for the
    # hour repeated when Almaty moved from UTC+6 to UTC+5 on 2024-03-01).
    return isoformat(localize(value).astimezone(ALMATY)) if value else None


def merge(old: list[str], new: list[str]) -> list[str]:
    """Ordered union: the old categories first, then the new ones not seen before."""
    return list(dict.fromkeys([*old, *new]))


def metadata_changes(row: Mapping[str, Any], item: NewsItem) -> dict[str, Any]:
    """What a re-seen item adds without changing its content: views, categories, gaps."""
    changes: dict[str, Any] = {}
    if item.views is not None and item.views != row["views"]:
        changes["views"] = item.views
    old = json.loads(row["categories"] or "[]")
    merged = merge(old, item.categories)
    if merged != old:
        changes["categories"] = json.dumps(merged, ensure_ascii=False)
    if not row["image"] and item.image:
        changes["image"] = item.image
    if not row["summary"] and item.summary:
        changes["summary"] = item.summary
    return changes


def distinct_runs(items: Iterable[NewsItem]) -> list[list[NewsItem]]:
    """Consecutive runs of `items` in which no key repeats: a plan decides each item against
    the stored rows read before it, so an item seen twice in one page is planned twice."""
    runs: list[list[NewsItem]] = [[]]
    keys: set[Key] = set()
    for item in items:
        if item.key in keys:
            runs.append([])
            keys = set()
        runs[-1].append(item)
        keys.add(item.key)
    return [run for run in runs if run]


@dataclass
class SavePlan:
    """The writes of one run of items (no key twice), in the order the store applies them."""

    results: list[SaveResult] = field(default_factory=list)
    # rowids of items whose current text becomes its version's own (an edit supersedes it);
    # written before the items change.
    superseded: list[int] = field(default_factory=list)
    inserts: list[tuple[Any, ...]] = field(default_factory=list)  # ITEM_COLUMNS rows
    # changed columns -> their values followed by the row's rowid, one list per column set
    updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = field(default_factory=dict)
    seen: list[int] = field(default_factory=list)  # rowids whose only change is last_seen
    versions: list[tuple[Any, ...]] = field(default_factory=list)  # VERSION_COLUMNS rows
    # (re-)indexed in the stemmed search index, with the instant that orders them
    reindex: list[tuple[NewsItem, datetime]] = field(default_factory=list)
    behind: Counter[tuple[str, str]] = field(default_factory=Counter)  # changes per feed

    @property
    def only_refreshes(self) -> bool:
        """Whether the plan writes nothing but `last_seen`: every item unchanged, no metadata
        gained (a quiet page, whose refresh crawler/pipelines.py may defer)."""
        return (all(result is SaveResult.UNCHANGED for result in self.results)
                and not (self.superseded or self.inserts or self.updates or self.versions
                         or self.reindex or self.behind))


def plan_save(items: Sequence[NewsItem], stored: Mapping[Key, Mapping[str, Any]], stamp: str,
              crawl_id: int | None) -> SavePlan:
    """What storing `items` (no key twice) over the `stored` rows (by key: STORED_COLUMNS and
    `rowid`) writes, with `stamp` as now. The rules: a new item is a row and its first version;
    a cut-off copy never downgrades a complete item; a re-seen item refreshes its metadata and
    `last_seen`; a changed title or body is a new version; a cut-off item arriving complete
    takes its date. New and edited items put their feed behind."""
    plan = SavePlan()
    for item in items:
        digest = content_hash(item)
        row = stored.get(item.key)
        if row is None:
            plan.inserts.append(_new_row(item, digest, stamp))
            plan.versions.append((*item.key, 1, digest, stamp, crawl_id))
            plan.reindex.append((item, item.published or require_iso(stamp)))
            plan.behind[item.agency, item.lang] += 1
            plan.results.append(SaveResult.NEW)
            continue
        if item.incomplete and not row["incomplete"]:
            # A cut-off copy of an item we hold complete: never downgrade it.
            plan.seen.append(row["rowid"])
            plan.results.append(SaveResult.UNCHANGED)
            continue
        changes = metadata_changes(row, item)
        result = SaveResult.UNCHANGED
        if row["incomplete"] and not item.incomplete:
            changes |= {"published": published_text(item.published), "incomplete": 0}
            result = SaveResult.UPDATED
        edited = digest != row["content_hash"]
        if edited:
            version = row["version"] + 1
            changes |= {
                "title": item.title, "body_text": item.body_text, "body_html": item.body_html,
                "summary": item.summary or row["summary"], "content_hash": digest,
                "source": item.source or row["source"], "version": version, "updated": stamp,
            }  # fmt: skip
            plan.superseded.append(row["rowid"])
            plan.versions.append((*item.key, version, digest, stamp, crawl_id))
            result = SaveResult.UPDATED
        if changes:
            changes["last_seen"] = stamp
            plan.updates.setdefault(tuple(changes), []).append(
                (*changes.values(), row["rowid"]))
        else:
            plan.seen.append(row["rowid"])
        if edited or "published" in changes:
            when = parse_iso(changes.get("published", row["published"]))
            plan.reindex.append((item, when or require_iso(row["first_seen"])))
        if result is SaveResult.UPDATED:
            plan.behind[item.agency, item.lang] += 1
        plan.results.append(result)
    return plan


def _new_row(item: NewsItem, digest: str, stamp: str) -> tuple[Any, ...]:
    return (
        item.agency, item.id, item.lang, published_text(item.published), item.title, item.url,
        item.summary, item.body_text, item.body_html,
        json.dumps(merge([], item.categories), ensure_ascii=False), item.image, item.views,
        int(item.incomplete), item.source, digest, 1, stamp, stamp, stamp,
    )  # fmt: skip
