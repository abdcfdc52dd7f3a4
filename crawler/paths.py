"""Where things live inside the data directory (GOVKZ_DATA)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def data_dir(settings: Any) -> Path:
    return Path(settings.get("GOVKZ_DATA") or "data")


def db_path(settings: Any) -> Path:
    return data_dir(settings) / "news.db"


def feeds_dir(settings: Any) -> Path:
    return data_dir(settings) / "feeds"
