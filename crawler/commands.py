"""The crawling side of the command line: replay, crawl, agencies, feeds, search, doctor, mock."""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.config import Config, default, resolve, scrapy_settings
from crawler.errors import ConfigError, GovkzError
from crawler.items import LANGS

EXIT_OK, EXIT_FAILED = 0, 1


class UsageError(ConfigError):
    """A flag's value the parser could not refute alone (it needs the registry or the archive):
    the CLI prints it as the subcommand's one-line usage error and exits 2."""


# --- argparse types: a bad number is a usage error before anything starts -----------------


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None


def positive_int(value: str) -> int:
    """An integer >= 1 (pages, counts)."""
    number = _integer(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value!r}")
    return number


def port_or_any(value: str) -> int:
    """A TCP port, or 0 for any free one."""
    number = _integer(value)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (0-65535, 0: any free one): {value!r}")
    return number


def positive_seconds(value: str) -> float:
    """A duration in seconds, > 0 (an interval of 0 would spin; nan/inf never fire)."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {value!r}")
    return seconds


# --- the configuration and the settings ---------------------------------------------------

# Options whose dest is a configuration key ("crawl.base_url", "server.port") are flags of the
# resolution (crawler/config.py); the others are the command's own.
CONFIG_DESTS = ("crawl.", "agencies.", "schedule.", "server.")


def resolve_config(args: argparse.Namespace) -> Config:
    """The configuration of this run: defaults < file < environment < the command line."""
    flags = {dest: value for dest, value in vars(args).items() if dest.startswith(CONFIG_DESTS)}
    return resolve(config_file=getattr(args, "config", None), sets=getattr(args, "set", []),
                   flags=flags, log_level=getattr(args, "log_level", None),
                   log_file=getattr(args, "log_file", None))


def flag_given(args: argparse.Namespace, dest: str) -> bool:
    """Whether the configuration flag `dest` (e.g. "crawl.data") was on the command line."""
    return getattr(args, dest, None) is not None


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def check_archive(settings: Any) -> str | None:
    """Open (create, upgrade) the archive before Scrapy starts, so an unusable data directory
    is one clear line (StoreError) rather than a failed crawl. Returns the access strategy
    that worked in the latest crawl of GOVKZ_BASE_URL, if any."""
    from crawler.paths import db_path
    from crawler.store import Archive

    archive = Archive.open(db_path(settings))
    try:
        return archive.monitor.last_strategy(str(settings.get("GOVKZ_BASE_URL")).rstrip("/"))
    finally:
        archive.close()


def print_summary(summary: Any, args: argparse.Namespace, config: Config) -> None:
    if getattr(args, "json", False):
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return
    print(summary.render())
    data = config.crawl.data
    print(f"archive: {data / 'news.db'}; feeds: {data / 'feeds'}")


# --- replay -------------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace, config: Config) -> int:
    from crawler.runner import run_spider
    from crawler.spiders.replay import ReplaySpider, plan_replay

    settings = scrapy_settings(config)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise GovkzError(f"no such file: {', '.join(missing)}")
    # Check the manifest before starting Scrapy so a broken one is a clear one-line error.
    plan_replay(args.files, config.crawl.seeds)
    check_archive(settings)
    summary = run_spider(
        ReplaySpider, settings,
        files=[str(f) for f in args.files], seeds=str(config.crawl.seeds),
        lang=args.lang, agency=args.agency,
    )
    print_summary(summary, args, config)
    return EXIT_OK if summary.ok else EXIT_FAILED


# --- crawl --------------------------------------------------------------------------------


def parse_since(value: str) -> datetime:
    from crawler.timeutil import require_iso

    try:
        return require_iso(value)  # a bare date is its midnight in Almaty
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use YYYY-MM-DD)") from None


def archived_agencies(settings: Any) -> set[str]:
    """Slugs in the archive's `agencies` table (what earlier refreshes saw); none if there is
    no archive yet, which a usage check must not create."""
    from crawler.paths import db_path
    from crawler.store import Archive

    path = db_path(settings)
    if not path.is_file():
        return set()
    archive = Archive.open(path)
    try:
        return {row["slug"] for row in archive.agencies()}
    finally:
        archive.close()


def check_agency_slugs(slugs: list[str], registry: Any, settings: Any) -> None:
    """UsageError naming the slugs neither the registry nor the archive knows, with close
    matches: gov.kz answers an unknown slug with an empty list, which would pass for "no news"."""
    unknown = [slug for slug in dict.fromkeys(slugs) if slug not in registry]
    if not unknown:
        return
    known = {agency.slug for agency in registry} | archived_agencies(settings)
    unknown = [slug for slug in unknown if slug not in known]
    if not unknown:
        return
    parts = []
    for slug in unknown:
        close = difflib.get_close_matches(slug, sorted(known), n=3)
        parts.append(f"{slug!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    raise UsageError(
        f"argument --agency: unknown agency {', '.join(parts)}; `govkz-monitor agencies` lists "
        "the known ones, `govkz-monitor agencies --refresh` reloads them from gov.kz"
    )


def cmd_crawl(args: argparse.Namespace, config: Config) -> int:
    from crawler.directory import crawl_targets, load_registry
    from crawler.runner import die_with_parent, run_spider
    from crawler.spiders.govkz import GovkzSpider

    die_with_parent()
    # The access list, the languages, ... were checked by the resolution: a typo is a usage
    # error (exit 2) before anything starts.
    settings = scrapy_settings(config)
    targets = args.target or []
    if any(t.count("/") != 1 or t.split("/")[1] not in LANGS for t in targets):
        raise ConfigError(f"--target expects SLUG/LANG with LANG in {', '.join(LANGS)}")
    if args.site_wide and (args.agency or targets):
        raise UsageError("argument --site-wide: it walks every agency at once, so neither "
                         "--agency nor --target goes with it")
    registry = load_registry(settings)
    if args.agency:
        check_agency_slugs(args.agency, registry, settings)
    agencies = args.agency or (
        [] if targets or args.site_wide else crawl_targets(registry, config.agencies))
    langs = list(config.crawl.langs)  # --lang, else GOVKZ_LANGS, else the file's, else all
    if not agencies and not targets and not args.site_wide:
        raise ConfigError("no agency to crawl: name one with --agency or enable some")
    what = f"{len(targets)} targets" if targets else \
        f"{len(agencies)} agencies x {len(langs)} languages"
    if args.site_wide:
        what = f"the site-wide news list in {len(langs)} language(s)"
    worked_last = check_archive(settings)
    if config.crawl.access == "auto" and not settings.get("GOVKZ_ACCESS_FIRST"):
        settings.set("GOVKZ_ACCESS_FIRST", worked_last, priority="cmdline")
    print(f"crawling {what} from {config.crawl.base_url}", file=sys.stderr)
    summary = run_spider(
        GovkzSpider, settings, agencies=agencies, langs=langs, targets=targets,
        backfill=args.backfill, since=args.since, site_wide=args.site_wide,
    )
    print_summary(summary, args, config)
    return EXIT_OK if summary.ok else EXIT_FAILED


# --- agencies -----------------------------------------------------------------------------


def _directory_failure(summary: Any) -> str | None:
    """Why a directory crawl must not replace the registry (None: it may): it failed anywhere,
    or it produced no agency at all."""
    found = sum(t.found for name, t in summary.targets.items() if name.startswith("directory/"))
    where: dict[str, list[str]] = {}  # message -> the languages (targets) that had it
    for name, target in sorted(summary.targets.items()):
        for problem in target.problems:
            if problem.fails:
                where.setdefault(problem.message, []).append(name.removeprefix("directory/"))
    reasons = [f"{message} [{', '.join(names)}]" for message, names in where.items()]
    if len(reasons) > 3:
        reasons[3:] = [f"{len(reasons) - 3} more error(s)"]
    reason = "; ".join(reasons)
    if not found:
        return f"gov.kz's directory gave no agencies ({reason or 'an empty list'})"
    if reason:
        return f"gov.kz's directory answered in part only ({found} agency rows came; {reason})"
    return None


def _kept_registry(settings: Any) -> str:
    """What the failed refresh left in place, for its one line."""
    from crawler.agencies import AgencyRegistry
    from crawler.directory import refreshed_path

    path = refreshed_path(settings)
    if not path.exists():
        shipped = len(AgencyRegistry.load())
        return f"wrote nothing to {path}; the shipped registry ({shipped} agencies) stays in use"
    try:
        return f"kept the registry at {path} with {len(AgencyRegistry.load(path))} agencies"
    except ConfigError as exc:
        return f"kept the registry at {path} untouched ({exc})"


def refresh_agencies(settings: Any) -> int:
    """`agencies --refresh`: read gov.kz's directory into the archive, then rewrite
    DATA/agencies.toml from it, but only after a refresh that worked and found agencies."""
    from crawler.agencies import AgencyRegistry
    from crawler.directory import from_records, refreshed_path
    from crawler.paths import db_path
    from crawler.runner import run_spider
    from crawler.spiders.agencies import AgenciesSpider
    from crawler.store import Archive

    settings.set("GOVKZ_PUBLISH_FEEDS", False, priority="cmdline")
    summary = run_spider(AgenciesSpider, settings)
    failure = _directory_failure(summary)
    if failure:
        print(f"agencies --refresh: {failure}; {_kept_registry(settings)}", file=sys.stderr)
        return EXIT_FAILED
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
    refreshed.to_toml(refreshed_path(settings))  # a temporary file, then os.replace
    print(summary.render(), file=sys.stderr)
    print(f"{len(refreshed)} agencies saved to {refreshed_path(settings)}", file=sys.stderr)
    return EXIT_OK


def cmd_agencies(args: argparse.Namespace, config: Config) -> int:
    from crawler.directory import crawl_targets, load_registry

    settings = scrapy_settings(config)
    if args.refresh and refresh_agencies(settings) != EXIT_OK:
        return EXIT_FAILED
    registry = load_registry(settings)
    crawled = set(crawl_targets(registry, config.agencies))
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


def cmd_feeds(args: argparse.Namespace, config: Config) -> int:
    from crawler.pipelines import publish

    report = publish(scrapy_settings(config), full=args.all)
    print(f"{report.feeds} feeds: {len(report.written)} written, {report.unchanged} unchanged")
    return EXIT_OK


def cmd_search(args: argparse.Namespace, config: Config) -> int:
    from crawler.directory import load_registry
    from crawler.items import is_slug
    from crawler.paths import db_path
    from crawler.search import QueryError
    from crawler.store import Archive

    settings = scrapy_settings(config)
    if args.agency is not None:
        if not is_slug(args.agency):
            raise UsageError(f"argument --agency: not an agency slug: {args.agency!r}")
        check_agency_slugs([args.agency], load_registry(settings), settings)
    path = db_path(settings)
    if not path.exists():
        raise GovkzError(f"no archive at {path}: run `govkz-monitor replay` or `crawl` first")
    archive = Archive.open(path)
    try:
        rows = archive.search(args.query, limit=args.limit, agency=args.agency,
                              lang=args.lang, since=args.since)
    except QueryError as exc:  # the query itself is the bad usage
        raise UsageError(f"argument query: {exc}") from None
    finally:
        archive.close()
    if args.json:
        hits = [{key: row[key] for key in SEARCH_FIELDS} for row in rows]
        print(json.dumps(hits, ensure_ascii=False, indent=2, default=str))
        return EXIT_OK
    for row in rows:
        print(f"{row['published'] or '(no date)'}  [{row['lang']}] {row['agency']}/{row['id']}"
              f"  {row['title']}")
        print(f"    {row['agency_name'] or row['agency']} · {row['url']}")
        if row["snippet"]:
            print(f"    {row['snippet']}")
    print(f"{len(rows)} result(s)")
    return EXIT_OK


# What `search --json` prints of each hit (Archive.search has the whole row).
SEARCH_FIELDS = ("agency", "agency_name", "id", "lang", "published", "title", "url", "snippet")


def cmd_doctor(args: argparse.Namespace, config: Config) -> int:
    from crawler.doctor import diagnose

    diagnosis = diagnose(config, agency=args.agency, lang=args.lang)
    if args.json:
        print(json.dumps(diagnosis.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(diagnosis.render())
    return EXIT_OK if diagnosis.ok else EXIT_FAILED


def cmd_backfill(args: argparse.Namespace, config: Config) -> int:
    from crawler.backfill_command import run_backfill, targets_of
    from crawler.directory import crawl_targets, load_registry

    if args.site_wide and args.agency:
        raise UsageError("argument --site-wide: it walks every agency at once, so --agency "
                         "does not go with it")
    settings = scrapy_settings(config)
    registry = load_registry(settings)
    if args.agency:
        check_agency_slugs(args.agency, registry, settings)
    agencies = list(dict.fromkeys(args.agency or (
        [] if args.site_wide else crawl_targets(registry, config.agencies))))
    if not agencies and not args.site_wide:
        raise ConfigError("no agency to backfill: name one with --agency, enable some, or "
                          "use --site-wide")
    targets = targets_of(agencies, list(config.crawl.langs), site_wide=args.site_wide)
    return run_backfill(config, targets=targets, since=args.since, restart=args.restart,
                        as_json=args.json)


def cmd_mock(args: argparse.Namespace, config: Config) -> int:
    from crawler.mockgov.serve import main as mock_main

    return mock_main(args.mock_args)


# --- registration -------------------------------------------------------------------------


def base_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", dest="crawl.base_url", default=None, metavar="URL",
                        help="the site to crawl: gov.kz, a mirror or the mock (default: "
                        f"$GOVKZ_BASE_URL, the config's, else {default('crawl.base_url')})")


def public_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--public-url", dest="crawl.public_url", default=None, metavar="URL",
                        help="where readers reach the feeds (self links, OPML; default: "
                        f"$GOVKZ_PUBLIC_URL, the config's, else {default('crawl.public_url')})")


def lang_option(parser: argparse.ArgumentParser) -> None:
    """--lang, repeatable: the languages crawled (`crawl`, `run`), i.e. the key crawl.langs."""
    parser.add_argument("--lang", dest="crawl.langs", action="append", choices=LANGS,
                        metavar="LANG", help="language, repeatable: " + ", ".join(LANGS) +
                        " (default: $GOVKZ_LANGS, the config's, else "
                        f"{' '.join(default('crawl.langs'))})")


def register(sub: Any) -> dict[str, Any]:
    replay = sub.add_parser(
        "replay", help="import saved gov.kz pages (seeds/) into the archive and write the feeds",
        description="Parse saved gov.kz pages through the replay spider, store their items in "
        "DATA/news.db and rewrite the feeds in DATA/feeds/. Prints a summary per file; exits "
        "1 if any file could not be read.",
    )
    replay.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="snapshot files (default: every file in seeds/manifest.toml)")
    replay.add_argument("--seeds", dest="crawl.seeds", type=Path, default=None, metavar="DIR",
                        help="directory with the snapshots and manifest.toml "
                        f"(default: $GOVKZ_SEEDS, the config's, else {default('crawl.seeds')})")
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
                       help="agency slug, repeatable (default: the enabled agencies); one the "
                       "registry and the archive do not know is a usage error")
    lang_option(crawl)
    crawl.add_argument("--target", action="append", metavar="SLUG/LANG",
                       help="one agency in one language, repeatable (instead of --agency/--lang)")
    crawl.add_argument("--site-wide", action="store_true",
                       help="walk gov.kz's one list of every agency's news instead (one walk "
                       "per language), filing each item under its agency and adding agencies "
                       "never seen before to the archive")
    crawl.add_argument("--backfill", type=positive_int, default=None, metavar="N",
                       help="walk at least N pages back (default for new agencies: "
                       f"GOVKZ_BACKFILL_PAGES={default('crawl.backfill')})")
    crawl.add_argument("--since", type=parse_since, default=None, metavar="DATE",
                       help="walk back to this date (YYYY-MM-DD, Asia/Almaty) instead")
    base_url_option(crawl)
    crawl.add_argument("--access", dest="crawl.access", default=None, metavar="LIST",
                       help="access strategies in order, e.g. 'auto' (default) or 'k6v2,token,rss'")
    json_option(crawl)

    backfill = sub.add_parser(
        "backfill", help="walk whole histories back to the first item (or --since), resumable",
        description="Walk each target's news list (the site-wide one with --site-wide, else "
        "each agency's) newest first to its first item or --since DATE, at the configured "
        "rate. Killed at any moment, the same command continues from the cursor stored in the "
        "archive; a finished target is not walked again unless --restart. Shows a progress bar "
        "on a terminal, else a log line a minute; ends with a summary per target. Exits 1 if "
        "any target failed.",
    )
    backfill.add_argument("--site-wide", action="store_true",
                          help="walk the site-wide list (every agency) once per language")
    backfill.add_argument("--agency", action="append", metavar="SLUG",
                          help="agency slug, repeatable (default: the enabled agencies)")
    lang_option(backfill)
    backfill.add_argument("--since", type=parse_since, default=None, metavar="DATE",
                          help="walk back to this date (YYYY-MM-DD, Asia/Almaty) only")
    backfill.add_argument("--restart", action="store_true",
                          help="forget the stored cursors and walk from the newest item again")
    base_url_option(backfill)
    backfill.add_argument("--access", dest="crawl.access", default=None, metavar="LIST",
                          help="access strategies in order (default: auto)")
    json_option(backfill)

    agencies = sub.add_parser(
        "agencies", help="list the agency registry; --refresh reloads it from gov.kz",
        description="List the known agencies (slug, kind, name); * marks those crawled. "
        "--refresh reads gov.kz's directory (GraphQL projectdetails) into DATA/agencies.toml; "
        "refreshed agencies are not crawled until enabled in the config. A refresh that fails "
        "anywhere or finds no agency leaves DATA/agencies.toml as it was and exits 1.",
    )
    agencies.add_argument("--refresh", action="store_true", help="reload from gov.kz first")
    base_url_option(agencies)
    json_option(agencies)

    feeds = sub.add_parser(
        "feeds", help="bring the feeds up to date with the archive",
        description="Rewrite the feeds in DATA/feeds/ that are behind DATA/news.db: those of "
        "every agency and language with an item stored or edited since they were last written, "
        "whichever crawl stored it (a killed one too). Only files whose content changed are "
        "touched. --all rewrites every feed.",
    )
    feeds.add_argument("--all", action="store_true",
                       help="rewrite every feed, not only those behind the archive")
    public_url_option(feeds)

    search = sub.add_parser(
        "search", help="full-text search in the archive, newest first",
        description="Search titles and bodies of archived items, newest first. Word forms "
        "match (брифинга finds брифинг, briefings finds briefing; Kazakh by its endings); "
        "all words must match; `a OR b` either; \"a phrase\"; -word leaves out; brief* is a "
        "prefix. Prints date, language, agency, title, link and a snippet per hit.",
    )
    search.add_argument("query", help="e.g. 'тендер', 'Kazakhstan OR Morocco', "
                        "'\"министр обороны\" -учения', 'брифин*'")
    search.add_argument("--agency", default=None, metavar="SLUG",
                        help="only this agency's items (a slug the registry or archive knows)")
    search.add_argument("--lang", default=None, choices=LANGS,
                        help="only items in this language: " + ", ".join(LANGS))
    search.add_argument("--since", type=parse_since, default=None, metavar="DATE",
                        help="only items published on or after DATE (YYYY-MM-DD, Asia/Almaty)")
    search.add_argument("--limit", type=positive_int, default=20, metavar="N",
                        help="how many results (default 20)")
    json_option(search)

    doctor = sub.add_parser(
        "doctor", help="which access paths to gov.kz work from here, and why not",
        description="Try once each access strategy (k6v1, k6v2, token, plain), the site-wide "
        "list, GraphQL, the official RSS, the detail endpoint and the page base against the "
        "configured site, and print path, HTTP status, items, newest date, ms and a verdict "
        "per path, then one line saying what is wrong. HTTPS_PROXY / HTTP_PROXY are honoured. "
        "Exits 0 when at least one news path works, 1 when none does.",
    )
    doctor.add_argument("--agency", default=None, metavar="SLUG",
                        help="the agency whose news are asked for (default: the first enabled)")
    doctor.add_argument("--lang", default=None, choices=LANGS,
                        help="the language asked for (default: the first configured)")
    base_url_option(doctor)
    json_option(doctor)

    sub.add_parser(
        "mock", help="serve a local mock of gov.kz on 127.0.0.1 (demos, tests, benchmarks)",
        description="Serve a mock of gov.kz's news API, handshakes, RSS and GraphQL on "
        "127.0.0.1, filled from seeds/ or synthetic agencies, until Ctrl-C. Options after "
        "`mock` go to the mock (--port, --seeds DIR, --synthetic N, --access SCHEME, "
        "--latency-ms MS): see `govkz-monitor mock -- --help`.",
        add_help=False,
    )
    return {"replay": cmd_replay, "crawl": cmd_crawl, "agencies": cmd_agencies,
            "feeds": cmd_feeds, "search": cmd_search, "doctor": cmd_doctor, "mock": cmd_mock,
            "backfill": cmd_backfill}
