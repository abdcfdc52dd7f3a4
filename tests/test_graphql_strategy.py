"""GraphQL as an access strategy: after the header strategies and before the RSS fallback, with
string ids, null bodies and `_lang`; remembered per site like the others."""

from __future__ import annotations

from pathlib import Path

import pytest
from crawl_helpers import NEWS, archive_at, crawl, fill, list_requests, rows

from crawler import access
from crawler.access import AccessState
from crawler.mockgov import Fault, MockSite, serve_in_thread
from crawler.mockgov.faults import Dialect

GRAPHQL = "/graphql"


def refuse_the_api(site: MockSite) -> None:
    """Every header strategy is refused: the API answers 403 to lists and details alike."""
    site.faults.add(Fault("status", status=403, times=None))


# --- the order (pure) ---------------------------------------------------------------------------


def test_auto_puts_graphql_after_the_header_strategies_and_before_rss() -> None:
    assert access.parse_strategy_list("auto") == (
        "k6v1", "k6v2", "token", "plain", "graphql", "rss")


@pytest.mark.parametrize(("value", "expected"), [
    ("graphql", ("graphql",)),
    ("graphql,rss", ("graphql", "rss")),
    ("k6v2,graphql", ("k6v2", "graphql")),
])
def test_graphql_can_be_named(value: str, expected: tuple[str, ...]) -> None:
    assert access.parse_strategy_list(value) == expected


def test_every_strategy_refused_walks_graphql_before_rss() -> None:
    state = AccessState.from_setting("auto")
    visited = [state.strategy]
    while not state.failed:
        if state.needs_handshake:
            state.on_handshake()
        state.on_refused(state.ticket)
        if state.strategy != visited[-1]:
            visited.append(state.strategy)
    assert visited == ["k6v1", "k6v2", "token", "plain", "graphql", "rss", None]


def test_graphql_needs_no_handshake_and_goes_first_once_it_worked() -> None:
    state = AccessState.from_setting("auto", prefer="graphql")
    assert state.strategy == "graphql" and state.using_graphql
    assert not state.needs_handshake
    assert state.on_refused(state.ticket) == "next"  # then the header strategies again
    assert state.strategy == "k6v1"


@pytest.mark.parametrize(("status", "body", "refused"), [
    (400, b'{"error":"notAllowed"}', True),
    (403, b"", True),
    (404, b"Not Found", True),
    (405, b"", True),
    (200, b'{"errors":[{"message":"Cannot query field \\"news\\" on type \\"Query\\"."}]}', True),
    (200, b'{"errors":[{"message":"news: request is notAllowed"}]}', True),
    (200, b'{"data":{"news":[]}}', False),
    (200, b'{"errors":[{"message":"Syntax Error"}]}', False),  # a layout question, not access
    (200, b'{"data":{"news":[{"id":"1"}]},"errors":[{"message":"notAllowed"}]}', False),
    (500, b"", False),
])
def test_is_graphql_refusal(status: int, body: bytes, refused: bool) -> None:
    assert access.is_graphql_refusal(status, body) is refused


# --- crawls against the mock --------------------------------------------------------------------


def test_graphql_crawl_stores_items_with_null_bodies_and_string_ids(tmp_path: Path) -> None:
    site = MockSite()
    ids = fill(site, "mod", 4)
    bare = [site.publish("mod", title={"en": f"No body {n}"}, body="", heropic=False)
            for n in range(2)]
    refuse_the_api(site)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path)
    assert result.code == 0, result.output
    target = result.target("mod/en")
    assert target["strategy"].endswith("graphql ok"), target["strategy"]
    assert (target["new"], target["errors"]) == (6, [])
    stored = {row["id"]: row for row in rows(tmp_path, "mod", "en")}
    assert sorted(stored) == sorted(ids + bare)
    for item_id in bare:
        assert stored[item_id]["body_html"] == "" and stored[item_id]["title"].startswith("No")
    assert stored[ids[0]]["body_text"] == "mod en body 0"
    # Nothing was asked of the detail endpoint: GraphQL is the source.
    assert site.count(path_prefix=NEWS + "/") == 0


def test_graphql_is_remembered_for_the_site(tmp_path: Path) -> None:
    site = MockSite()
    fill(site, "mod", 3)
    refuse_the_api(site)
    with serve_in_thread(site) as server:
        first = crawl(server, tmp_path)
        assert first.code == 0, first.output
        refused_before = list_requests(site)
        site.publish("mod", title={"en": "Newer"}, body="<p>n</p>")
        second = crawl(server, tmp_path)
    assert second.code == 0, second.output
    # The second crawl went to GraphQL at once: no API list request, no handshake.
    assert list_requests(site) == refused_before
    assert second.target("mod/en")["strategy"] == "graphql ok"
    assert second.target("mod/en")["new"] == 1
    with archive_at(tmp_path) as archive:
        assert archive.monitor.last_strategy(server.url) == "graphql"


def test_graphql_refused_too_falls_back_to_rss(tmp_path: Path) -> None:
    site = MockSite(dialect=Dialect(graphql_news=False))
    ids = fill(site, "mod", 3)
    refuse_the_api(site)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path)
    target = result.target("mod/en")
    assert "graphql refused" in target["strategy"] or "rss" in target["strategy"], target
    assert sorted(row["id"] for row in rows(tmp_path, "mod", "en")) == sorted(ids)
    assert site.count(GRAPHQL) >= 1


def test_graphql_walk_pages_with_the_stop_rule(tmp_path: Path) -> None:
    site = MockSite()
    ids = fill(site, "mod", 12)  # PAGE is 5: three pages, the last one short
    refuse_the_api(site)
    with serve_in_thread(site) as server:
        first = crawl(server, tmp_path, "--backfill", "5")
        pages_first = site.count(GRAPHQL)
        quiet = crawl(server, tmp_path)
        pages_quiet = site.count(GRAPHQL) - pages_first
    assert first.code == 0 and quiet.code == 0, first.output + quiet.output
    assert sorted(r["id"] for r in rows(tmp_path, "mod", "en")) == sorted(ids)
    assert first.target("mod/en")["pages"] == 4  # three of items, then [] ends the list
    assert pages_quiet == 1  # a quiet re-crawl: one GraphQL page


def test_a_site_wide_walk_through_graphql_files_items_under_their_agencies(
        tmp_path: Path) -> None:
    site = MockSite()
    mod, mfa = fill(site, "mod", 4), fill(site, "mfa", 3)
    refuse_the_api(site)
    with serve_in_thread(site) as server:
        result = crawl(server, tmp_path, "--site-wide", agencies=())
    assert result.code == 0, result.output
    assert sorted(row["id"] for row in rows(tmp_path, "mod", "en")) == sorted(mod)
    assert sorted(row["id"] for row in rows(tmp_path, "mfa", "en")) == sorted(mfa)
    assert site.count(GRAPHQL) >= 2  # two pages of 5 over every agency
