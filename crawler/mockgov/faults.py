"""Faults the mock gov.kz can inject: declared, scoped, counted.

A fault is declared once and fires on the requests it matches, ``times`` times (None: always),
after skipping the first ``after`` matching requests:

    site.faults.add(Fault("status", status=500, times=2, agency="mod"))
    site.faults.add(Fault("rate_limit", seconds=3))                 # 429 + Retry-After: 3
    site.faults.add(Fault("hang", seconds=5, then="drop"))          # site.faults.release() ends it
    site.faults.add(Fault("switch_access", scheme="k6v2", after=10, path="/"))
    site.faults.add(Fault("latency", seconds=0.05, times=None, path="/"))

Kinds: status, rate_limit, html (a 200 HTML page on an API path), truncate (a valid prefix of the
body), rename (a JSON field renamed, default title -> name), envelope (the bare array wrapped in
{"content": [...]}, a plausible API redesign), hang (wait then answer or drop the connection),
latency (wait then answer; for benchmarks), switch_access (change the access scheme).
Waits use a shared threading.Event so a test (or server shutdown) can end every wait at once;
FaultSet.await_waiting(n) blocks until n requests are being held, so tests need no sleeps.
Dropping a connection needs the socket, which only serve_in_thread's server has: mounted in
twisted.web (serve.wsgi_resource) a "drop" becomes a 500.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

NEWS_PATH = "/api/v1/public/content-manager/news"
# A hang or a latency never waits longer than this, so a forgotten fault cannot wedge a test run.
MAX_WAIT = 60.0

REFUSALS = frozenset({"status", "rate_limit", "html"})
MANGLERS = frozenset({"truncate", "rename", "envelope"})
WAITS = frozenset({"hang", "latency"})
KINDS = REFUSALS | MANGLERS | WAITS | {"switch_access"}

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>503 Service Temporarily Unavailable</title></head>"
    b"<body><center><h1>Technical works</h1></center><hr><center>nginx</center></body></html>"
)


class DropConnection(Exception):
    """Raised by the app so the server closes the socket without sending any response."""


@dataclass(frozen=True)
class Target:
    """What a fault can be scoped by: one incoming request."""

    method: str
    path: str
    agency: str | None = None
    lang: str | None = None


@dataclass(eq=False)
class Fault:
    kind: str
    path: str = NEWS_PATH  # path prefix the fault applies to ("/" for every request)
    agency: str | None = None
    lang: str | None = None
    method: str | None = None
    times: int | None = 1  # how many times it fires; None: on every matching request
    after: int = 0  # matching requests to let through before it starts firing
    status: int = 500  # kind "status"
    seconds: float = 1.0  # hang / latency duration; Retry-After for "rate_limit"
    then: str = "answer"  # kind "hang": "answer" normally afterwards, or "drop" the connection
    scheme: str = "k6v1"  # kind "switch_access"
    rename: tuple[str, str] = ("title", "name")  # kind "rename"
    keep: float = 0.5  # kind "truncate": the fraction of the body kept
    seen: int = field(default=0, init=False)  # matching requests so far
    applied: int = field(default=0, init=False)  # times it fired

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(KINDS)}")
        if self.then not in ("answer", "drop"):
            raise ValueError(f"fault 'then' must be 'answer' or 'drop', not {self.then!r}")
        if self.times is not None and self.times < 0 or self.after < 0:
            raise ValueError("fault 'times' and 'after' must not be negative")
        if not 0 <= self.seconds <= MAX_WAIT:
            raise ValueError(f"fault 'seconds' must be within 0..{MAX_WAIT}")
        if not 0 <= self.keep < 1:
            raise ValueError("fault 'keep' must be within [0, 1)")

    def matches(self, target: Target) -> bool:
        return (
            target.path.startswith(self.path)
            and (self.agency is None or self.agency == target.agency)
            and (self.lang is None or self.lang == target.lang)
            and (self.method is None or self.method.upper() == target.method)
        )

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.applied >= self.times


class FaultSet:
    """The faults declared on one mock site. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._release = threading.Event()
        self._waiting = 0  # requests inside wait() now
        self._waiting_changed = threading.Condition(self._lock)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            self._faults.remove(fault)

    def clear(self) -> None:
        """Forget every fault and end the waits in progress."""
        with self._lock:
            self._faults.clear()
        self.release()

    def __iter__(self) -> Iterator[Fault]:  # a snapshot: safe while requests run
        with self._lock:
            return iter(list(self._faults))

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def take(self, target: Target) -> list[Fault]:
        """The faults firing on this request, in declaration order; counts them."""
        fired = []
        with self._lock:
            for fault in self._faults:
                if not fault.matches(target):
                    continue
                fault.seen += 1
                if fault.seen > fault.after and not fault.exhausted:
                    fault.applied += 1
                    fired.append(fault)
        return fired

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True if release() ended the wait early."""
        with self._lock:
            event = self._release
            self._waiting += 1
            self._waiting_changed.notify_all()
        try:
            return event.wait(min(seconds, MAX_WAIT))
        finally:
            with self._lock:
                self._waiting -= 1
                self._waiting_changed.notify_all()

    def await_waiting(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``count`` requests are held by a hang/latency (lets tests synchronize
        without sleeping); False on timeout."""
        with self._lock:
            return self._waiting_changed.wait_for(lambda: self._waiting >= count, timeout)

    @property
    def waiting(self) -> int:
        with self._lock:
            return self._waiting

    def release(self) -> None:
        """End every hang/latency wait in progress now (later waits wait again)."""
        with self._lock:
            event, self._release = self._release, threading.Event()
        event.set()


def refusal(fault: Fault) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """The response a refusing fault answers instead of the site, or None for other kinds."""
    if fault.kind == "status":
        body = {"error": "internalServerError" if fault.status >= 500 else "error",
                "status": fault.status, "message": "injected fault"}
        return fault.status, [("Content-Type", "application/json")], _json(body)
    if fault.kind == "rate_limit":
        body = {"error": "tooManyRequests", "status": 429, "message": "rate limit exceeded"}
        headers = [("Content-Type", "application/json"),
                   ("Retry-After", str(int(round(fault.seconds))))]
        return 429, headers, _json(body)
    if fault.kind == "html":
        return 200, [("Content-Type", "text/html; charset=utf-8")], HTML_PAGE
    return None


def mangle(fault: Fault, body: bytes) -> bytes:
    """A JSON body changed by a mangling fault (truncate, rename, envelope)."""
    if fault.kind == "truncate":
        return body[: int(len(body) * fault.keep)]
    try:
        data = json.loads(body)
    except ValueError:
        return body  # not JSON (already truncated, or an HTML page): nothing to rename
    if fault.kind == "rename":
        old, new = fault.rename
        rows = data if isinstance(data, list) else [data]
        for row in rows:
            if isinstance(row, dict) and old in row:
                row[new] = row.pop(old)
        return _json(data)
    if fault.kind == "envelope" and isinstance(data, list):
        return _json({"content": data, "totalElements": len(data)})
    return body


def _json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()
