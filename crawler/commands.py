"""The crawling side of the command line: replay, crawl, agencies, feeds, search, mock."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError, GovkzError
from crawler.items import LANGS

EXIT_OK, EXIT_FAILED = 0, 1


# --- shared options and settings ----------------------------------------------------------


def data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, default=None, metavar="DIR",
        help="data directory holding news.db and feeds/ (default: $GOVKZ_DATA or ./data)",
    )
    parser.add_argument(
        "-s", "--set", action="append", metavar="NAME=VALUE",
        help="override a Scrapy or GOVKZ_ setting, e.g. -s DOWNLOAD_DELAY=2 (repeatable)",
    )


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def load_config_for(args: argparse.Namespace) -> Any:
    from crawler.config import load_config

    return load_config(getattr(args, "config", None))


def settings_for(args: argparse.Namespace, **overrides: Any) -> Any:
    """Settings: defaults < config file < GOVKZ_* environment < command-line flags."""
    from crawler.runner import project_settings

    config = load_config_for(args)
    from_file = {k: v for k, v in config.settings.items() if k not in os.environ}
    data = getattr(args, "data", None)
    flags = {"GOVKZ_DATA": str(data) if data else None, **overrides}
    for pair in getattr(args, "set", None) or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--set expects NAME=VALUE, got {pair!r}")
        flags[name.strip()] = value
    return project_settings({**from_file, **{k: v for k, v in flags.items() if v is not None}})


def check_archive(settings: Any) -> str | None:
    """Open (create, upgrade) the archive before Scrapy starts, so an unusable data directory
    is one clear line (StoreError) rather than a failed crawl. Returns the access strategy
    that worked in the latest crawl of GOVKZ_BASE_URL, if any."""
    from crawler.paths import db_path
    from crawler.store import Archive

    archive = Archive.open(db_path(settings))
    try:
        return archive.last_strategy(str(settings.get("GOVKZ_BASE_URL")).rstrip("/"))
    finally:
        archive.close()


def print_summary(summary: Any, args: argparse.Namespace, settings: Any) -> None:
    if getattr(args, "json", False):
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return
    print(summary.render())
    data = Path(settings.get("GOVKZ_DATA"))
    print(f"archive: {data / 'news.db'}; feeds: {data / 'feeds'}")


# --- replay -------------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> int:
    from crawler.runner import run_spider
    from crawler.spiders.replay import ReplaySpider, plan_replay

    settings = settings_for(args, GOVKZ_SEEDS=str(args.seeds) if args.seeds else None)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise GovkzError(f"no such file: {', '.join(missing)}")
    # Check the manifest before starting Scrapy so a broken one is a clear one-line error.
    plan_replay(args.files, Path(settings.get("GOVKZ_SEEDS")))
    check_archive(settings)
    summary = run_spider(
        ReplaySpider, settings,
        files=[str(f) for f in args.files], seeds=settings.get("GOVKZ_SEEDS"),
        lang=args.lang, agency=args.agency,
    )
    print_summary(summary, args, settings)
    return EXIT_OK if summary.ok else EXIT_FAILED


# --- crawl --------------------------------------------------------------------------------


def parse_since(value: str) -> datetime:
    from crawler.timeutil import almaty, localize

    try:
        if len(value) == 10:
            return almaty(date.fromisoformat(value))
        return localize(datetime.fromisoformat(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use YYYY-MM-DD)") from None


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawler.access import parse_strategy_list
    from crawler.directory import crawl_targets, load_registry
    from crawler.runner import die_with_parent, run_spider
    from crawler.spiders.govkz import GovkzSpider

    die_with_parent()
    settings = settings_for(args, GOVKZ_BASE_URL=args.base_url, GOVKZ_ACCESS=args.access)
    parse_strategy_list(settings.get("GOVKZ_ACCESS"))  # a typo is a usage error, not a crawl
    config = load_config_for(args)
    targets = args.target or []
    if any(t.count("/") != 1 or t.split("/")[1] not in LANGS for t in targets):
        raise ConfigError(f"--target expects SLUG/LANG with LANG in {', '.join(LANGS)}")
    agencies = args.agency or ([] if targets else crawl_targets(load_registry(settings), config))
    langs = args.lang or config.langs
    if not agencies and not targets:
        raise ConfigError("no agency to crawl: name one with --agency or enable some")
    what = f"{len(targets)} targets" if targets else \
        f"{len(agencies)} agencies x {len(langs)} languages"
    worked_last = check_archive(settings)
    if settings.get("GOVKZ_ACCESS") == "auto" and not settings.get("GOVKZ_ACCESS_FIRST"):
        settings.set("GOVKZ_ACCESS_FIRST", worked_last, priority="cmdline")
    print(f"crawling {what} from {settings.get('GOVKZ_BASE_URL')}", file=sys.stderr)
    summary = run_spider(
        GovkzSpider, settings, agencies=agencies, langs=langs, targets=targets,
        backfill=args.backfill, since=args.since,
    )
    print_summary(summary, args, settings)
    return EXIT_OK if summary.ok else EXIT_FAILED


# --- agencies -----------------------------------------------------------------------------


def cmd_agencies(args: argparse.Namespace) -> int:
    from crawler.directory import crawl_targets, from_records, load_registry, refreshed_path

    settings = settings_for(args, GOVKZ_BASE_URL=args.base_url)
    if args.refresh:
        from crawler.agencies import AgencyRegistry
        from crawler.paths import db_path
        from crawler.runner import run_spider
        from crawler.spiders.agencies import AgenciesSpider
        from crawler.store import Archive

        settings.set("GOVKZ_PUBLISH_FEEDS", False, priority="cmdline")
        summary = run_spider(AgenciesSpider, settings)
        archive = Archive.open(db_path(settings))
        try:
            records = {
                row["slug"]: {
                    "names": {lang: row[f"name_{lang}"] for lang in LANGS if row[f"name_{lang}"]},
                    "parent": row["parent"],
                }
                for row in archive.agencies()
            }
        finally:
            archive.close()
        refreshed = AgencyRegistry(from_records(records))
        refreshed.to_toml(refreshed_path(settings))
        print(summary.render(), file=sys.stderr)
        print(f"{len(refreshed)} agencies saved to {refreshed_path(settings)}", file=sys.stderr)
        if not summary.ok:
            return EXIT_FAILED
    registry = load_registry(settings)
    crawled = set(crawl_targets(registry, load_config_for(args)))
    rows = [
        {"slug": a.slug, "kind": a.kind, "crawled": a.slug in crawled,
         **{f"name_{lang}": a.names.get(lang, "") for lang in LANGS}}
        for a in registry
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    for row in rows:
        mark = "*" if row["crawled"] else " "
        print(f"{mark} {row['slug']:<40} {row['kind']:<10} {row['name_en'] or row['name_ru']}")
    print(f"{len(rows)} agencies, {len(crawled)} crawled (*)")
    return EXIT_OK


# --- feeds, search, mock ------------------------------------------------------------------


def cmd_feeds(args: argparse.Namespace) -> int:
    from crawler.pipelines import publish

    report = publish(settings_for(args, GOVKZ_PUBLIC_URL=args.public_url), agencies=None)
    print(f"{report.feeds} feeds: {len(report.written)} written, {report.unchanged} unchanged")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from crawler.paths import db_path
    from crawler.store import Archive

    path = db_path(settings_for(args))
    if not path.exists():
        raise GovkzError(f"no archive at {path}: run `govkz-monitor replay` or `crawl` first")
    archive = Archive.open(path)
    try:
        rows = archive.search(args.query, limit=args.limit)
    finally:
        archive.close()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return EXIT_OK
    for row in rows:
        print(f"{row['published'] or '(no date)'}  {row['agency']}/{row['id']}  {row['title']}")
        print(f"    {row['url']}")
    print(f"{len(rows)} result(s)")
    return EXIT_OK


def cmd_mock(args: argparse.Namespace) -> int:
    from crawler.mockgov.serve import main as mock_main

    return mock_main(args.mock_args)


# --- registration -------------------------------------------------------------------------


def register(sub: Any) -> dict[str, Any]:
    replay = sub.add_parser(
        "replay", help="import saved gov.kz pages (seeds/) into the archive and write the feeds",
        description="Parse saved gov.kz pages through the replay spider, store their items in "
        "DATA/news.db and rewrite the feeds in DATA/feeds/. Prints a summary per file; exits "
        "1 if any file could not be read.",
    )
    replay.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="snapshot files (default: every file in seeds/manifest.toml)")
    data_option(replay)
    replay.add_argument("--seeds", type=Path, default=None,
                        help="directory with the snapshots and manifest.toml (default: seeds)")
    replay.add_argument("--lang", default="en", choices=LANGS,
                        help="page language for FILEs not in the manifest (default: en)")
    replay.add_argument("--agency", default=None,
                        help="agency slug for FILEs without source links not in the manifest")
    json_option(replay)

    crawl = sub.add_parser(
        "crawl", help="fetch new and edited items from gov.kz into the archive",
        description="Crawl each agency's press news newest first, page by page, until it is "
        "back at what the archive has (a steady-state re-crawl costs one request per agency "
        "and language). A new agency backfills --backfill pages. Prints a summary per agency "
        "and language; exits 1 if any failed.",
    )
    crawl.add_argument("--agency", action="append", metavar="SLUG",
                       help="agency slug, repeatable (default: the enabled agencies)")
    crawl.add_argument("--lang", action="append", choices=LANGS,
                       help="language, repeatable (default: the config's, else ru kk en)")
    crawl.add_argument("--target", action="append", metavar="SLUG/LANG",
                       help="one agency in one language, repeatable (instead of --agency/--lang)")
    crawl.add_argument("--backfill", type=int, default=None, metavar="N",
                       help="walk at least N pages back (default for new agencies: "
                       "GOVKZ_BACKFILL_PAGES=2)")
    crawl.add_argument("--since", type=parse_since, default=None, metavar="DATE",
                       help="walk back to this date (YYYY-MM-DD, Asia/Almaty) instead")
    crawl.add_argument("--base-url", default=None, metavar="URL",
                       help="the site to crawl: gov.kz (default), a mirror or the mock")
    crawl.add_argument("--access", default=None, metavar="LIST",
                       help="access strategies in order, e.g. 'auto' (default) or 'k6v2,token,rss'")
    data_option(crawl)
    json_option(crawl)

    agencies = sub.add_parser(
        "agencies", help="list the agency registry; --refresh reloads it from gov.kz",
        description="List the known agencies (slug, kind, name); * marks those crawled. "
        "--refresh reads gov.kz's directory (GraphQL projectdetails) into DATA/agencies.toml; "
        "refreshed agencies are not crawled until enabled in the config.",
    )
    agencies.add_argument("--refresh", action="store_true", help="reload from gov.kz first")
    agencies.add_argument("--base-url", default=None, metavar="URL", help="see crawl --base-url")
    data_option(agencies)
    json_option(agencies)

    feeds = sub.add_parser(
        "feeds", help="rewrite every feed from the archive",
        description="Rewrite all feeds in DATA/feeds/ from DATA/news.db (only files whose "
        "content changed are touched).",
    )
    data_option(feeds)
    feeds.add_argument("--public-url", default=None,
                       help="base URL the feeds are served from (self links, OPML)")

    search = sub.add_parser(
        "search", help="full-text search in the archive",
        description="Search titles and bodies of archived items (SQLite FTS5).",
    )
    search.add_argument("query", help="words to look for, e.g. 'referendum' or 'Мажилис'")
    search.add_argument("--limit", type=int, default=20, help="how many results (default 20)")
    data_option(search)
    json_option(search)

    sub.add_parser(
        "mock", help="serve a local mock of gov.kz on 127.0.0.1 (demos, tests, benchmarks)",
        description="Serve a mock of gov.kz's news API, handshakes, RSS and GraphQL on "
        "127.0.0.1, filled from seeds/ or synthetic agencies, until Ctrl-C. Options after "
        "`mock` go to the mock (--port, --seeds DIR, --synthetic N, --access SCHEME, "
        "--latency-ms MS): see `govkz-monitor mock -- --help`.",
        add_help=False,
    )
    return {"replay": cmd_replay, "crawl": cmd_crawl, "agencies": cmd_agencies,
            "feeds": cmd_feeds, "search": cmd_search, "mock": cmd_mock}
