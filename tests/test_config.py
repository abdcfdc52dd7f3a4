"""The configuration: one resolution (defaults < file < environment < flags) into one object,
from which the Scrapy settings, the daemon's schedule and the server's options are derived.

Every setting the README documents (its Settings table and its Configuration example) has a
case below that shows, through the real command-line parser, that the file, the environment and
the flag each change what the program gets, in that order of precedence. The crawls that show
the User-Agent and the languages at the site are in test_config_crawl.py.
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT

from crawler.agencies import Agency, AgencyRegistry
from crawler.cli import build_parser, merge_global_options
from crawler.commands import resolve_config
from crawler.config import (
    KEYS,
    Config,
    Crawl,
    child_args,
    default,
    override,
    parse_pair,
    resolve,
    scrapy_settings,
)
from crawler.directory import crawl_targets
from crawler.errors import ConfigError
from crawler.sync import PagingPlan
from scheduler.commands import run_targets

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No GOVKZ_* variable of the developer's, and no ./govkz-monitor.toml, takes part."""
    import os

    for name in [n for n in os.environ if n.startswith("GOVKZ_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("DOWNLOAD_DELAY", raising=False)
    monkeypatch.chdir(tmp_path)
    yield


def parse(*argv: str) -> argparse.Namespace:
    args, extra = build_parser().parse_known_args(list(argv))
    assert not extra, extra
    return merge_global_options(args)


def cli_config(*argv: str) -> Config:
    """The Config the command line `govkz-monitor ARGV` resolves (in this process's env)."""
    return resolve_config(parse(*argv))


def write_toml(path: Path, tables: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def readme_example() -> str:
    block = re.search(r"## Configuration.*?```toml\n(.*?)```", README, re.S)
    assert block, "README.md has no ```toml example under Configuration"
    return block.group(1)


def readme_settings() -> list[str]:
    table = README.split("## Settings", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(GOVKZ_[A-Z_]+)` \|", table, re.M)


# --- every documented setting, from the file, the environment and the flag --------------------


def setting(name: str) -> Callable[[Config], Any]:
    """What Scrapy gets: the named setting of the Settings derived from the Config."""
    return lambda config: scrapy_settings(config).get(name)


def user_agent(config: Config) -> str:
    return str(scrapy_settings(config).get("USER_AGENT"))


REGISTRY = AgencyRegistry([Agency("a", {}), Agency("b", {}), Agency("c", {}, enabled=False)])


def crawled(config: Config) -> list[str]:
    return crawl_targets(REGISTRY, config.agencies)


def attribute(dotted: str) -> Callable[[Config], Any]:
    section, name = dotted.split(".")
    return lambda config: getattr(getattr(config, section), name)


@dataclass
class Case:
    key: str  # table.key in the file
    file: Any  # the value in the file
    env: str  # the value of its GOVKZ_ variable
    flag: tuple[str, ...]  # a command line that gives it as a flag
    observe: Callable[[Config], Any]  # what the program does with it
    expected: tuple[Any, Any, Any, Any]  # observed with: defaults, +file, +env, +flag
    variant: str = ""  # a second case of the same key (another command's flag)

    @property
    def id(self) -> str:
        return f"{self.key}-{self.variant}" if self.variant else self.key


UA = "govkz-monitor/0.1 (+{})"
CASES = [
    Case("crawl.data", "file-data", "env-data", ("status", "--data", "flag-data"),
         setting("GOVKZ_DATA"), ("data", "file-data", "env-data", "flag-data")),
    Case("crawl.seeds", "file-seeds", "env-seeds", ("replay", "--seeds", "flag-seeds"),
         setting("GOVKZ_SEEDS"), ("seeds", "file-seeds", "env-seeds", "flag-seeds")),
    Case("crawl.base_url", "http://file.test", "http://env.test",
         ("crawl", "--base-url", "http://flag.test"), setting("GOVKZ_BASE_URL"),
         ("https://www.gov.kz", "http://file.test", "http://env.test", "http://flag.test")),
    Case("crawl.public_url", "https://file.test/", "https://env.test/",
         ("feeds", "--public-url", "https://flag.test/"), setting("GOVKZ_PUBLIC_URL"),
         ("http://127.0.0.1:8080/", "https://file.test/", "https://env.test/",
          "https://flag.test/")),
    Case("crawl.contact_url", "https://file.test/c", "https://env.test/c",
         ("crawl", "-s", "GOVKZ_CONTACT_URL=https://flag.test/c"), user_agent,
         (UA.format("https://github.com/govkz-monitor/govkz-monitor"),
          UA.format("https://file.test/c"), UA.format("https://env.test/c"),
          UA.format("https://flag.test/c"))),
    Case("crawl.langs", ["ru", "kk"], "kk", ("crawl", "--lang", "en"),
         setting("GOVKZ_LANGS"), ("ru,kk,en", "ru,kk", "kk", "en")),
    Case("crawl.langs", ["ru", "kk"], "kk", ("run", "--lang", "en", "--lang", "ru"),
         lambda config: run_targets(["a"], config),
         (["a/ru", "a/kk", "a/en"], ["a/ru", "a/kk"], ["a/kk"], ["a/en", "a/ru"]), "run"),
    Case("crawl.access", "k6v1", "k6v2,token", ("crawl", "--access", "plain,rss"),
         setting("GOVKZ_ACCESS"), ("auto", "k6v1", "k6v2,token", "plain,rss")),
    Case("crawl.page_size", 10, "20", ("crawl", "-s", "GOVKZ_PAGE_SIZE=30"),
         setting("GOVKZ_PAGE_SIZE"), (50, 10, 20, 30)),
    Case("crawl.page_base", "0", "1", ("crawl", "-s", "GOVKZ_PAGE_BASE=auto"),
         setting("GOVKZ_PAGE_BASE"), ("auto", "0", "1", "auto")),
    Case("crawl.kk_code", "kz", "kk", ("crawl", "-s", "GOVKZ_KK_CODE=kz"),
         setting("GOVKZ_KK_CODE"), ("auto", "kz", "kk", "kz")),
    Case("crawl.backfill", 3, "4", ("crawl", "-s", "GOVKZ_BACKFILL_PAGES=5"),
         setting("GOVKZ_BACKFILL_PAGES"), (2, 3, 4, 5)),
    Case("crawl.max_pages", 10, "11", ("crawl", "-s", "GOVKZ_MAX_PAGES=12"),
         setting("GOVKZ_MAX_PAGES"), (200, 10, 11, 12)),
    Case("crawl.feed_limit", 5, "6", ("feeds", "-s", "GOVKZ_FEED_LIMIT=7"),
         setting("GOVKZ_FEED_LIMIT"), (50, 5, 6, 7)),
    Case("crawl.download_delay", 2.0, "3", ("crawl", "-s", "DOWNLOAD_DELAY=0"),
         setting("DOWNLOAD_DELAY"), (1.0, 2.0, 3.0, 0.0)),
    Case("crawl.concurrency", 1, "3", ("crawl", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4"),
         setting("CONCURRENT_REQUESTS_PER_DOMAIN"), (2, 1, 3, 4)),
    Case("crawl.retry_backoff_base", 0.5, "0.25", ("crawl", "-s", "GOVKZ_RETRY_BACKOFF_BASE=0"),
         setting("GOVKZ_RETRY_BACKOFF_BASE"), (2.0, 0.5, 0.25, 0.0)),
    Case("crawl.retry_backoff_max", 10, "20", ("crawl", "-s", "GOVKZ_RETRY_BACKOFF_MAX=30"),
         setting("GOVKZ_RETRY_BACKOFF_MAX"), (60.0, 10.0, 20.0, 30.0)),
    Case("crawl.retry_after_max", 10, "20", ("crawl", "-s", "GOVKZ_RETRY_AFTER_MAX=30.5"),
         setting("GOVKZ_RETRY_AFTER_MAX"), (120.0, 10.0, 20.0, 30.5)),
    Case("agencies.enabled", ["c"], "all", ("crawl", "-s", "GOVKZ_AGENCIES_ENABLED=b,c"),
         crawled, (["a", "b"], ["c"], ["a", "b", "c"], ["b", "c"])),
    Case("agencies.disabled", ["a"], "b", ("crawl", "-s", "GOVKZ_AGENCIES_DISABLED=a,b"),
         crawled, (["a", "b"], ["b"], ["a"], [])),
    Case("schedule.min_interval", 60, "120", ("run", "-s", "GOVKZ_SCHEDULE_MIN_INTERVAL=30"),
         attribute("schedule.min_interval"), (600, 60, 120, 30)),
    Case("schedule.max_interval", 7200, "3600",
         ("run", "-s", "GOVKZ_SCHEDULE_MAX_INTERVAL=1800"),
         attribute("schedule.max_interval"), (21600, 7200, 3600, 1800)),
    Case("schedule.jitter", 0, "5", ("run", "-s", "GOVKZ_SCHEDULE_JITTER=7"),
         attribute("schedule.jitter"), (60, 0, 5, 7)),
    Case("schedule.crawl_timeout", 100, "200", ("run", "-s", "GOVKZ_SCHEDULE_CRAWL_TIMEOUT=300"),
         attribute("schedule.crawl_timeout"), (900, 100, 200, 300)),
    Case("schedule.failure_threshold", 1, "2",
         ("run", "-s", "GOVKZ_SCHEDULE_FAILURE_THRESHOLD=5"),
         attribute("schedule.failure_threshold"), (3, 1, 2, 5)),
    Case("server.bind", "0.0.0.0", "::1", ("serve", "--bind", "127.0.0.2"),
         attribute("server.bind"), ("127.0.0.1", "0.0.0.0", "::1", "127.0.0.2")),
    Case("server.port", 9000, "9001", ("run", "--port", "0"),
         attribute("server.port"), (8080, 9000, 9001, 0)),
    Case("server.cache_max_age", 0, "60", ("serve", "-s", "GOVKZ_SERVER_CACHE_MAX_AGE=120"),
         attribute("server.cache_max_age"), (300, 0, 60, 120)),
]
LAYERS = ("default", "file", "env", "flag")


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_setting_from_file_env_and_flag(
    case: Case, layer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each layer given on top of the lower ones wins: defaults < file < env < flag."""
    level = LAYERS.index(layer)
    table, name = case.key.split(".")
    argv: list[str] = []
    if level >= 1:
        config = write_toml(tmp_path / "config.toml", {table: {name: case.file}})
        argv += ["--config", str(config)]
    if level >= 2:
        monkeypatch.setenv(KEYS[case.key].env, case.env)
    # Without the flag, the same command with no flag: the command changes nothing by itself.
    argv += list(case.flag) if level >= 3 else [case.flag[0]]
    assert case.observe(cli_config(*argv)) == case.expected[level]


def test_every_documented_setting_has_a_case() -> None:
    """The README's Settings table and Configuration example name only keys that exist, and
    each has a case above: documenting a setting without showing it works fails here."""
    by_env = {key.env: key.dotted for key in KEYS.values()}
    documented = readme_settings()
    assert len(documented) >= 14
    unknown = [name for name in documented if name not in by_env]
    assert not unknown, f"README documents settings that do not exist: {unknown}"
    example = tomllib.loads(readme_example())
    in_example = [f"{table}.{key}" for table, values in example.items() for key in values]
    assert not set(in_example) - set(KEYS), "README's example has keys that do not exist"
    tested = {case.key for case in CASES}
    untested = sorted(({by_env[name] for name in documented} | set(in_example)) - tested)
    assert not untested, f"documented settings without a case: {untested}"


def test_the_readme_example_is_a_valid_config(tmp_path: Path) -> None:
    path = tmp_path / "example.toml"
    path.write_text(readme_example(), encoding="utf-8")
    config = resolve(config_file=path, environ={})
    assert config.path == path
    assert config.crawl.langs == ("ru", "kk", "en")
    assert config.crawl.base_url == "https://www.gov.kz"
    assert config.crawl.download_delay == 1.0 and config.crawl.backfill == 2
    assert config.schedule.min_interval == 600 and config.server.port == 8080
    assert config.agencies.enabled == ("mfa", "mod", "economy")
    assert config.agencies.disabled == ("mfa-rabat",)


# --- the bugs of the issue -----------------------------------------------------------------


def test_a_file_delay_survives_an_unrelated_download_delay_variable(tmp_path: Path) -> None:
    """DOWNLOAD_DELAY in the environment is not configuration: the file's 2.0 stays; the
    project's variable (GOVKZ_DOWNLOAD_DELAY) and the flag do override it."""
    path = write_toml(tmp_path / "c.toml", {"crawl": {"download_delay": 2.0}})
    unrelated = {"DOWNLOAD_DELAY": "5"}
    config = resolve(config_file=path, environ=unrelated)
    assert scrapy_settings(config).getfloat("DOWNLOAD_DELAY") == 2.0
    config = resolve(config_file=path, environ={**unrelated, "GOVKZ_DOWNLOAD_DELAY": "3"})
    assert scrapy_settings(config).getfloat("DOWNLOAD_DELAY") == 3.0
    config = resolve(config_file=path, environ=unrelated, sets=["DOWNLOAD_DELAY=0.5"])
    assert scrapy_settings(config).getfloat("DOWNLOAD_DELAY") == 0.5


def test_the_user_agent_is_built_from_the_resolved_contact_url(tmp_path: Path) -> None:
    """Not when crawler.settings was imported: the same process derives two User-Agents."""
    import crawler.settings  # noqa: F401 - imported first, on purpose

    for contact in ("https://one.test/contact", "https://two.test/contact"):
        path = write_toml(tmp_path / "c.toml", {"crawl": {"contact_url": contact}})
        settings = scrapy_settings(resolve(config_file=path, environ={}))
        assert settings.get("USER_AGENT") == f"govkz-monitor/0.1 (+{contact})"


@pytest.mark.parametrize(("environ", "argv", "expected"), [
    ({}, [], ["a/ru", "a/kk", "a/en"]),
    ({"GOVKZ_LANGS": "kk"}, [], ["a/kk"]),
    ({"GOVKZ_LANGS": "kk,en"}, ["-s", "GOVKZ_LANGS=ru"], ["a/ru"]),
    ({}, ["--lang", "en"], ["a/en"]),
    ({"GOVKZ_LANGS": "kk"}, ["--lang", "en", "--lang", "ru"], ["a/en", "a/ru"]),
    ({"GOVKZ_LANGS": "kk"}, ["-s", "GOVKZ_LANGS=ru", "--lang", "en"], ["a/en"]),  # flag > -s
])
def test_run_crawls_the_resolved_languages(
    environ: dict[str, str], argv: list[str], expected: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`run`'s targets (agency x language) follow GOVKZ_LANGS, -s and `run --lang`."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert run_targets(["a"], cli_config("run", *argv)) == expected


def test_the_paging_plan_default_is_the_configuration_default() -> None:
    assert PagingPlan().backfill_pages == default("crawl.backfill") == Crawl().backfill == 2
    assert PagingPlan().max_pages == default("crawl.max_pages")


# --- the daemon's crawl children ------------------------------------------------------------


def test_a_crawl_child_crawls_as_the_daemon_resolved(tmp_path: Path) -> None:
    """The daemon's children get the [crawl] values as flags: their own environment (here a
    different one) cannot make them crawl otherwise."""
    path = write_toml(tmp_path / "c.toml", {"crawl": {"langs": ["en"], "download_delay": 0.0}})
    parent = resolve(config_file=path, environ={"GOVKZ_CONTACT_URL": "https://op.test/"},
                     sets=["AUTOTHROTTLE_ENABLED=0"], flags={"crawl.data": tmp_path / "d"})
    args = child_args(parent)
    pairs = [parse_pair(arg) for arg in args[1::2]]
    assert args[0::2] == ["-s"] * len(pairs)
    child = resolve(config_file=path, environ={"GOVKZ_LANGS": "kk", "GOVKZ_DATA": "elsewhere"},
                    sets=dict(pairs))
    assert child.crawl == parent.crawl and child.scrapy == parent.scrapy
    assert scrapy_settings(child).get("USER_AGENT") == scrapy_settings(parent).get("USER_AGENT")


def test_the_demo_layer_is_checked_as_flags_are() -> None:
    config = override(Config(), flags={"crawl.base_url": "http://127.0.0.1:1",
                                       "schedule.min_interval": 15, "schedule.max_interval": 60})
    assert config.crawl.base_url == "http://127.0.0.1:1" and config.schedule.max_interval == 60
    with pytest.raises(ConfigError, match="--download-delay"):
        override(Config(), flags={"crawl.download_delay": -1.0})


# --- mistakes are one line naming their source ----------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"crawl": {"langs": ["de"]}}, "crawl.langs"),
        ({"crawl": {"langs": []}}, "crawl.langs"),
        ({"crawl": {"colour": "red"}}, "crawl.colour"),
        ({"crawl": {"page_size": 500}}, "crawl.page_size"),
        ({"crawl": {"access": "k6v9"}}, "crawl.access: access: unknown strategy 'k6v9'"),
        ({"crawl": {"contact_url": "me@example.org"}}, "crawl.contact_url"),
        ({"schedule": {"min_interval": "10"}}, "schedule.min_interval"),
        ({"schedule": {"jitter": True}}, "schedule.jitter"),
        ({"schedule": {"min_interval": 100, "max_interval": 10}}, "min_interval"),
        ({"server": {"port": 80.5}}, "server.port"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"serverr": {}}, "serverr"),
        ({"agencies": {"enabled": [1, 2]}}, "agencies.enabled"),
    ],
)
def test_file_mistakes_are_named(tmp_path: Path, raw: dict, message: str) -> None:
    path = write_toml(tmp_path / "bad.toml", raw)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: ")) as caught:
        resolve(config_file=path, environ={})
    assert message in str(caught.value)


@pytest.mark.parametrize(("environ", "sets", "message"), [
    ({"GOVKZ_PAGE_SIZE": "many"}, [], "GOVKZ_PAGE_SIZE (environment): not an integer: 'many'"),
    ({"GOVKZ_LANGS": "ru,de"}, [], "GOVKZ_LANGS (environment): must be a non-empty list"),
    ({"GOVKZ_LOG_LEVEL": "LOUD"}, [], "GOVKZ_LOG_LEVEL (environment): unknown log level"),
    ({}, ["GOVKZ_DOWNLOAD_DELAY=soon"], "-s GOVKZ_DOWNLOAD_DELAY: not a number: 'soon'"),
    ({}, ["DOWNLOAD_DELAY=-1"], "-s DOWNLOAD_DELAY: must be 0 or more"),
    ({}, ["GOVKZ_SERVER_PORT=http"], "-s GOVKZ_SERVER_PORT: not an integer"),
    ({}, ["novalue"], "-s expects NAME=VALUE"),
    ({}, ["GOVKZ_CONFIG=x.toml"], "--config"),
])
def test_environment_and_flag_mistakes_are_named(
    environ: dict[str, str], sets: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve(environ=environ, sets=sets)


def test_an_unknown_govkz_setting_is_refused_with_a_suggestion() -> None:
    config = resolve(environ={}, sets=["GOVKZ_BACKFILL=4"])
    with pytest.raises(ConfigError, match=r"GOVKZ_BACKFILL: no such setting.*GOVKZ_BACKFILL_PAGES"):
        scrapy_settings(config)
    # A Scrapy setting, or an internal one of the project, is handed over as it is.
    settings = scrapy_settings(resolve(environ={}, sets=["AUTOTHROTTLE_ENABLED=0",
                                                          "GOVKZ_RETRY_AFTER_TIMES=1"]))
    assert settings.getbool("AUTOTHROTTLE_ENABLED") is False
    assert settings.getint("GOVKZ_RETRY_AFTER_TIMES") == 1


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        resolve(config_file=tmp_path / "nope.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[crawl\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.toml"):
        resolve(config_file=broken, environ={})


@pytest.mark.parametrize("how", ["flag", "env", "cwd"])
def test_where_the_file_is_found(tmp_path: Path, how: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """--config FILE, else $GOVKZ_CONFIG, else ./govkz-monitor.toml."""
    name = "govkz-monitor.toml" if how == "cwd" else "other.toml"
    path = write_toml(tmp_path / name, {"crawl": {"page_size": 7}})
    write_toml(tmp_path / "decoy.toml", {"crawl": {"page_size": 9}})
    argv = {"flag": ["--config", str(path)], "env": [], "cwd": []}[how]
    if how == "env":
        monkeypatch.setenv("GOVKZ_CONFIG", str(path))
    assert cli_config(*argv, "status").crawl.page_size == 7
    if how != "cwd":  # the flag beats the variable, the variable the working directory
        monkeypatch.setenv("GOVKZ_CONFIG", str(tmp_path / "decoy.toml"))
        expected = 7 if how == "flag" else 9
        assert cli_config(*argv, "status").crawl.page_size == expected


def test_no_file_means_defaults() -> None:
    assert resolve(environ={}) == Config()
    assert cli_config("status") == Config()


@pytest.mark.parametrize(
    ("agencies", "disabled", "expected"),
    [([], [], ["a", "b"]), (["c"], [], ["c"]), (["all"], [], ["a", "b", "c"]),
     (["all"], ["b"], ["a", "c"]), ([], ["a"], ["b"])],
)
def test_which_agencies_are_crawled(tmp_path: Path, agencies: list, disabled: list,
                                    expected: list) -> None:
    path = write_toml(tmp_path / "c.toml",
                      {"agencies": {"enabled": agencies, "disabled": disabled}})
    assert crawled(resolve(config_file=path, environ={})) == expected


def test_nothing_else_reads_the_environment() -> None:
    """crawler/config.py is the one place the environment is read for configuration; the
    others named here read or pass on process plumbing, each with a comment saying why."""
    plumbing = {
        "crawler/config.py": 1,  # the resolution
        "crawler/runner.py": 1,  # GOVKZ_DIE_WITH_PARENT, set by the daemon for its children
        "crawler/cli.py": 1,  # SCRAPY_SETTINGS_MODULE for Scrapy's own helpers
        "crawler/settings.py": 1,  # TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS for tldextract
        "scheduler/crawlproc.py": 1,  # a crawl child inherits the daemon's environment
    }
    found = {}
    for path in sorted([*ROOT.glob("crawler/**/*.py"), *ROOT.glob("scheduler/**/*.py")]):
        text = path.read_text(encoding="utf-8")
        count = len(re.findall(r"os\.environ|os\.getenv|getenv\(", text))
        if count:
            found[str(path.relative_to(ROOT))] = count
    assert found == plumbing
