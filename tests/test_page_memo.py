"""Page memos (crawler/page_memo.py): page 1 of an incremental walk that comes back with the
bytes it had when it was last entirely quiet ends the walk without being extracted, and the
crawl reports and stores exactly what a crawl without memos does.

Most tests drive GovkzSpider in this process (a reactor cannot be restarted, so a small loop
stands in for Scrapy's engine: each request fetched from the mock over HTTP, each callback's
output through the real pipelines), so they can count the extractor's calls and kill a crawl
between any two stored pages. One test runs `govkz-monitor crawl` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
import scrapy
from crawl_helpers import PAGE, START, archive_at, crawl, fill
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy.exceptions import DropItem
from scrapy.http import TextResponse

import crawler.page_memo as page_memo
import crawler.spiders.govkz as govkz
from crawler.config import resolve, scrapy_settings
from crawler.items import NewsItem, PageMemo
from crawler.mockgov import MockServer, MockSite, serve_in_thread
from crawler.page_memo import memo_hit, page_digest
from crawler.pipelines import ArchivePipeline, ValidateItemPipeline
from crawler.store import Archive
from crawler.summary import CrawlSummary, summary_for
from crawler.sync import SITE_WIDE, PagingPlan
from crawler.timeutil import ALMATY, require_iso

EXTRACTORS = ("parse_news_list", "parse_site_news_list", "parse_graphql_page")
COUNTS = ("found", "new", "updated", "unchanged", "rejected", "pages", "requests")


# --- a crawl in this process --------------------------------------------------------------------


@dataclass
class Run:
    summary: CrawlSummary
    extracted: int  # list pages given to an extractor

    def counts(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(getattr(t, c) for c in COUNTS)
                for name, t in sorted(self.summary.targets.items())}


def fetch(request: scrapy.Request) -> TextResponse:
    headers = {k.decode(): v[0].decode() for k, v in request.headers.items()}
    sent = urllib.request.Request(request.url, data=request.body or None,
                                  method=request.method, headers=headers)
    with urllib.request.urlopen(sent, timeout=60) as answer:  # noqa: S310 - the local mock
        return TextResponse(request.url, status=answer.status, body=answer.read(),
                            request=request)


def run(server: MockServer, data: Path, *, agencies: tuple[str, ...] = ("mod",),
        langs: tuple[str, ...] = ("en",), site_wide: bool = False, graphql: bool = False,
        memos: bool = True, kill_after: int | None = None, **spider_args: Any) -> Run:
    """One crawl; `memos` False: no memo is ever a hit (a crawl as without memos);
    `kill_after`: the process dies after that many stored elements (nothing after them is
    written, not even what the pipelines kept for later)."""
    sets = {"GOVKZ_DATA": str(data), "GOVKZ_BASE_URL": server.url,
            "GOVKZ_PAGE_SIZE": str(PAGE), "GOVKZ_PUBLISH_FEEDS": "0"}
    crawler = SimpleNamespace(settings=scrapy_settings(resolve(environ={}, sets=sets)))
    if graphql:
        crawler.govkz_access = SimpleNamespace(using_graphql=True, using_rss=False,
                                               worked="graphql", describe=lambda: "graphql")
    spider = govkz.GovkzSpider(agencies=",".join(agencies), langs=",".join(langs),
                               site_wide=site_wide, **spider_args)
    spider.crawler, spider.settings, crawler.spider = crawler, crawler.settings, spider
    validate, store = ValidateItemPipeline(crawler), ArchivePipeline(crawler)
    store.open_spider()
    calls: Counter[str] = Counter()

    def counting(name: str) -> Callable[..., Any]:
        real = getattr(govkz, name)

        def extractor(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)
        return extractor

    async def started() -> list[Any]:
        return [request async for request in spider.start()]

    stored = 0
    with contextlib.ExitStack() as patches:
        for name in EXTRACTORS:
            patches.enter_context(mock.patch.object(govkz, name, counting(name)))
        if not memos:
            patches.enter_context(mock.patch.object(govkz, "memo_hit", lambda *a: False))
        queue = deque(asyncio.run(started()))
        while queue and (kill_after is None or stored < kill_after):
            request = queue.popleft()
            for output in request.callback(fetch(request), **request.cb_kwargs):
                if isinstance(output, scrapy.Request):
                    queue.append(output)
                elif kill_after is None or stored < kill_after:
                    stored += 1
                    with contextlib.suppress(DropItem):
                        store.process_item(validate.process_item(output))
    if kill_after is not None and stored >= kill_after:  # killed: nothing more is written
        spider.archive.close()
        store.archive.close()
    else:
        spider.closed("finished")
        store.close_spider()
    return Run(summary_for(crawler), sum(calls.values()))


@contextlib.contextmanager
def mock_site(agencies: tuple[str, ...] = ("mod",), count: int = 12) -> Iterator[MockServer]:
    site = MockSite()
    for n, agency in enumerate(agencies):
        fill(site, agency, count, start=START + timedelta(minutes=n))
    with serve_in_thread(site) as server:
        yield server


# --- what the archive holds -----------------------------------------------------------------


def state(data: Path) -> dict[str, Any]:
    """Everything stored but the clock: items, versions, marks, feed marks, rejects."""
    with archive_at(data) as archive:
        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(row.values()) for row in archive.db.query(sql)]
        return {
            "items": rows("""SELECT agency, id, lang, url, title, published, body_text,
                                    body_html, summary, categories, image, views, incomplete,
                                    source, content_hash, version
                             FROM items ORDER BY agency, id, lang"""),
            "versions": rows("""SELECT agency, id, lang, version, title, body_text, body_html,
                                       content_hash FROM item_versions
                                ORDER BY agency, id, lang, version"""),
            "marks": rows("SELECT agency, lang, high_water FROM sync_state ORDER BY 1, 2"),
            "feeds": rows("SELECT agency, lang, seq FROM feed_marks ORDER BY 1, 2"),
            "rejects": rows("SELECT key, times FROM rejects ORDER BY key"),
        }


def memos(data: Path) -> dict[tuple[str, str], dict[str, Any]]:
    with archive_at(data) as archive:
        return {(row["agency"], row["lang"]): row
                for row in archive.db.query("SELECT * FROM page_memos")}


def unstored_memo_items(data: Path) -> list[tuple[str, int, str]]:
    """Items a stored memo names that the archive does not hold."""
    with archive_at(data) as archive:
        return [(agency, item_id, row["lang"])
                for row in archive.db.query("SELECT lang, items FROM page_memos")
                for agency, item_id, _ in json.loads(row["items"])
                if archive.get_item(agency, item_id, row["lang"]) is None]


# --- the decision, pure ---------------------------------------------------------------------


DIGEST_ARGS: dict[str, Any] = {
    "agency": "mod", "lang": "en", "site": "http://127.0.0.1:1", "method": "GET",
    "url": "http://127.0.0.1:1/api/v1/public/content-manager/news?page=1&size=5",
    "request_body": b"", "accept_language": b"en", "status": 200,
    "response_url": "http://127.0.0.1:1/api/v1/public/content-manager/news?page=1&size=5",
    "response_body": b'[{"id": 1}]', "version": 1,
}


@pytest.mark.parametrize(("name", "other"), [
    ("agency", "mfa"), ("lang", "ru"), ("site", "http://127.0.0.1:2"), ("method", "POST"),
    ("url", DIGEST_ARGS["url"].replace("size=5", "size=6")), ("request_body", b"{}"),
    ("accept_language", b"kz"), ("status", 203), ("response_url", "http://127.0.0.1:1/x"),
    ("response_body", b'[{"id": 1} ]'), ("version", 2),
])
def test_any_difference_changes_the_digest(name: str, other: Any) -> None:
    assert page_digest(**DIGEST_ARGS) == page_digest(**DIGEST_ARGS)
    assert page_digest(**{**DIGEST_ARGS, name: other}) != page_digest(**DIGEST_ARGS)


def test_parts_cannot_run_into_each_other() -> None:
    one = {**DIGEST_ARGS, "agency": "mo", "lang": "den"}
    assert page_digest(**one) != page_digest(**{**DIGEST_ARGS, "agency": "mod", "lang": "en"})


HIGH = datetime(2026, 5, 1, 12, 0, tzinfo=ALMATY)
MEMO = PageMemo("mod", "en", "d1", newest=HIGH, oldest=HIGH - timedelta(hours=4), found=5,
                items=tuple(("mod", n, f"h{n}") for n in range(5)), version=1)


@pytest.mark.parametrize(("memo", "digest", "plan", "hit"), [
    (MEMO, "d1", PagingPlan(high_water=HIGH), True),
    (None, "d1", PagingPlan(high_water=HIGH), False),
    (MEMO, "d2", PagingPlan(high_water=HIGH), False),  # other bytes
    (PageMemo(**{**MEMO.__dict__, "version": 0}), "d1", PagingPlan(high_water=HIGH), False),
    # the walk's rule would go on: an older mark, a forced backfill, a --since further back
    (MEMO, "d1", PagingPlan(high_water=HIGH - timedelta(days=1)), False),
    (MEMO, "d1", PagingPlan(high_water=HIGH, forced_backfill=True, backfill_pages=2), False),
    (MEMO, "d1", PagingPlan(high_water=HIGH, since=HIGH - timedelta(days=1)), False),
    (MEMO, "d1", PagingPlan(high_water=None, backfill_pages=2), False),
])
def test_a_hit_is_the_same_bytes_ending_the_walk_by_its_own_rule(
    memo: PageMemo | None, digest: str, plan: PagingPlan, hit: bool
) -> None:
    assert memo_hit(memo, digest, plan) is hit


# --- crawls ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["agency", "site-wide", "graphql", "graphql site-wide"])
def test_a_quiet_page_1_is_recognised_by_its_bytes(tmp_path: Path, kind: str) -> None:
    how = {"site_wide": "site-wide" in kind, "graphql": "graphql" in kind}
    walk = (SITE_WIDE if how["site_wide"] else "mod", "en")
    with mock_site(("mod", "mfa")) as server:
        first = run(server, tmp_path, **how)
        assert first.summary.totals()["new"] > 0 and memos(tmp_path) == {}  # a backfill
        quiet = run(server, tmp_path, **how)  # quiet, extracted: its memo is kept
        assert quiet.extracted == 1 and list(memos(tmp_path)) == [walk]
        before = state(tmp_path)
        again = run(server, tmp_path, **how)
        without = run(server, tmp_path, memos=False, **how)
    assert again.extracted == 0  # recognised by its bytes
    assert without.extracted == 1
    assert again.counts() == quiet.counts() == without.counts()
    assert again.summary.totals()["unchanged"] == PAGE
    assert state(tmp_path) == before


def test_an_edit_on_the_site_bypasses_the_memo(tmp_path: Path) -> None:
    site = MockSite()
    ids = fill(site, "mod", 12)
    with serve_in_thread(site) as server:
        run(server, tmp_path)
        run(server, tmp_path)
        site.edit("mod", ids[-1], "en", title="Corrected", body="<p>Corrected.</p>")
        edited = run(server, tmp_path)
        # extracted, and page 2 too: the walk's rule goes on after a page with an edit
        assert edited.extracted == 2 and edited.summary.target("mod/en").updated == 1
        assert memos(tmp_path) == {}  # a page that was not quiet: its memo is gone
        run(server, tmp_path)  # quiet again: a memo of the edited page
        hit = run(server, tmp_path)
    assert hit.extracted == 0
    with archive_at(tmp_path) as archive:
        row = archive.get_item("mod", ids[-1], "en")
    assert row is not None and (row["title"], row["version"]) == ("Corrected", 2)


def test_a_new_item_is_stored_and_replaces_the_memo(tmp_path: Path) -> None:
    site = MockSite()
    fill(site, "mod", 12)
    with serve_in_thread(site) as server:
        run(server, tmp_path)
        run(server, tmp_path)
        old = memos(tmp_path)[("mod", "en")]
        new_id = site.publish("mod", title="New", body="<p>New.</p>",
                              created=START + timedelta(days=2))
        published = run(server, tmp_path)
        assert published.extracted == 2 and published.summary.target("mod/en").new == 1
        run(server, tmp_path)
        memo = memos(tmp_path)[("mod", "en")]
        hit = run(server, tmp_path)
    assert hit.extracted == 0
    assert memo["digest"] != old["digest"]
    assert new_id in [item_id for _, item_id, _ in json.loads(memo["items"])]


def test_a_memo_of_another_extraction_version_is_ignored(tmp_path: Path) -> None:
    with mock_site() as server:
        run(server, tmp_path)
        run(server, tmp_path)
        with mock.patch.object(page_memo, "EXTRACTION_VERSION", 2):
            newer = run(server, tmp_path)
            assert newer.extracted == 1
            assert memos(tmp_path)[("mod", "en")]["version"] == 2  # refreshed
            assert run(server, tmp_path).extracted == 0
        assert run(server, tmp_path).extracted == 1  # and back: version 2 is not this one


def test_an_item_another_writer_changed_makes_the_memo_unusable(tmp_path: Path) -> None:
    """A site-wide crawl (or a replay) stored an edit of an item that page 1 still shows in
    its old form: that page is extracted and stored as it would be without memos."""
    site = MockSite()
    newest = fill(site, "mod", 12)[-1]
    mine, plain = tmp_path / "memo", tmp_path / "plain"
    with serve_in_thread(site) as server:
        for data in (mine, plain):
            run(server, data)
            run(server, data, memos=data == mine)
            with archive_at(data) as archive:
                row = archive.get_item("mod", newest, "en")
                assert row is not None
                archive.save_items([NewsItem(
                    agency="mod", id=newest, lang="en", url=row["url"], title="Elsewhere",
                    published=require_iso(row["published"]), body_text="x", body_html="x")])
        assert newest in [i for _, i, _ in json.loads(memos(mine)[("mod", "en")]["items"])]
        again = run(server, mine)
        reference = run(server, plain, memos=False)
    assert again.extracted == reference.extracted == 2  # an edit on page 1: page 2 as well
    assert again.counts() == reference.counts()
    assert again.summary.target("mod/en").updated == 1  # the page's copy, as without memos
    assert state(mine) == state(plain)


@pytest.mark.parametrize("kill_after", [0, 1, 2, 3])
def test_a_killed_crawl_leaves_no_memo_of_items_it_did_not_store(
    tmp_path: Path, kill_after: int
) -> None:
    with mock_site(("mod", "mfa")) as server:
        mine, plain = tmp_path / "memo", tmp_path / "plain"
        for data in (mine, plain):
            run(server, data, agencies=("mod", "mfa"), langs=("en", "ru"))
            run(server, data, agencies=("mod", "mfa"), langs=("en", "ru"), memos=data == mine,
                kill_after=kill_after)
            assert unstored_memo_items(data) == []
        server.site.publish("mod", title="New", body="<p>New.</p>",
                            created=START + timedelta(days=2))
        for _ in range(2):
            again = run(server, mine, agencies=("mod", "mfa"), langs=("en", "ru"))
            reference = run(server, plain, agencies=("mod", "mfa"), langs=("en", "ru"),
                            memos=False)
            assert again.counts() == reference.counts()
    assert state(mine) == state(plain)
    assert unstored_memo_items(mine) == []


def test_a_backfill_walk_never_uses_memos(tmp_path: Path) -> None:
    with mock_site() as server:
        run(server, tmp_path)
        run(server, tmp_path)
        assert memos(tmp_path)
        forced = run(server, tmp_path, backfill="2")
    assert forced.extracted == 2  # both pages extracted: the walk's rule goes on past page 1


# --- any sequence of changes ------------------------------------------------------------------

STEPS = st.lists(st.one_of(
    st.tuples(st.just("publish"), st.sampled_from(("mod", "mfa"))),
    st.tuples(st.just("edit"), st.sampled_from(("mod", "mfa")), st.integers(0, 6)),
    st.tuples(st.just("crawl"), st.sampled_from(("agency", "site-wide"))),
    st.tuples(st.just("killed"), st.sampled_from(("agency", "site-wide")), st.integers(0, 3)),
), min_size=1, max_size=7)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_any_sequence_of_changes_and_crawls_stores_what_a_crawl_without_memos_does(
    steps: list[tuple[Any, ...]],
) -> None:
    site = MockSite()
    ids = {agency: fill(site, agency, 8, start=START + timedelta(minutes=n))
           for n, agency in enumerate(("mod", "mfa"))}
    with serve_in_thread(site) as server, tempfile.TemporaryDirectory() as tmp:
        mine, plain = Path(tmp, "memo"), Path(tmp, "plain")
        for data in (mine, plain):
            run(server, data, agencies=("mod", "mfa"), langs=("en",))
            run(server, data, site_wide=True)
        for step in [*steps, ("crawl", "agency"), ("crawl", "site-wide")]:
            if step[0] == "publish":
                ids[step[1]].append(site.publish(
                    step[1], title=f"news {len(ids[step[1]])}", body="<p>new</p>",
                    created=START + timedelta(days=1, hours=len(ids[step[1]]))))
            elif step[0] == "edit":
                site.edit(step[1], ids[step[1]][-1 - step[2]], "en",
                          title=f"edited {step}", body=f"<p>{step}</p>")
            else:
                how = {"site_wide": step[1] == "site-wide",
                       "kill_after": step[2] if step[0] == "killed" else None}
                agencies = ("mod", "mfa") if step[1] == "agency" else ()
                ours = run(server, mine, agencies=agencies, **how)
                theirs = run(server, plain, agencies=agencies, memos=False, **how)
                assert ours.counts() == theirs.counts(), step
                assert unstored_memo_items(mine) == []
        assert state(mine) == state(plain)


# --- the command ----------------------------------------------------------------------------


def test_the_crawl_command_reports_a_memo_hit_as_the_quiet_crawl_it_is(tmp_path: Path) -> None:
    site = MockSite()
    for agency in ("mod", "mfa"):
        fill(site, agency, 12)
    agencies, langs = ("mod", "mfa"), ("en", "ru")
    with serve_in_thread(site) as server:
        assert crawl(server, tmp_path, agencies=agencies, langs=langs).code == 0
        quiet = crawl(server, tmp_path, agencies=agencies, langs=langs, verbose=True)
        again = crawl(server, tmp_path, agencies=agencies, langs=langs, verbose=True)
    assert (quiet.code, again.code) == (0, 0), again.output
    assert "unchanged bytes" not in quiet.output
    assert again.output.count("page 1: 5 items, unchanged bytes") == 4  # every walk, a hit
    assert again.targets == quiet.targets
    assert again.summary["totals"] == quiet.summary["totals"]
    with archive_at(tmp_path) as archive:
        assert isinstance(archive, Archive)
        assert sorted(archive.db["page_memos"].rows_where(select="agency, lang"),
                      key=lambda r: (r["agency"], r["lang"])) == [
            {"agency": a, "lang": lang} for a in sorted(agencies) for lang in sorted(langs)]
