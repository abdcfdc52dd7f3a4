"""The k6 session kept between crawl processes (crawler/access_session.py): the next crawl of the
same site starts with it instead of a handshake; refused, expired or another site's, it costs a
handshake and nothing else; its values never reach a log line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import run_cli
from crawl_helpers import NEWS, PAGE, START, Crawl, archive_at, assert_each_once, crawl, fill

from crawler.access import AccessState
from crawler.access_session import (
    SESSION_MAX_AGE,
    SessionCookie,
    SessionKeeper,
    StoredSession,
    parse_set_cookies,
)
from crawler.doctor import OK
from crawler.items import LANGS
from crawler.mockgov import MockServer, MockSite, serve_in_thread
from crawler.mockgov.app import K6_COOKIE, K6_HEADER
from crawler.store import Archive
from crawler.sync import SITE_WIDE

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SITE = "https://www.gov.kz"
HANDSHAKE = {"k6v1": "/api/v1/public/_/c/k6", "k6v2": "/api/v2/_/c/k6"}

# --- the record: cookies, expiry, whose it is ---------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    ("k6=abc; Path=/; HttpOnly", SessionCookie("k6", "abc", path="/")),
    ("k6=abc; Max-Age=600", SessionCookie("k6", "abc", expires=NOW + timedelta(seconds=600))),
    ("k6=abc; Expires=Tue, 01 Dec 2026 09:00:00 GMT; Domain=.gov.kz; Secure",
     SessionCookie("k6", "abc", domain=".gov.kz", secure=True,
                   expires=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))),
    # Max-Age wins over Expires (RFC 6265).
    ("k6=abc; Expires=Tue, 01 Dec 2026 09:00:00 GMT; Max-Age=60",
     SessionCookie("k6", "abc", expires=NOW + timedelta(seconds=60))),
])  # fmt: skip
def test_set_cookie_headers_become_session_cookies(header: str, expected: SessionCookie) -> None:
    assert parse_set_cookies([header.encode()], NOW) == (expected,)


@pytest.mark.parametrize("cookie", [
    SessionCookie("k6", "abc"),
    SessionCookie("k6", "a.b-c_1", path="/api"),
    SessionCookie("k6", "abc", domain=".gov.kz", path="/", secure=True,
                  expires=datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
])  # fmt: skip
def test_a_session_cookie_renders_as_the_set_cookie_header_that_gives_it_back(
    cookie: SessionCookie,
) -> None:
    # The crawl's cookie jar takes a kept cookie back in this form (crawler/session_jar.py).
    assert parse_set_cookies([cookie.set_cookie_header()], NOW) == (cookie,)


@pytest.mark.parametrize("header", [
    "k6=abc; Max-Age=0",
    "k6=abc; Expires=Sun, 01 Nov 2026 08:00:00 GMT",
    "no-equals-sign",
    "=value-without-a-name",
])  # fmt: skip
def test_deleted_or_malformed_cookies_are_left_out(header: str) -> None:
    assert parse_set_cookies([header], NOW) == ()


def test_a_later_cookie_of_the_same_name_replaces_the_earlier_one() -> None:
    cookies = parse_set_cookies([b"k6=old; Path=/", b"other=1", b"k6=new; Path=/"], NOW)
    assert [(c.name, c.value) for c in cookies] == [("k6", "new"), ("other", "1")]


@pytest.mark.parametrize(("cookies", "expires"), [
    ((), NOW + SESSION_MAX_AGE),  # a k6v2 header map: no expiry of its own
    ((SessionCookie("k6", "v"),), NOW + SESSION_MAX_AGE),  # a session cookie
    ((SessionCookie("k6", "v", expires=NOW + timedelta(hours=5)),), NOW + timedelta(hours=5)),
    ((SessionCookie("a", "1", expires=NOW + timedelta(hours=5)),
      SessionCookie("b", "2", expires=NOW + timedelta(minutes=5)), SessionCookie("c", "3")),
     NOW + timedelta(minutes=5)),  # the first cookie to expire ends the session
])  # fmt: skip
def test_a_session_expires_with_its_cookie_else_after_the_maximum_age(
    cookies: tuple[SessionCookie, ...], expires: datetime
) -> None:
    session = StoredSession.obtained(SITE + "/", "k6v1", now=NOW, cookies=cookies)
    assert (session.site, session.obtained_at, session.expires_at) == (SITE, NOW, expires)


@pytest.mark.parametrize(("site", "strategy", "at", "usable"), [
    (SITE, "k6v2", NOW, True),
    (SITE + "/", "k6v2", NOW + SESSION_MAX_AGE - timedelta(seconds=1), True),
    (SITE, "k6v2", NOW + SESSION_MAX_AGE, False),  # expired
    (SITE, "k6v2", NOW - timedelta(minutes=1), False),  # "obtained later": a clock went back
    ("http://127.0.0.1:8081", "k6v2", NOW, False),  # another base URL
    (SITE, "k6v1", NOW, False),  # another strategy
])  # fmt: skip
def test_a_session_is_only_for_its_site_and_strategy_until_it_expires(
    site: str, strategy: str, at: datetime, usable: bool
) -> None:
    session = StoredSession.obtained(SITE, "k6v2", now=NOW, headers={K6_HEADER: "secret"})
    assert session.usable(site, strategy, at) is usable


def test_the_secret_values_are_not_in_the_repr() -> None:
    cookie = SessionCookie("k6", "cookie-secret", path="/")
    session = StoredSession.obtained(SITE, "k6v1", now=NOW, headers={K6_HEADER: "header-secret"},
                                     cookies=[cookie])
    assert "secret" not in repr(session) and "secret" not in repr(cookie)


# --- the store ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["k6v1", "k6v2"])
def test_a_stored_session_reads_back_whole(tmp_path: Path, strategy: str) -> None:
    cookie = SessionCookie("k6", "v", domain=".gov.kz", path="/", secure=True,
                           expires=NOW + timedelta(minutes=20))
    session = StoredSession.obtained(SITE, strategy, now=NOW, headers={K6_HEADER: "h"},
                                     cookies=[cookie])
    keeper = SessionKeeper(tmp_path / "news.db", SITE, clock=lambda: NOW + timedelta(minutes=1))
    keeper.save(session)
    assert keeper.load(strategy) == session
    assert keeper.load("k6v1" if strategy == "k6v2" else "k6v2") is None
    assert SessionKeeper(tmp_path / "news.db", "http://127.0.0.1:1").load(strategy) is None
    keeper.drop(session)
    assert keeper.load(strategy) is None


def test_the_last_writer_wins_and_a_drop_spares_a_newer_session(tmp_path: Path) -> None:
    keeper = SessionKeeper(tmp_path / "news.db", SITE, clock=lambda: NOW + timedelta(minutes=1))
    old = StoredSession.obtained(SITE, "k6v2", now=NOW, headers={K6_HEADER: "old"})
    new = StoredSession.obtained(SITE, "k6v2", now=NOW, headers={K6_HEADER: "new"})
    keeper.save(old)
    keeper.save(new)  # another crawl's handshake
    keeper.drop(old)  # this crawl's refused session: the other one's stays
    assert keeper.load("k6v2") == new


def test_an_expired_session_is_not_loaded(tmp_path: Path) -> None:
    session = StoredSession.obtained(SITE, "k6v2", now=NOW, headers={K6_HEADER: "h"})
    SessionKeeper(tmp_path / "news.db", SITE).save(session)
    later = SessionKeeper(tmp_path / "news.db", SITE, clock=lambda: session.expires_at)
    assert later.load("k6v2") is None


def test_an_unusable_store_costs_only_the_saving(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "file").write_text("not a directory")
    keeper = SessionKeeper(tmp_path / "file" / "news.db", SITE)
    session = StoredSession.obtained(SITE, "k6v2", now=NOW, headers={K6_HEADER: "secret-h"})
    keeper.save(session)
    assert keeper.load("k6v2") is None
    assert "cannot store the access session" in caplog.text
    assert "secret-h" not in caplog.text


# --- the state machine --------------------------------------------------------------------------


def test_a_refused_stored_session_costs_no_renewal_of_the_strategy() -> None:
    state = AccessState.from_setting("k6v1,k6v2")
    state.on_restored({})
    assert not state.needs_handshake and state.using_stored_session
    assert state.describe() == "k6v1 stored session"
    stored = state.ticket
    assert state.on_refused(stored) == "rehandshake"
    assert state.needs_handshake and not state.using_stored_session
    assert state.on_refused(stored) == "retry"  # a concurrent request of the stored session
    state.on_handshake()
    # The fresh session still gets the one renewal a strategy has before the next is tried.
    assert state.on_refused(state.ticket) == "rehandshake"
    state.on_handshake()
    assert state.on_refused(state.ticket) == "next" and state.strategy == "k6v2"
    assert state.describe().startswith("k6v1 stored session, stored session refused, handshake")


# --- crawls against the mock: one process after another -----------------------------------------


def _handshakes(site: MockSite, scheme: str) -> int:
    return site.count(HANDSHAKE[scheme], method="POST")


def _run(server: MockServer, data: Path, site_wide: bool, *args: str,
         verbose: bool = False) -> Crawl:
    if site_wide:
        return crawl(server, data, "--site-wide", *args, agencies=(), langs=("en",),
                     verbose=verbose)
    return crawl(server, data, *args, verbose=verbose)


def _stored(data: Path, site: str, scheme: str) -> StoredSession | None:
    with archive_at(data) as archive:
        row = archive.monitor.access_session(site.rstrip("/"), scheme)
    return StoredSession.from_row(row) if row else None


def _secret(session: StoredSession) -> str:
    return session.cookies[0].value if session.cookies else session.headers[K6_HEADER]


def _sent_secrets(site: MockSite, scheme: str) -> list[str]:
    """The k6 values the news requests carried, as the mock logged them."""
    values = []
    for entry in site.log.entries(path=NEWS):
        if scheme == "k6v2":
            values.append(entry.headers.get(K6_HEADER, ""))
        else:
            jar = entry.headers.get("cookie", "")
            values += [part.split("=", 1)[1] for part in jar.split("; ")
                       if part.startswith(f"{K6_COOKIE}=")]
    return values


MODES = [pytest.param(False, id="per-agency"), pytest.param(True, id="site-wide")]
SCHEMES = ["k6v1", "k6v2"]


def _target(site_wide: bool) -> str:
    return f"{SITE_WIDE}/en" if site_wide else "mod/en"


@pytest.mark.parametrize("site_wide", MODES)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_next_crawl_makes_no_handshake_and_stores_every_item(
    tmp_path: Path, scheme: str, site_wide: bool
) -> None:
    site = MockSite(access=scheme)
    old = fill(site, "mod", 7)
    with serve_in_thread(site) as server:
        first = _run(server, tmp_path, site_wide, "--access", scheme)
        assert first.code == 0, first.output
        assert _handshakes(site, scheme) == 1
        stored = _stored(tmp_path, server.url, scheme)
        assert stored is not None and stored.strategy == scheme
        fresh = fill(site, "mod", PAGE + 2, start=START + timedelta(days=1))
        site.reset_log()
        again = _run(server, tmp_path, site_wide, "--access", scheme)
    assert again.code == 0, again.output
    assert _handshakes(site, scheme) == 0
    assert {e.status for e in site.log.entries(path=NEWS)} == {200}
    assert set(_sent_secrets(site, scheme)) == {_secret(stored)}
    assert again.target(_target(site_wide))["strategy"] == f"{scheme} stored session, ok"
    assert_each_once(tmp_path, "mod", "en", set(old) | set(fresh))


@pytest.mark.parametrize("site_wide", MODES)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_session_the_site_no_longer_takes_costs_one_refusal_and_one_handshake(
    tmp_path: Path, scheme: str, site_wide: bool
) -> None:
    site = MockSite(access=scheme)
    old = fill(site, "mod", 7)
    with serve_in_thread(site) as server:
        assert _run(server, tmp_path, site_wide, "--access", scheme).code == 0
        refused = _stored(tmp_path, server.url, scheme)
        assert refused is not None
        site.set_access(scheme)  # every grant given so far stops working
        fresh = fill(site, "mod", PAGE + 2, start=START + timedelta(days=1))
        site.reset_log()
        again = _run(server, tmp_path, site_wide, "--access", scheme)
        renewed = _stored(tmp_path, server.url, scheme)
    assert again.code == 0, again.output
    assert _handshakes(site, scheme) == 1
    news = site.log.entries(path=NEWS)
    assert [e.status for e in news].count(400) == 1 and news[0].status == 400
    target = again.target(_target(site_wide))
    assert target["errors"] == [] and target["new"] == len(fresh)
    assert_each_once(tmp_path, "mod", "en", set(old) | set(fresh))
    # The refused session is gone; the handshake's own, which got in, replaced it.
    assert renewed is not None and _secret(renewed) != _secret(refused)
    assert set(_sent_secrets(site, scheme)[1:]) == {_secret(renewed)}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_an_expired_session_is_not_sent(tmp_path: Path, scheme: str) -> None:
    site = MockSite(access=scheme)
    fill(site, "mod", 7)
    with serve_in_thread(site) as server:
        assert crawl(server, tmp_path, "--access", scheme).code == 0
        stored = _stored(tmp_path, server.url, scheme)
        assert stored is not None
        with archive_at(tmp_path) as archive:  # the same session, obtained long ago
            archive.monitor.save_access_session(
                stored.site, scheme, secrets=stored.secrets,
                obtained_at=stored.obtained_at - SESSION_MAX_AGE * 3,
                expires_at=stored.obtained_at - SESSION_MAX_AGE * 2)
        site.reset_log()
        again = crawl(server, tmp_path, "--access", scheme)
    assert again.code == 0, again.output
    assert _handshakes(site, scheme) == 1
    assert {e.status for e in site.log.entries(path=NEWS)} == {200}
    assert _secret(stored) not in _sent_secrets(site, scheme)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_session_of_another_base_url_is_not_used(tmp_path: Path, scheme: str) -> None:
    first_site, other_site = MockSite(access=scheme), MockSite(access=scheme)
    fill(first_site, "mod", 7)
    ids = fill(other_site, "mod", 7)
    with serve_in_thread(first_site) as first:
        assert crawl(first, tmp_path, "--access", scheme).code == 0
        stored = _stored(tmp_path, first.url, scheme)
    assert stored is not None
    with serve_in_thread(other_site) as other:
        again = crawl(other, tmp_path, "--access", scheme)
        assert _stored(tmp_path, other.url, scheme) is not None
    assert again.code == 0, again.output
    assert _handshakes(other_site, scheme) == 1
    assert {e.status for e in other_site.log.entries(path=NEWS)} == {200}
    assert _secret(stored) not in _sent_secrets(other_site, scheme)
    assert set(ids) <= {r["id"] for r in _rows(tmp_path)}
    assert _stored(tmp_path, first.url, scheme) == stored  # the other site's is its own


def _rows(data: Path) -> list[dict]:
    with archive_at(data) as archive:
        return list(archive.db.query("SELECT id FROM items"))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_session_values_are_not_in_the_log(tmp_path: Path, scheme: str) -> None:
    site = MockSite(access=scheme)
    fill(site, "mod", 7)
    with serve_in_thread(site) as server:
        first = crawl(server, tmp_path, "--access", scheme, verbose=True)
        stored = _stored(tmp_path, server.url, scheme)
        assert stored is not None
        site.set_access(scheme)  # the next crawl's stored session is refused, then renewed
        again = crawl(server, tmp_path, "--access", scheme, verbose=True)
        renewed = _stored(tmp_path, server.url, scheme)
    assert first.code == 0 and again.code == 0, again.output
    assert renewed is not None
    assert "session of an earlier crawl reused" in again.output  # the log says what it did
    for secret in (_secret(stored), _secret(renewed)):
        assert secret not in first.output and secret not in again.output


# --- doctor probes every strategy from scratch --------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_doctor_neither_uses_nor_replaces_a_stored_session(tmp_path: Path, scheme: str) -> None:
    site = MockSite(access=scheme)
    fill(site, "mod", 7, langs=LANGS)
    with serve_in_thread(site) as server:
        assert crawl(server, tmp_path, "--access", scheme).code == 0
        stored = _stored(tmp_path, server.url, scheme)
        site.set_access(scheme)  # the stored session is refused from now on
        site.reset_log()
        process = run_cli("doctor", "--base-url", server.url, "--agency", "mod", "--lang", "en",
                          "--data", str(tmp_path), "--json", "-s", "DOWNLOAD_DELAY=0",
                          timeout=120)
        report = json.loads(process.stdout)
    checks = {check["path"]: check for check in report["checks"]}
    assert checks[scheme]["outcome"] == OK, checks[scheme]  # probed afresh, so it works
    assert _handshakes(site, scheme) == 1  # its own probe of the strategy
    assert stored is not None and _stored(tmp_path, server.url, scheme) == stored
    assert _secret(stored) not in _sent_secrets(site, scheme)


def test_the_table_is_created_by_a_migration(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path / "news.db")
    try:
        assert archive.db["access_sessions"].pks == ["site", "strategy"]
    finally:
        archive.close()
