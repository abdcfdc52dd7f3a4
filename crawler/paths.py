"""Where things live inside the data directory (GOVKZ_DATA, crawl.data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def data_dir(settings: Any) -> Path:
    """From the Scrapy settings, which always carry GOVKZ_DATA (crawler/config.py derives it)."""
    return Path(settings["GOVKZ_DATA"])


def db_path(settings: Any) -> Path:
    return data_dir(settings) / "news.db"


def feeds_dir(settings: Any) -> Path:
    return data_dir(settings) / "feeds"
