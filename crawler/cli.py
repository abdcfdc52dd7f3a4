"""The `govkz-monitor` command line. The only place errors become one-line messages.

Commands live next to what they drive: crawler/commands.py (replay, crawl, agencies, feeds,
search, mock) and scheduler/commands.py (run, serve, status); each module registers its
subcommands here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from crawler import logsetup
from crawler.commands import UsageError
from crawler.errors import ConfigError, GovkzError, ManifestError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Crawl the press news of Kazakhstan's state bodies on gov.kz, keep every item in a SQLite
archive and publish RSS/Atom feeds per agency.

  govkz-monitor replay            offline: import the saved pages in seeds/
  govkz-monitor crawl             fetch new items from gov.kz (or a mirror / the mock)
  govkz-monitor run               the daemon: crawl on a schedule, publish, serve feeds
  govkz-monitor run --demo        the same against a local mock of gov.kz, offline

Then point a feed reader at http://127.0.0.1:8080/opml (or data/feeds/), or query the archive
with `sqlite-utils data/news.db` or `datasette data/news.db`."""

# Filled by the modules' register() functions: command name -> handler.
COMMANDS: dict[str, Any] = {}


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line on stderr: the problem and where help is.

    argparse would print the whole usage first, which for `crawl` fills a screen and hides
    the one line that matters; subcommand parsers inherit this class from add_subparsers.
    """

    def complain(self, message: str, *, hint: bool = True) -> None:
        see = f" (see `{self.prog} --help`)" if hint else ""
        print(f"{self.prog}: error: {message}{see}", file=sys.stderr)

    def error(self, message: str) -> NoReturn:
        self.complain(message)
        sys.exit(EXIT_USAGE)


def build_parser() -> Parser:
    from crawler import commands as crawler_commands
    from scheduler import commands as scheduler_commands

    parser = Parser(
        prog="govkz-monitor", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v: Scrapy's log, -vv: debug)")
    parser.add_argument("--log-level", type=str.upper, choices=logsetup.LEVELS, default=None,
                        help="log threshold for every logger, instead of -v (DEBUG also shows "
                        "the tracebacks of failed downloads)")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="TOML config file (default: $GOVKZ_CONFIG or ./govkz-monitor.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (crawler_commands, scheduler_commands):
        for name, handler in module.register(sub).items():
            COMMANDS[name] = handler
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "mock":  # everything after `mock` belongs to the mock's own parser
        args.mock_args = [a for a in extra if a != "--"]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    logsetup.configure(args.verbose, args.log_level)
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:  # a flag's value that only the data can refute (e.g. a slug)
        subparser(parser, args.command).complain(str(exc), hint=False)
        return EXIT_USAGE
    except (ConfigError, ManifestError) as exc:
        print(f"govkz-monitor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GovkzError as exc:
        print(f"govkz-monitor: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("govkz-monitor: interrupted", file=sys.stderr)
        return 130


def subparser(parser: argparse.ArgumentParser, command: str) -> Parser:
    """The parser of one subcommand (for its name in error messages)."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


if __name__ == "__main__":
    sys.exit(main())
