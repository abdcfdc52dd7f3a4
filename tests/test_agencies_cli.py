"""`govkz-monitor agencies`: the shipped registry, and --refresh from gov.kz's GraphQL."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from cli_helpers import run_cli
from net_helpers import closed_port, json_server

from crawler.agencies import Agency, AgencyRegistry
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
    assert not list(tmp_path.glob(".agencies.toml.*")), "a temporary file was left behind"


def test_refresh_replaces_an_earlier_registry(
    tmp_path: Path, directory_site: MockSite
) -> None:
    (tmp_path / "agencies.toml").write_text("# an earlier refresh\n", encoding="utf-8")
    with serve_in_thread(directory_site) as server:
        result = run_cli("agencies", "--refresh", "--base-url", server.url,
                         "--data", str(tmp_path), *FAST)
    assert result.returncode == 0, result.stderr
    assert "2 agencies saved to" in result.stderr
    saved = tomllib.loads((tmp_path / "agencies.toml").read_text(encoding="utf-8"))
    assert set(saved["agencies"]) == {"zz-ministry", "zz-committee"}


def test_refresh_failure_is_one_line(tmp_path: Path) -> None:
    site = MockSite()
    with serve_in_thread(site) as server:
        site.faults.add(Fault("html", path="/graphql", times=None))
        result = run_cli("agencies", "--refresh", "--base-url", server.url,
                         "--data", str(tmp_path), *FAST)
    assert result.returncode == 1
    assert "layout changed" in result.stderr
    assert "Traceback" not in result.stderr


# --- a refresh that fails keeps the registry it had ------------------------------------------


@pytest.fixture()
def previous(tmp_path: Path) -> bytes:
    """DATA/agencies.toml from an earlier refresh; returns its bytes."""
    AgencyRegistry([
        Agency("zz-old", names={"en": "Old Ministry"}, enabled=False),
        Agency("zz-older", names={"ru": "Старое агентство"}, parent="zz-old", enabled=False),
    ]).to_toml(tmp_path / "agencies.toml")
    return (tmp_path / "agencies.toml").read_bytes()


def assert_kept(
    result: subprocess.CompletedProcess[str], data: Path, previous: bytes, why: str
) -> None:
    assert result.returncode == 1, result.stderr
    assert (data / "agencies.toml").read_bytes() == previous
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("agencies --refresh:")]
    assert len(lines) == 1, result.stderr
    assert why in lines[0], lines[0]
    assert f"kept the registry at {data / 'agencies.toml'} with 2 agencies" in lines[0]
    assert not list(data.glob(".agencies.toml.*")), "a temporary file was left behind"


def test_refresh_of_an_unreachable_site_keeps_the_registry(
    tmp_path: Path, previous: bytes
) -> None:
    with closed_port() as port:
        result = run_cli("agencies", "--refresh", "--base-url", f"http://127.0.0.1:{port}",
                         "--data", str(tmp_path), "-s", "RETRY_TIMES=0", *FAST)
    assert_kept(result, tmp_path, previous, "gave no agencies")
    assert "Connection was refused" in result.stderr


def test_refresh_answered_with_graphql_errors_keeps_the_registry(
    tmp_path: Path, previous: bytes
) -> None:
    answer = {"errors": [{"message": 'Cannot query field "projectdetails" on type "Query".'}]}
    with json_server(answer) as url:
        result = run_cli("agencies", "--refresh", "--base-url", url,
                         "--data", str(tmp_path), *FAST)
    assert_kept(result, tmp_path, previous, "gave no agencies")
    assert 'Cannot query field "projectdetails"' in result.stderr


def test_refresh_of_an_empty_directory_keeps_the_registry(
    tmp_path: Path, previous: bytes
) -> None:
    with serve_in_thread(MockSite()) as server:  # no agencies: projectdetails is []
        result = run_cli("agencies", "--refresh", "--base-url", server.url,
                         "--data", str(tmp_path), *FAST)
    assert_kept(result, tmp_path, previous, "gave no agencies")
    assert "is empty" in result.stderr


def test_refresh_that_fails_in_part_keeps_the_registry(
    tmp_path: Path, previous: bytes, directory_site: MockSite
) -> None:
    # Exactly one of the directory requests fails, and is not retried: the other languages
    # come back complete, which must still not replace the registry.
    directory_site.faults.add(Fault("status", status=500, path="/graphql", times=1))
    with serve_in_thread(directory_site) as server:
        result = run_cli("agencies", "--refresh", "--base-url", server.url,
                         "--data", str(tmp_path), "-s", "RETRY_TIMES=0", *FAST)
    assert_kept(result, tmp_path, previous, "answered in part only")
    assert "HTTP 500" in result.stderr


def test_failed_first_refresh_writes_no_registry(tmp_path: Path) -> None:
    with serve_in_thread(MockSite()) as server:
        result = run_cli("agencies", "--refresh", "--base-url", server.url,
                         "--data", str(tmp_path), *FAST)
    assert result.returncode == 1
    assert not (tmp_path / "agencies.toml").exists()
    assert "wrote nothing to" in result.stderr and "shipped registry" in result.stderr
