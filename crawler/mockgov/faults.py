"""Faults the mock gov.kz can inject: declared, scoped, counted.

A fault is declared once and fires on the requests it matches, ``times`` times (None: always),
after skipping the first ``after`` matching requests:

    site.faults.add(Fault("status", status=500, times=2, agency="mod"))
    site.faults.add(Fault("status", status=503, retry_after=30))   # 503 + Retry-After: 30
    site.faults.add(Fault("rate_limit", seconds=3))                 # 429 + Retry-After: 3
    site.faults.add(Fault("hang", seconds=5, then="drop"))          # site.faults.release() ends it
    site.faults.add(Fault("switch_access", scheme="k6v2", after=10, path="/"))
    site.faults.add(Fault("latency", seconds=0.05, times=None, path="/"))
    site.faults.add(Fault("poison", agency="mod", lang="en", poison=("no_id", "bad_id")))
    site.faults.add(Fault("poison", path=RSS_PATH, agency="mod", poison=("rss_bad_char",)))

Kinds: status, rate_limit, html (a 200 HTML page on an API path), truncate (a valid prefix of the
body), rename (a JSON field renamed, default title -> name), envelope (the bare array wrapped in
{"content": [...]}, a plausible API redesign), hang (wait then answer or drop the connection),
latency (wait then answer; for benchmarks), switch_access (change the access scheme), poison
(hostile elements among the good ones of a page, below).

Poison: ``poison`` names the elements to inject (empty: every one that fits the answer). Into a
200 news-list page (a JSON array with at least one item), right after its first item, in this
order (each new element gets a fresh id from POISON_FIRST_ID up, never a real item's id):

    number          the bare JSON number 1
    no_id           an item object without "id"
    bad_id          an item with "id": "abc"
    control_char    a good item whose body holds U+0007 (BEL; JSON "\\u0007")
    lone_surrogate  a good item whose title holds a lone surrogate, written as the escape \\ud800
    far_date        a good item dated "9999-12-31T23:59:59-12:00" (past year 9999 in UTC)
    duplicate       a copy of the page's first item, same id, appended at the end of the page

Into a 200 RSS answer (RSS_PATH/{slug}/news/{lang}):

    rss_bad_char    a raw 0x0b byte (not allowed in XML 1.0) inside the first item's <title>

The "good" poison items are copies of the page's first item (same fields, date and projects)
with their own id, slug "poison-<name>", and a title naming the poison. Every element injected
is appended to ``fault.injected`` as (name, id) (id None for number and no_id, "abc" for
bad_id), so a test can look for each. A poison counts as fired (``applied``) only when it injected
something: a refused, failed or empty (``[]``) page is left alone, and the end of a list stays
the end. A poison on the default path (NEWS_PATH, a prefix) leaves detail answers alone too.

A network that refuses everything (as gov.kz does from some cloud networks): ``refuse_everything()``
is a fault closing every connection before any answer (a reset, to the client).
``site_wide=True`` scopes a fault to the news list asked without ``projects=`` (the site-wide
list); ``refuse_site_wide()`` answers it 400 on every request while agencies' lists still work.

Not faults but the site's dialect (``Dialect``, ``MockSite.dialect``): the first page number of
the list and of GraphQL (``page_base`` 0 or 1), the code of Kazakh (``kk_code`` "kk" or "kz"),
and whether GraphQL answers ``news`` at all (``graphql_news``).

Waits use a shared threading.Event so a test (or server shutdown) can end every wait at once;
FaultSet.await_waiting(n) blocks until n requests are being held, so tests need no sleeps.
Dropping a connection needs the socket, which only serve_in_thread's server has: mounted in
twisted.web (serve.wsgi_resource) a "drop" becomes a 500.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

NEWS_PATH = "/api/v1/public/content-manager/news"
RSS_PATH = "/api/v1/public/rss/"
# Ids of injected poison elements: far above any id the mock (or gov.kz, ~1.3 M) hands out.
POISON_FIRST_ID = 1_900_000_000
POISON_JSON = ("number", "no_id", "bad_id", "control_char", "lone_surrogate", "far_date",
               "duplicate")
POISON_RSS = ("rss_bad_char",)
POISONS = POISON_JSON + POISON_RSS
FAR_DATE = "9999-12-31T23:59:59-12:00"
# A hang or a latency never waits longer than this, so a forgotten fault cannot wedge a test run.
MAX_WAIT = 60.0

REFUSALS = frozenset({"status", "rate_limit", "html"})
MANGLERS = frozenset({"truncate", "rename", "envelope"})
WAITS = frozenset({"hang", "latency"})
KINDS = REFUSALS | MANGLERS | WAITS | {"switch_access", "poison"}

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>503 Service Temporarily Unavailable</title></head>"
    b"<body><center><h1>Technical works</h1></center><hr><center>nginx</center></body></html>"
)


@dataclass(frozen=True)
class Dialect:
    """How the mock site spells paging and languages, and whether GraphQL serves news.

    ``page_base`` 0: page=0 (``_page: 0``) is the newest page, page=1 the second, and a
    negative page is a 400. ``kk_code`` "kz": Kazakh is asked for as "kz" (Accept-Language,
    ``_lang``); "kk" is then an unknown language, which gov.kz answers as it answers any
    unknown one, in Russian (the default language): the answer is a valid list of the Russian
    texts, so only a client that compares languages notices. ``graphql_news`` False: the
    ``news`` query answers only a GraphQL error saying it is notAllowed; ``projectdetails``
    still answers.
    """

    page_base: int = 1
    kk_code: str = "kk"
    graphql_news: bool = True

    def __post_init__(self) -> None:
        if self.page_base not in (0, 1):
            raise ValueError(f"page_base must be 0 or 1, not {self.page_base!r}")
        if self.kk_code not in ("kk", "kz"):
            raise ValueError(f"kk_code must be 'kk' or 'kz', not {self.kk_code!r}")

    def language(self, code: str, default: str = "ru") -> str:
        """The language a request's code names (one of LANGS), or ``default`` when the site
        does not know the code."""
        code = code.strip().lower()
        if code == self.kk_code:
            return "kk"
        return code if code in ("ru", "en") else default


def refuse_everything() -> Fault:
    """A fault that closes every connection at once, without an answer: a network the site
    refuses (clients see a connection reset or lost)."""
    return Fault("hang", path="/", times=None, seconds=0, then="drop")


def refuse_site_wide() -> Fault:
    """A fault answering every news list asked without projects= with a 400 (not a refusal
    of access: a site whose list needs an agency filter); agencies' lists still answer."""
    return Fault("status", status=400, times=None, site_wide=True)


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
    retry_after: int | None = None  # kind "status": also send Retry-After (a 503 in maintenance)
    seconds: float = 1.0  # hang / latency duration; Retry-After for "rate_limit"
    then: str = "answer"  # kind "hang": "answer" normally afterwards, or "drop" the connection
    scheme: str = "k6v1"  # kind "switch_access"
    rename: tuple[str, str] = ("title", "name")  # kind "rename"
    keep: float = 0.5  # kind "truncate": the fraction of the body kept
    poison: tuple[str, ...] = ()  # kind "poison": the elements to inject (empty: all that fit)
    # Only the news list asked without projects= (the site-wide list): refuse_site_wide().
    site_wide: bool = False
    seen: int = field(default=0, init=False)  # matching requests so far
    applied: int = field(default=0, init=False)  # times it fired
    # kind "poison": (name, id) of every element injected, in order
    injected: list[tuple[str, object]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(KINDS)}")
        if self.then not in ("answer", "drop"):
            raise ValueError(f"fault 'then' must be 'answer' or 'drop', not {self.then!r}")
        if self.times is not None and self.times < 0 or self.after < 0:
            raise ValueError("fault 'times' and 'after' must not be negative")
        if not 0 <= self.seconds <= MAX_WAIT:
            raise ValueError(f"fault 'seconds' must be within 0..{MAX_WAIT}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("fault 'retry_after' must not be negative")
        if not 0 <= self.keep < 1:
            raise ValueError("fault 'keep' must be within [0, 1)")
        if isinstance(self.poison, str):  # poison="no_id" would otherwise be 5 letters
            self.poison = (self.poison,)
        self.poison = tuple(self.poison)
        if unknown := set(self.poison) - set(POISONS):
            raise ValueError(f"unknown poison {sorted(unknown)}; among {list(POISONS)}")

    def matches(self, target: Target) -> bool:
        return (
            target.path.startswith(self.path)
            and (self.agency is None or self.agency == target.agency)
            and (self.lang is None or self.lang == target.lang)
            and (self.method is None or self.method.upper() == target.method)
            and (not self.site_wide or (target.path == NEWS_PATH and target.agency is None))
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
        self._poison_ids = 0  # poison ids handed out so far

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

    def void(self, fault: Fault) -> None:
        """Take back one firing of ``fault``: it found nothing to act on (a poison on a refused
        or empty page), so it fires again on the next matching request."""
        with self._lock:
            fault.applied = max(0, fault.applied - 1)

    def poison_ids(self, count: int) -> list[int]:
        """``count`` fresh ids for poison elements, unique within this site."""
        with self._lock:
            first = POISON_FIRST_ID + self._poison_ids
            self._poison_ids += count
        return list(range(first, first + count))

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
        headers = [("Content-Type", "application/json")]
        if fault.retry_after is not None:
            headers.append(("Retry-After", str(fault.retry_after)))
        return fault.status, headers, _json(body)
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


def poison_body(fault: Fault, body: bytes, content_type: str,
                ids: Callable[[int], list[int]]) -> bytes | None:
    """``body`` with the fault's poison elements injected, or None when none fits it (not a
    non-empty JSON array, not an RSS document). ``ids(n)`` hands out n fresh ids."""
    if "xml" in content_type:
        return _poison_rss(fault, body) if _wanted(fault, POISON_RSS) else None
    if "json" not in content_type:
        return None
    names = _wanted(fault, POISON_JSON)
    try:
        page = json.loads(body)
    except ValueError:
        return None  # already truncated: nothing to inject into
    if not names or not isinstance(page, list) or not page or not isinstance(page[0], dict):
        return None
    first = page[0]
    fresh = iter(ids(sum(name in _FRESH_ID for name in names)))
    elements: list[bytes] = []  # serialized one by one: the surrogate must stay an escape
    tail: list[bytes] = []
    for name in names:
        if name == "number":
            element: object = 1
            fault.injected.append((name, None))
        elif name == "duplicate":
            tail.append(_json(first))
            fault.injected.append((name, first.get("id")))
            continue
        else:
            element = _poisoned_item(name, first, next(fresh) if name in _FRESH_ID else None)
            fault.injected.append((name, element.get("id")))
        elements.append(json.dumps(element, ensure_ascii=name == "lone_surrogate").encode())
    parts = [_json(first), *elements, *(_json(item) for item in page[1:]), *tail]
    return b"[" + b", ".join(parts) + b"]"


_FRESH_ID = frozenset({"control_char", "lone_surrogate", "far_date"})


def _wanted(fault: Fault, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not fault.poison or name in fault.poison]


def _poisoned_item(name: str, template: dict, item_id: int | None) -> dict:
    item = {**template, "slug": f"poison-{name}", "title": f"Poison {name}"}
    if name == "no_id":
        del item["id"]
    elif name == "bad_id":
        item["id"] = "abc"
    else:
        item["id"] = item_id
    if name == "control_char":
        item["body"] = "<p>A bell \u0007 rings in this body.</p>"
    elif name == "lone_surrogate":
        item["title"] = "Poison lone_surrogate \ud800 in the title"
    elif name == "far_date":
        item["created_date"] = FAR_DATE
    return item


def _poison_rss(fault: Fault, body: bytes) -> bytes | None:
    start = body.find(b"<item>")
    title = body.find(b"<title>", start) if start >= 0 else -1
    if title < 0:
        return None  # a feed without items: nothing to poison
    at = title + len(b"<title>")
    fault.injected.append(("rss_bad_char", None))
    return body[:at] + b"Bad \x0b char: " + body[at:]


def _json(data: object) -> bytes:
    try:
        return json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate (poison) cannot be UTF-8: keep it escaped
        return json.dumps(data).encode()
