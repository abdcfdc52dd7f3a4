"""The configuration: every setting resolved once, in one place, into one frozen object.

Precedence, lowest first (README, "Configuration"):

    defaults (the dataclasses below, each default written once)
      < the TOML file (--config FILE, else $GOVKZ_CONFIG, else ./govkz-monitor.toml)
      < the environment (GOVKZ_* names: KEYS below)
      < the command line (-s NAME=VALUE, then the dedicated flags: --data, --base-url, ...)

`resolve()` is the one function that builds a `Config`; `scrapy_settings()` derives the Scrapy
`Settings` of a crawl from it (the User-Agent from the resolved contact_url, DOWNLOAD_DELAY from
the resolved download_delay, ...), and the daemon's schedule and the server's options are its
`schedule` and `server` sections. No other module reads the environment for configuration or
re-applies a default: a value missing from the Scrapy settings is a bug, not a fallback.

Every key has one GOVKZ_ name, used by the environment and by `-s`: the documented names for
the [crawl] table (GOVKZ_DATA, GOVKZ_BACKFILL_PAGES, ...), GOVKZ_<TABLE>_<KEY> for the others
(GOVKZ_SERVER_PORT, GOVKZ_SCHEDULE_MIN_INTERVAL, ...). `-s` also takes the Scrapy name of a key
that has one (DOWNLOAD_DELAY, CONCURRENT_REQUESTS_PER_DOMAIN); any other `-s` name is handed to
Scrapy unchanged (AUTOTHROTTLE_ENABLED=0). A Scrapy name in the environment (DOWNLOAD_DELAY=5)
is not configuration and changes nothing.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import InitVar, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from crawler.errors import ConfigError
from crawler.items import GOVKZ_SITE, LANGS

DEFAULT_CONFIG = Path("govkz-monitor.toml")  # looked for in the working directory
CONFIG_ENV = "GOVKZ_CONFIG"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_LEVEL_ENV = "GOVKZ_LOG_LEVEL"
LOG_FILE_ENV = "GOVKZ_LOG_FILE"
USER_AGENT = "govkz-monitor/0.1 (+{contact_url})"


def _key(default: Any, *, env: str | None = None, setting: str | None = None) -> Any:
    """A configuration key: its default (the only place it is written), its GOVKZ_ name if it
    is not GOVKZ_<TABLE>_<KEY>, and the Scrapy setting it becomes, if any."""
    return field(default=default, metadata={"env": env, "setting": setting})


@dataclass(frozen=True)
class Crawl:
    """[crawl]: what a crawl fetches, from where, how politely, and where it stores it."""

    data: Path = _key(Path("data"), env="GOVKZ_DATA", setting="GOVKZ_DATA")
    seeds: Path = _key(Path("seeds"), env="GOVKZ_SEEDS", setting="GOVKZ_SEEDS")
    base_url: str = _key(GOVKZ_SITE, env="GOVKZ_BASE_URL", setting="GOVKZ_BASE_URL")
    public_url: str = _key("http://127.0.0.1:8080/", env="GOVKZ_PUBLIC_URL",
                           setting="GOVKZ_PUBLIC_URL")
    contact_url: str = _key("https://github.com/govkz-monitor/govkz-monitor",
                            env="GOVKZ_CONTACT_URL", setting="GOVKZ_CONTACT_URL")
    langs: tuple[str, ...] = _key(("ru", "kk", "en"), env="GOVKZ_LANGS", setting="GOVKZ_LANGS")
    access: str = _key("auto", env="GOVKZ_ACCESS", setting="GOVKZ_ACCESS")
    page_size: int = _key(50, env="GOVKZ_PAGE_SIZE", setting="GOVKZ_PAGE_SIZE")
    # What the site speaks: "auto" probes once per site and remembers (crawler/siteprobe.py).
    page_base: str = _key("auto", env="GOVKZ_PAGE_BASE", setting="GOVKZ_PAGE_BASE")
    kk_code: str = _key("auto", env="GOVKZ_KK_CODE", setting="GOVKZ_KK_CODE")
    backfill: int = _key(2, env="GOVKZ_BACKFILL_PAGES", setting="GOVKZ_BACKFILL_PAGES")
    max_pages: int = _key(200, env="GOVKZ_MAX_PAGES", setting="GOVKZ_MAX_PAGES")
    feed_limit: int = _key(50, env="GOVKZ_FEED_LIMIT", setting="GOVKZ_FEED_LIMIT")
    download_delay: float = _key(1.0, env="GOVKZ_DOWNLOAD_DELAY", setting="DOWNLOAD_DELAY")
    concurrency: int = _key(2, env="GOVKZ_CONCURRENCY",
                            setting="CONCURRENT_REQUESTS_PER_DOMAIN")
    retry_backoff_base: float = _key(2.0, env="GOVKZ_RETRY_BACKOFF_BASE",
                                     setting="GOVKZ_RETRY_BACKOFF_BASE")
    retry_backoff_max: float = _key(60.0, env="GOVKZ_RETRY_BACKOFF_MAX",
                                    setting="GOVKZ_RETRY_BACKOFF_MAX")
    retry_after_max: float = _key(120.0, env="GOVKZ_RETRY_AFTER_MAX",
                                  setting="GOVKZ_RETRY_AFTER_MAX")


@dataclass(frozen=True)
class Agencies:
    """[agencies]: which agencies are crawled when no --agency is named."""

    enabled: tuple[str, ...] = _key((), setting="GOVKZ_AGENCIES_ENABLED")  # (): the registry's
    disabled: tuple[str, ...] = _key((), setting="GOVKZ_AGENCIES_DISABLED")


@dataclass(frozen=True)
class Schedule:
    """[schedule], in seconds: the daemon's adaptive intervals (scheduler/policy.py)."""

    min_interval: int = _key(600)  # never re-crawl a target more often
    max_interval: int = _key(6 * 3600)  # never leave a target longer
    jitter: int = _key(60)  # random spread, so targets don't crawl in lockstep
    crawl_timeout: int = _key(900)  # before a hung crawl is killed
    failure_threshold: int = _key(3)  # consecutive failures that open an incident
    # site-wide, per-agency, or auto: probe the site-wide list at start and every
    # probe_interval, and use it when it works (scheduler/mode.py).
    mode: str = _key("auto")
    probe_interval: int = _key(86400)
    audit_interval: int = _key(86400)  # site-wide mode: each agency x language walked this often


@dataclass(frozen=True)
class Server:
    """[server]: where `run` and `serve` listen."""

    bind: str = _key("127.0.0.1")
    port: int = _key(8080)
    cache_max_age: int = _key(300)


@dataclass(frozen=True)
class Config:
    crawl: Crawl = field(default_factory=Crawl)
    agencies: Agencies = field(default_factory=Agencies)
    schedule: Schedule = field(default_factory=Schedule)
    server: Server = field(default_factory=Server)
    # Other `-s NAME=VALUE` pairs, in order: Scrapy settings handed over unchanged.
    scrapy: tuple[tuple[str, str], ...] = ()
    log_level: str | None = None  # GOVKZ_LOG_LEVEL or --log-level; None: by -v
    log_file: Path | None = None  # GOVKZ_LOG_FILE or --log-file: also log there; None: stderr
    path: Path | None = None  # the file read, if any (the daemon hands it to crawl children)
    # Only for code that builds a Config by hand (tests/test_daemon.py): Config(langs=["en"])
    # is Config(crawl=Crawl(langs=("en",))). Read it as config.crawl.langs.
    langs: InitVar[Iterable[str] | None] = None

    def __post_init__(self, langs: Iterable[str] | None) -> None:
        if langs is not None:
            object.__setattr__(self, "crawl", replace(self.crawl, langs=tuple(langs)))


SECTIONS: dict[str, type] = {"crawl": Crawl, "agencies": Agencies, "schedule": Schedule,
                             "server": Server}


# --- the keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    kind: type  # int, float, str, Path or tuple (of strings)
    env: str  # the GOVKZ_ name: environment and -s
    setting: str | None  # the Scrapy setting it becomes

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"


def _keys() -> dict[str, Key]:
    keys = {}
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        for f in fields(cls):
            hint = hints[f.name]
            kind = tuple if getattr(hint, "__origin__", None) is tuple else hint
            env = f.metadata.get("env") or f"GOVKZ_{section}_{f.name}".upper()
            key = Key(section, f.name, kind, env, f.metadata.get("setting"))
            keys[key.dotted] = key
    return keys


KEYS: dict[str, Key] = _keys()
# A key by any name `-s` takes: its GOVKZ_ name or its Scrapy setting.
BY_NAME: dict[str, Key] = {
    **{k.setting: k for k in KEYS.values() if k.setting},
    **{k.env: k for k in KEYS.values()},
}


def default(dotted: str) -> Any:
    """The default of a key, e.g. default("crawl.backfill")."""
    key = KEYS[dotted]
    return getattr(SECTIONS[key.section], key.name)


# --- values: parsing and checking --------------------------------------------------------------


def _coerce(key: Key, value: Any, where: str, *, text: bool) -> Any:
    """`value` as the key's type. `text`: a string may be parsed (environment, -s, flags); a
    TOML value must already have the right type."""
    kind = key.kind
    if isinstance(value, str) and text and kind is not str:
        value = value.strip()
        if kind is tuple:
            return tuple(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
        if kind is Path:
            if not value:
                raise ConfigError(f"{where}: empty path")
            return Path(value)
        try:
            return kind(value)
        except ValueError:
            name = "an integer" if kind is int else "a number"
            raise ConfigError(f"{where}: not {name}: {value!r}") from None
    if kind is tuple and isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return tuple(dict.fromkeys(value))
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    if kind is Path and isinstance(value, str | Path):
        return Path(value)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    expected = "a list of strings" if kind is tuple else kind.__name__
    raise ConfigError(f"{where}: expected {expected}, got {value!r}")


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(
        c.isspace() for c in value)


def _access(value: str) -> bool:
    from crawler.access import parse_strategy_list

    parse_strategy_list(value)  # ConfigError naming what is wrong
    return True


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: math.isfinite(v) and v >= low


URL = (_http_url, "must be an http(s) URL")
ONE = (_at_least(1), "must be 1 or more")
ZERO = (_at_least(0), "must be 0 or more")
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "crawl.base_url": URL,
    "crawl.public_url": URL,
    "crawl.contact_url": URL,
    "crawl.langs": (lambda v: bool(v) and set(v) <= set(LANGS),
                    f"must be a non-empty list of {', '.join(LANGS)}"),
    "crawl.access": (_access, "unknown access strategies"),
    "crawl.page_size": (lambda v: 1 <= v <= 100, "must be 1 to 100 (the API's largest page)"),
    "crawl.page_base": (lambda v: v in ("auto", "0", "1"), "must be auto, 0 or 1"),
    "crawl.kk_code": (lambda v: v in ("auto", "kk", "kz"), "must be auto, kk or kz"),
    "crawl.backfill": ONE,
    "crawl.max_pages": ONE,
    "crawl.feed_limit": ONE,
    "crawl.download_delay": ZERO,
    "crawl.concurrency": ONE,
    "crawl.retry_backoff_base": ZERO,
    "crawl.retry_backoff_max": ZERO,
    "crawl.retry_after_max": ZERO,
    "schedule.min_interval": ONE,
    "schedule.max_interval": ONE,
    "schedule.jitter": ZERO,
    "schedule.crawl_timeout": ONE,
    "schedule.failure_threshold": ONE,
    "schedule.mode": (lambda v: v in ("auto", "site-wide", "per-agency"),
                      "must be auto, site-wide or per-agency"),
    "schedule.probe_interval": ONE,
    "schedule.audit_interval": ONE,
    "server.bind": (bool, "must not be empty"),
    "server.port": (lambda v: 0 <= v <= 65535, "must be a TCP port (0-65535, 0: any free one)"),
    "server.cache_max_age": ZERO,
}


def _check(key: Key, value: Any, where: str) -> Any:
    test, message = CHECKS.get(key.dotted, (lambda v: True, ""))
    try:
        ok = test(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not ok:
        raise ConfigError(f"{where}: {message}, got {value!r}")
    return value


class _Values:
    """The values of one resolution, layer over layer, with where each came from (for the
    one-line error that names the file, variable or flag at fault)."""

    def __init__(self, base: Config | None = None) -> None:
        base = base or Config()
        self.values: dict[str, Any] = {
            dotted: getattr(getattr(base, key.section), key.name) for dotted, key in KEYS.items()
        }
        self.where: dict[str, str] = {}
        self.scrapy: dict[str, str] = dict(base.scrapy)
        self.log_level = base.log_level
        self.log_file = base.log_file
        self.path = base.path

    def set(self, key: Key, value: Any, where: str, *, text: bool = True) -> None:
        value = _coerce(key, value, where, text=text)
        self.values[key.dotted] = _check(key, value, where)
        self.where[key.dotted] = where

    def file(self, path: Path) -> None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        unknown = set(raw) - set(SECTIONS)
        if unknown:
            raise ConfigError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}")
        for section, table in raw.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: {section} must be a table ([{section}])")
            for name, value in table.items():
                key = KEYS.get(f"{section}.{name}")
                if key is None:
                    raise ConfigError(f"{path}: unknown key {section}.{name}")
                self.set(key, value, f"{path}: {section}.{name}", text=False)
        self.path = path

    def environment(self, environ: Mapping[str, str]) -> None:
        for key in KEYS.values():
            if key.env in environ:
                self.set(key, environ[key.env], f"{key.env} (environment)")
        if environ.get(LOG_LEVEL_ENV):
            self.log_level = _log_level(environ[LOG_LEVEL_ENV], f"{LOG_LEVEL_ENV} (environment)")
        if environ.get(LOG_FILE_ENV):
            self.log_file = _log_file(environ[LOG_FILE_ENV], f"{LOG_FILE_ENV} (environment)")

    def pair(self, name: str, value: Any) -> None:
        """One `-s NAME=VALUE`: a key by its GOVKZ_ or Scrapy name, else a Scrapy setting."""
        if name == CONFIG_ENV:
            raise ConfigError(f"-s {name}: the config file is chosen with --config")
        key = BY_NAME.get(name)
        if key is not None:
            self.set(key, value, f"-s {name}")
        elif name == LOG_LEVEL_ENV:
            self.log_level = _log_level(str(value), f"-s {name}")
        elif name == LOG_FILE_ENV:
            self.log_file = _log_file(str(value), f"-s {name}")
        else:
            self.scrapy[name] = str(value)

    def config(self) -> Config:
        lo, hi = self.values["schedule.min_interval"], self.values["schedule.max_interval"]
        if lo > hi:
            where = self.where.get("schedule.min_interval") or self.where.get(
                "schedule.max_interval", "schedule")
            raise ConfigError(f"{where}: schedule.min_interval ({lo}) is larger than "
                              f"schedule.max_interval ({hi})")
        sections = {
            section: cls(**{name.split(".", 1)[1]: value for name, value in self.values.items()
                            if name.startswith(section + ".")})
            for section, cls in SECTIONS.items()
        }
        return Config(**sections, scrapy=tuple(self.scrapy.items()),
                      log_level=self.log_level, log_file=self.log_file, path=self.path)


def _log_level(value: str, where: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{where}: unknown log level {value!r} (one of {', '.join(LOG_LEVELS)})")
    return level


def _log_file(value: str | Path, where: str) -> Path:
    path = Path(str(value).strip())
    if not str(value).strip() or path.is_dir():
        raise ConfigError(f"{where}: a log file must be a file path, got {str(value)!r}")
    return path


def parse_pair(pair: str) -> tuple[str, str]:
    """`NAME=VALUE` (an -s argument) as (NAME, VALUE)."""
    name, sep, value = pair.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"-s expects NAME=VALUE, got {pair!r}")
    return name.strip(), value


def _pairs(sets: Mapping[str, Any] | Iterable[str]) -> list[tuple[str, Any]]:
    if isinstance(sets, Mapping):
        return list(sets.items())
    return [parse_pair(pair) for pair in sets]


FLAG_NAMES = {"crawl.langs": "--lang"}  # where a flag is not --KEY (for error messages)


def _apply_flags(values: _Values, sets: Mapping[str, Any] | Iterable[str],
                 flags: Mapping[str, Any] | None, log_level: str | None) -> None:
    for name, value in _pairs(sets):
        if value is not None:
            values.pair(name, value)
    for dotted, value in (flags or {}).items():
        if value is None:
            continue
        key = KEYS.get(dotted)
        if key is None:
            raise KeyError(f"no configuration key {dotted!r}")  # a bug in a caller
        values.set(key, value, FLAG_NAMES.get(dotted, "--" + key.name.replace("_", "-")))
    if log_level is not None:
        values.log_level = _log_level(log_level, "--log-level")


# --- the one resolution -----------------------------------------------------------------------


def resolve(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    sets: Mapping[str, Any] | Iterable[str] = (),
    flags: Mapping[str, Any] | None = None,
    log_level: str | None = None,
    log_file: Path | str | None = None,
) -> Config:
    """The configuration: defaults < file < environment < flags.

    config_file: --config (else $GOVKZ_CONFIG, else ./govkz-monitor.toml if it exists).
    environ: the environment (default: this process's).
    sets: the `-s NAME=VALUE` flags ("NAME=VALUE" strings, or a mapping NAME -> value).
    flags: the dedicated flags by key, e.g. {"crawl.data": Path("x"), "server.port": 0};
      None values are flags not given. They beat `-s` for the same key.
    log_level: --log-level. log_file: --log-file.
    ConfigError (one line naming the file, variable or flag) on any bad value.
    """
    if environ is None:
        environ = os.environ  # the one place the environment is read for configuration
    values = _Values()
    if config_file is None and environ.get(CONFIG_ENV):
        config_file = Path(environ[CONFIG_ENV])
    if config_file is None and DEFAULT_CONFIG.is_file():
        config_file = DEFAULT_CONFIG
    if config_file is not None:
        values.file(config_file)
    values.environment(environ)
    _apply_flags(values, sets, flags, log_level)
    if log_file is not None:
        values.log_file = _log_file(log_file, "--log-file")
    return values.config()


def override(config: Config, *, sets: Mapping[str, Any] | Iterable[str] = (),
             flags: Mapping[str, Any] | None = None) -> Config:
    """`config` with a further layer of flags on top, checked as resolve() checks them (for
    what a command decides after the resolution, e.g. `run --demo`'s mock URL)."""
    values = _Values(config)
    _apply_flags(values, sets, flags, None)
    return values.config()


_current: Config | None = None


def set_current(config: Config) -> Config:
    """Make `config` this process's configuration (the CLI does, once it has resolved it)."""
    global _current
    _current = config
    return config


def current() -> Config:
    """This process's configuration: the one the CLI resolved, else (`scrapy crawl`, a test)
    defaults < file < environment, resolved on first use."""
    return _current if _current is not None else set_current(resolve())


# --- what the rest of the program gets ---------------------------------------------------------


def user_agent(config: Config) -> str:
    return USER_AGENT.format(contact_url=config.crawl.contact_url)


def _setting_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, Path):
        return str(value)
    return value


def setting_values(config: Config) -> dict[str, Any]:
    """The Scrapy settings the configuration decides (without the `-s` pass-through ones)."""
    values = {
        key.setting: _setting_value(getattr(getattr(config, key.section), key.name))
        for key in KEYS.values() if key.setting
    }
    values["USER_AGENT"] = user_agent(config)
    values["LOG_LEVEL"] = config.log_level or "INFO"
    # The crawl talks to one host: the global cap must not hold `concurrency` back (4 leaves
    # room for a handshake or a probe beside the default 2 news requests).
    values["CONCURRENT_REQUESTS"] = max(4, config.crawl.concurrency)
    if config.crawl.download_delay == 0:
        # No delay asked (a mirror, the mock): AutoThrottle would start at 1 s and aim at one
        # request in flight, whatever `concurrency` says. `-s AUTOTHROTTLE_ENABLED=1` still wins.
        values["AUTOTHROTTLE_ENABLED"] = False
    return values


def scrapy_settings(config: Config, module: str = "crawler.settings") -> Any:
    """The Scrapy Settings of a crawl: the static project settings (crawler/settings.py), the
    values `config` decides, then its pass-through `-s` settings."""
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule(module, priority="project")
    settings.update(setting_values(config), priority="cmdline")
    for name, value in config.scrapy:
        if name.startswith("GOVKZ_") and name not in settings:
            known = {k.env for k in KEYS.values()} | {n for n in settings if n[:6] == "GOVKZ_"}
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"-s {name}: no such setting{hint}")
        settings.set(name, value, priority="cmdline")
    return settings


class UserAgentAddon:
    """Scrapy add-on (ADDONS in crawler/settings.py): the User-Agent follows a contact URL given
    later than the settings module was read, i.e. `scrapy crawl govkz -s GOVKZ_CONTACT_URL=...`.
    Under the CLI both come from one Config at the same priority, and nothing changes."""

    def update_settings(self, settings: Any) -> None:
        priority = settings.getpriority("GOVKZ_CONTACT_URL") or 0
        if priority > (settings.getpriority("USER_AGENT") or 0):
            contact = settings.get("GOVKZ_CONTACT_URL")
            settings.set("USER_AGENT", USER_AGENT.format(contact_url=contact), priority=priority)


def child_args(config: Config) -> list[str]:
    """`-s` flags that give a crawl child process the [crawl] values and the pass-through
    settings of `config`, whatever its own environment says (the daemon's crawl children)."""
    args = []
    for key in KEYS.values():
        if key.section == "crawl":
            value = _setting_value(getattr(config.crawl, key.name))
            args += ["-s", f"{key.env}={value}"]
    for name, value in config.scrapy:
        args += ["-s", f"{name}={value}"]
    return args


def agencies_from_settings(settings: Any) -> Agencies:
    """The [agencies] section as the Scrapy settings carry it (spider `govkz` under
    `scrapy crawl`)."""
    return Agencies(enabled=tuple(settings.getlist("GOVKZ_AGENCIES_ENABLED")),
                    disabled=tuple(settings.getlist("GOVKZ_AGENCIES_DISABLED")))
