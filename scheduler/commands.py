"""The daemon side of the command line: run, serve, status."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> dict[str, Any]:
    return {}
