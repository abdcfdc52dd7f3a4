"""The command line: help, documentation, error messages."""

from __future__ import annotations

import re

import pytest
from cli_helpers import ROOT, run_cli

from crawler.cli import COMMANDS, build_parser


def test_every_command_is_documented_in_the_readme() -> None:
    build_parser()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"govkz-monitor ([a-z-]+)", readme))
    missing = sorted(set(COMMANDS) - documented)
    assert not missing, f"commands missing from README.md: {missing}"


def test_every_command_has_a_parser_and_help() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(subparsers.choices) == set(COMMANDS)
    for name, sub in subparsers.choices.items():
        assert sub.description, f"{name} has no description"


@pytest.mark.parametrize("command", sorted(build_parser() and COMMANDS))
def test_help_runs(command: str) -> None:
    result = run_cli(command, "--help", timeout=60)
    assert result.returncode == 0
    assert "usage: govkz-monitor" in result.stdout


def test_no_command_prints_help_and_fails() -> None:
    result = run_cli(timeout=60)
    assert result.returncode == 2
    assert "replay" in result.stdout


def test_search_without_archive_is_a_clear_error(tmp_path) -> None:
    result = run_cli("search", "anything", "--data", str(tmp_path), timeout=60)
    assert result.returncode != 0
    assert "no archive" in result.stderr and "Traceback" not in result.stderr


def test_scrapy_finds_the_spiders_from_the_repo_root() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "scrapy", "list"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["agencies", "govkz", "replay"]


@pytest.mark.parametrize("command", [["replay"], ["crawl", "--agency", "mod"], ["search", "x"]])
def test_unusable_data_dir_is_one_line(tmp_path, command) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(*command, "--data", str(blocker / "data"), timeout=60)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert lines and "Traceback" not in result.stderr
