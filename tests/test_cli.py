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


# --- global options before and after the command --------------------------------------------


def _parsed(*argv: str):
    from crawler.cli import merge_global_options

    args, extra = build_parser().parse_known_args(list(argv))
    assert not extra, extra
    return merge_global_options(args)


@pytest.mark.parametrize("argv", [
    ["--data", "X", "status"],
    ["status", "--data", "X"],
    ["--data", "Y", "status", "--data", "X"],  # the later one wins
    ["-v", "--data", "X", "crawl", "--agency", "mod"],
    ["crawl", "--agency", "mod", "--data", "X", "-v"],
])
def test_data_is_taken_before_and_after_the_command(argv: list[str]) -> None:
    from crawler.commands import resolve_config

    args = _parsed(*argv)
    assert args.command in ("status", "crawl")
    assert str(resolve_config(args).crawl.data) == "X"


@pytest.mark.parametrize(("argv", "verbose", "level", "pairs"), [
    (["status", "-v"], 1, None, []),
    (["-v", "status", "-v"], 2, None, []),
    (["-vv", "status"], 2, None, []),
    (["status", "--log-level", "debug"], 0, "DEBUG", []),
    (["--log-level", "ERROR", "status"], 0, "ERROR", []),
    (["-s", "A=1", "crawl", "-s", "B=2"], 0, None, ["A=1", "B=2"]),
    (["crawl", "-s", "A=1", "--set", "B=2"], 0, None, ["A=1", "B=2"]),
])
def test_counting_and_repeated_options_add_up_across_positions(
    argv: list[str], verbose: int, level: str | None, pairs: list[str]
) -> None:
    args = _parsed(*argv)
    assert (args.verbose, args.log_level, args.set) == (verbose, level, pairs)


@pytest.mark.parametrize("position", ["before", "after"])
def test_config_is_taken_before_and_after_the_command(tmp_path, position: str) -> None:
    from crawler.commands import resolve_config

    config = tmp_path / "c.toml"
    config.write_text("[server]\nport = 9999\n", encoding="utf-8")
    option = ["--config", str(config)]
    argv = [*option, "serve"] if position == "before" else ["serve", *option]
    assert resolve_config(_parsed(*argv)).server.port == 9999


@pytest.mark.parametrize("argv", [
    ["--data", "{data}", "status"],
    ["status", "-v", "--data", "{data}"],
    ["-v", "status", "--data", "{data}", "--log-level", "DEBUG"],
])
def test_status_runs_with_options_anywhere(tmp_path, argv: list[str]) -> None:
    """End to end: the options are accepted (no usage error, exit 2); with no archive in the
    data directory named, status says so (exit 1), naming that directory."""
    data = tmp_path / "nowhere"
    result = run_cli(*[a.format(data=data) for a in argv], timeout=60)
    assert result.returncode == 1, result.stderr
    assert f"no archive at {data / 'news.db'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_configuration_mistake_is_one_line_exit_2(tmp_path) -> None:
    result = run_cli("status", "--data", str(tmp_path), env={"GOVKZ_PAGE_SIZE": "lots"},
                     timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "govkz-monitor: error: GOVKZ_PAGE_SIZE (environment): not an integer: 'lots'"]
