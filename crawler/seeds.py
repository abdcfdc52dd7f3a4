"""seeds/manifest.toml: which saved gov.kz pages exist and how to read each one.

Every snapshot file is described by one ``[[snapshot]]`` table (see the comments in the shipped
manifest). The manifest is checked strictly, because a typo there ("langs", "full_text") would
otherwise turn into a page read with the wrong layout or filed under the wrong agency.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.errors import ManifestError
from crawler.items import LANGS, is_slug

MANIFEST_NAME = "manifest.toml"
LAYOUTS = ("sections", "titled-list", "full-text")
_KEYS = {"file", "layout", "lang", "agency", "page"}


@dataclass(frozen=True)
class SnapshotSpec:
    """One manifest entry: a saved page and how to read it."""

    file: str
    layout: str
    lang: str
    agency: str | None
    page: str


def load_manifest(seeds_dir: Path) -> dict[str, SnapshotSpec]:
    """The manifest's entries by file name, in manifest order.

    Raises ManifestError (one line, naming the entry) when the manifest is missing, is not TOML,
    or has an entry with a missing, unknown or invalid field.
    """
    path = Path(seeds_dir) / MANIFEST_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None

    entries = data.get("snapshot")
    if not isinstance(entries, list) or not entries:
        raise ManifestError(f"{path}: no [[snapshot]] entries")
    extra = sorted(set(data) - {"snapshot"})
    if extra:
        raise ManifestError(f"{path}: unknown top-level key(s): {', '.join(extra)}")

    specs: dict[str, SnapshotSpec] = {}
    for number, entry in enumerate(entries, 1):
        spec = _spec(entry, f"{MANIFEST_NAME}: snapshot #{number}")
        if spec.file in specs:
            raise ManifestError(f"{MANIFEST_NAME}: snapshot #{number} ({spec.file}): listed twice")
        specs[spec.file] = spec
    return specs


def seed_files(seeds_dir: Path) -> list[Path]:
    """The snapshot files the manifest lists, sorted; ManifestError if one is missing."""
    seeds_dir = Path(seeds_dir)
    paths = []
    for name in load_manifest(seeds_dir):
        path = seeds_dir / name
        if not path.is_file():
            raise ManifestError(f"{MANIFEST_NAME}: snapshot {name}: file not found in {seeds_dir}")
        paths.append(path)
    return sorted(paths)


def spec_for(path: Path, manifest: dict[str, SnapshotSpec]) -> SnapshotSpec | None:
    """The manifest entry of a snapshot file (matched by file name), or None."""
    return manifest.get(Path(path).name)


def _spec(entry: Any, where: str) -> SnapshotSpec:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: not a table")
    file = entry.get("file")
    if not isinstance(file, str) or not file.strip():
        raise ManifestError(f"{where}: missing 'file'")
    # From here on the entry is named by its file, which is what a person looks for.
    where = f"{where} ({file})"
    if Path(file).name != file or file in (".", ".."):
        raise ManifestError(f"{where}: 'file' must be a file name inside the seeds directory")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ManifestError(f"{where}: unknown key(s): {', '.join(unknown)}")

    layout = entry.get("layout")
    if layout not in LAYOUTS:
        raise ManifestError(f"{where}: layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    lang = entry.get("lang")
    if lang not in LANGS:
        raise ManifestError(f"{where}: lang {lang!r} is not one of {', '.join(LANGS)}")

    agency = entry.get("agency")
    if agency is not None and not is_slug(agency):
        raise ManifestError(f"{where}: agency {agency!r} is not a gov.kz slug")
    if layout == "full-text" and agency is None:
        # Full-text pages carry no "Source :" links, so nothing else says whose items they are.
        raise ManifestError(f"{where}: layout 'full-text' needs an 'agency'")

    page = entry.get("page", "")
    if not isinstance(page, str):
        raise ManifestError(f"{where}: 'page' must be a string")
    return SnapshotSpec(file=file, layout=layout, lang=lang, agency=agency, page=page)
