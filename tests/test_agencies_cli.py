"""`govkz-monitor agencies`: the shipped registry, and --refresh from gov.kz's GraphQL."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from cli_helpers import run_cli

from crawler.mockgov.faults import Fault
from crawler.mockgov.serve import serve_in_thread
from crawler.mockgov.site import MockSite

FAST = ["-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0"]


def test_listing_shows_the_shipped_registry(tmp_path: Path) -> None:
    result = run_cli("agencies", "--data", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["slug"]: row for row in json.loads(result.stdout)}
    assert {"mfa", "mod", "primeminister", "pravstat"} <= set(rows)
    assert rows["mod"]["crawled"] is True
    assert all(rows["mod"][f"name_{lang}"] for lang in ("kk", "ru", "en"))


@pytest.fixture()
def directory_site() -> MockSite:
    site = MockSite()
    site.add_agency("zz-ministry", names={"en": "Ministry of Tests", "ru": "Министерство тестов",
                                         "kk": "Тест министрлігі"})
    site.add_agency("zz-committee", names={"en": "Committee of Tests"}, parent="zz-ministry")
    return site


def test_refresh_loads_the_directory_through_graphql(
    tmp_path: Path, directory_site: MockSite
) -> None:
    with serve_in_thread(directory_site) as server:
        result = run_cli("agencies", "--refresh", "--base-url", server.url,
                         "--data", str(tmp_path), "--json", *FAST)
    assert result.returncode == 0, result.stderr
    saved = tomllib.loads((tmp_path / "agencies.toml").read_text(encoding="utf-8"))
    table = saved.get("agencies", saved)
    assert table["zz-ministry"]["ru"] == "Министерство тестов"
    assert table["zz-committee"]["en"] == "Committee of Tests"
    rows = {row["slug"]: row for row in json.loads(result.stdout)}
    # Refreshed agencies are known (names in feeds) but not crawled until enabled.
    assert rows["zz-ministry"]["crawled"] is False
    assert rows["mod"]["crawled"] is True
    assert directory_site.count("/graphql") >= 3  # every language, until an empty page


def test_refresh_failure_is_one_line(tmp_path: Path) -> None:
    site = MockSite()
    with serve_in_thread(site) as server:
        site.faults.add(Fault("html", path="/graphql", times=None))
        result = run_cli("agencies", "--refresh", "--base-url", server.url,
                         "--data", str(tmp_path), *FAST)
    assert result.returncode == 1
    assert "layout changed" in result.stderr
    assert "Traceback" not in result.stderr
