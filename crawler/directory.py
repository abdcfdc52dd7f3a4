"""The agency registry in use: the shipped one, what `agencies --refresh` learned from gov.kz
(DATA/agencies.toml), and the operator's choices from the config file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crawler.agencies import Agency, AgencyRegistry
from crawler.config import Agencies
from crawler.paths import data_dir

ALL = "all"  # `[agencies] enabled = ["all"]`: every agency in the registry


def refreshed_path(settings: Any) -> Path:
    return data_dir(settings) / "agencies.toml"


def load_registry(settings: Any) -> AgencyRegistry:
    registry = AgencyRegistry.load()
    refreshed = refreshed_path(settings)
    if refreshed.exists():
        # Refreshed agencies are known (names in feeds) but not crawled until enabled.
        registry.merge(AgencyRegistry.load(refreshed))
    return registry


def crawl_targets(registry: AgencyRegistry, agencies: Agencies) -> list[str]:
    """Agencies to crawl: the [agencies] section's `enabled` ("all" = the whole registry), else
    the registry's enabled ones; minus its `disabled` ones."""
    if ALL in agencies.enabled:
        chosen = [a.slug for a in registry]
    elif agencies.enabled:
        chosen = list(agencies.enabled)
    else:
        chosen = registry.enabled()
    return [slug for slug in chosen if slug not in agencies.disabled]


def from_records(records: dict[str, dict[str, Any]]) -> list[Agency]:
    """Agencies from directory records {slug: {"names": {lang: name}, "parent": ...}}."""
    return [
        Agency(slug=slug, names=dict(rec.get("names", {})), kind=rec.get("kind", "other"),
               parent=rec.get("parent"), enabled=False)
        for slug, rec in sorted(records.items())
    ]
