"""Access strategies: token hashing, k6 handshakes, refusals and the per-crawl state machine."""

from __future__ import annotations

import json

import bcrypt
import pytest

from crawler import access
from crawler.access import MAX_RENEWALS, AccessState
from crawler.errors import AccessDenied, ConfigError, LayoutChanged
from crawler.mockgov.app import TOKEN_RE  # what the mock, like gov.kz, accepts

# --- token ---------------------------------------------------------------------------------------


def test_tokens_look_like_the_site_clients() -> None:
    tokens = {access.make_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(TOKEN_RE.match(token) for token in tokens)


def test_token_hash_uses_the_fixed_salt_and_verifies() -> None:
    token = "0f8fad5b-d9cb-469f-a165-70867728950e"
    hashed = access.token_hash(token)
    assert hashed.startswith("$2a$10$HxyKf0Cy3Ecnp874AXBXOe")
    assert len(hashed) == 60
    assert hashed == access.token_hash(token)  # fixed salt: deterministic
    assert bcrypt.checkpw(token.encode(), hashed.encode())


def test_token_headers() -> None:
    headers = access.token_headers()
    assert set(headers) == {"token", "hash"}
    assert TOKEN_RE.match(headers["token"])
    assert bcrypt.checkpw(headers["token"].encode(), headers["hash"].encode())
    fixed = access.token_headers("0f8fad5b-d9cb-469f-a165-70867728950e")
    assert fixed["token"] == "0f8fad5b-d9cb-469f-a165-70867728950e"


# --- k6 handshakes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "url"),
    [
        ("k6v1", "http://127.0.0.1:8765/api/v1/public/_/c/k6"),
        ("k6v2", "http://127.0.0.1:8765/api/v2/_/c/k6"),
    ],
)
def test_handshake_request(strategy: str, url: str) -> None:
    handshake = access.handshake_request(strategy, "http://127.0.0.1:8765/")
    assert handshake is not None
    assert (handshake.method, handshake.url, handshake.body) == ("POST", url, b"{}")
    # Always the real site's origin, even against a mock: that is what the site checks.
    assert handshake.headers["Origin"] == "https://www.gov.kz"
    assert handshake.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("strategy", ["token", "plain", "rss"])
def test_no_handshake_request(strategy: str) -> None:
    assert access.handshake_request(strategy, "https://www.gov.kz") is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"x-k6-token": "abc", "X-Session": "s1"}, {"x-k6-token": "abc", "X-Session": "s1"}),
        ({}, {}),
        (
            {
                "x-k6": "1",
                "Host": "evil",
                "Content-Length": "9",
                "Cookie": "a=b",
                "proxy-authorization": "p",
                "Sec-Fetch-Site": "same-origin",
                "Origin": "x",
            },
            {"x-k6": "1"},
        ),
    ],
)
def test_parse_k6_headers(answer: dict, expected: dict) -> None:
    assert access.parse_k6_headers(json.dumps(answer).encode()) == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"", "not JSON"),
        (b'["x-k6", "1"]', "expected a JSON object"),
        (b'"token"', "expected a JSON object"),
        (b'{"headers": {"x-k6": "1"}}', "'headers' is not a string"),
        (b'{"x-k6": 1}', "'x-k6' is not a string"),
        (b'{"x-k6": null}', "is not a string"),
        (b'{"bad name": "1"}', "not a valid header"),
        (b'{"x-k6": "1\\r\\nX-Injected: 2"}', "not a valid header"),
    ],
)
def test_bad_k6_answers(body: bytes, reason: str) -> None:
    with pytest.raises(LayoutChanged, match="k6v2 handshake") as caught:
        access.parse_k6_headers(body)
    assert reason in caught.value.reason


# --- settings and refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", ("k6v1", "k6v2", "token", "plain", "graphql", "rss")),
        (" AUTO ", ("k6v1", "k6v2", "token", "plain", "graphql", "rss")),
        ("token,graphql,rss", ("token", "graphql", "rss")),
        ("k6v2,token", ("k6v2", "token")),
        ("k6v2, token ,rss", ("k6v2", "token", "rss")),
        ("plain", ("plain",)),
        ("rss", ("rss",)),
        ("token,,plain", ("token", "plain")),
    ],
)
def test_parse_strategy_list(value: str, expected: tuple) -> None:
    assert access.parse_strategy_list(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "no strategy"),
        (" , ", "no strategy"),
        ("k6v3", "unknown strategy 'k6v3'"),
        ("auto,rss", "unknown strategy 'auto'"),
        ("token,token", "named twice"),
        ("rss,token", "must come last"),
    ],
)
def test_bad_strategy_lists(value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        access.parse_strategy_list(value)


@pytest.mark.parametrize(
    ("status", "body", "refused"),
    [
        (400, b'{"error":"notAllowed"}', True),
        (400, b"NotAllowed", True),
        (400, b'{"error":"bad sort-by"}', False),
        (400, b"", False),
        (401, b"", True),
        (403, b"<html>Forbidden</html>", True),
        (200, b'{"error":"notAllowed"}', False),
        (404, b"notAllowed", False),
        (429, b"", False),
        (500, b"", False),
    ],
)
def test_is_refusal(status: int, body: bytes, refused: bool) -> None:
    assert access.is_refusal(status, body) is refused


# --- the state machine ------------------------------------------------------------------------


def drive(state: AccessState, events: str) -> list[str]:
    """Run events ("h" handshake ok, "H" handshake failed, "r" refused, "s" success); return
    what each refusal or failed handshake said to do."""
    said = []
    for event in events:
        if event == "h":
            state.on_handshake()
        elif event == "H":
            said.append(state.on_handshake_failed("404"))
        elif event == "r":
            said.append(state.on_refused())
        elif event == "s":
            state.on_success()
    return said


def test_starts_with_the_first_strategy() -> None:
    state = AccessState()
    assert state.order == access.DEFAULT_ORDER
    assert state.strategy == "k6v1"
    assert state.needs_handshake and not state.handshake_done
    assert state.history == [] and state.worked is None and not state.failed


def test_refused_once_rehandshakes_then_moves_on() -> None:
    state = AccessState()
    state.on_handshake({"x": "1"})
    assert state.handshake_done and state.headers == {"x": "1"}
    assert state.on_refused() == "rehandshake"
    assert state.strategy == "k6v1" and state.needs_handshake and state.headers == {}
    state.on_handshake()
    assert state.on_refused() == "next"
    assert state.strategy == "k6v2" and state.needs_handshake
    assert state.history == [
        ("k6v1", "handshake"),
        ("k6v1", "refused"),
        ("k6v1", "handshake"),
        ("k6v1", "refused"),
    ]


@pytest.mark.parametrize(
    ("setting", "events", "said", "strategy", "failed"),
    [
        # Everything refused: each handshake strategy twice, plain and graphql once, then RSS,
        # then failure.
        (
            "auto",
            "hrhrhrhrhrhrrrr",
            ["rehandshake", "next"] * 3 + ["next", "exhausted", "failed"],
            None,
            True,
        ),
        ("k6v1,plain", "hrhrr", ["rehandshake", "next", "failed"], None, True),
        ("k6v1,plain,rss", "hrhrr", ["rehandshake", "next", "exhausted"], "rss", False),
        ("plain", "r", ["failed"], None, True),
        ("plain,rss", "r", ["exhausted"], "rss", False),
        ("rss", "r", ["failed"], None, True),
        # The k6v1 endpoint is gone: its handshake fails, straight to the next strategy.
        ("auto", "H", ["next"], "k6v2", False),
        ("k6v2", "H", ["failed"], None, True),
        # A success resets the count: an expired session is renewed, not abandoned.
        ("auto", "hsrhsrhs", ["rehandshake", "rehandshake"], "k6v1", False),
        ("token,plain", "hrhs", ["rehandshake"], "token", False),
        # After failure everything stays failed.
        ("plain", "rrr", ["failed", "failed", "failed"], None, True),
    ],
)
def test_transitions(setting: str, events: str, said: list, strategy, failed: bool) -> None:
    state = AccessState.from_setting(setting)
    assert drive(state, events) == said
    assert state.strategy == strategy
    assert state.failed is failed


def test_walk_through_every_strategy_then_rss() -> None:
    state = AccessState()
    visited = [state.strategy]
    while not state.failed:
        if state.needs_handshake:
            state.on_handshake()
        state.on_refused()
        if state.strategy != visited[-1]:
            visited.append(state.strategy)
    assert visited == ["k6v1", "k6v2", "token", "plain", "graphql", "rss", None]
    assert state.history[-1] == ("-", "failed")


@pytest.mark.parametrize(
    ("strategy", "needs"),
    [("k6v1", True), ("k6v2", True), ("token", True), ("plain", False), ("graphql", False)],
)
def test_which_strategies_need_a_handshake(strategy: str, needs: bool) -> None:
    assert AccessState(order=(strategy,)).needs_handshake is needs
    assert access.has_handshake(strategy) is needs


def test_worked_and_history_on_success() -> None:
    state = AccessState.from_setting("k6v1,k6v2")
    drive(state, "H")
    state.on_handshake({"x-k6": "v"})
    for _ in range(5):
        state.on_success()
    assert state.worked == "k6v2"
    assert state.history == [
        ("k6v1", "handshake failed: 404"),
        ("k6v2", "handshake"),
        ("k6v2", "ok"),
    ]
    assert state.describe() == "k6v1 handshake failed: 404 -> k6v2 handshake, ok"


def test_rss_success_is_recorded() -> None:
    state = AccessState.from_setting("plain,rss")
    assert state.on_refused() == "exhausted"
    assert state.using_rss and not state.needs_handshake
    state.on_success()
    assert state.worked == "rss"
    assert state.describe() == "plain refused -> rss ok"


def test_stale_refusals_do_not_count() -> None:
    state = AccessState()
    state.on_handshake()
    sent_with = state.ticket
    # Three requests in flight are refused together: one refusal, then resends.
    assert state.on_refused(sent_with) == "rehandshake"
    assert state.on_refused(sent_with) == "retry"
    assert state.on_refused(sent_with) == "retry"
    state.on_handshake()
    assert state.strategy == "k6v1"
    assert state.on_refused(state.ticket) == "next"
    assert [outcome for _, outcome in state.history].count("refused") == 2


def test_ticket_changes_with_every_session() -> None:
    state = AccessState()
    tickets = [state.ticket]
    state.on_handshake()
    tickets.append(state.ticket)
    state.on_refused()
    tickets.append(state.ticket)
    state.on_handshake()
    tickets.append(state.ticket)
    state.on_refused()  # -> k6v2
    tickets.append(state.ticket)
    assert len(set(tickets)) == len(tickets)


def test_success_after_failure_is_ignored() -> None:
    state = AccessState.from_setting("plain")
    assert state.on_refused() == "failed"
    state.on_success()
    assert state.worked is None and state.failed


def test_denied_explains_every_step() -> None:
    state = AccessState.from_setting("token,plain")
    drive(state, "hrhrr")
    error = state.denied("pravstat/ru")
    assert isinstance(error, AccessDenied)
    assert str(error) == (
        "pravstat/ru: every access strategy was refused (token handshake, refused, handshake, "
        "refused -> plain refused -> failed)"
    )


def test_describe_before_anything() -> None:
    assert AccessState().describe() == "not started"


@pytest.mark.parametrize("order", [("rss",), ("k6v3",), ("auto",)])
def test_order_holds_header_strategies_only(order: tuple) -> None:
    with pytest.raises(ConfigError):
        AccessState(order=order)


def test_empty_order_with_rss_starts_on_rss() -> None:
    state = AccessState(order=(), rss_fallback=True)
    assert state.using_rss and not state.failed
    assert AccessState(order=(), rss_fallback=False).failed


def test_a_lap_returns_to_a_scheme_earlier_in_the_order() -> None:
    state = AccessState.from_setting("k6v1,token", laps=1)
    state.on_handshake()
    assert state.on_refused(state.ticket) == "rehandshake"
    state.on_handshake()
    assert state.on_refused(state.ticket) == "next"  # k6v1 -> token
    assert state.strategy == "token"
    state.on_handshake({"token": "t", "hash": "h"})
    assert state.on_refused(state.ticket) == "rehandshake"
    state.on_handshake({"token": "t", "hash": "h"})
    assert state.on_refused(state.ticket) == "next"  # one more lap: back to k6v1
    assert state.strategy == "k6v1"
    state.on_handshake()
    state.on_success()
    assert state.worked == "k6v1"


@pytest.mark.parametrize(("prefer", "first"), [("token", "token"), ("rss", "k6v1"),
                                               (None, "k6v1"), ("bogus", "k6v1")])
def test_the_strategy_that_worked_last_time_goes_first(prefer: str | None, first: str) -> None:
    assert AccessState.from_setting("auto", prefer=prefer).strategy == first


def test_a_strategy_that_worked_is_renewed_more_than_once() -> None:
    state = AccessState.from_setting("k6v1,token")
    state.on_handshake()
    state.on_success()
    for _ in range(MAX_RENEWALS):
        assert state.on_refused(state.ticket) == "rehandshake"
        state.on_handshake()
    assert state.on_refused(state.ticket) == "next"
