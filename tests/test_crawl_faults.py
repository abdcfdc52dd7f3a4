"""`govkz-monitor crawl` against a misbehaving mock gov.kz: layout changes, rate limits, server
errors, a crawl killed half-way. One agency's trouble never costs the others their crawl, and a
failure is always a failure (exit 1, an error naming the cause), never "0 new".
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from crawl_helpers import (
    NEWS,
    PAGE,
    START,
    Crawl,
    archive_at,
    assert_each_once,
    crawl,
    fill,
    killed_while_hung,
    list_requests,
    newest,
    rows,
)

from crawler.mockgov import Fault, MockSite, serve_in_thread

TWO = ("mod", "mfa")  # "mod" gets the faults, "mfa" must not notice


def two_agencies(**options: object) -> tuple[MockSite, list[int], list[int]]:
    site = MockSite(**options)  # type: ignore[arg-type]
    return site, fill(site, "mod", 12), fill(site, "mfa", 12)


def crawl_status(data: Path) -> str:
    with archive_at(data) as archive:
        return archive.crawls(limit=1)[0]["status"]


def failing_kinds(target: dict) -> list[str]:
    """The kinds of a summary target's problems that fail it (a reject does not)."""
    return [p["kind"] for p in target["problems"] if p["kind"] != "rejected"]


def high_water(data: Path, agency: str, lang: str = "en") -> object:
    with archive_at(data) as archive:
        return archive.monitor.high_water(agency, lang)


# --- 5. layout changes ------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "after", "body_mark"), [
    ("html", 0, b"<!DOCTYPE html>"),
    ("truncate", 0, b'[{"id": '),
    ("rename", 0, b'"name": "mod en news 11"'),
    ("envelope", 0, b'{"content": [{'),
    ("envelope", 1, b'{"content": [{'),  # on page 2, after page 1 was stored
])
def test_layout_change_fails_loudly_and_keeps_a_sample(
    tmp_path: Path, kind: str, after: int, body_mark: bytes
) -> None:
    site, mod, mfa = two_agencies(access="k6v1")
    fault = site.faults.add(Fault(kind, agency="mod", after=after))
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, agencies=TWO)
        assert fault.applied == 1
        assert result.code == 1, result.output
        target = result.target("mod/en")
        assert failing_kinds(target) == ["layout_changed"]
        assert target["new"] == after * PAGE  # what came before the change is kept
        assert result.summary["totals"]["errors"] == 1
        assert crawl_status(tmp_path) == "partial"
        with archive_at(tmp_path) as archive:
            samples = archive.monitor.samples("mod")
        assert len(samples) == 1
        assert samples[0]["lang"] == "en" and samples[0]["status"] == 200
        assert body_mark in bytes(samples[0]["body"])
        assert samples[0]["url"].startswith(server.url + NEWS)
        # The walk did not end normally: its mark stays, so nothing is skipped next time.
        assert high_water(tmp_path, "mod") is None
        # The other agency is unaffected.
        other = result.target("mfa/en")
        assert other["errors"] == [] and other["new"] == 2 * PAGE
        assert_each_once(tmp_path, "mfa", "en", newest(mfa, 2 * PAGE))
        # The layout is back: the next crawl completes the walk.
        recovered = crawl(server, tmp_path, agencies=TWO)
    assert recovered.code == 0, recovered.output
    assert recovered.target("mod/en")["new"] == (2 - after) * PAGE
    assert_each_once(tmp_path, "mod", "en", newest(mod, 2 * PAGE))
    assert high_water(tmp_path, "mod") is not None


def test_layout_change_of_a_detail_answer(tmp_path: Path) -> None:
    site, _, mfa = two_agencies()
    site.faults.add(Fault("rename", rename=("body", "text"), agency="mod"))  # list: no bodies
    site.faults.add(Fault("html", path=NEWS + "/", agency="mod"))  # one detail: an HTML page
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, agencies=TWO)
    assert result.code == 1, result.output
    target = result.target("mod/en")
    assert failing_kinds(target) == ["layout_changed"]
    assert "news detail" in target["errors"][0]
    with archive_at(tmp_path) as archive:
        samples = archive.monitor.samples("mod")
    assert len(samples) == 1 and samples[0]["url"].startswith(server.url + NEWS + "/")
    assert high_water(tmp_path, "mod") is None
    assert_each_once(tmp_path, "mfa", "en", newest(mfa, 2 * PAGE))


# --- 6. rate limits and server errors ---------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(tmp_path: Path) -> None:
    site, mod, _ = two_agencies()
    site.faults.add(Fault("rate_limit", seconds=1, agency="mod", after=1))  # page 2
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, agencies=TWO)
    assert result.code == 0, result.output
    assert_each_once(tmp_path, "mod", "en", newest(mod, 2 * PAGE))
    limited = site.log.entries(path=NEWS, status=429)
    assert len(limited) == 1
    retried = [e for e in site.log.entries(path=NEWS, agency="mod")
               if e.query["page"] == "2" and e.status == 200]
    assert len(retried) == 1
    assert (retried[0].time - limited[0].time).total_seconds() >= 0.9  # Retry-After: 1


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_twice_then_ok_are_retried(tmp_path: Path, status: int) -> None:
    site, mod, mfa = two_agencies()
    site.faults.add(Fault("status", status=status, times=2, agency="mod"))
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, agencies=TWO)
    assert result.code == 0, result.output
    assert site.count(NEWS, status=status) == 2
    assert_each_once(tmp_path, "mod", "en", newest(mod, 2 * PAGE))
    assert_each_once(tmp_path, "mfa", "en", newest(mfa, 2 * PAGE))


BACKOFF_RE = re.compile(r"backoff: retry (\d+) of (\S+) in ([0-9.e+-]+) s \(([^)]*)\)")


def backoffs(result: Crawl, agency: str) -> list[tuple[int, float, str]]:
    """The waits the crawl logged before its retries of the agency's requests, in order."""
    return [(int(n), float(delay), why) for n, url, delay, why in
            BACKOFF_RE.findall(result.process.stderr) if f"projects=eq:{agency}&" in url]


def test_5xx_retries_wait_longer_each_time_up_to_the_cap(tmp_path: Path) -> None:
    site, mod, mfa = two_agencies()
    site.faults.add(Fault("status", status=500, times=3, agency="mod"))  # page 1, 3 times
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "-s", "GOVKZ_RETRY_BACKOFF_BASE=0.01",
                       "-s", "GOVKZ_RETRY_BACKOFF_MAX=0.03", agencies=TWO)
    assert result.code == 0, result.output
    assert_each_once(tmp_path, "mod", "en", newest(mod, 2 * PAGE))  # the items arrived
    assert_each_once(tmp_path, "mfa", "en", newest(mfa, 2 * PAGE))
    # The delays the middleware chose (logged), not wall-clock time: 0.01, 0.02, then capped.
    assert backoffs(result, "mod") == [(1, 0.01, "HTTP 500"), (2, 0.02, "HTTP 500"),
                                       (3, 0.03, "HTTP 500")]
    assert backoffs(result, "mfa") == []


def test_a_retry_after_on_a_503_is_honoured_capped(tmp_path: Path) -> None:
    site, mod, _ = two_agencies()
    site.faults.add(Fault("status", status=503, retry_after=30, agency="mod"))
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "-s", "GOVKZ_RETRY_BACKOFF_BASE=0.01",
                       "-s", "GOVKZ_RETRY_AFTER_MAX=0.05", agencies=TWO)
    assert result.code == 0, result.output
    assert_each_once(tmp_path, "mod", "en", newest(mod, 2 * PAGE))
    # Retry-After (30 s) rather than the backoff (0.01 s), cut to GOVKZ_RETRY_AFTER_MAX.
    assert backoffs(result, "mod") == [(1, 0.05, "HTTP 503, Retry-After")]


def test_server_error_every_time_fails_that_agency_only(tmp_path: Path) -> None:
    site, _, mfa = two_agencies()
    site.faults.add(Fault("status", status=500, times=None, agency="mod"))
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "-s", "RETRY_TIMES=1", agencies=TWO)
    assert result.code == 1, result.output
    assert list_requests(site, "mod") == 2  # the request and its one retry
    problems = result.target("mod/en")["problems"]
    assert [(p["kind"], p["message"]) for p in problems] == [
        ("http_error", "HTTP 500 (after retries)")]
    assert problems[0]["url"].startswith(server.url + NEWS)
    assert rows(tmp_path, "mod") == []
    assert result.target("mfa/en")["errors"] == []
    assert_each_once(tmp_path, "mfa", "en", newest(mfa, 2 * PAGE))
    assert crawl_status(tmp_path) == "partial"


def test_a_hung_request_times_out_and_fails_that_agency_only(tmp_path: Path) -> None:
    site, _, mfa = two_agencies()
    site.faults.add(Fault("hang", seconds=5, times=None, agency="mod"))
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "-s", "RETRY_TIMES=0", "-s", "DOWNLOAD_TIMEOUT=1",
                       agencies=TWO)
    assert result.code == 1, result.output
    errors = result.target("mod/en")["errors"]
    assert len(errors) == 1 and "timed out" in errors[0].lower(), errors
    assert_each_once(tmp_path, "mfa", "en", newest(mfa, 2 * PAGE))


def test_all_ok_exits_0(tmp_path: Path) -> None:
    site, mod, mfa = two_agencies(access="k6v2")
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "--access", "k6v2", agencies=TWO, langs=("ru", "en"))
    assert result.code == 0, result.output
    assert result.summary["totals"]["errors"] == 0
    assert crawl_status(tmp_path) == "ok"
    for agency, ids in (("mod", mod), ("mfa", mfa)):
        for lang in ("ru", "en"):
            assert_each_once(tmp_path, agency, lang, newest(ids, 2 * PAGE))


# --- 9. a crawl killed half-way ---------------------------------------------------------------


def integrity(data: Path) -> str:
    with archive_at(data) as archive:
        return archive.db.execute("PRAGMA integrity_check").fetchone()[0]


@pytest.mark.parametrize("first_walk", [True, False])
def test_sigkill_mid_walk_then_the_next_crawl_completes_it(
    tmp_path: Path, first_walk: bool
) -> None:
    """Killed while page 3 hangs: pages 1-2 are stored, the walk's mark has not moved, and the
    next crawl walks on past them to where the last completed walk ended."""
    site = MockSite(access="k6v1")
    old = fill(site, "mod", 30)
    depth = ("-s", "GOVKZ_BACKFILL_PAGES=4")
    with serve_in_thread(site) as server:
        if first_walk:
            wanted = newest(old, 4 * PAGE)
        else:  # a completed walk first, then 12 new items: the killed walk is a catch-up
            assert crawl(server, tmp_path, *depth).code == 0
            fresh = fill(site, "mod", 12, start=START + timedelta(days=2))
            wanted = newest(old, 4 * PAGE) | set(fresh)
        mark = high_water(tmp_path, "mod") if not first_walk else None
        site.faults.add(Fault("hang", seconds=30, agency="mod", after=2))  # page 3
        with killed_while_hung(site, server.url, tmp_path, *depth, where="page 3"):
            # Page 3 is only asked for after page 2 was parsed and its items handed to the
            # pipeline (which stores each at once); page 1's were stored well before.
            stored = len(rows(tmp_path, "mod", "en"))
            assert stored >= (PAGE if first_walk else 4 * PAGE + PAGE)
        assert integrity(tmp_path) == "ok"
        assert high_water(tmp_path, "mod") == mark  # a killed walk moves no mark
        kept = len(rows(tmp_path, "mod", "en"))
        again = crawl(server, tmp_path, *depth)
    assert again.code == 0, again.output
    assert_each_once(tmp_path, "mod", "en", wanted)
    target = again.target("mod/en")
    assert target["new"] == len(wanted) - kept and target["errors"] == []
    assert high_water(tmp_path, "mod") is not None and high_water(tmp_path, "mod") != mark
