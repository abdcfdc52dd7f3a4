"""The agency registry: each gov.kz agency's names in Kazakh, Russian and English, its kind
and its parent body. Shipped as crawler/data/agencies.toml; a later refresh from gov.kz's own
directory is folded in with `merge`, which never forgets a name it already has."""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError
from crawler.items import LANGS, is_slug

KINDS = frozenset(
    {
        "government",
        "ministry",
        "agency",
        "committee",
        "department",
        "office",
        "akimat",
        "embassy",
        "consulate",
        "mission",
        "court",
        "other",
    }
)
# Name lookups fall back in this order when the wanted language is missing.
NAME_FALLBACK = ("en", "ru", "kk")
_KEYS = {"kind", "parent", "enabled", *LANGS}


@dataclass(frozen=True)
class Agency:
    slug: str
    names: dict[str, str] = field(hash=False)
    kind: str = "other"
    parent: str | None = None
    enabled: bool = True

    def name(self, lang: str) -> str:
        """The name in `lang`, else English, Russian, Kazakh, else the slug."""
        for candidate in (lang, *NAME_FALLBACK):
            if self.names.get(candidate):
                return self.names[candidate]
        return self.slug


def default_path() -> Any:
    """The registry shipped with the package (a Traversable, readable from a wheel too)."""
    return resources.files("crawler").joinpath("data/agencies.toml")


class AgencyRegistry:
    """Agencies by slug. Iteration yields Agency records in slug order."""

    def __init__(self, agencies: Iterable[Agency] = ()) -> None:
        self._by_slug: dict[str, Agency] = {}
        for agency in agencies:
            self._by_slug[agency.slug] = agency

    @classmethod
    def load(cls, path: Path | None = None) -> AgencyRegistry:
        """Read a registry file (default: the shipped one). ConfigError on bad data."""
        source = default_path() if path is None else Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"agency registry {source}: cannot read: {exc}") from exc
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"agency registry {source}: {exc}") from exc
        return cls(parse_registry(raw, where=str(source)))

    def get(self, slug: str) -> Agency | None:
        return self._by_slug.get(slug)

    def name(self, slug: str, lang: str) -> str:
        """The agency's name in `lang` (fallback en, ru, kk); an unknown slug names itself."""
        agency = self._by_slug.get(slug)
        return agency.name(lang) if agency else slug

    def enabled(self) -> list[str]:
        """Slugs crawled by default."""
        return [a.slug for a in self if a.enabled]

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._by_slug[slug] for slug in sorted(self._by_slug))

    def __len__(self) -> int:
        return len(self._by_slug)

    def __contains__(self, slug: object) -> bool:
        return slug in self._by_slug

    def merge(self, agencies: Iterable[Agency]) -> int:
        """Fold in fresher records (e.g. from gov.kz's directory); returns how many are new.

        A new record's names win per language, but a language it lacks keeps the name already
        known; a missing kind ("other") or parent keeps the known one; `enabled` is a local
        decision and is never changed by a merge.
        """
        added = 0
        for new in agencies:
            old = self._by_slug.get(new.slug)
            if old is None:
                self._by_slug[new.slug] = new
                added += 1
                continue
            names = {**old.names, **{k: v for k, v in new.names.items() if v}}
            self._by_slug[new.slug] = replace(
                old,
                names=names,
                kind=new.kind if new.kind != "other" else old.kind,
                parent=new.parent or old.parent,
            )
        return added

    def to_toml(self, path: Path) -> None:
        """Write the registry in the shipped file's format (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(render_toml(self))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def parse_registry(raw: dict[str, Any], *, where: str = "agency registry") -> list[Agency]:
    """Validate the decoded TOML and build the records."""
    unknown = set(raw) - {"agencies"}
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {sorted(unknown)}")
    table = raw.get("agencies", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: 'agencies' must be a table of [agencies.<slug>] tables")
    return [
        _parse_agency(slug, entry, f"{where}: agencies.{slug}") for slug, entry in table.items()
    ]


def _parse_agency(slug: str, entry: Any, where: str) -> Agency:
    if not is_slug(slug):
        raise ConfigError(f"{where}: not a gov.kz slug")
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(entry) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    names = {}
    for lang in LANGS:
        if lang in entry:
            value = entry[lang]
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}.{lang}: must be a non-empty string")
            names[lang] = value.strip()
    kind = entry.get("kind", "other")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: {kind!r} is not one of {', '.join(sorted(KINDS))}")
    parent = entry.get("parent")
    if parent is not None and not is_slug(parent):
        raise ConfigError(f"{where}.parent: must be a gov.kz slug")
    if parent == slug:
        raise ConfigError(f"{where}.parent: an agency cannot be its own parent")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}.enabled: must be true or false")
    return Agency(slug=slug, names=names, kind=kind, parent=parent, enabled=enabled)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_str(key)


def _toml_str(value: str) -> str:
    # A JSON string is a valid TOML basic string, except that TOML also forbids a raw DEL.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def render_toml(registry: Iterable[Agency]) -> str:
    lines = ["# govkz-monitor agency registry (see crawler/data/agencies.toml for the format)"]
    for agency in registry:
        lines += ["", f"[agencies.{_toml_key(agency.slug)}]", f"kind = {_toml_str(agency.kind)}"]
        if agency.parent:
            lines.append(f"parent = {_toml_str(agency.parent)}")
        if not agency.enabled:
            lines.append("enabled = false")
        lines += [
            f"{lang} = {_toml_str(agency.names[lang])}" for lang in LANGS if agency.names.get(lang)
        ]
    return "\n".join(lines) + "\n"
