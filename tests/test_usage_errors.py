"""Usage errors: exit 2, one line on stderr naming the problem, no traceback, no request sent."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import run_cli

from crawler.agencies import Agency, AgencyRegistry
from crawler.cli import COMMANDS, build_parser
from crawler.commands import port_or_any, positive_int, positive_seconds
from crawler.mockgov.serve import serve_in_thread
from crawler.mockgov.site import MockSite
from crawler.store import Archive

FAST = ["-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0"]


@pytest.mark.parametrize(("argv", "names"), [
    (["crawl", "--agency", "no-such-slug"], ["--agency", "unknown agency 'no-such-slug'"]),
    (["crawl", "--agency", "mdo"], ["unknown agency 'mdo'", "did you mean mod"]),
    (["crawl", "--agency", "mod", "--agency", "minfn", "--agency", "zz-nothing"],
     ["'minfn' (did you mean minfin?)", "'zz-nothing'"]),
    (["crawl", "--agency", "mod", "--backfill", "0"], ["--backfill", "'0'"]),
    (["crawl", "--agency", "mod", "--backfill", "-2"], ["--backfill", "'-2'"]),
    (["crawl", "--agency", "mod", "--backfill", "two"], ["--backfill", "not an integer"]),
    (["crawl", "--agency", "mod", "--lang", "xx"], ["--lang", "'xx'"]),
    (["--log-level", "LOUD", "crawl", "--agency", "mod"], ["--log-level", "'LOUD'"]),
])
def test_crawl_usage_error_is_one_line_and_sends_nothing(
    tmp_path: Path, argv: list[str], names: list[str]
) -> None:
    site = MockSite()
    site.add_agency("mod")
    data = tmp_path / "data"
    with serve_in_thread(site) as server:
        result = run_cli(*argv, "--base-url", server.url, "--data", str(data), *FAST,
                         timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("govkz-monitor"), lines[0]
    assert ": error: " in lines[0]
    for name in names:
        assert name in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert len(site.log) == 0, "a usage error must not reach the site"
    assert not (data / "news.db").exists(), "a usage error must not create an archive"


def _known_from_the_archive(data: Path) -> None:
    archive = Archive.open(data / "news.db")
    try:
        archive.upsert_agency("zz-known", names={"en": "Known from an earlier refresh"})
    finally:
        archive.close()


def _known_from_the_refreshed_registry(data: Path) -> None:
    AgencyRegistry([Agency("zz-known", names={"en": "Known"}, enabled=False)]).to_toml(
        data / "agencies.toml"
    )


@pytest.mark.parametrize("known_from", [_known_from_the_archive,
                                        _known_from_the_refreshed_registry])
def test_a_slug_the_archive_or_a_refresh_knows_is_crawled(
    tmp_path: Path, known_from: Callable[[Path], None]
) -> None:
    known_from(tmp_path)
    site = MockSite()
    site.add_agency("zz-known", names={"en": "Known"})
    site.publish("zz-known", title={"en": "Hello"}, body={"en": "<p>Hello</p>"})
    with serve_in_thread(site) as server:
        result = run_cli("crawl", "--agency", "zz-known", "--lang", "en", "--base-url",
                         server.url, "--data", str(tmp_path), *FAST, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(site.log) > 0


@pytest.mark.parametrize(("kind", "good", "bad"), [
    (positive_int, {"1": 1, "200": 200}, ["0", "-1", "x", "1.5", ""]),
    (port_or_any, {"0": 0, "8080": 8080, "65535": 65535}, ["-1", "-80", "65536", "http"]),
    (positive_seconds, {"30": 30.0, "0.5": 0.5}, ["0", "-1", "nan", "inf", "soon"]),
])
def test_numeric_option_types(
    kind: Callable[[str], float], good: dict[str, float], bad: list[str]
) -> None:
    for text, value in good.items():
        assert kind(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            kind(text)


@pytest.mark.parametrize("command", sorted(set(build_parser() and COMMANDS) - {"mock"}))
def test_an_unknown_option_is_one_line(tmp_path: Path, command: str) -> None:
    positional = ["anything"] if command == "search" else []  # else argparse asks for it first
    result = run_cli(command, *positional, "--no-such-option", "--data", str(tmp_path),
                     timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--no-such-option" in lines[0], result.stderr
    assert result.stdout == ""
