"""The benchmark suite still runs: one cheap scenario group at a tiny size, as a program.

Only the structure of its output is checked, never a figure (timings belong to the benchmark
run, not to the tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIELDS = {"value", "baseline", "ratio", "target", "unit"}


@pytest.mark.parametrize(("only", "names"), [
    ("queries", {"q_latest50_agency", "q_fts_common", "q_feed_groups", "q_item_counts"}),
    ("q_item_counts", {"q_item_counts"}),
])
def test_quick_run_writes_every_selected_scenario(tmp_path: Path, only: str,
                                                  names: set[str]) -> None:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks", "--quick", "--scale", "0.01",
         "--only", only, "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert set(results) == names
    for name, result in results.items():
        assert FIELDS <= set(result), name
        assert isinstance(result["unit"], str), name
        assert result["value"] is None or isinstance(result["value"], (int, float)), name
    # The table names every scenario; progress went to stderr, one line for the group.
    for name in names:
        assert name in done.stdout
    assert f"[bench] {only if only == 'queries' else 'queries'}:" in done.stderr


def test_unknown_scenario_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks", "--only", "nosuch"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unknown scenario nosuch" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
