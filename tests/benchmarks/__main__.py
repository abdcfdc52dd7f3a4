"""python -m tests.benchmarks [--quick] [--json FILE] [--only NAME ...] [--keep]"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.benchmarks import (  # noqa: F401 - each module registers its scenario groups
    bench_crawl,
    bench_daemon,
    bench_feeds,
    bench_serve,
    bench_store,
)
from tests.benchmarks.harness import FULL, GROUPS, QUICK, Bench, Result, progress

COLUMNS = ("scenario", "value", "baseline", "ratio", "target", "unit", "pass")


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 0.1 else f"{value:.2f}"


def table(results: list[Result]) -> str:
    rows = [COLUMNS]
    for r in results:
        target = "—" if r.target is None else f"{r.op} {_number(r.target)}"
        if r.target is not None and r.on == "value":
            target += f" {r.unit}"
        verdict = {True: "pass", False: "FAIL", None: "—"}[r.passed]
        if r.value is None:
            verdict = "n/a"
        rows.append((r.name, _number(r.value), _number(r.baseline), _number(r.ratio), target,
                     r.unit, verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.name}: {r.note}" for r in results if r.note]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks",
                                     description="Benchmarks of govkz-monitor beside baselines.")
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None,
                        help=f"groups or scenarios to run: {', '.join(GROUPS)} or a scenario")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the item counts (e.g. 0.1 for a smoke run)")
    return parser


def selected(only: list[str] | None) -> list[str]:
    if not only:
        return list(GROUPS)
    chosen = [name for name, (results, _) in GROUPS.items()
              if name in only or any(r in only for r in results)]
    known = set(GROUPS) | {r for results, _ in GROUPS.values() for r in results}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise SystemExit(f"python -m tests.benchmarks: error: unknown scenario "
                         f"{', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scale <= 0:
        print("python -m tests.benchmarks: error: --scale must be positive", file=sys.stderr)
        return 2
    try:
        names = selected(args.only)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    sizes = (QUICK if args.quick else FULL).scaled(args.scale)
    tmp = Path(tempfile.mkdtemp(prefix="govkz-bench-"))
    bench = Bench(sizes, tmp, args.quick)
    results: list[Result] = []
    try:
        for name in names:
            declared, run = GROUPS[name]
            start = time.monotonic()
            wanted = [r for r in declared if not args.only or name in args.only
                      or r in args.only]
            got: list[Result] = []
            try:
                got += (r for r in run(bench) if r.name in wanted)
            except Exception as exc:  # noqa: BLE001 - one broken scenario costs only itself
                traceback.print_exc()
                done = {r.name for r in got}
                why = " ".join(str(exc).split())[:200]
                got += [Result(r, None, None, "", note=f"n/a: crashed: {why}")
                        for r in wanted if r not in done]
            results += got
            summary = ", ".join(f"{r.name} {_number(r.value)} {r.unit}" for r in got)
            progress(f"{name}: {time.monotonic() - start:.1f} s ({summary})")
    finally:
        if args.keep:
            progress(f"data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(table(results))
    if bench.plans:
        print("\nquery plans (!! = a scan of items without an index):")
        print("\n".join(bench.plans))
    if args.json:
        args.json.write_text(json.dumps({r.name: r.to_json() for r in results}, indent=2,
                                        ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
