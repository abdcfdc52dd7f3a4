"""The daemon of `run --demo`, driven cycle after cycle, run as a child process for the memory
benchmark: each cycle the demo mock publishes one item and every target is crawled in one batch
(a real crawl child, as the daemon runs it); VmRSS is read after the given cycles.

    python -m tests.benchmarks.daemon_child DATA SEEDS OUT.json CYCLE [CYCLE ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor

from crawler.config import child_args, resolve, scrapy_settings, set_current
from crawler.pipelines import publish
from scheduler.commands import run_targets
from scheduler.daemon import Daemon
from scheduler.demo import DemoSite, demo_config
from scheduler.metrics import Metrics
from scheduler.server import build_site, listen
from tests.benchmarks.harness import rss_kb


class _NoStatus:
    def agencies_status(self) -> list:
        return []


def main(argv: list[str]) -> int:
    data, seeds, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    marks = sorted(int(n) for n in argv[3:])
    demo = DemoSite(seeds, reactor)
    config = demo_config(resolve(flags={"crawl.data": data, "crawl.seeds": seeds}),
                         demo.listen(0), keep_data=True)
    set_current(config)
    settings = scrapy_settings(config)
    targets = run_targets(demo.agencies(), config)
    daemon = Daemon(settings, config, targets, reactor=reactor, crawl_args=child_args(config))
    publish(settings)
    listen(build_site(Path(data) / "feeds", _NoStatus(), Metrics()),  # type: ignore[arg-type]
           "127.0.0.1", 0, reactor=reactor)
    readings: dict[int, int] = {}
    failed: list[str] = []
    finished = daemon.finished

    def cycle() -> None:
        demo.publish_one()
        for target in daemon.targets:
            daemon.enqueue(target)

    def on_finished(run: Any) -> None:
        finished(run)
        if run.summary is None:
            failed.append(run.crash_detail())
        done = len(readings_done) + 1
        readings_done.append(done)
        if done in marks:
            readings[done] = rss_kb()
        if done >= marks[-1] or len(failed) > 3:
            daemon.stop()
            reactor.callLater(0, reactor.stop)
        else:
            reactor.callLater(0, cycle)

    readings_done: list[int] = []
    daemon.finished = on_finished  # type: ignore[method-assign]
    daemon.start()
    reactor.callWhenRunning(cycle)
    reactor.run()
    daemon.archive.close()
    out.write_text(json.dumps({"rss_kb": readings, "failed": failed,
                               "targets": len(targets)}))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
