"""How to be let into gov.kz's news API: the access strategies and their pure parts.

gov.kz changed its access control several times (README, "Crawling gov.kz", "Access paths"), so each
scheme is a named strategy, tried in order until one works, and every step is recorded for the crawl
summary:

- ``k6v1``: ``POST /api/v1/public/_/c/k6`` (JSON ``{}``, Origin www.gov.kz); the cookies it
  sets ride on the news requests (Scrapy's cookie middleware keeps them).
- ``k6v2``: ``POST /api/v2/_/c/k6`` answers a JSON object of headers for the news requests.
- ``token``: headers ``token`` (random 8-4-4-4-12 hex) and ``hash`` (bcrypt of the token with
  the site's fixed salt), as the site's 2025 web client sent them.
- ``plain``: nothing extra (2020-2024).
- ``graphql``: not a header scheme but another source: ``POST /graphql`` ``news(...)``, which
  answered without any handshake in June 2026. It is tried after the header strategies; the
  spider sends GraphQL requests instead of API ones while it is in use.
- ``rss``: the fallback source, the official per-agency RSS (only the newest items).

The middleware that sends requests lives elsewhere; this module only decides and builds.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

import bcrypt

from crawler.errors import AccessDenied, ConfigError, LayoutChanged

HEADER_STRATEGIES = ("k6v1", "k6v2", "token", "plain")
GRAPHQL = "graphql"
# The strategies that read news page by page (the header ones through the JSON API).
NEWS_STRATEGIES = (*HEADER_STRATEGIES, GRAPHQL)
RSS = "rss"
DEFAULT_ORDER = NEWS_STRATEGIES
AUTO = "auto"  # the setting value meaning DEFAULT_ORDER, then the RSS fallback
MAX_RENEWALS = 3  # re-handshakes of a strategy that worked, between two successes

GOVKZ_ORIGIN = "https://www.gov.kz"
K6_PATHS = {"k6v1": "/api/v1/public/_/c/k6", "k6v2": "/api/v2/_/c/k6"}
TOKEN_SALT = "$2a$10$HxyKf0Cy3Ecnp874AXBXOe"

# Headers a k6v2 answer may not set: a browser's fetch() refuses these (the "forbidden header
# names"), so the site's own client never sends them from such an answer, and some of them
# (Host, Content-Length, Cookie) would break the request or fight the cookie middleware.
FORBIDDEN_HEADERS = frozenset(
    "accept-charset accept-encoding access-control-request-headers access-control-request-method "
    "connection content-length cookie cookie2 date dnt expect host keep-alive origin referer "
    "set-cookie te trailer transfer-encoding upgrade via".split()
)
_FORBIDDEN_PREFIXES = ("proxy-", "sec-")
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


# --- token ---------------------------------------------------------------------------------------


def make_token() -> str:
    """A fresh random token in the 8-4-4-4-12 lower-case hex form the site's client uses."""
    return str(uuid.uuid4())


def token_hash(token: str) -> str:
    """bcrypt of ``token`` with the site's fixed salt (so it starts with TOKEN_SALT)."""
    return bcrypt.hashpw(token.encode(), TOKEN_SALT.encode()).decode()


def token_headers(token: str | None = None) -> dict[str, str]:
    token = token or make_token()
    return {"token": token, "hash": token_hash(token)}


# --- k6 handshakes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handshake:
    """The request that opens a session for a strategy."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def handshake_request(strategy: str, site: str) -> Handshake | None:
    """The handshake of a k6 strategy against ``site``; None for strategies without one."""
    path = K6_PATHS.get(strategy)
    if path is None:
        return None
    headers = {
        "Origin": GOVKZ_ORIGIN,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    return Handshake("POST", f"{site.rstrip('/')}{path}", headers, b"{}")


def parse_k6_headers(body: bytes) -> dict[str, str]:
    """The headers a k6v2 handshake answered, minus those a browser may not set.

    The answer must be a flat JSON object of string values with valid header names; anything
    else raises LayoutChanged. An empty object is valid (nothing to add).
    """
    sample = body[:2048]
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise LayoutChanged("k6v2 handshake: not JSON", sample=sample) from exc
    if not isinstance(data, dict):
        raise LayoutChanged("k6v2 handshake: expected a JSON object of headers", sample=sample)
    headers = {}
    for name, value in data.items():
        if not isinstance(value, str):
            raise LayoutChanged(
                f"k6v2 handshake: header {name!r} is not a string: {value!r}", sample=sample
            )
        if not _HEADER_NAME_RE.match(name) or "\r" in value or "\n" in value:
            raise LayoutChanged(f"k6v2 handshake: not a valid header: {name!r}", sample=sample)
        lower = name.lower()
        if lower in FORBIDDEN_HEADERS or lower.startswith(_FORBIDDEN_PREFIXES):
            continue
        headers[name] = value
    return headers


# --- Choosing and observing -------------------------------------------------------------------


def parse_strategy_list(value: str) -> tuple[str, ...]:
    """Strategies named by a setting: "auto", or names separated by commas, "rss" last if at
    all. ConfigError on an unknown name, a repeated one, or "rss" anywhere but last."""
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    if names == [AUTO]:
        return (*DEFAULT_ORDER, RSS)
    if not names:
        raise ConfigError("access: no strategy named (use 'auto' or e.g. 'k6v2,token')")
    known = (*NEWS_STRATEGIES, RSS)
    for name in names:
        if name not in known:
            raise ConfigError(
                f"access: unknown strategy {name!r} (known: {AUTO}, {', '.join(known)})"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"access: a strategy is named twice in {value!r}")
    if RSS in names[:-1]:
        raise ConfigError("access: 'rss' is the fallback and must come last")
    return tuple(names)


def is_refusal(status: int, body: bytes) -> bool:
    """Whether an answer means "not let in" (re-handshake or change strategy), as opposed to a
    bad request or a server error. A 400 is a refusal only when it says notAllowed."""
    if status in (401, 403):
        return True
    return status == 400 and b"notallowed" in body.lower()


# What a GraphQL endpoint without the `news` query (or without GraphQL at all) answers: the
# errors of a server whose schema lacks the field, and a gateway's refusal words.
_GRAPHQL_GONE = (b"cannot query field", b"notallowed", b"forbidden", b"unauthori")


def is_graphql_refusal(status: int, body: bytes) -> bool:
    """Whether a GraphQL answer means "this path is not open": a refusal as for the API, no
    such endpoint (404, 405), or a 200 carrying only errors that say the query is unknown or
    not allowed. Other errors are the extractor's (a changed layout)."""
    if is_refusal(status, body) or status in (404, 405):
        return True
    if status != 200 or b'"errors"' not in body:
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    if not isinstance(answer, dict) or (isinstance(answer.get("data"), dict)
                                        and any(answer["data"].values())):
        return False
    text = json.dumps(answer.get("errors"), ensure_ascii=False).lower().encode()
    return any(word in text for word in _GRAPHQL_GONE)


def has_handshake(strategy: str) -> bool:
    """k6 strategies ask the server; token makes a new token; plain and rss need nothing."""
    return strategy in K6_PATHS or strategy == "token"


@dataclass
class AccessState:
    """Which strategy a crawl uses, and what happened to each one tried.

    Refused once, a strategy gets a new handshake (sessions expire); refused again before any
    success, the next strategy is tried. After the last news strategy the RSS fallback is
    used when enabled; when it fails too the crawl has ``failed``. A success resets the refusal
    count, so a session that expires mid-crawl is renewed rather than abandoned.

    ``ticket`` changes whenever a new session starts. Requests carry the ticket they were sent
    with; a refusal of a request sent before the current session does not count against it
    (concurrent requests refused together are one refusal, not several).

    A k6 session kept from an earlier crawl (``on_restored``) stands in for the first
    handshake; refused, it is replaced by a handshake without counting as a refusal.
    """

    order: tuple[str, ...] = DEFAULT_ORDER
    rss_fallback: bool = True
    # Extra rounds through `order` before the fallback: the site may switch scheme while we try
    # them (mid-crawl, or during the discovery), possibly to one earlier in the order.
    laps: int = 0
    # The strategy in use: one of order, RSS, or None once failed.
    strategy: str | None = field(default=None, init=False)
    handshake_done: bool = field(default=False, init=False)
    # Headers to add to news requests in the current session (token, k6v2).
    headers: dict[str, str] = field(default_factory=dict, init=False)
    history: list[tuple[str, str]] = field(default_factory=list, init=False)
    worked: str | None = field(default=None, init=False)
    failed: bool = field(default=False, init=False)
    ticket: int = field(default=0, init=False)
    # The ticket of a session an earlier crawl obtained (on_restored), while it is the current one.
    stored_ticket: int | None = field(default=None, init=False)
    _refusals: int = field(default=0, init=False, repr=False)
    _position: int = field(default=0, init=False, repr=False)
    _laps: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.order = tuple(self.order)
        for name in self.order:
            if name not in NEWS_STRATEGIES:
                raise ConfigError(f"access: {name!r} is not a news strategy")
        self._enter(0)

    @classmethod
    def from_setting(cls, value: str, prefer: str | None = None, laps: int = 0) -> AccessState:
        """From a GOVKZ_ACCESS value; `prefer` (the strategy that worked last time) goes first,
        so a quiet re-crawl does not pay for rediscovering the scheme."""
        names = parse_strategy_list(value)
        if prefer in names and prefer != RSS:
            names = (prefer, *(n for n in names if n != prefer))
        rss = names[-1] == RSS
        return cls(order=names[:-1] if rss else names, rss_fallback=rss, laps=laps)

    @property
    def needs_handshake(self) -> bool:
        return not self.failed and not self.handshake_done

    @property
    def using_rss(self) -> bool:
        return self.strategy == RSS

    @property
    def using_graphql(self) -> bool:
        return self.strategy == GRAPHQL

    def _enter(self, position: int) -> str:
        """Move to the strategy at ``position`` of order (then RSS, then failure)."""
        self._position, self._refusals = position, 0
        self.headers, self.ticket = {}, self.ticket + 1
        if position < len(self.order):
            self.strategy = self.order[position]
            self.handshake_done = not has_handshake(self.strategy)
            return "next"
        if position == len(self.order) and self.rss_fallback:
            self.strategy, self.handshake_done = RSS, True
            return "exhausted"
        self.strategy, self.handshake_done, self.failed = None, True, True
        self.history.append(("-", "failed"))
        return "failed"

    def on_handshake(self, headers: dict[str, str] | None = None) -> None:
        """The handshake of the current strategy succeeded; ``headers`` go on news requests."""
        self.handshake_done, self.headers = True, dict(headers or {})
        self.ticket += 1
        self.history.append((str(self.strategy), "handshake"))

    def on_restored(self, headers: dict[str, str] | None = None) -> None:
        """A session an earlier crawl obtained for the current strategy is used instead of a
        handshake (crawler/access_session.py); ``headers`` go on news requests."""
        self.on_handshake(headers)
        self.history[-1] = (str(self.strategy), "stored session")
        self.stored_ticket = self.ticket

    @property
    def using_stored_session(self) -> bool:
        return self.stored_ticket is not None and self.stored_ticket == self.ticket

    def on_handshake_failed(self, reason: str = "") -> str:
        """The handshake itself failed (e.g. its endpoint is gone): try the next strategy."""
        outcome = f"handshake failed: {reason}" if reason else "handshake failed"
        self.history.append((str(self.strategy), outcome))
        return self._advance()

    def on_refused(self, ticket: int | None = None) -> str:
        """A news request was refused. Returns what to do: "retry" (sent before the current
        session: just resend), "rehandshake", "next" (strategy changed; handshake if needed),
        "exhausted" (news strategies used up: switch to RSS) or "failed"."""
        if self.failed:
            return "failed"
        if ticket is not None and ticket != self.ticket:
            return "retry"
        if self.using_stored_session:
            # An earlier crawl's session the site no longer takes: it expired, which says
            # nothing against the strategy, so it costs no renewal of this crawl's own.
            self.history.append((str(self.strategy), "stored session refused"))
            self.handshake_done, self.headers, self.stored_ticket = False, {}, None
            self.ticket += 1
            return "rehandshake"
        self.history.append((str(self.strategy), "refused"))
        self._refusals += 1
        # A strategy that already worked in this crawl is renewed a few times (short-lived
        # sessions race with concurrent requests); a new one gets one renewal.
        renewals = MAX_RENEWALS if self.worked == self.strategy else 1
        if self._refusals <= renewals and has_handshake(str(self.strategy)):
            self.handshake_done, self.headers = False, {}
            self.ticket += 1
            return "rehandshake"
        return self._advance()

    def _advance(self) -> str:
        if self.using_rss:
            return self._enter(len(self.order) + 1)
        # The lap starts after the last header strategy: the API (with its detail endpoint) is
        # worth another round before GraphQL, which comes after it in the default order.
        headers = [i for i, name in enumerate(self.order) if name in HEADER_STRATEGIES]
        if headers and self._position == headers[-1] and self._laps < self.laps:
            self._laps += 1
            return self._enter(0)
        return self._enter(self._position + 1)

    def on_success(self) -> None:
        """A news request (or the RSS) answered; the first success of a strategy is recorded."""
        if self.failed:
            return
        self._refusals = 0
        if self.worked != self.strategy:
            self.worked = self.strategy
            self.history.append((str(self.strategy), "ok"))

    def describe(self) -> str:
        """One line for the crawl summary, e.g. "k6v1 refused, refused -> k6v2 ok"."""
        parts: list[str] = []
        for strategy, outcome in self.history:
            if parts and parts[-1].startswith(strategy + " "):
                parts[-1] += f", {outcome}"
            else:
                parts.append(f"{strategy} {outcome}" if strategy != "-" else outcome)
        return " -> ".join(parts) or "not started"

    def denied(self, target: str) -> AccessDenied:
        """The error to raise for ``target`` once the state has failed."""
        return AccessDenied(f"{target}: every access strategy was refused ({self.describe()})")
