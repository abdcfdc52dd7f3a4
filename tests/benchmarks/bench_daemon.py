"""The daemon's resident memory over many cycles (run --demo's daemon and mock, one process)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable

from tests.benchmarks.harness import REPO, Bench, Result, child_env, group, progress

LIMIT_MB = 200


@group("daemon", ("daemon_rss", "daemon_rss_mb"))
def daemon(bench: Bench) -> Iterable[Result]:
    first, last = bench.sizes.daemon_cycles
    out = bench.dir("daemon") / "rss.json"
    progress(f"daemon: {last} cycles (RSS after {first} and {last})")
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.daemon_child", str(bench.dir("daemon/data")),
         str(REPO / "seeds"), str(out), str(first), str(last)],
        capture_output=True, text=True, env=child_env(), timeout=60 + 30 * last)
    if not out.exists():
        raise RuntimeError(f"daemon driver failed: {done.stderr.strip()[-300:]}")
    result = json.loads(out.read_text())
    if result["failed"]:
        raise RuntimeError(f"crawl cycles failed: {result['failed'][0]}")
    readings = {int(k): v for k, v in result["rss_kb"].items()}
    early, late = readings[first] / 1024, readings[last] / 1024
    yield Result("daemon_rss", late, early, "MB", target=1.1, note=(
        f"VmRSS after {last} cycles ÷ after {first} ({result['targets']} targets a cycle, "
        "crawled in one child process)"))
    yield Result("daemon_rss_mb", late, None, "MB", target=LIMIT_MB, op="<", on="value",
                 note=f"VmRSS after {last} cycles")
