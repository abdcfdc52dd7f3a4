"""The mock-crawl helpers: `govkz-monitor crawl` in a child process against the mock gov.kz
(run in a thread of the test process: `with serve_in_thread(site) as server`), what the mock
answered, and what the archive stored (tests/test_crawl_*.py, test_backfill.py, ...)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cli_helpers import ROOT, run_cli

from crawler.items import LANGS
from crawler.mockgov import LoggedRequest, MockServer, MockSite
from crawler.store import Archive
from crawler.timeutil import ALMATY

NEWS = "/api/v1/public/content-manager/news"  # the list endpoint; details are NEWS/{id}
PAGE = 5  # GOVKZ_PAGE_SIZE in these tests: small, so a few items make several pages
START = datetime(2026, 5, 1, 9, 0, tzinfo=ALMATY)
# A retry (only where a test injects a fault) waits 10 ms, 20 ms ... instead of 2 s, 4 s ...
FAST = ("-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0", "-s", f"GOVKZ_PAGE_SIZE={PAGE}",
        "-s", "GOVKZ_RETRY_BACKOFF_BASE=0.01",
        # The mock's dialect, stated: no probe requests among the ones these tests count
        # (the probe itself: tests/test_page_base.py).
        "-s", "GOVKZ_PAGE_BASE=1", "-s", "GOVKZ_KK_CODE=kk")
UA_RE = re.compile(r"^govkz-monitor/\S+ \(\+https?://\S+\)$")


def fill(site: MockSite, agency: str, count: int, *, start: datetime = START,
         step: timedelta = timedelta(hours=1), langs: tuple[str, ...] = LANGS) -> list[int]:
    """Publish `count` items, oldest first, `step` apart; returns their ids (oldest first)."""
    ids = []
    for n in range(count):
        ids.append(site.publish(
            agency,
            title={lang: f"{agency} {lang} news {n}" for lang in langs},
            body={lang: f"<p>{agency} {lang} body {n}</p>" for lang in langs},
            created=start + n * step,
        ))
    return ids


def newest(ids: list[int], count: int) -> set[int]:
    return set(ids[-count:]) if count else set()


@dataclass
class Crawl:
    process: subprocess.CompletedProcess[str]
    summary: dict | None

    @property
    def code(self) -> int:
        return self.process.returncode

    def target(self, name: str) -> dict:
        assert self.summary is not None, self.process.stderr
        found = [t for t in self.summary["targets"] if t["target"] == name]
        assert found, f"no target {name} in {self.summary['targets']}"
        return found[0]

    @property
    def targets(self) -> dict[str, dict]:
        assert self.summary is not None, self.process.stderr
        return {t["target"]: t for t in self.summary["targets"]}

    @property
    def output(self) -> str:
        return self.process.stdout + self.process.stderr


def crawl(server: MockServer, data: Path, *args: str, agencies: tuple[str, ...] = ("mod",),
          langs: tuple[str, ...] = ("en",), verbose: bool = False) -> Crawl:
    """Run `govkz-monitor crawl --json` against the mock; check it behaved like a polite bot."""
    site = server.site
    assert server.settle(), "an earlier request never finished"  # e.g. one a killed crawl hung
    before = len(site.log)
    argv = [*(["-vv"] if verbose else []), "crawl", "--base-url", server.url,
            "--data", str(data), *FAST, "--json"]
    for agency in agencies:
        argv += ["--agency", agency]
    for lang in langs:
        argv += ["--lang", lang]
    # An empty user cache, as on a fresh machine: nothing may reach beyond the mock (e.g. a
    # library fetching data it has not cached yet).
    cache = {"XDG_CACHE_HOME": str(data.parent / f"{data.name}-cache")}
    process = run_cli(*argv, *args, env=cache, timeout=120)
    assert "Traceback" not in process.stdout + process.stderr, process.stderr
    assert "publicsuffix" not in process.stderr, process.stderr
    summary = json.loads(process.stdout) if process.stdout.strip().startswith("{") else None
    seen = site.log.entries()[before:]
    # robots.txt first, and every request names the bot and how to reach its operators.
    assert seen and (seen[0].method, seen[0].path) == ("GET", "/robots.txt"), seen[:1]
    bad_ua = {e.headers.get("user-agent") for e in seen if not UA_RE.match(
        e.headers.get("user-agent", ""))}
    assert not bad_ua, f"requests without the bot's User-Agent: {bad_ua}"
    return Crawl(process, summary)


def list_requests(site: MockSite, agency: str | None = None, lang: str | None = None) -> int:
    """News-list requests the mock answered.

    Counted at the mock, so a client-side retry of a request that never reached it cannot
    change the number; and since the mock closes every connection cleanly (Connection: close),
    a test that injects no fault has nothing to retry. Where a test does inject faults, the
    retries it expects are part of what it counts.
    """
    return site.count(NEWS, method="GET", agency=agency, lang=lang)


def request_key(method: str, url: str) -> tuple[str, str, frozenset[tuple[str, str]]]:
    """A request as (method, path, query), comparable between Scrapy's log and the mock's."""
    parts = urlsplit(url)
    query = frozenset((k, v[0]) for k, v in parse_qs(parts.query, keep_blank_values=True).items())
    return method, parts.path or "/", query


def logged_key(entry: LoggedRequest) -> tuple[str, str, frozenset[tuple[str, str]]]:
    return entry.method, entry.path, frozenset(entry.query.items())


@contextmanager
def archive_at(data: Path) -> Iterator[Archive]:
    archive = Archive.open(data / "news.db")
    try:
        yield archive
    finally:
        archive.close()


def rows(data: Path, agency: str | None = None, lang: str | None = None) -> list[dict]:
    where = " AND ".join(f"{k} = ?" for k, v in (("agency", agency), ("lang", lang)) if v)
    params = [v for v in (agency, lang) if v]
    with archive_at(data) as archive:
        return list(archive.db.query(
            f"SELECT * FROM items {'WHERE ' + where if where else ''} ORDER BY id, lang", params))


def assert_each_once(data: Path, agency: str, lang: str, ids: set[int]) -> None:
    """Exactly `ids` stored for the agency and language, each once and never re-versioned."""
    got = rows(data, agency, lang)
    assert sorted(r["id"] for r in got) == sorted(ids)
    assert all(r["version"] == 1 for r in got)
    with archive_at(data) as archive:
        versions = list(archive.db.query(
            "SELECT id, COUNT(*) AS n FROM item_versions WHERE agency = ? AND lang = ? "
            "GROUP BY id HAVING n > 1", [agency, lang]))
    assert versions == []


# --- a command killed while the mock holds one of its requests --------------------------------


def start_cli(*args: str) -> subprocess.Popen[str]:
    """`govkz-monitor ARGS` in a child process with its output piped, for a test to kill."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GOVKZ_DATA", None)  # tests pass --data; a developer's own must not leak
    return subprocess.Popen([sys.executable, "-m", "crawler.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextmanager
def killed_at_hang(site: MockSite, argv: Sequence[str],
                   where: str = "the hung request") -> Iterator[subprocess.Popen[str]]:
    """Start `govkz-monitor ARGV`, wait until the mock holds one of its requests (a "hang" fault
    the caller added), run the block (it looks at what was stored so far), then SIGKILL the
    command and end the hang. Nothing waits on time: the mock says when it holds the request."""
    process = start_cli(*argv)
    try:
        assert site.faults.await_waiting(1, timeout=60), f"the command never reached {where}"
        yield process
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        site.faults.clear()  # ends the hang; the site answers normally again
    assert process.returncode == -signal.SIGKILL


@contextmanager
def killed_while_hung(site: MockSite, url: str, data: Path, *args: str,
                      where: str = "the hung request") -> Iterator[None]:
    """A crawl of mod/en (the `crawl` helper's flags) killed at the mock's hang; see
    killed_at_hang."""
    argv = ["crawl", "--base-url", url, "--data", str(data), "--agency", "mod", "--lang", "en",
            *FAST, "--json", *args]
    with killed_at_hang(site, argv, where):
        yield
