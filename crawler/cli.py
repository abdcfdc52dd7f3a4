"""The `govkz-monitor` command line. The only place errors become one-line messages.

Commands live next to what they drive: crawler/commands.py (replay, crawl, agencies, feeds,
search, mock) and scheduler/commands.py (run, serve, status); each module registers its
subcommands here. The global options (--config, --data, -v, --log-level, -s) are accepted before
and after the command. `main` resolves the configuration once (crawler/config.py) and hands it
to the command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from crawler import logsetup
from crawler.commands import UsageError, resolve_config
from crawler.config import default, set_current
from crawler.errors import ConfigError, GovkzError, ManifestError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# The defaults, as crawler/config.py writes them (the help names them, it does not repeat them).
_SERVED = f"http://{default('server.bind')}:{default('server.port')}"
_DATA = default("crawl.data")

DESCRIPTION = f"""\
Crawl the press news of Kazakhstan's state bodies on gov.kz, keep every item in a SQLite
archive and publish RSS/Atom feeds per agency.

  govkz-monitor replay            offline: import the saved pages in seeds/
  govkz-monitor crawl             fetch new items from gov.kz (or a mirror / the mock)
  govkz-monitor run               the daemon: crawl on a schedule, publish, serve feeds
  govkz-monitor run --demo        the same against a local mock of gov.kz, offline
  govkz-monitor run --no-serve    crawl and publish only: nginx serves DATA/feeds/

Then point a feed reader at {_SERVED}/opml (or {_DATA}/feeds/), or query the archive
with `sqlite-utils {_DATA}/news.db` or `datasette {_DATA}/news.db`."""

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


AFTER = "_after"  # dest suffix of a counting/appending global option given after the command
# Commands whose arguments after the name all belong to someone else (the mock's own parser).
OWN_ARGUMENTS = {"mock"}


def add_global_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """The options every command takes, before or after its name.

    After the command (on a subparser) an option not given must not overwrite the value given
    before it, so there every default is SUPPRESS; -v and -s add up across both positions, so
    there they have a dest of their own, merged by `merge_global_options`.
    """
    unset: Any = argparse.SUPPRESS if after_command else None
    suffix = AFTER if after_command else ""
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument("--config", type=Path, default=unset, metavar="FILE",
                       help="TOML config file (default: $GOVKZ_CONFIG or ./govkz-monitor.toml)")
    group.add_argument("--data", dest="crawl.data", type=Path, default=unset, metavar="DIR",
                       help="data directory holding news.db and feeds/ "
                       f"(default: $GOVKZ_DATA, the config's, else ./{_DATA})")
    group.add_argument("-s", "--set", dest="set" + suffix, action="append",
                       default=argparse.SUPPRESS if after_command else [], metavar="NAME=VALUE",
                       help="a GOVKZ_ setting or any Scrapy setting, e.g. -s DOWNLOAD_DELAY=2 "
                       "(repeatable; beats the file and the environment)")
    group.add_argument("-v", "--verbose", dest="verbose" + suffix, action="count",
                       default=argparse.SUPPRESS if after_command else 0,
                       help="more log output (-v: Scrapy's log, -vv: debug)")
    group.add_argument("--log-level", type=str.upper, choices=logsetup.LEVELS, default=unset,
                       help="log threshold for every logger, instead of -v (DEBUG also shows "
                       "the tracebacks of failed downloads)")
    group.add_argument("--log-file", type=Path, default=unset, metavar="FILE",
                       help="also append the log to FILE, with full tracebacks (default: "
                       "$GOVKZ_LOG_FILE, else stderr only)")


def merge_global_options(args: argparse.Namespace) -> argparse.Namespace:
    """-v and -s given before and after the command, added up."""
    args.verbose += vars(args).pop("verbose" + AFTER, 0)
    args.set = [*args.set, *vars(args).pop("set" + AFTER, [])]
    return args


def build_parser() -> Parser:
    from crawler import commands as crawler_commands
    from scheduler import commands as scheduler_commands

    parser = Parser(
        prog="govkz-monitor", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser, after_command=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (crawler_commands, scheduler_commands):
        for name, handler in module.register(sub).items():
            COMMANDS[name] = handler
    for name, command_parser in sub.choices.items():
        if name not in OWN_ARGUMENTS:
            add_global_options(command_parser, after_command=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in OWN_ARGUMENTS:  # everything after `mock` belongs to the mock's parser
        args.mock_args = [a for a in extra if a != "--"]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    merge_global_options(args)
    # Process plumbing, not configuration: Scrapy's own helpers (scrapy.utils.project) find the
    # project by this variable. It names the static settings module; every crawl of the CLI gets
    # its Settings from the resolved Config (crawler.config.scrapy_settings).
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    try:
        config = set_current(resolve_config(args))
    except ConfigError as exc:
        print(f"govkz-monitor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # --log-level beats -v; -v beats GOVKZ_LOG_LEVEL (a flag beats the environment).
    level = args.log_level or (None if args.verbose else config.log_level)
    try:
        logsetup.configure(args.verbose, level, log_file=config.log_file)
    except OSError as exc:  # a log file that cannot be opened: a usage error, one line
        print(f"govkz-monitor: error: --log-file {config.log_file}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args, config)
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
