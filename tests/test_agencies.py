"""The agency registry: the shipped file's coverage, validation, name fallback, merge."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from crawler.agencies import KINDS, Agency, AgencyRegistry
from crawler.errors import ConfigError
from crawler.items import ITEM_URL_RE, LANGS, is_slug

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
# Every ministry of Kazakhstan as of 2025-2026, by its gov.kz slug.
MINISTRIES = [
    "mfa", "mod", "qriim", "adilet", "minfin", "economy", "edu", "sci", "dsm", "enbek", "mci",
    "tsm", "energo", "mps", "transport", "moa", "ecogeo", "water", "mdai", "mti", "emer",
]  # fmt: skip


def seed_agencies() -> set[str]:
    """Agencies the seeds name: their `Source :` links and the manifest's `agency` keys."""
    slugs = set()
    for path in SEEDS.glob("*.txt"):
        for word in path.read_text(encoding="utf-8").split():
            if match := ITEM_URL_RE.match(word):
                slugs.add(match["slug"])
    manifest = tomllib.loads((SEEDS / "manifest.toml").read_text(encoding="utf-8"))
    slugs |= {snap["agency"] for snap in manifest["snapshot"] if "agency" in snap}
    return slugs


@pytest.fixture(scope="module")
def shipped() -> AgencyRegistry:
    return AgencyRegistry.load()


def test_seeds_name_the_agencies_this_test_expects() -> None:
    # Guards the parametrization below against a seed scan that silently finds nothing.
    assert {"mod", "mfa-rabat", "pravstat", "primeminister"} <= seed_agencies()


@pytest.mark.parametrize("slug", sorted(seed_agencies()))
def test_every_seed_agency_is_registered(shipped: AgencyRegistry, slug: str) -> None:
    agency = shipped.get(slug)
    assert agency is not None
    assert set(agency.names) == set(LANGS)


@pytest.mark.parametrize("slug", MINISTRIES)
def test_every_ministry_is_registered(shipped: AgencyRegistry, slug: str) -> None:
    agency = shipped.get(slug)
    assert agency is not None and agency.kind == "ministry"
    assert set(agency.names) == set(LANGS)
    assert "министрлігі" in agency.names["kk"]
    assert agency.names["ru"].startswith("Министерство")
    assert agency.names["en"].startswith("Ministry")


def test_shipped_registry_is_consistent(shipped: AgencyRegistry) -> None:
    assert len(shipped) >= len(MINISTRIES) + len(seed_agencies())
    assert sum(a.kind == "ministry" for a in shipped) == len(MINISTRIES)
    for agency in shipped:
        assert agency.kind in KINDS
        assert agency.parent is None or agency.parent in shipped, agency.slug
        assert all(name == name.strip() and name for name in agency.names.values())
    assert shipped.get("mfa-rabat").parent == "mfa"
    assert shipped.get("pravstat").parent == "prokuror"


def test_iteration_is_sorted_and_enabled_lists_crawlable(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(
        '[agencies.b]\nen = "B"\n[agencies.a]\nen = "A"\n[agencies.c]\nen = "C"\nenabled = false\n',
        encoding="utf-8",
    )
    registry = AgencyRegistry.load(path)
    assert [a.slug for a in registry] == ["a", "b", "c"]
    assert registry.enabled() == ["a", "b"]
    assert "c" in registry and "z" not in registry


@pytest.mark.parametrize(
    ("names", "lang", "expected"),
    [
        ({"kk": "К", "ru": "Р", "en": "E"}, "kk", "К"),
        ({"kk": "К", "ru": "Р", "en": "E"}, "ru", "Р"),
        ({"kk": "К", "ru": "Р"}, "en", "Р"),
        ({"kk": "К", "en": "E"}, "ru", "E"),
        ({"kk": "К"}, "en", "К"),
        ({"ru": "Р"}, "kk", "Р"),
        ({}, "en", "slug-x"),
        ({"en": "E"}, "de", "E"),
    ],
)
def test_name_fallback(names: dict[str, str], lang: str, expected: str) -> None:
    registry = AgencyRegistry([Agency("slug-x", names, "agency", None)])
    assert registry.name("slug-x", lang) == expected


def test_unknown_slug_is_its_own_name(shipped: AgencyRegistry) -> None:
    assert shipped.get("no-such-agency") is None
    assert shipped.name("no-such-agency", "ru") == "no-such-agency"


def test_an_agency_without_names_is_named_by_its_slug(tmp_path: Path) -> None:
    # A directory refresh may know an agency only by its slug; it still loads and round-trips.
    path = tmp_path / "a.toml"
    AgencyRegistry([Agency("nameless", {}, "other", None, enabled=False)]).to_toml(path)
    registry = AgencyRegistry.load(path)
    assert registry.get("nameless") == Agency("nameless", {}, "other", None, enabled=False)
    assert registry.name("nameless", "kk") == "nameless"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[agencies.x]\nen = ''\n", "non-empty"),
        ("[agencies.x]\nen = 3\n", "non-empty"),
        ("[agencies.x]\nen = 'X'\nkind = 'castle'\n", "kind"),
        ("[agencies.x]\nen = 'X'\nde = 'Y'\n", "unknown key"),
        ("[agencies.x]\nen = 'X'\nparent = 'x'\n", "own parent"),
        ("[agencies.x]\nen = 'X'\nparent = 'a b'\n", "parent"),
        ("[agencies.x]\nen = 'X'\nenabled = 'yes'\n", "enabled"),
        ("[agencies.'bad slug']\nen = 'X'\n", "slug"),
        ("[agencies.x]\nen = 'X'\nparent = 'mfa\\n'\n", "parent"),
        ("agencies = 3\n", "table"),
        ("[agencies]\nx = 'X'\n", "must be a table"),
        ("[other]\nen = 'X'\n", "unknown top-level"),
        ("[agencies.x\nen = 'X'\n", "agencies"),
    ],
)
def test_bad_registry_files_raise_config_error(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "agencies.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        AgencyRegistry.load(path)


@pytest.mark.parametrize("content", [None, b"\xff\xfe not utf-8"])
def test_unreadable_registry_raises_config_error(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "agencies.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="cannot read"):
        AgencyRegistry.load(path)


def test_merge_keeps_known_names_and_local_decisions() -> None:
    registry = AgencyRegistry(
        [
            Agency("mod", {"kk": "Қорғаныс", "ru": "Минобороны", "en": "MoD"}, "ministry", None),
            Agency("old", {"en": "Old"}, "agency", "mod", enabled=False),
        ]
    )
    added = registry.merge(
        [
            Agency("mod", {"ru": "Министерство обороны", "en": ""}, "other", "primeminister"),
            Agency("old", {"kk": "Ескі"}, "committee", None, enabled=True),
            Agency("new", {"ru": "Новое"}, "akimat", None),
        ]
    )
    assert added == 1
    mod = registry.get("mod")
    assert mod.names == {"kk": "Қорғаныс", "ru": "Министерство обороны", "en": "MoD"}
    assert (mod.kind, mod.parent) == ("ministry", "primeminister")
    old = registry.get("old")
    assert old.names == {"en": "Old", "kk": "Ескі"}
    assert (old.kind, old.parent, old.enabled) == ("committee", "mod", False)
    assert registry.name("new", "en") == "Новое"
    assert len(registry) == 3


def test_to_toml_round_trips(tmp_path: Path, shipped: AgencyRegistry) -> None:
    tricky = Agency(
        "odd.slug_1",
        {"kk": 'Quote " and \\ backslash', "ru": "Line\nbreak\tand\x7fdel", "en": "Ünïcødé 😀"},
        "embassy",
        "mfa",
        enabled=False,
    )
    registry = AgencyRegistry([*shipped, tricky])
    path = tmp_path / "out" / "agencies.toml"
    registry.to_toml(path)
    again = AgencyRegistry.load(path)
    assert list(again) == list(registry)
    assert [a.names for a in again] == [a.names for a in registry]
    assert not list(path.parent.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("mfa", True),
        ("mfa-rabat", True),
        ("kostanai-bmalin-audany-akimat", True),
        ("abay2", True),
        ("", False),
        ("MFA", True),
        ("odd.slug", True),
        ("under_score", True),
        ("-mfa", False),
        ("mfa-", True),
        ("mfa--rabat", True),
        ("mfa\n", False),
        ("bad slug/..", False),
        ("\u202e", False),
        ("қазақ", False),
        (None, False),
        (3, False),
    ],
)
def test_is_slug(value: object, ok: bool) -> None:
    assert is_slug(value) is ok


def test_every_shipped_slug_is_a_slug(shipped: AgencyRegistry) -> None:
    assert all(is_slug(a.slug) and (a.parent is None or is_slug(a.parent)) for a in shipped)
