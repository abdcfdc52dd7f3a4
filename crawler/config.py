"""The optional TOML configuration file (see README, "Configuration").

Precedence, lowest first: built-in defaults (crawler/settings.py) < the config file < environment
variables (GOVKZ_*) < command-line flags. This module only reads and validates the file and turns
it into Scrapy setting overrides plus the daemon's own options.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError
from crawler.items import LANGS

DEFAULT_CONFIG = Path("govkz-monitor.toml")

# Config key -> Scrapy setting, for the [crawl] table.
CRAWL_SETTINGS = {
    "data": "GOVKZ_DATA",
    "base_url": "GOVKZ_BASE_URL",
    "public_url": "GOVKZ_PUBLIC_URL",
    "contact_url": "GOVKZ_CONTACT_URL",
    "access": "GOVKZ_ACCESS",
    "page_size": "GOVKZ_PAGE_SIZE",
    "backfill": "GOVKZ_BACKFILL_PAGES",
    "max_pages": "GOVKZ_MAX_PAGES",
    "feed_limit": "GOVKZ_FEED_LIMIT",
    "download_delay": "DOWNLOAD_DELAY",
    "concurrency": "CONCURRENT_REQUESTS_PER_DOMAIN",
}


@dataclass
class Schedule:
    min_interval: int = 600  # seconds: never re-crawl an agency more often
    max_interval: int = 6 * 3600  # seconds: never leave an agency longer
    jitter: int = 60  # seconds of random spread, so agencies don't crawl in lockstep
    crawl_timeout: int = 900  # seconds before a hung crawl is killed
    failure_threshold: int = 3  # consecutive failures that open an incident


@dataclass
class Server:
    bind: str = "127.0.0.1"
    port: int = 8080
    cache_max_age: int = 300


@dataclass
class Config:
    path: Path | None = None
    agencies: list[str] = field(default_factory=list)  # empty: the registry's enabled ones
    disabled: set[str] = field(default_factory=set)
    langs: list[str] = field(default_factory=lambda: ["ru", "kk", "en"])
    settings: dict[str, Any] = field(default_factory=dict)  # Scrapy setting overrides
    schedule: Schedule = field(default_factory=Schedule)
    server: Server = field(default_factory=Server)


def _typed(table: dict[str, Any], cls: type, where: str) -> Any:
    obj = cls()
    for key, value in table.items():
        if not hasattr(obj, key):
            raise ConfigError(f"{where}: unknown key {key!r}")
        expected = type(getattr(obj, key))
        if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            raise ConfigError(f"{where}.{key}: expected {expected.__name__}, got {value!r}")
        setattr(obj, key, value)
    return obj


def load_config(path: Path | None = None) -> Config:
    """Read the config file: the given path, else $GOVKZ_CONFIG, else ./govkz-monitor.toml if
    it exists, else the defaults."""
    if path is None:
        env = os.environ.get("GOVKZ_CONFIG")
        path = Path(env) if env else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path | None = None) -> Config:
    where = str(path or "config")
    unknown = set(raw) - {"crawl", "agencies", "schedule", "server"}
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) {', '.join(sorted(unknown))}")
    config = Config(path=path)
    crawl = dict(raw.get("crawl", {}))
    langs = crawl.pop("langs", config.langs)
    if not isinstance(langs, list) or not langs or set(langs) - set(LANGS):
        raise ConfigError(f"{where}: crawl.langs must be a non-empty list of {', '.join(LANGS)}")
    config.langs = list(langs)
    for key, value in crawl.items():
        if key not in CRAWL_SETTINGS:
            raise ConfigError(f"{where}: unknown key crawl.{key}")
        config.settings[CRAWL_SETTINGS[key]] = value
    agencies = raw.get("agencies", {})
    enabled = agencies.get("enabled", [])
    disabled = agencies.get("disabled", [])
    if not all(isinstance(s, str) for s in [*enabled, *disabled]):
        raise ConfigError(f"{where}: agencies.enabled/disabled must be lists of slugs")
    config.agencies, config.disabled = list(enabled), set(disabled)
    config.schedule = _typed(raw.get("schedule", {}), Schedule, f"{where}: schedule")
    config.server = _typed(raw.get("server", {}), Server, f"{where}: server")
    if config.schedule.min_interval > config.schedule.max_interval:
        raise ConfigError(f"{where}: schedule.min_interval is larger than max_interval")
    return config
