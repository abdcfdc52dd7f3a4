"""The TOML configuration file: the README's example is valid, mistakes are one-line errors."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from cli_helpers import ROOT

from crawler.agencies import Agency, AgencyRegistry
from crawler.config import Config, load_config, parse_config
from crawler.directory import crawl_targets
from crawler.errors import ConfigError


def readme_example() -> dict:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", readme, re.S)
    assert block, "README.md has no ```toml example"
    return tomllib.loads(block.group(1))


def test_the_readme_example_is_a_valid_config() -> None:
    config = parse_config(readme_example())
    assert config.langs == ["ru", "kk", "en"]
    assert config.settings["GOVKZ_BASE_URL"] == "https://www.gov.kz"
    assert config.settings["DOWNLOAD_DELAY"] == 1.0
    assert config.schedule.min_interval == 600 and config.server.port == 8080
    assert config.agencies == ["mfa", "mod", "economy"] and config.disabled == {"mfa-rabat"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"crawl": {"langs": ["de"]}}, "crawl.langs"),
        ({"crawl": {"langs": []}}, "crawl.langs"),
        ({"crawl": {"colour": "red"}}, "crawl.colour"),
        ({"schedule": {"min_interval": "10"}}, "schedule.min_interval"),
        ({"schedule": {"jitter": True}}, "schedule.jitter"),
        ({"schedule": {"min_interval": 100, "max_interval": 10}}, "min_interval"),
        ({"server": {"port": 80.5}}, "server.port"),
        ({"serverr": {}}, "serverr"),
        ({"agencies": {"enabled": [1, 2]}}, "agencies"),
    ],
)
def test_mistakes_are_named(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(raw)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[crawl\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_config(broken)


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOVKZ_CONFIG", raising=False)
    assert load_config() == Config()


REGISTRY = AgencyRegistry([Agency("a", {}), Agency("b", {}), Agency("c", {}, enabled=False)])


@pytest.mark.parametrize(
    ("agencies", "disabled", "expected"),
    [([], [], ["a", "b"]), (["c"], [], ["c"]), (["all"], [], ["a", "b", "c"]),
     (["all"], ["b"], ["a", "c"]), ([], ["a"], ["b"])],
)
def test_which_agencies_are_crawled(agencies: list, disabled: list, expected: list) -> None:
    config = parse_config({"agencies": {"enabled": agencies, "disabled": disabled}})
    assert crawl_targets(REGISTRY, config) == expected
