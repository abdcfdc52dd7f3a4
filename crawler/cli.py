"""The `govkz-monitor` command line. The only place errors become one-line messages."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crawler import logsetup
from crawler.errors import GovkzError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Crawl the press news of Kazakhstan's state bodies on gov.kz, keep every item in a SQLite
archive and publish RSS/Atom feeds per agency.

Start with `govkz-monitor replay` (offline, from the saved pages in seeds/), then point a feed
reader at data/feeds/ or query the archive with `sqlite-utils data/news.db` or Datasette."""

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Any]:
    def register(func: Callable[[argparse.Namespace], int]) -> Any:
        COMMANDS[name] = func
        return func

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govkz-monitor",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v: progress, -vv: Scrapy's debug log)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    replay = sub.add_parser(
        "replay",
        help="import saved gov.kz pages (seeds/) into the archive and write the feeds",
        description="Parse saved gov.kz pages through the replay spider, store their items in "
        "DATA/news.db and rewrite the feeds in DATA/feeds/. Prints a summary per file; exits "
        "1 if any file could not be read.",
    )
    replay.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="snapshot files (default: every file in seeds/manifest.toml)")
    _data_option(replay)
    replay.add_argument("--seeds", type=Path, default=None,
                        help="directory with the snapshots and manifest.toml (default: seeds)")
    replay.add_argument("--lang", default="en",
                        help="page language for FILEs not in the manifest (default: en)")
    replay.add_argument("--agency", default=None,
                        help="agency slug for FILEs without source links not in the manifest")
    _json_option(replay)

    feeds = sub.add_parser(
        "feeds",
        help="rewrite every feed from the archive",
        description="Rewrite all feeds in DATA/feeds/ from DATA/news.db (only files whose "
        "content changed are touched).",
    )
    _data_option(feeds)
    feeds.add_argument("--public-url", default=None,
                       help="base URL the feeds are served from (self links, OPML)")

    search = sub.add_parser(
        "search",
        help="full-text search in the archive",
        description="Search titles and bodies of archived items (SQLite FTS5).",
    )
    search.add_argument("query", help="words to look for, e.g. 'referendum' or 'Мажилис'")
    search.add_argument("--limit", type=int, default=20, help="how many results (default 20)")
    _data_option(search)
    _json_option(search)
    return parser


def _data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, default=None, metavar="DIR",
        help="data directory holding news.db and feeds/ (default: $GOVKZ_DATA or ./data)",
    )


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _settings(args: argparse.Namespace, **overrides: Any) -> Any:
    from crawler.runner import project_settings

    data = getattr(args, "data", None)
    return project_settings({"GOVKZ_DATA": str(data) if data else None, **overrides})


@command("replay")
def cmd_replay(args: argparse.Namespace) -> int:
    from crawler.runner import run_spider
    from crawler.spiders.replay import ReplaySpider, plan_replay

    settings = _settings(args, GOVKZ_SEEDS=str(args.seeds) if args.seeds else None)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise GovkzError(f"no such file: {', '.join(missing)}")
    # Check the manifest before starting Scrapy so a broken one is a clear one-line error.
    plan_replay(args.files, Path(settings.get("GOVKZ_SEEDS")))
    summary = run_spider(
        ReplaySpider, settings,
        files=[str(f) for f in args.files], seeds=settings.get("GOVKZ_SEEDS"),
        lang=args.lang, agency=args.agency,
    )
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(summary.render())
        print(f"archive: {Path(settings.get('GOVKZ_DATA')) / 'news.db'}; "
              f"feeds: {Path(settings.get('GOVKZ_DATA')) / 'feeds'}")
    return EXIT_OK if summary.ok else EXIT_FAILED


@command("feeds")
def cmd_feeds(args: argparse.Namespace) -> int:
    from crawler.pipelines import publish

    report = publish(_settings(args, GOVKZ_PUBLIC_URL=args.public_url), agencies=None)
    print(f"{report.feeds} feeds: {len(report.written)} written, {report.unchanged} unchanged")
    return EXIT_OK


@command("search")
def cmd_search(args: argparse.Namespace) -> int:
    from crawler.paths import db_path
    from crawler.store import Archive

    path = db_path(_settings(args))
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    logsetup.configure(args.verbose)
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    try:
        return COMMANDS[args.command](args)
    except GovkzError as exc:
        print(f"govkz-monitor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if args.command != "replay" else EXIT_FAILED
    except KeyboardInterrupt:
        print("govkz-monitor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
