"""Run the command line in a child process: Scrapy's reactor cannot restart within one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if "GOVKZ_DATA" not in (env or {}):
        full_env.pop("GOVKZ_DATA", None)  # tests pass --data; a developer's own must not leak
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
