"""`govkz-monitor doctor` against the mock: it names the path that works for each access scheme
the mock has, says "the network" when nothing answers, and goes through HTTP(S)_PROXY."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli
from net_helpers import closed_port

from crawler.doctor import BLOCKED, NETWORK, OK, REFUSED, SHAPE, Check, failure_line, judge
from crawler.doctor import overall as overall_verdict
from crawler.extract.api import parse_news_list
from crawler.mockgov import Fault, MockSite, serve_in_thread
from crawler.mockgov.faults import Dialect, refuse_everything

FAST = ("-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0")
NEWS = "/api/v1/public/content-manager/news"
HEADER = ("k6v1", "k6v2", "token", "plain")


def site_with(scheme: str) -> MockSite:
    """A mock whose only way in is `scheme`: a header strategy, "graphql" (the API refuses
    every strategy) or "rss" (GraphQL refuses news too)."""
    site = MockSite(access=scheme if scheme in HEADER else "plain",
                    dialect=Dialect(graphql_news=scheme != "rss"))
    for n in range(7):
        site.publish("mod", title=f"Item {n}", body=f"<p>Body {n}</p>", langs=["ru"])
    if scheme not in HEADER:
        site.faults.add(Fault("status", status=403, times=None))  # NEWS: list and detail
    return site


def doctor(url: str, data: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    process = run_cli("doctor", "--base-url", url, "--agency", "mod", "--lang", "ru",
                      "--data", str(data), "--json", *FAST, *extra, env=env, timeout=120)
    assert process.stdout.strip().startswith("{"), process.stderr
    return process, json.loads(process.stdout)


def rows(report: dict) -> dict[str, dict]:
    return {check["path"]: check for check in report["checks"]}


# --- the paths that work, per scheme ------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["k6v1", "k6v2", "token", "plain", "graphql", "rss"])
def test_doctor_names_the_working_path(tmp_path: Path, scheme: str) -> None:
    site = site_with(scheme)
    with serve_in_thread(site) as server:
        process, report = doctor(server.url, tmp_path)
    assert process.returncode == 0, process.stdout
    checks = rows(report)
    assert report["ok"] is True
    working = [path for path, c in checks.items() if c["news"] and c["outcome"] == OK]
    # A site of the plain era lets every header strategy in (extra headers are harmless).
    let_in = list(HEADER) if scheme == "plain" else [scheme] if scheme in HEADER else []
    expected = [*let_in, *(["site-wide"] if let_in else []),
                *(["graphql"] if scheme != "rss" else []), "rss"]
    assert working == expected
    assert report["verdict"].startswith(f"news reachable: {expected[0]} works")
    for strategy in HEADER:
        if strategy not in let_in:
            assert checks[strategy]["outcome"] == REFUSED, checks[strategy]
    first = checks[expected[0]]
    assert first["status"] == 200 and first["items"] > 0 and first["newest"]
    # The detail of the newest id is asked for with the session that worked.
    assert checks["detail"]["outcome"] == (OK if scheme in HEADER else REFUSED)
    if scheme in HEADER:
        assert checks["page base"]["verdict"] == "pages from 1"


def test_doctor_table_and_page_base_zero(tmp_path: Path) -> None:
    site = MockSite(access="k6v2", dialect=Dialect(page_base=0))
    for n in range(3):
        site.publish("mod", title=f"Item {n}", body="<p>b</p>", langs=["ru"])
    with serve_in_thread(site) as server:
        process = run_cli("doctor", "--base-url", server.url, "--agency", "mod",
                          "--data", str(tmp_path), *FAST, timeout=120)
    assert process.returncode == 0, process.stderr
    lines = process.stdout.splitlines()
    assert lines[1].split() == ["path", "HTTP", "items", "newest", "ms", "verdict"]
    assert any(line.startswith("page base") and line.endswith("pages from 0") for line in lines)
    assert lines[-1] == "verdict: news reachable: k6v2 works; also site-wide, graphql, rss"


# --- nothing answers ----------------------------------------------------------------------------


@contextmanager
def refusing_site() -> Iterator[str]:
    site = MockSite()
    site.faults.add(refuse_everything())
    with serve_in_thread(site) as server:
        yield server.url


@contextmanager
def refusing_port() -> Iterator[str]:
    with closed_port() as port:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(("network", "why"), [(refusing_site, "connection reset or closed"),
                                              (refusing_port, "connection refused")])
def test_doctor_blames_the_network_when_nothing_answers(tmp_path: Path, network: Any,
                                                        why: str) -> None:
    with network() as url:
        process, report = doctor(url, tmp_path)
    assert process.returncode == 1
    assert report["ok"] is False
    assert why in report["verdict"]
    assert "gov.kz refuses some networks" in report["verdict"]
    assert "HTTPS_PROXY" in report["verdict"]
    tried = [c for c in report["checks"] if c["outcome"] != "skipped"]
    assert len(tried) == 8 and all(c["outcome"] == NETWORK for c in tried)


def test_doctor_exits_1_when_every_path_is_refused(tmp_path: Path) -> None:
    site = site_with("rss")
    site.faults.add(Fault("status", path="/api/v1/public/rss/", status=403, times=None))
    with serve_in_thread(site) as server:
        process, report = doctor(server.url, tmp_path)
    assert process.returncode == 1
    assert report["verdict"] == ("every access path was refused: gov.kz changed its access "
                                 "control again")


# --- the proxy ----------------------------------------------------------------------------------


@contextmanager
def forwarding_proxy(upstream: str) -> Iterator[tuple[str, list[str]]]:
    """An HTTP proxy on 127.0.0.1 that records each request line (absolute URI, as a client
    speaking to a proxy sends it) and forwards the request to `upstream`."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            seen.append(f"{self.command} {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            path = "/" + self.path.split("/", 3)[3] if self.path.startswith("http") else self.path
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "proxy-connection", "connection")}
            request = urllib.request.Request(upstream + path, data=body, headers=headers,
                                             method=self.command)
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    status, payload, answer_headers = answer.status, answer.read(), answer.headers
            except urllib.error.HTTPError as error:
                status, payload, answer_headers = error.code, error.read(), error.headers
            self.send_response(status)
            for name, value in answer_headers.items():
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _forward  # noqa: N815 (http.server's names)

        def log_message(self, fmt: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_doctor_goes_through_the_proxy_of_the_environment(tmp_path: Path, variable: str) -> None:
    site = site_with("token")
    # A name that resolves nowhere: only a proxy can reach it.
    unreachable = "http://gov.kz.invalid"
    with serve_in_thread(site) as server, forwarding_proxy(server.url) as (proxy, seen):
        env = {variable: proxy, "NO_PROXY": "", "no_proxy": ""}
        process, report = doctor(unreachable, tmp_path, env=env)
    assert process.returncode == 0, report
    assert report["verdict"].startswith("news reachable: token works")
    assert f"GET {unreachable}{NEWS}?sort-by=created_date:DESC&projects=eq:mod&page=1&size=5" \
        in seen
    assert f"POST {unreachable}/graphql" in seen
    assert site.count(NEWS, method="GET") >= 2


# --- judging (pure) -----------------------------------------------------------------------------


def _judge(status: int, body: bytes, content_type: str = "application/json") -> Check:
    check = Check("plain", "u")
    judge(check, status, content_type, body,
          lambda b: parse_news_list(b, agency="mod", lang="ru"))
    return check


@pytest.mark.parametrize(("status", "body", "content_type", "outcome", "verdict"), [
    (400, b'{"error":"notAllowed"}', "application/json", REFUSED, "refused (notAllowed)"),
    (403, b"", "text/plain", REFUSED, "refused (HTTP 403)"),
    (200, b"<!DOCTYPE html><html><body>Please solve the captcha</body></html>", "text/html",
     BLOCKED, "block page: a captcha"),
    (200, b"<html><body>Technical works</body></html>", "text/html", BLOCKED,
     "block page: HTML where JSON was expected"),
    (200, b'{"content": []}', "application/json", SHAPE, "shape changed: news list: "),
    (200, b"[]", "application/json", OK, "works, but no items"),
    (502, b"bad gateway", "text/plain", "http", "HTTP 502"),
])
def test_judge(status: int, body: bytes, content_type: str, outcome: str, verdict: str) -> None:
    check = _judge(status, body, content_type)
    assert check.outcome == outcome
    assert check.verdict.startswith(verdict)


def test_judge_counts_items_and_the_newest_date() -> None:
    body = json.dumps([
        {"id": 7, "title": "a", "created_date": "2026-05-01T09:00:00.000+05:00", "body": "x"},
        {"id": 9, "title": "b", "created_date": "2026-05-02T09:00:00.000+05:00", "body": "y"},
    ]).encode()
    check = _judge(200, body)
    assert (check.outcome, check.items, check.newest) == (OK, 2, "2026-05-02T09:00:00+05:00")
    assert check.newest_id == 9


@pytest.mark.parametrize(("outcomes", "start"), [
    ([NETWORK, NETWORK], "no answer on any path"),
    ([NETWORK, BLOCKED], "a block page answered"),
    ([REFUSED, SHAPE], "gov.kz answered in an unknown shape (b)"),
    ([REFUSED, REFUSED], "every access path was refused"),
    ([REFUSED, OK], "news reachable: b works"),
])
def test_overall_verdict(outcomes: list[str], start: str) -> None:
    checks = [Check(name, "u", outcome=outcome, verdict=outcome)
              for name, outcome in zip("ab", outcomes, strict=True)]
    assert overall_verdict(checks).startswith(start)


@pytest.mark.parametrize(("exc", "line"), [
    (ConnectionRefusedError("Connection was refused by other side"), "connection refused"),
    (TimeoutError("took longer than 20 seconds"), "timed out"),
    (OSError("DNS lookup failed"), "host name not resolved"),
    (OSError("Connection was closed cleanly"), "connection reset or closed without an answer"),
])
def test_failure_line(exc: BaseException, line: str) -> None:
    assert failure_line(exc) == line
