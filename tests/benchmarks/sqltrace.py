"""Run the govkz-monitor command line with every SQLite connection traced, and write how many
write transactions it committed (run as a child process: the crawl's own process is traced).

    python -m tests.benchmarks.sqltrace OUT.json -- crawl ...
"""

from __future__ import annotations

import atexit
import json
import sqlite3
import sys
from typing import Any

COUNTS = {"commits": 0, "writes": 0, "autocommit_writes": 0}
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn = _connect(*args, **kwargs)

    def trace(sql: str) -> None:
        head = sql.lstrip()[:8].upper()
        if head.startswith("COMMIT") or head.startswith("END"):
            COUNTS["commits"] += 1
        elif head.startswith(WRITES):
            COUNTS["writes"] += 1
            if not conn.in_transaction:  # a statement outside BEGIN commits by itself
                COUNTS["autocommit_writes"] += 1

    conn.set_trace_callback(trace)
    return conn


_connect = sqlite3.connect


def main() -> int:
    out, sep, *argv = sys.argv[1:]
    if sep != "--":
        raise SystemExit("usage: python -m tests.benchmarks.sqltrace OUT.json -- ARGS")
    sqlite3.connect = _traced_connect  # type: ignore[assignment]
    atexit.register(lambda: open(out, "w").write(json.dumps(COUNTS)))
    from crawler.cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
