"""The crawler against the mock: a quiet cycle (nothing new) per agency and site-wide: requests
÷ the minimum, wall ÷ the politeness floor, CPU per request beside a plain HTTP client fetching
the same URLs, and write transactions per page.

The mock runs in a thread of this process with a fixed latency per request; every crawl is a
child process (`python -m crawler.cli crawl`), so its CPU is resource.getrusage(RUSAGE_CHILDREN).
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from crawler.config import resolve
from crawler.items import LANGS
from crawler.mockgov import Fault, MockServer, MockSite, serve_in_thread
from tests.benchmarks.harness import Bench, Result, child_env, group, progress, side_by_side

NEWS = "/api/v1/public/content-manager/news"
HANDSHAKE = "/_/c/k6"  # the k6v1 and k6v2 handshakes (crawler/access.py)
ITEMS_PER_AGENCY = 5  # one page each: a quiet walk is one request per agency x language
TIMEOUT = 1800


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _help_has(flag: str) -> bool:
    done = subprocess.run([sys.executable, "-m", "crawler.cli", "crawl", "--help"],
                          capture_output=True, text=True, env=child_env(), timeout=120)
    return flag in done.stdout


class CrawlRig:
    """The mock, a data directory and the crawl command line."""

    def __init__(self, bench: Bench, name: str, server: MockServer, slugs: list[str]) -> None:
        self.bench, self.server, self.site = bench, server, server.site
        self.data = bench.dir(name)
        self.slugs = slugs
        c = bench.sizes.concurrency
        self.flags = ["--base-url", server.url, "--data", str(self.data), "--json",
                      "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0",
                      "-s", f"GOVKZ_CONCURRENCY={c}", "-s", f"CONCURRENT_REQUESTS={c}",
                      "-s", f"GOVKZ_AGENCIES_ENABLED={','.join(slugs)}",
                      "-s", "GOVKZ_PUBLISH_FEEDS=0"]
        # The project's own politeness (download delay, AutoThrottle, concurrency): nothing
        # but the site, the data and the agencies given.
        self.polite_flags = [*self.flags[:5], "-s", f"GOVKZ_AGENCIES_ENABLED={','.join(slugs)}",
                             "-s", "GOVKZ_PUBLISH_FEEDS=0"]

    def crawl(self, *extra: str, wrapper: list[str] | None = None,
              polite: bool = False) -> dict[str, Any]:
        """One crawl; what it cost, counted at the mock and by the kernel."""
        before, cpu = len(self.site.log), _cpu()
        start = time.perf_counter()
        flags = self.polite_flags if polite else self.flags
        argv = [sys.executable, "-m", *(wrapper or ["crawler.cli"]), "crawl", *flags, *extra]
        done = subprocess.run(argv, capture_output=True, text=True, env=child_env(),
                              timeout=TIMEOUT)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"crawl exit {done.returncode}: {_why(done)}")
        seen = self.site.log.entries()[before:]
        fetched = [e for e in seen if e.path != "/robots.txt"]
        span = (seen[-1].time - seen[0].time).total_seconds() if seen else 0.0
        return {"requests": len(fetched), "lists": sum(e.path == NEWS for e in fetched),
                "log": fetched, "cpu": _cpu() - cpu, "wall": wall,
                "span": span + self.bench.sizes.latency_ms / 1000,
                "robots": len(seen) - len(fetched),
                "handshakes": sum(e.path.endswith(HANDSHAKE) for e in fetched)}


def _median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def politeness_floor(run: dict[str, Any], latency_ms: int, concurrency: int) -> float:
    """requests x latency ÷ concurrency, in whole latencies (n requests, at most `concurrency`
    in flight, each a latency long, take ceil(n ÷ concurrency) latencies), plus a whole
    latency for each request nothing can overlap: robots.txt (the span starts with it, though
    it is not counted among the requests) and the access handshake (the news requests wait
    for its session)."""
    serial = run["robots"] + run["handshakes"]
    parallel = run["requests"] - run["handshakes"]
    return latency_ms / 1000 * (serial + math.ceil(parallel / concurrency))


def _why(done: subprocess.CompletedProcess[str]) -> str:
    """The first problem a failed crawl reported, in one line."""
    try:
        summary = json.loads(done.stdout)
        for target in summary.get("targets", []):
            for problem in target.get("problems") or ():
                return f"{target.get('target')}: {problem.get('kind')}: {problem.get('message')}"
    except ValueError:
        pass
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def baseline_fetch(bench: Bench, log: list[Any], server: MockServer,
                   *flags: str) -> dict[str, Any]:
    """A plain client fetching the requests of a crawl (same URLs, same languages): its CPU,
    and its span at the mock (first to last request, plus the last one's latency). `--scrapy`
    in `flags`: a bare Scrapy spider instead."""
    path = bench.dir("fetch") / "requests.json"
    requests = [[f"{server.url}{e.path}?{urlencode(e.query)}",
                 e.headers.get("accept-language", "ru")] for e in log if e.method == "GET"]
    path.write_text(json.dumps(requests))
    before = len(server.site.log)
    cpu = _cpu()
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.fetch_baseline", str(path),
                           str(bench.sizes.concurrency), *flags], capture_output=True, text=True,
                          env=child_env(), timeout=TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"baseline fetch failed: {done.stderr[-800:]}")
    client = json.loads(done.stdout)["client"]
    seen = server.site.log.entries()[before:]
    span = (seen[-1].time - seen[0].time).total_seconds() if seen else 0.0
    return {"cpu": _cpu() - cpu, "requests": len(requests), "client": client,
            "span": span + bench.sizes.latency_ms / 1000}


def _mock(bench: Bench) -> MockServer:
    site = MockSite.synthetic(bench.sizes.crawl_agencies, ITEMS_PER_AGENCY)
    site.faults.add(Fault("latency", path="/", times=None,
                          seconds=bench.sizes.latency_ms / 1000))
    # Persistent connections, as the web server in front of gov.kz keeps them (the crawler and
    # the plain client both reuse them): a fresh TCP connection per request is a cost of the
    # tests' one-request-per-connection mock, not of crawling the site.
    return serve_in_thread(site, keep_alive=True)


@group("crawl", ("quiet_requests", "quiet_wall", "crawl_cpu", "crawl_cpu_scrapy",
                 "quiet_transactions",
                 "sitewide_requests", "sitewide_wall", "quiet_wall_polite"))
def crawl(bench: Bench) -> Iterable[Result]:
    sizes = bench.sizes
    with _mock(bench) as server:
        slugs = [a.slug for a in server.site.agencies()]
        rig = CrawlRig(bench, "crawl", server, slugs)
        progress(f"backfilling {len(slugs)} agencies x {len(LANGS)} languages")
        rig.crawl()
        # The daemon's quiet cycle follows another quiet cycle: the first crawl after the
        # backfill records the page memos of the quiet first pages (crawler/page_memo.py) that
        # every later quiet crawl finds; measured from the second on, as the daemon runs.
        progress("the first quiet crawl (it records the page memos)")
        rig.crawl()
        minimum = len(slugs) * len(LANGS)
        quiet: list[dict[str, Any]] = []
        fetched: list[dict[str, float]] = []

        def project() -> float:
            quiet.append(rig.crawl())
            return quiet[-1]["cpu"] / max(1, quiet[-1]["requests"])

        def baseline() -> float:
            log = quiet[-1]["log"] if quiet else []
            fetched.append(baseline_fetch(bench, log, server))
            return fetched[-1]["cpu"] / max(1, fetched[-1]["requests"])

        # The project first: the baseline fetches what the last quiet crawl fetched.
        ours, theirs = side_by_side(project, baseline, sizes.heavy_repeats)
        last = quiet[-1]
        # Where the rest goes: a bare Scrapy spider fetching the same URLs is the share of the
        # crawler's CPU that is Scrapy's and Twisted's own request path, not the project's.
        bare = [baseline_fetch(bench, last["log"], server, "--scrapy")
                for _ in range(max(1, sizes.heavy_repeats))]
        scrapy_cpu = sorted(b["cpu"] / max(1, b["requests"]) for b in bare)[len(bare) // 2]
        yield Result("quiet_requests", last["requests"], minimum, "requests", target=1.0,
                     op="<=", note=f"per agency: {last['lists']} news lists + "
                     f"{last['requests'] - last['lists']} other (handshakes, ...; robots.txt not "
                     f"counted); minimum 1 per agency x language ({len(slugs)} x {len(LANGS)})")
        floor = politeness_floor(last, sizes.latency_ms, sizes.concurrency)
        span = sorted(q["span"] for q in quiet)[len(quiet) // 2]
        # The plain client's own span beside its own floor (its GETs only, all in parallel):
        # how near the floor any Python client gets at this latency on this machine.
        client = fetched[-1]
        client_floor = sizes.latency_ms / 1000 * client["requests"] / sizes.concurrency
        client_span = sorted(f["span"] for f in fetched)[len(fetched) // 2]
        yield Result("quiet_wall", span, floor, "s", target=1.2, note=(
            f"first to last request at the mock (robots.txt included), {sizes.latency_ms} ms "
            f"latency, concurrency {sizes.concurrency}; floor: robots.txt and the handshake one "
            f"latency each, the rest ÷ concurrency; process wall {last['wall']:.1f} s; "
            f"{client['client']} fetching the same GETs spans {client_span:.2f} s = "
            f"{client_span / client_floor:.2f} x its floor; a bare Scrapy spider spans "
            f"{_median(b['span'] for b in bare) / client_floor:.2f} x that floor"))
        yield Result("crawl_cpu", ours * 1000, theirs * 1000, "ms/request", target=3.0, note=(
            f"whole crawl process (interpreter start included) ÷ {fetched[-1]['client']} "
            "fetching the same URLs at the same concurrency"))
        yield Result("crawl_cpu_scrapy", ours * 1000, scrapy_cpu * 1000, "ms/request", note=(
            f"the crawl ÷ {bare[-1]['client']} fetching the same URLs (Scrapy's defaults, "
            f"interpreter start included): {scrapy_cpu * 1000:.2f} ms/request, "
            f"{scrapy_cpu / theirs:.2f} x {fetched[-1]['client']}; no target: what is "
            "Scrapy's own"))
        out = bench.dir("trace") / "sql.json"
        traced = rig.crawl(wrapper=["tests.benchmarks.sqltrace", str(out), "--"])
        counts = json.loads(out.read_text())
        transactions = counts["commits"] + counts["autocommit_writes"]
        yield Result("quiet_transactions", transactions, traced["lists"], "transactions",
                     target=1.0, note=f"write transactions ÷ list pages of a quiet re-crawl "
                     f"({counts['writes']} write statements)")
    yield from sitewide(bench)
    yield from polite(bench)


def polite(bench: Bench) -> Iterable[Result]:
    """A quiet re-crawl at the project's default politeness (its download delay, AutoThrottle
    and concurrency, as the daemon crawls gov.kz): wall ÷ the floor that politeness sets."""
    sizes = bench.sizes
    delay = resolve().crawl.download_delay
    with _mock(bench) as server:
        slugs = [a.slug for a in server.site.agencies()][: sizes.polite_agencies]
        rig = CrawlRig(bench, "crawl-polite", server, slugs)
        progress(f"polite: {len(slugs)} agencies x {len(LANGS)} languages, {delay} s apart")
        rig.crawl()  # the backfill, at full speed
        run = rig.crawl(polite=True)
    # Scrapy spaces every request to the host (robots.txt and the handshake too) by the
    # download delay on average (randomized ±50%), whatever the concurrency.
    spaced = run["robots"] + run["requests"]
    floor = max(0, spaced - 1) * max(delay, sizes.latency_ms / 1000) + sizes.latency_ms / 1000
    yield Result("quiet_wall_polite", run["span"], floor, "s", target=1.2, note=(
        f"{spaced} requests (robots.txt included) at the default download delay {delay} s "
        f"(AutoThrottle on); floor: one delay between requests; process wall "
        f"{run['wall']:.1f} s"))


def sitewide(bench: Bench) -> Iterable[Result]:
    if not _help_has("--site-wide"):
        for name in ("sitewide_requests", "sitewide_wall"):
            yield Result(name, None, None, "", note="n/a: `crawl --site-wide` does not exist")
        return
    sizes = bench.sizes
    with _mock(bench) as server:
        slugs = [a.slug for a in server.site.agencies()]
        rig = CrawlRig(bench, "crawl-sitewide", server, slugs)
        progress("site-wide backfill")
        rig.crawl("--site-wide", "--backfill", "200")
        runs = [rig.crawl("--site-wide") for _ in range(max(1, min(3, sizes.heavy_repeats)))]
        last = runs[-1]
        yield Result("sitewide_requests", last["requests"], len(LANGS), "requests", target=1.0,
                     note="site-wide: minimum 1 per language (robots.txt not counted)")
        floor = politeness_floor(last, sizes.latency_ms, sizes.concurrency)
        span = sorted(r["span"] for r in runs)[len(runs) // 2]
        yield Result("sitewide_wall", span, floor, "s", target=1.2,
                     note=f"process wall {last['wall']:.1f} s")
