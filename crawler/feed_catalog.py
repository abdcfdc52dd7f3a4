"""Which agency × language feeds exist, and how a reader finds them: grouped by kind.

Pure: the registry and the archive's rows in, the catalogue out. The OPML files and the feeds
directory's index.html (crawler/feeds.py, crawler/feed_index.py) both list what this returns, so
the two never disagree. An item belongs to exactly one agency and one language, so a list of
per-agency-per-language feeds never subscribes a reader to the same item twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crawler.agencies import KINDS, Agency, AgencyRegistry
from crawler.config import Agencies
from crawler.directory import ALL, crawl_targets
from crawler.items import LANGS, is_slug

# (section key, the kinds it holds, its title per language), in the order readers see them.
SECTIONS: tuple[tuple[str, frozenset[str], Mapping[str, str]], ...] = (
    ("government", frozenset({"government"}),
     {"en": "Government", "ru": "Правительство", "kk": "Үкімет"}),
    ("ministries", frozenset({"ministry"}),
     {"en": "Ministries", "ru": "Министерства", "kk": "Министрліктер"}),
    ("committees", frozenset({"committee", "department"}),
     {"en": "Committees and departments", "ru": "Комитеты и департаменты",
      "kk": "Комитеттер мен департаменттер"}),
    ("akimats", frozenset({"akimat"}),
     {"en": "Akimats", "ru": "Акиматы", "kk": "Әкімдіктер"}),
    ("foreign", frozenset({"embassy", "consulate", "mission"}),
     {"en": "Embassies, consulates and missions", "ru": "Посольства, консульства и миссии",
      "kk": "Елшіліктер, консулдықтар және өкілдіктер"}),
    ("other", frozenset(KINDS) - {"government", "ministry", "committee", "department", "akimat",
                                  "embassy", "consulate", "mission"},
     {"en": "Agencies and other bodies", "ru": "Агентства и другие органы",
      "kk": "Агенттіктер және басқа органдар"}),
)  # fmt: skip


@dataclass(frozen=True)
class Section:
    """A group of agencies in the OPML and the index: a kind, or an akimats' region."""

    key: str
    titles: Mapping[str, str] = field(hash=False)
    agencies: tuple[str, ...] = ()
    sections: tuple[Section, ...] = ()  # the regions, inside "akimats"

    def title(self, lang: str) -> str:
        return self.titles.get(lang) or self.titles.get("en") or self.key


def with_archived(registry: AgencyRegistry, rows: Iterable[Mapping[str, Any]]) -> AgencyRegistry:
    """The registry plus the agencies only the archive's `agencies` table knows (names, kind,
    parent), so those are titled and grouped too. The registry passed in is left as it was."""
    merged = AgencyRegistry(registry)
    extra = []
    for row in rows:
        slug, kind, parent = row.get("slug"), row.get("kind"), row.get("parent")
        if not isinstance(slug, str) or not is_slug(slug) or slug in registry:
            continue
        names = {lang: row[f"name_{lang}"] for lang in LANGS if row.get(f"name_{lang}")}
        kind = kind if isinstance(kind, str) and kind in KINDS else "other"
        parent = parent if isinstance(parent, str) and is_slug(parent) else None
        extra.append(Agency(slug, names, kind, parent, bool(row.get("enabled", True))))
    merged.merge(extra)
    return merged


def feed_targets(
    registry: AgencyRegistry,
    agencies: Agencies,
    langs: Iterable[str],
    archived: Iterable[Mapping[str, Any]] = (),
) -> list[tuple[str, str]]:
    """(agency, lang) pairs that have feeds even before they have items: the enabled agencies
    (as `crawl` and `run` resolve them) in the crawled languages, plus agencies the archive
    discovered that the registry does not know, unless the config names its own list or
    disables them. A directory refresh files its agencies in the registry as not enabled, so
    a refresh alone never adds 2,000 empty feeds."""
    chosen = list(crawl_targets(registry, agencies))
    if not agencies.enabled or ALL in agencies.enabled:
        chosen += [
            row["slug"] for row in archived
            if is_slug(row.get("slug")) and row["slug"] not in registry
            and row.get("enabled", True) and row["slug"] not in agencies.disabled
        ]  # fmt: skip
    wanted = [lang for lang in LANGS if lang in set(langs)]
    return [(slug, lang) for slug in dict.fromkeys(chosen) for lang in wanted]


def region_of(registry: AgencyRegistry, slug: str) -> str:
    """The region an akimat belongs to: the topmost akimat up its parent chain (itself when it
    has no akimat parent). The registry knows a parent only where gov.kz or its editor said."""
    region, seen = slug, {slug}
    while True:
        agency = registry.get(region)
        parent = agency.parent if agency else None
        above = registry.get(parent) if parent else None
        if above is None or above.kind != "akimat" or above.slug in seen:
            return region
        region = above.slug
        seen.add(region)


def _kind(registry: AgencyRegistry, slug: str) -> str:
    agency = registry.get(slug)
    return agency.kind if agency else "other"


def sections(registry: AgencyRegistry, slugs: Iterable[str], lang: str = "en") -> list[Section]:
    """The agencies `slugs` grouped as SECTIONS (empty ones left out), akimats by region; each
    group ordered by the agencies' names in `lang`, so a language's OPML reads alphabetically."""

    def order(items: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(items), key=lambda s: (registry.name(s, lang).casefold(), s)))

    slugs = set(slugs)
    out = []
    for key, kinds, titles in SECTIONS:
        members = [s for s in slugs if _kind(registry, s) in kinds]
        if not members:
            continue
        if key != "akimats":
            out.append(Section(key, titles, order(members)))
            continue
        regions: dict[str, list[str]] = {}
        for slug in members:
            regions.setdefault(region_of(registry, slug), []).append(slug)
        # The region's own akimat first, then the akimats within it.
        subs = [
            Section(f"akimats/{region}", {lg: registry.name(region, lg) for lg in LANGS},
                    (region,) * (region in found) + order(s for s in found if s != region))
            for region, found in regions.items()
        ]  # fmt: skip
        subs.sort(key=lambda s: (s.title(lang).casefold(), s.key))
        out.append(Section(key, titles, (), tuple(subs)))
    return out
