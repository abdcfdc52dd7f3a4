"""The embedded feed server (scheduler/server.py build_site + listen), run as a child process
for the serving benchmark: prints its port, serves until SIGTERM.

    python -m tests.benchmarks.serve_child FEEDS_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from twisted.internet import reactor

from scheduler.metrics import Metrics
from scheduler.server import build_site, listen


class _NoStatus:
    """The status provider: the benchmark asks only for feed files."""

    def agencies_status(self) -> list:
        return []


def main(argv: list[str]) -> int:
    site = build_site(Path(argv[0]), _NoStatus(), Metrics())  # type: ignore[arg-type]
    port = listen(site, "127.0.0.1", 0, reactor=reactor)
    print(port.getHost().port, flush=True)  # type: ignore[attr-defined]  # an IPv4Address
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
