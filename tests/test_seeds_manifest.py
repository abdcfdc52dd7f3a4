"""seeds/manifest.toml: loading, strict validation with one-line errors naming the entry, the
list of seed files, and matching a file to its entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.errors import ManifestError
from crawler.seeds import SnapshotSpec, load_manifest, seed_files, spec_for

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

VALID = """
[[snapshot]]
file = "a.txt"
layout = "sections"
lang = "en"
page = "front page"

[[snapshot]]
file = "b.txt"
layout = "full-text"
lang = "ru"
agency = "primeminister"
"""


def write_seeds(tmp_path: Path, manifest: str, files: tuple[str, ...] = ("a.txt", "b.txt")) -> Path:
    (tmp_path / "manifest.toml").write_text(manifest, encoding="utf-8")
    for name in files:
        (tmp_path / name).write_text("News\n", encoding="utf-8")
    return tmp_path


def test_shipped_manifest() -> None:
    manifest = load_manifest(SEEDS)
    assert list(manifest) == [
        "000_4ec7fd5933ffcd57.txt",
        "001_28f041a508a280bb.txt",
        "004_4bfc0a0de863c664.txt",
    ]
    assert manifest["004_4bfc0a0de863c664.txt"] == SnapshotSpec(
        file="004_4bfc0a0de863c664.txt",
        layout="full-text",
        lang="en",
        agency="primeminister",
        page=manifest["004_4bfc0a0de863c664.txt"].page,
    )
    assert [s.layout for s in manifest.values()] == ["sections", "titled-list", "full-text"]
    assert all(s.page for s in manifest.values())
    assert seed_files(SEEDS) == [SEEDS / name for name in manifest]


def test_valid_manifest(tmp_path: Path) -> None:
    seeds = write_seeds(tmp_path, VALID)
    manifest = load_manifest(seeds)
    assert manifest == {
        "a.txt": SnapshotSpec("a.txt", "sections", "en", None, "front page"),
        "b.txt": SnapshotSpec("b.txt", "full-text", "ru", "primeminister", ""),
    }
    assert seed_files(seeds) == [seeds / "a.txt", seeds / "b.txt"]


def test_seed_files_are_sorted_and_only_those_listed(tmp_path: Path) -> None:
    manifest = VALID.replace('"a.txt"', '"z.txt"')
    seeds = write_seeds(tmp_path, manifest, files=("z.txt", "b.txt", "unlisted.txt"))
    assert seed_files(seeds) == [seeds / "b.txt", seeds / "z.txt"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a.txt", "a.txt"), ("/elsewhere/dir/b.txt", "b.txt"), ("c.txt", None)],
)
def test_spec_for_matches_by_file_name(tmp_path: Path, path: str, expected: str | None) -> None:
    manifest = load_manifest(write_seeds(tmp_path, VALID))
    spec = spec_for(Path(path), manifest)
    assert (spec.file if spec else None) == expected


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            VALID.replace('agency = "primeminister"\n', ""),
            "snapshot #2 (b.txt): layout 'full-text' needs an 'agency'",
        ),
        (
            VALID.replace('"sections"', '"cards"'),
            "snapshot #1 (a.txt): layout 'cards' is not one of sections, titled-list, full-text",
        ),
        (
            VALID.replace('layout = "sections"\n', ""),
            "snapshot #1 (a.txt): layout None is not one of",
        ),
        (VALID.replace('"ru"', '"de"'), "snapshot #2 (b.txt): lang 'de' is not one of kk, ru, en"),
        (
            VALID.replace('lang = "en"', 'langs = "en"'),
            "snapshot #1 (a.txt): unknown key(s): langs",
        ),
        (VALID.replace('"primeminister"', '"prime minister"'), "is not a gov.kz slug"),
        (VALID.replace('"b.txt"', '"a.txt"'), "snapshot #2 (a.txt): listed twice"),
        (VALID.replace('"a.txt"', '"../a.txt"'), "must be a file name inside the seeds directory"),
        (VALID.replace('file = "a.txt"\n', ""), "snapshot #1: missing 'file'"),
        (VALID.replace('page = "front page"', "page = 3"), "'page' must be a string"),
        ("", "no [[snapshot]] entries"),
        ("snapshot = 1\n", "no [[snapshot]] entries"),
        ("[[snapshot]\nfile = 1\n", "not valid TOML"),
        ("version = 2\n" + VALID, "unknown top-level key(s): version"),
        # TOML puts a key written after the last table inside that table.
        (VALID + "\nversion = 2\n", "snapshot #2 (b.txt): unknown key(s): version"),
    ],
)
def test_invalid_manifest(tmp_path: Path, manifest: str, message: str) -> None:
    seeds = write_seeds(tmp_path, manifest)
    with pytest.raises(ManifestError) as err:
        load_manifest(seeds)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("missing", ["a.txt", "b.txt"])
def test_seed_files_missing_file(tmp_path: Path, missing: str) -> None:
    present = tuple(name for name in ("a.txt", "b.txt") if name != missing)
    seeds = write_seeds(tmp_path, VALID, files=present)
    load_manifest(seeds)  # the manifest itself is fine; only the file list needs the files
    with pytest.raises(ManifestError, match=f"snapshot {missing}: file not found"):
        seed_files(seeds)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest.toml: not found"):
        load_manifest(tmp_path)
    with pytest.raises(ManifestError, match="not found"):
        seed_files(tmp_path)


def test_manifest_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "manifest.toml").write_bytes(b'[[snapshot]]\nfile = "caf\xe9.txt"\n')
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path)
