"""The daemon picks its mode: site-wide (one stream per language plus a daily audit of every
agency) when the site-wide list works, per-agency when it does not, and says which and why.

The daemon's decisions are driven directly with the fake reactor and children of
tests/test_daemon.py (the test plays the probe child and the crawl children); the audit spread
is a pure function; one end-to-end test runs `govkz-monitor run` against the mock.
"""

# ruff: noqa: F811 - the `make` fixture, imported, is every test's parameter
from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT

# `make` is tests/test_daemon.py's fixture (a fake reactor and children): tests name it.
from test_daemon import STEADY, T, make, summary, target  # noqa: F401

from crawler.agencies import AgencyRegistry
from crawler.mockgov import MockSite, serve_in_thread
from crawler.mockgov.faults import refuse_site_wide
from crawler.store_monitor import Target
from crawler.sync import SITE_WIDE
from crawler.timeutil import ALMATY
from scheduler import audit
from scheduler.daemon import AUDIT_GAP, BATCH_WINDOW
from scheduler.mode import PER_AGENCY_MODE, SITE_WIDE_MODE, configured, from_probe
from scheduler.provider import SITE_WIDE_NAME, ArchiveStatus
from scheduler.status_page import overview_json

AGENCIES = ["mod/en", "mfa/en", "economy/en"]
STEADY_START = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
WORKS = {"works": True, "reason": "the site-wide list answers through the news API", "items": 1}
REFUSED = {"works": False, "reason": "the site-wide list failed: HTTP 400", "items": 0}


# --- the decision (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(("output", "code", "mode", "reason"), [
    (json.dumps(WORKS), 0, SITE_WIDE_MODE, "probe: " + WORKS["reason"]),
    (json.dumps(REFUSED), 0, PER_AGENCY_MODE, "probe: the site-wide list failed: HTTP 400"),
    ("", 1, PER_AGENCY_MODE, "the site-wide probe gave no answer (exit code 1)"),
    ("Traceback (most recent call last):", 1, PER_AGENCY_MODE,
     "the site-wide probe gave no answer (exit code 1)"),
    (json.dumps({"works": "yes"}), 0, PER_AGENCY_MODE,
     "the site-wide probe gave no answer (exit code 0)"),
    (json.dumps({"works": False, "reason": "a\nb"}), 0, PER_AGENCY_MODE, "probe: a b"),
])
def test_the_probe_output_decides_the_mode(output: str, code: int, mode: str,
                                           reason: str) -> None:
    decided = from_probe(output, exit_code=code)
    assert (decided.name, decided.reason) == (mode, reason)


@pytest.mark.parametrize(("setting", "mode"), [
    ("site-wide", SITE_WIDE_MODE), ("per-agency", PER_AGENCY_MODE), ("auto", None)])
def test_the_configuration_can_force_the_mode(setting: str, mode: str | None) -> None:
    forced = configured(setting)
    assert (forced.name if forced else None) == mode


# --- the audit spread (pure) --------------------------------------------------------------------


@pytest.mark.parametrize(("count", "period_h", "gap_s"), [
    (1, 24, 60), (3, 24, 60), (38 * 3, 24, 60), (3000 * 3, 24, 60), (2000, 1, 60), (7, 24, 0),
])
def test_audits_cover_every_target_once_per_period_never_many_at_once(
        count: int, period_h: int, gap_s: int) -> None:
    targets = [Target(f"agency-{n:04d}", ("ru", "kk", "en")[n % 3]) for n in range(count)]
    start = STEADY_START
    period, gap = timedelta(hours=period_h), timedelta(seconds=gap_s)
    slots = audit.spread(targets, start, period, min_gap=gap)
    assert set(slots) == set(targets)  # each enabled target exactly once (a dict: once)
    assert all(start <= when < start + period for when in slots.values())
    at_once = Counter(slots.values())
    bound = audit.per_slot(count, period, gap)
    assert max(at_once.values()) <= bound
    # The bound is as low as the period allows: ceil(n / the number of gaps that fit).
    fits = math.floor(period / gap) if gap else count
    assert bound == math.ceil(count / min(count, fits))
    times = sorted(at_once)
    assert all(b - a >= gap for a, b in zip(times, times[1:], strict=False))


# --- the daemon ---------------------------------------------------------------------------------


def probe(h: Any, answer: Any, **exit: Any) -> Any:
    """Let the daemon start its probe child and answer it."""
    h.daemon.kick()
    child = h.reactor.children[-1]
    assert child.args[child.args.index("-m") + 1] == "crawler.sitewide_probe"
    assert child.args[-2:] == ["--lang", "en"]
    assert child.targets == []
    out = json.dumps(answer).encode() if isinstance(answer, dict) else answer
    child.exit(stdout=out, **exit)
    h.reactor.advance(0)
    return child


def test_with_the_site_wide_list_the_daemon_crawls_one_stream_and_audits_the_agencies(
        make: Any) -> None:
    h = make(AGENCIES, mode="auto", plan=False)
    assert h.daemon.probe_due
    probe(h, WORKS)
    d = h.daemon
    assert (d.mode, d.mode_reason) == (SITE_WIDE_MODE, "probe: " + WORKS["reason"])
    stream = Target(SITE_WIDE, "en")
    assert list(d.states) == [stream, *[T(k) for k in AGENCIES]]
    assert set(h.jobs.jobs) == {f"crawl:{t.key}" for t in d.states}
    # The stream first; the audits spread over a day, one per slot.
    audits = sorted(d.states[T(k)].next_crawl for k in AGENCIES)
    assert audits[0] == h.now and audits[1] - audits[0] == timedelta(hours=8)
    assert d.states[stream].next_crawl == h.now

    d.enqueue(stream)  # its job fired
    h.reactor.advance(0)
    child = h.reactor.children[-1]
    # The first audit slot is due now too: it joins, after the stream; the others are hours
    # away.
    assert child.targets == ["*/en", AGENCIES[0]]
    h.advance(1)
    child.exit(summary(*[target(key, new=1, requests=1) for key in child.targets]))
    h.reactor.advance(0)
    row = h.row("*/en")
    assert row["consecutive_failures"] == 0 and row["last_success"] is not None
    # A stream comes round on the adaptive interval; an audit after audit_interval.
    assert d.states[stream].next_crawl - h.now <= timedelta(seconds=STEADY.max_interval)
    audited = T(child.targets[1])
    assert d.states[audited].next_crawl - h.now == timedelta(
        seconds=d.config.schedule.audit_interval)


def test_without_the_site_wide_list_the_daemon_crawls_per_agency(make: Any) -> None:
    h = make(AGENCIES, mode="auto", plan=False)
    probe(h, REFUSED)
    d = h.daemon
    assert (d.mode, d.mode_reason) == (PER_AGENCY_MODE, "probe: " + REFUSED["reason"])
    assert list(d.states) == [T(k) for k in AGENCIES]
    assert not any(t.agency == SITE_WIDE for t in d.states)
    # A probe that says nothing (it crashed) is per-agency mode too, with the reason.
    h2 = make(["mod/en"], mode="auto", plan=False)
    probe(h2, b"", stderr=b"ImportError: no module named scrapy\n", code=1)
    assert h2.daemon.mode == PER_AGENCY_MODE
    assert "ImportError" in h2.daemon.mode_reason


def test_status_pages_say_which_mode_and_why_and_show_the_stream(make: Any,
                                                                 tmp_path: Path) -> None:
    h = make(AGENCIES, mode="auto", plan=False)
    probe(h, WORKS)
    provider = ArchiveStatus(h.daemon.archive, AgencyRegistry([]), tmp_path / "feeds",
                             h.daemon.targets, daemon=h.daemon)
    overview = provider.overview()
    data = overview_json(overview, h.now)
    assert (data["mode"], data["mode_reason"]) == (SITE_WIDE_MODE, h.daemon.mode_reason)
    rows = {a.slug: a for a in provider.agencies_status()}
    assert rows[SITE_WIDE].name == SITE_WIDE_NAME and rows[SITE_WIDE].press == []
    assert rows[SITE_WIDE].langs == ["en"]
    assert set(rows) == {SITE_WIDE, "mod", "mfa", "economy"}


def test_a_broken_stream_is_probed_again_and_the_daemon_falls_back(make: Any) -> None:
    h = make(AGENCIES, mode="auto", plan=False)
    probe(h, WORKS)
    stream = Target(SITE_WIDE, "en")
    for failures in range(1, STEADY.failure_threshold + 1):
        h.advance(STEADY.max_interval)  # past any retry wait
        h.daemon.enqueue(stream)
        h.reactor.advance(0)
        child = h.reactor.children[-1]
        assert child.targets[0] == "*/en"  # the stream goes first
        h.advance(1)
        child.exit(summary(*[target(k, problems=[("http_error", "HTTP 400")])
                             if k == "*/en" else target(k) for k in child.targets]))
        h.reactor.advance(0)
        assert h.row("*/en")["consecutive_failures"] == failures
    # The stream failed failure_threshold times in a row: the probe runs again, at once.
    last = h.reactor.children[-1]
    assert last.args[last.args.index("-m") + 1] == "crawler.sitewide_probe"
    last.exit(stdout=json.dumps(REFUSED).encode())
    h.reactor.advance(0)
    assert h.daemon.mode == PER_AGENCY_MODE
    assert "crawl:*/en" not in h.jobs.jobs
    assert set(h.daemon.states) == {T(k) for k in AGENCIES}
    assert [i["agency"] for i in h.daemon.archive.monitor.incidents()
            if i["kind"] == "failing"] == ["*/en"]  # the stream's failures are an incident


def test_a_forced_mode_never_probes(make: Any) -> None:
    h = make(AGENCIES, mode="site-wide")
    assert not h.daemon.probe_due
    assert Target(SITE_WIDE, "en") in h.daemon.states
    h.daemon.request_probe()
    assert not h.daemon.probe_due
    assert AUDIT_GAP > BATCH_WINDOW  # two audit slots never share a batch


# --- end to end: `govkz-monitor run` against the mock ---------------------------------------------

DEADLINE = 60.0


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"govkz_{name}{{") and line.split("}")[0].split("{")[1] == want:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _get(port: int, path: str) -> bytes:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def _until(proc: subprocess.Popen[bytes], log: Path, check: Any, what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while True:
        result = check()
        if result:
            return result
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no {what}; the daemon's log:\n{log.read_text()[-4000:]}")
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass


@pytest.mark.parametrize("refused", [False, True], ids=["site-wide", "per-agency"])
def test_run_chooses_its_mode_and_a_quiet_stream_costs_one_request_per_language(
        tmp_path: Path, refused: bool) -> None:
    site = MockSite(access="k6v1")
    for slug in ("mod", "mfa"):
        site.add_agency(slug, names={"en": slug.upper(), "ru": slug.upper()})
        # Whole seconds: a walk's mark keeps seconds (an item newer by a fraction of one would
        # look unreached, and the walk would ask one more page).
        site.publish(slug, title={"en": f"{slug} news", "ru": f"{slug} новость"},
                     body={"en": "<p>x</p>", "ru": "<p>x</p>"},
                     created=datetime(2026, 11, 1, 9, 0, tzinfo=ALMATY))
    if refused:
        site.faults.add(refuse_site_wide())
    with serve_in_thread(site) as mock:
        config = tmp_path / "govkz-monitor.toml"
        config.write_text(f"""
[crawl]
base_url = "{mock.url}"
langs = ["en", "ru"]
download_delay = 0.0

[agencies]
enabled = ["mod", "mfa"]

[schedule]
min_interval = 1
max_interval = 2
jitter = 0
crawl_timeout = 60

[server]
port = 0
""", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVKZ_")}
        env["PYTHONPATH"] = str(ROOT)
        log = tmp_path / "daemon.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "crawler.cli", "--config", str(config), "run",
                 "--data", str(tmp_path / "data"), "-s", "AUTOTHROTTLE_ENABLED=0"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            found = _until(proc, log, lambda: re.search(
                r"serving feeds on http://127\.0\.0\.1:(\d+)/", log.read_text()), "server")
            port = int(found.group(1))
            expected = PER_AGENCY_MODE if refused else SITE_WIDE_MODE

            def summary_now() -> dict[str, Any] | None:
                data = json.loads(_get(port, "/status.json"))["summary"]
                probed = data["mode_reason"].startswith("probe: ")
                return data if probed and data["mode"] == expected else None

            status = _until(proc, log, summary_now, f"{expected} mode")
            assert "HTTP 400" in status["mode_reason"] if refused else "names each item" in \
                status["mode_reason"]
            assert f"{expected} mode (" in log.read_text()
            # Both agencies' items reach their feeds, through the stream or their own walks.
            _until(proc, log, lambda: all(
                f"<title>{slug} news</title>".encode() in _get(port, f"/feeds/{slug}/en.atom")
                for slug in ("mod", "mfa")),
                "items in the feeds")
            if refused:
                assert site.count("/api/v1/public/content-manager/news", agency="mod",
                                  lang="en") >= 1
                return
            # Quiet cycles: each crawl of a stream costs one list request for all of gov.kz.
            # (The first walks, two pages deep, were recorded once both streams count a crawl.)
            metrics = _until(proc, log, lambda: (lambda text: text if _metric(
                text, "crawls_total", agency="*", outcome="ok") >= 2 else None)(
                _get(port, "/metrics").decode()), "the first stream walks")
            crawls0 = _metric(metrics, "crawls_total", agency="*", outcome="ok")
            requests0 = _metric(metrics, "crawl_requests_total", agency="*")

            def more_crawls() -> str | None:
                text = _get(port, "/metrics").decode()
                return text if _metric(text, "crawls_total", agency="*",
                                       outcome="ok") >= crawls0 + 4 else None

            metrics = _until(proc, log, more_crawls, "quiet stream cycles")
            crawls = _metric(metrics, "crawls_total", agency="*", outcome="ok") - crawls0
            requests = _metric(metrics, "crawl_requests_total", agency="*") - requests0
            assert crawls >= 4 and requests == crawls
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
