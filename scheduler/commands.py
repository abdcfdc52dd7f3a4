"""The daemon side of the command line: run, serve, status."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.commands import (
    UsageError,
    base_url_option,
    flag_given,
    json_option,
    lang_option,
    port_or_any,
    positive_seconds,
    public_url_option,
)
from crawler.config import Config, child_args, default, scrapy_settings
from crawler.errors import GovkzError
from scheduler.demo import DEMO_MOCK_PORT

log = logging.getLogger("scheduler")


def _twisted_logs_to_stdlib() -> None:
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")],
                                     redirectStandardIO=False)


def _stop_on_signals(reactor: Any, daemon: Any = None) -> None:
    """SIGTERM/SIGINT: the first stops the reactor cleanly (a running crawl gets a few seconds),
    a further one kills the running crawl at once. Replaces Twisted's own handlers for these
    two, which call reactor.stop() again on every signal and log a traceback for it; the
    SIGCHLD handling spawned crawls need is left in place."""
    received = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        if len(received) == 1:
            reactor.callFromThread(reactor.stop)
        elif daemon is not None and daemon.running is not None:
            reactor.callFromThread(daemon.running.kill)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def _serve(settings: Any, config: Config, provider: Any, metrics: Any, reactor: Any) -> Any:
    """Listen where the [server] section says (--bind/--port, GOVKZ_SERVER_*, the file)."""
    from crawler.paths import feeds_dir
    from scheduler.server import build_site, listen

    bind, port = config.server.bind, config.server.port
    site = build_site(feeds_dir(settings), provider, metrics,
                      cache_max_age=config.server.cache_max_age)
    try:
        listening = listen(site, bind, port, reactor=reactor)
    except Exception as exc:  # noqa: BLE001 - CannotListenError and friends: one line
        raise GovkzError(f"cannot listen on {bind}:{port}: {exc}") from None
    actual = getattr(listening.getHost(), "port", port)  # an IPv4Address for TCP
    print(f"serving feeds on http://{bind}:{actual}/ (status: /status, OPML: /opml)",
          file=sys.stderr, flush=True)
    return listening


def run_targets(agencies: list[str], config: Config) -> list[str]:
    """The daemon's targets: every agency in every language of the configuration."""
    return [f"{agency}/{lang}" for agency in agencies for lang in config.crawl.langs]


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from twisted.internet import reactor

    from crawler.directory import crawl_targets, load_registry
    from crawler.paths import feeds_dir
    from crawler.pipelines import publish
    from scheduler.daemon import Daemon
    from scheduler.demo import DemoSite, demo_config
    from scheduler.provider import ArchiveStatus

    _twisted_logs_to_stdlib()
    if args.no_serve and (flag_given(args, "server.bind") or flag_given(args, "server.port")):
        raise UsageError("--no-serve serves nothing: drop --bind/--port")
    demo = None
    if args.demo:
        demo = DemoSite(config.crawl.seeds, reactor)
        config = demo_config(config, demo.listen(args.mock_port),
                             keep_data=flag_given(args, "crawl.data"))
    settings = scrapy_settings(config)
    registry = load_registry(settings)
    agencies = demo.agencies() if demo else crawl_targets(registry, config.agencies)
    targets = run_targets(agencies, config)
    if not targets:
        raise GovkzError("nothing to crawl: enable agencies in the config file")
    # Each crawl child gets this run's [crawl] values and -s settings as flags, so it crawls
    # exactly as resolved here whatever else it would read (the Daemon adds --config).
    daemon = Daemon(settings, config, targets, reactor=reactor, crawl_args=child_args(config))
    if not (feeds_dir(settings) / "index.opml").exists():
        publish(settings)  # something to serve before the first crawl ends
    daemon.publish_incidents()
    provider = ArchiveStatus(daemon.archive, registry, feeds_dir(settings), targets,
                             daemon=daemon)  # its liveness is what /healthz judges
    if args.no_serve:
        # The feeds are still written; a web server of its own (nginx) serves DATA/feeds/.
        print(f"not serving: the feeds are written to {feeds_dir(settings)}/",
              file=sys.stderr, flush=True)
    else:
        _serve(settings, config, provider, daemon.metrics, reactor)
    daemon.start()
    if demo:
        demo.start_publishing(args.publish_every)
        print(f"demo: mock gov.kz at {config.crawl.base_url}, publishing an item "
              f"every {args.publish_every:g} s; data in {config.crawl.data}",
              file=sys.stderr, flush=True)
    print(f"crawling {len(targets)} targets (agency x language) from "
          f"{config.crawl.base_url}; Ctrl-C or SIGTERM stops", file=sys.stderr, flush=True)
    reactor.callWhenRunning(_stop_on_signals, reactor, daemon)
    reactor.run()
    daemon.archive.close()
    print("stopped", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from twisted.internet import reactor

    from crawler.directory import load_registry
    from crawler.paths import db_path, feeds_dir
    from crawler.store import Archive
    from scheduler.metrics import Metrics
    from scheduler.provider import ArchiveStatus

    _twisted_logs_to_stdlib()
    settings = scrapy_settings(config)
    archive = Archive.open(db_path(settings))
    provider = ArchiveStatus(archive, load_registry(settings), feeds_dir(settings))
    _serve(settings, config, provider, Metrics(), reactor)
    reactor.callWhenRunning(_stop_on_signals, reactor)
    reactor.run()
    archive.close()
    return 0


def _age(value: str | None, now: datetime) -> str:
    if not value:
        return "-"
    seconds = int((datetime.fromisoformat(value) - now).total_seconds())
    sign, seconds = ("in ", seconds) if seconds >= 0 else ("", -seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{sign}{seconds // size}{unit}" + (" ago" if not sign else "")
    return f"{sign}{seconds}s" + (" ago" if not sign else "")


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    import json

    from crawler.paths import db_path
    from crawler.store import Archive
    from crawler.timeutil import utcnow

    path = db_path(scrapy_settings(config))
    if not path.exists():
        raise GovkzError(f"no archive at {path}: run `govkz-monitor run` or `crawl` first")
    archive = Archive.open(path)
    try:
        # Keyed "agency/lang": the JSON output's form.
        schedule = {t.key: row for t, row in archive.monitor.schedule().items()}
        counts = archive.item_counts()
        incidents = archive.monitor.incidents(limit=5)
    finally:
        archive.close()
    if args.json:
        print(json.dumps({"schedule": schedule, "items": counts, "incidents": incidents},
                         ensure_ascii=False, indent=2))
        return 0
    now = utcnow()
    print(f"{'target':<34} {'items':>6} {'last success':>13} {'next crawl':>11} {'fails':>5}"
          "  last error")
    failing = 0
    for key in sorted(schedule):
        row = schedule[key]
        failing += bool(row["consecutive_failures"])
        error = (row["last_error"] or "")[:60] if row["consecutive_failures"] else ""
        print(f"{key:<34} {counts.get(key.split('/')[0], 0):>6} "
              f"{_age(row['last_success'], now):>13} {_age(row['next_crawl'], now):>11} "
              f"{row['consecutive_failures']:>5}  {error}")
    print(f"{len(schedule)} targets, {failing} failing, {sum(counts.values())} items")
    for incident in incidents:
        print(f"incident {incident['at']}: {incident['message']}")
    return 1 if failing else 0


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", dest="server.bind", default=None, metavar="ADDR",
                        help="address to serve on (default: $GOVKZ_SERVER_BIND, the config's, "
                        f"else {default('server.bind')})")
    parser.add_argument("--port", dest="server.port", type=port_or_any, default=None,
                        metavar="PORT", help="port to serve on, 0: any free one (default: "
                        f"$GOVKZ_SERVER_PORT, the config's, else {default('server.port')})")


def register(sub: Any) -> dict[str, Any]:
    run = sub.add_parser(
        "run", help="the daemon: crawl on a schedule, publish feeds, serve them over HTTP",
        description="Re-crawl every enabled agency x language on its own adaptive interval "
        "(10 min to 6 h by default), write the feeds of agencies that changed, and serve "
        "/feeds/, /opml, /status, /status.json, /metrics and /healthz. Runs until SIGTERM or "
        "Ctrl-C; the schedule survives restarts. --demo runs against a local mock of gov.kz "
        "that keeps publishing, for a machine with no network.",
    )
    _server_options(run)
    run.add_argument("--no-serve", action="store_true",
                     help="crawl and publish only, no HTTP server (serve DATA/feeds/ with "
                     "nginx instead)")
    lang_option(run)
    base_url_option(run)
    public_url_option(run)
    run.add_argument("--demo", action="store_true",
                     help="crawl a local mock of gov.kz instead (data in DATA/demo)")
    run.add_argument("--seeds", dest="crawl.seeds", type=Path, default=None, metavar="DIR",
                     help="--demo: pages the mock serves (default: $GOVKZ_SEEDS, the config's, "
                     f"else {default('crawl.seeds')})")
    run.add_argument("--mock-port", type=port_or_any, default=DEMO_MOCK_PORT,
                     help=f"--demo: port of the mock on 127.0.0.1 (default {DEMO_MOCK_PORT}, "
                     "fixed so stored links survive a restart; 0: any free port)")
    run.add_argument("--publish-every", type=positive_seconds, default=30.0, metavar="SECONDS",
                     help="--demo: how often the mock publishes a new item (default 30)")

    serve = sub.add_parser(
        "serve", help="serve the feeds and status pages only (no crawling)",
        description="Serve DATA/feeds/ and the status pages over HTTP, as `run` does, "
        "without crawling.",
    )
    _server_options(serve)

    status = sub.add_parser(
        "status", help="per-agency health table in the terminal",
        description="Show each crawled agency x language: items, last success, next crawl, "
        "consecutive failures and the last error, then the latest incidents. Exits 1 when "
        "any target is failing.",
    )
    json_option(status)
    return {"run": cmd_run, "serve": cmd_serve, "status": cmd_status}
