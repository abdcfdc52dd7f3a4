"""The mock gov.kz, exercised over HTTP on 127.0.0.1 the way the crawler will talk to it."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import urllib.error
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from crawl_helpers import NEWS
from mockgov_helpers import call, news

from crawler.items import NewsItem, item_url
from crawler.mockgov import Fault, MockServer, MockSite, serve_in_thread, token_headers
from crawler.mockgov.faults import FAR_DATE, POISON_FIRST_ID, POISON_JSON, RSS_PATH
from crawler.mockgov.serve import build_parser, build_site, wsgi_resource
from crawler.timeutil import ALMATY

T0 = datetime(2026, 2, 27, 10, 15, 30, tzinfo=ALMATY)
ROOT = Path(__file__).resolve().parent.parent


def gql(server: MockServer, query: str, variables: dict | None = None) -> tuple[int, dict]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    status, _, raw = call(
        server, "/graphql", method="POST", data=body, headers={"Content-Type": "application/json"}
    )
    return status, json.loads(raw)


def k6v1_cookie(server: MockServer, origin: str = "https://www.gov.kz") -> str:
    status, headers, _ = call(
        server,
        "/api/v1/public/_/c/k6",
        method="POST",
        data=b"{}",
        headers={"Origin": origin, "Content-Type": "application/json"},
    )
    assert status == 200
    return headers["Set-Cookie"].split(";")[0]


def k6v2_headers(server: MockServer) -> dict[str, str]:
    status, _, body = call(server, "/api/v2/_/c/k6", method="POST", data=b"{}")
    assert status == 200
    return json.loads(body)


@pytest.fixture
def site() -> MockSite:
    site = MockSite()
    site.add_agency(
        "mod",
        names={
            "ru": "Министерство обороны",
            "kk": "Қорғаныс министрлігі",
            "en": "Ministry of Defence",
        },
    )
    site.add_agency("mfa-berlin", parent="mod")
    for n in range(5):
        site.publish(
            "mod",
            title={"ru": f"Новость {n}", "kk": f"Жаңалық {n}", "en": f"News {n}"},
            body={"ru": f"<p>Текст {n}</p>", "kk": f"<p>Мәтін {n}</p>", "en": f"<p>Text {n}</p>"},
            created=T0 + timedelta(hours=n),
        )
    return site


@pytest.fixture
def server(site: MockSite):
    with serve_in_thread(site) as running:
        yield running


# --- the news list ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "pages"),
    [(2, [[4, 3], [2, 1], [0]]), (5, [[4, 3, 2, 1, 0]]), (100, [[4, 3, 2, 1, 0]])],
)
def test_pages_are_one_based_newest_first_and_end_with_an_empty_array(server, size, pages):
    for number, expected in enumerate(pages, 1):
        status, items = news(server, page=number, size=size, lang="en")
        assert status == 200
        assert [item["title"] for item in items] == [f"News {n}" for n in expected]
    assert news(server, page=len(pages) + 1, size=size) == (200, [])


def test_item_fields_look_like_gov_kz(server):
    _, [item, *_] = news(server, lang="ru")
    assert isinstance(item["id"], int) and item["id"] >= 1_200_000
    assert item["title"] == "Новость 4" and item["body"] == "<p>Текст 4</p>"
    assert item["created_date"] == "2026-02-27T14:15:30.000+05:00"
    assert re.fullmatch(r"/uploads/2026/2/27/[0-9a-f]{16}_original\.jpg", item["heropic"])
    assert item["projects"] == ["mod"] and "short_description" not in item


def test_whole_html_bodies_short_descriptions_and_zulu_dates(site, server):
    site.publish(
        "mod",
        title="Документ",
        body='<p><a href="/uploads/a.pdf">PDF</a></p>',
        created=T0 + timedelta(days=1),
        wrap_html=True,
        heropic=False,
        zulu=True,
        short_description="Кратко",
    )
    _, [item, *_] = news(server)
    assert (
        item["body"] == '<html><head></head><body><p><a href="/uploads/a.pdf">PDF</a></p>'
        "</body></html>"
    )
    assert item["created_date"] == "2026-02-28T05:15:30.000Z"
    assert item["heropic"] is None and item["short_description"] == "Кратко"


def test_ties_on_created_date_are_broken_by_id_descending(site, server):
    first = site.publish("mfa-berlin", title="A", body="a", created=T0)
    second = site.publish("mfa-berlin", title="B", body="b", created=T0)
    assert [i["id"] for i in news(server, "mfa-berlin")[1]] == [second, first]


def test_ids_come_from_one_global_counter(site):
    a = site.publish("mfa-berlin", title="A", body="a")
    b = site.publish("mod", title="B", body="b")
    assert b == a + 1 and a > max(i["id"] for i in site.items("mod", "ru") if i["id"] != b)


def test_size_is_clamped_to_100():
    site = MockSite.synthetic(1, 150)
    with serve_in_thread(site) as running:
        status, items = news(running, "test-agency-001", size=500)
        assert status == 200 and len(items) == 100
        assert news(running, "test-agency-001", page=2, size=500)[1][-1]["id"] == site.first_id


@pytest.mark.parametrize(
    "query",
    [{"page": 0}, {"size": 0}, {"page": "x"}, {"sort-by": "title:ASC"}, {"projects": "mod"}],
)
def test_bad_list_parameters_answer_400_json(server, query):
    base = {"sort-by": "created_date:DESC", "projects": "eq:mod", "page": 1, "size": 10}
    status, _, body = call(server, NEWS, query={**base, **query})
    assert status == 400 and json.loads(body)["error"] == "badRequest"


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "ru"),
        ("ru", "ru"),
        ("kk", "kk"),
        ("en", "en"),
        ("kk-KZ,ru;q=0.8", "kk"),
        ("en-US,en;q=0.9,kk;q=0.8", "en"),
        ("de,en;q=0.9", "ru"),
        ("ru-RU;q=0.1, en", "ru"),
    ],
)
def test_the_first_accept_language_tag_chooses_the_language(server, header, lang):
    titles = {"ru": "Новость 4", "kk": "Жаңалық 4", "en": "News 4"}
    assert news(server, lang=header)[1][0]["title"] == titles[lang]


def test_an_item_appears_only_in_the_languages_it_was_published_in(site, server):
    item_id = site.publish(
        "mod", title={"ru": "Только по-русски"}, body="<p>…</p>", created=T0 + timedelta(days=2)
    )
    assert news(server, lang="ru")[1][0]["id"] == item_id
    assert item_id not in [i["id"] for i in news(server, lang="kk")[1]]


def test_unknown_agency_gives_an_empty_array(server):
    assert news(server, "no-such-agency") == (200, [])


def test_without_a_project_filter_every_agency_is_listed(site, server):
    other = site.publish("mfa-berlin", title="B", body="b", created=T0 + timedelta(days=3))
    assert news(server, None)[1][0]["id"] == other


@pytest.mark.parametrize(
    "since", ["2026-02-27T12:15:30.000+05:00", "2026-02-27T07:15:30Z", "2026-02-27T12:15:30"]
)
def test_created_date_gt_keeps_only_newer_items(server, since):
    status, items = news(server, lang="en", created_date=f"gt:{since}")
    assert status == 200 and [i["title"] for i in items] == ["News 4", "News 3"]


def test_gt_an_items_own_created_date_excludes_it(site, server):
    site.publish("mfa-berlin", title="A", body="a")  # now, with microseconds
    [item] = news(server, "mfa-berlin")[1]
    assert news(server, "mfa-berlin", created_date=f"gt:{item['created_date']}") == (200, [])


@pytest.mark.parametrize("op", ["gte", "lt", "eq"])
def test_other_created_date_operators_answer_500(server, op):
    status, body = news(server, created_date=f"{op}:2026-02-27T12:15:30.000+05:00")
    assert status == 500 and body["error"] == "internalServerError"


def test_an_unencoded_plus_in_the_date_is_a_400(server):
    url = f"{NEWS}?projects=eq:mod&created_date=gt:2026-02-27T12:15:30.000+05:00"
    status, _, body = call(server, url)
    assert status == 400 and "created_date" in json.loads(body)["message"]


def test_wrong_method_is_405_json(server):
    status, _, body = call(server, NEWS, method="POST", data=b"{}")
    assert status == 405 and json.loads(body)["error"] == "methodNotAllowed"


def test_edits_show_in_the_api_for_that_language_only(site, server):
    item_id = site.items("mod", "ru")[2]["id"]
    site.edit("mod", item_id, "ru", title="Исправлено", body="<p>Новый текст</p>")
    _, items = news(server, lang="ru")
    assert (items[2]["title"], items[2]["body"]) == ("Исправлено", "<p>Новый текст</p>")
    assert items[2]["id"] == item_id and news(server, lang="en")[1][2]["title"] == "News 2"


@pytest.mark.parametrize(("slug", "lang"), [("mfa-berlin", "ru"), ("mod", "de")])
def test_editing_a_missing_item_raises(site, slug, lang):
    with pytest.raises(KeyError):
        site.edit(slug, site.items("mod", "ru")[0]["id"], lang, title="x")


@pytest.mark.parametrize("options", [{"title": "x", "langs": ("de",)}, {"title": {}}])
def test_publishing_needs_known_languages(site, options):
    with pytest.raises(ValueError, match="languages"):
        site.publish("mod", body="y", **options)


# --- detail, pages, robots ----------------------------------------------------------------------
def test_detail_returns_the_item_in_the_requested_language(site, server):
    item_id = site.items("mod", "en")[0]["id"]
    status, _, body = call(server, f"{NEWS}/{item_id}", headers={"Accept-Language": "kk"})
    assert status == 200 and json.loads(body) == site.item(item_id, "kk")
    assert json.loads(body)["title"] == "Жаңалық 4"


@pytest.mark.parametrize("item_id", ["1", "999999999"])
def test_detail_of_an_unknown_item_is_a_404_json(server, item_id):
    status, headers, body = call(server, f"{NEWS}/{item_id}")
    assert status == 404 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"] == "notFound"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/memleket/entities/mod/press/news?lang=ru",
        "/memleket/entities/mod/press/news/details/1200004?lang=en",
    ],
)
def test_public_pages_are_an_empty_react_shell(server, path):
    status, headers, body = call(server, path)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<div id="root"></div>' in body and "Новость".encode() not in body


@pytest.mark.parametrize(
    ("robots", "status", "text"),
    [
        ("User-agent: *\nAllow: /\n", 200, "Allow: /"),
        ("User-agent: *\nDisallow: /api/\n", 200, "Disallow: /api/"),
        (None, 404, "Not Found"),
    ],
)
def test_robots_txt_is_configurable(site, server, robots, status, text):
    site.robots_txt = robots
    got, _, body = call(server, "/robots.txt")
    assert got == status and text in body.decode()


# --- access control -----------------------------------------------------------------------------
REFUSALS = {"token": (403, "forbidden"), "k6v1": (400, "notAllowed"), "k6v2": (400, "notAllowed")}


def _credentials(scheme: str, server: MockServer) -> dict[str, str]:
    if scheme == "token":
        return token_headers()
    if scheme == "k6v1":
        return {"Cookie": k6v1_cookie(server)}
    if scheme == "k6v2":
        return k6v2_headers(server)
    return {}


@pytest.mark.parametrize("scheme", ["plain", "token", "k6v1", "k6v2"])
def test_each_access_scheme_refuses_without_and_accepts_with_credentials(site, server, scheme):
    site.set_access(scheme)
    status, body = news(server)
    if scheme == "plain":
        assert status == 200
    else:
        assert (status, body["error"]) == REFUSALS[scheme]
        detail = call(server, f"{NEWS}/{site.items('mod', 'ru')[0]['id']}")
        assert detail[0] == REFUSALS[scheme][0]
    status, items = news(server, headers=_credentials(scheme, server))
    assert status == 200 and len(items) == 5


def test_refusals_are_json_naming_not_allowed(site, server):
    site.set_access("k6v1")
    status, headers, body = call(server, NEWS, query={"projects": "eq:mod"})
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert "notAllowed" in body.decode()


@pytest.mark.parametrize(
    "headers",
    [
        {
            "token": "0B1C2D3E-4F50-6172-8394-A5B6C7D8E9F0",
            "hash": token_headers("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0")["hash"],
        },
        {
            "token": "11111111-2222-3333-4444-555555555555",
            "hash": token_headers("11111111-2222-3333-4444-666666666666")["hash"],
        },
        {"token": "11111111-2222-3333-4444-555555555555"},
        {"token": "not-a-token", "hash": "$2a$10$HxyKf0Cy3Ecnp874AXBXOe"},
    ],
)
def test_token_scheme_rejects_bad_tokens(site, server, headers):
    site.set_access("token")
    assert news(server, headers=headers)[0] == 403


@pytest.mark.parametrize(
    ("origin", "body"),
    [(None, b"{}"), ("https://evil.example", b"{}"), ("https://www.gov.kz", b"not json")],
)
def test_k6v1_handshake_needs_the_sites_origin_and_a_json_body(server, origin, body):
    headers = {"Origin": origin} if origin else {}
    status, _, raw = call(
        server, "/api/v1/public/_/c/k6", method="POST", data=body, headers=headers
    )
    assert status == 400 and json.loads(raw)["error"] == "notAllowed"


def test_k6v1_handshake_also_accepts_the_mocks_own_origin(site, server):
    site.set_access("k6v1")
    assert news(server, headers={"Cookie": k6v1_cookie(server, server.url)})[0] == 200


@pytest.mark.parametrize(("scheme", "wrong"), [("k6v1", "k6v2"), ("k6v2", "k6v1")])
def test_a_handshake_of_the_other_kind_is_not_accepted(site, server, scheme, wrong):
    site.set_access(scheme)
    assert news(server, headers=_credentials(wrong, server))[0] == 400


@pytest.mark.parametrize("scheme", ["k6v1", "k6v2"])
def test_handshakes_expire_after_n_news_requests(site, server, scheme):
    site.set_access(scheme)
    site.handshake_uses = 2
    credentials = _credentials(scheme, server)
    assert [news(server, headers=credentials)[0] for _ in range(3)] == [200, 200, 400]
    assert news(server, headers=_credentials(scheme, server))[0] == 200  # re-handshake


@pytest.mark.parametrize(("expire_on_switch", "after"), [(True, 400), (False, 200)])
def test_switching_the_scheme_can_expire_handshakes(site, server, expire_on_switch, after):
    site.expire_on_switch = expire_on_switch
    site.set_access("k6v2")
    credentials = k6v2_headers(server)
    assert news(server, headers=credentials)[0] == 200
    site.set_access("token")
    assert news(server, headers=credentials)[0] == 403
    site.set_access("k6v2")
    assert news(server, headers=credentials)[0] == after


def test_a_fault_switches_the_scheme_mid_run(site, server):
    switch = site.faults.add(Fault("switch_access", scheme="k6v1", after=2))
    assert [news(server)[0] for _ in range(4)] == [200, 200, 400, 400]
    assert site.access == "k6v1" and switch.applied == 1 and switch.seen == 4
    assert news(server, headers={"Cookie": k6v1_cookie(server)})[0] == 200


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="unknown access scheme"):
        MockSite(access="oauth")


# --- RSS ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["ru", "kk", "en"])
def test_rss_is_open_rss_2_with_item_page_links(site, server, lang):
    site.set_access("k6v1")  # the RSS needs no handshake
    status, headers, body = call(server, f"/api/v1/public/rss/mod/news/{lang}")
    assert status == 200 and "xml" in headers["Content-Type"]
    root = ElementTree.fromstring(body)
    assert root.tag == "rss" and root.get("version") == "2.0"
    items = root.findall("channel/item")
    expected = site.items("mod", lang)
    assert [i.findtext("title") for i in items] == [e["title"] for e in expected]
    first = items[0]
    assert first.findtext("link") == item_url("mod", expected[0]["id"], lang, server.url)
    assert first.findtext("guid") == first.findtext("link")
    assert parsedate_to_datetime(first.findtext("pubDate")) == T0 + timedelta(hours=4)
    assert first.findtext("description") == expected[0]["body"]


def test_rss_links_use_the_public_site_when_set(site, server):
    site.public_site = "https://www.gov.kz"
    _, _, body = call(server, "/api/v1/public/rss/mod/news/en")
    link = ElementTree.fromstring(body).findtext("channel/item/link")
    assert link.startswith("https://www.gov.kz/memleket/entities/mod/press/news/details/")


def test_rss_is_limited_and_404s_for_unknown_feeds(site, server):
    site.rss_limit = 2
    _, _, body = call(server, "/api/v1/public/rss/mod/news/ru")
    assert len(ElementTree.fromstring(body).findall("channel/item")) == 2
    assert call(server, "/api/v1/public/rss/nobody/news/ru")[0] == 404
    assert call(server, "/api/v1/public/rss/mod/news/de")[0] == 404


# --- GraphQL ----------------------------------------------------------------------------------
def test_graphql_projectdetails_lists_agencies_with_parents(site, server):
    status, answer = gql(
        server,
        "query Projects($size: Int, $page: Int) { projectdetails("
        '_size: $size, _page: $page, _lang: "en") { slug project_name '
        "parent_govorg { id } } }",
        {"size": 10, "page": 1},
    )
    assert status == 200
    rows = answer["data"]["projectdetails"]
    assert rows[0] == {"slug": "mod", "project_name": "Ministry of Defence", "parent_govorg": None}
    assert rows[1]["parent_govorg"] == {"id": site.agency("mod").org_id}


@pytest.mark.parametrize(
    ("size", "page", "slugs"), [(1, 1, ["mod"]), (1, 2, ["mfa-berlin"]), (1, 3, [])]
)
def test_graphql_projectdetails_pages(server, size, page, slugs):
    _, answer = gql(
        server, f'{{ projectdetails(_size: {size}, _page: {page}, _lang: "ru") {{ slug }} }}'
    )
    assert answer == {"data": {"projectdetails": [{"slug": s} for s in slugs]}}


def test_graphql_news_has_string_ids_and_filters_by_project(site, server):
    site.publish("mfa-berlin", title="Посольство", body="<p>…</p>", created=T0 + timedelta(days=9))
    _, answer = gql(
        server,
        'query { items: news(_size: 2, _page: 1, _lang: "kk", '
        'projects: "eq:mod") { id title created_date } }',
    )
    rows = answer["data"]["items"]
    assert [r["title"] for r in rows] == ["Жаңалық 4", "Жаңалық 3"]
    assert rows[0]["id"] == str(site.items("mod", "kk")[0]["id"])
    assert set(rows[0]) == {"id", "title", "created_date"}


def test_graphql_news_reads_arguments_from_variables(server):
    _, answer = gql(
        server,
        "query News($slug: String) { news(projects: $slug) { id title } }",
        {"slug": "mod", "_lang": "en", "_size": 1},
    )
    assert answer["data"]["news"][0]["title"] == "News 4"
    assert len(answer["data"]["news"]) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{ agencies { slug } }", 'Cannot query field "agencies"'),
        ('{ news(_lang: "de") { id } }', "_lang"),
        ("{ news(_size: 0) { id } }", "start at 1"),
        ("", "Syntax Error"),
    ],
)
def test_graphql_errors_are_reported_in_errors(server, query, message):
    _, answer = gql(server, query)
    assert "data" not in answer and message in answer["errors"][0]["message"]


def test_graphql_body_must_be_json(server):
    status, _, body = call(server, "/graphql", method="POST", data=b"query { news }")
    assert status == 400 and json.loads(body)["errors"]


# --- faults ---------------------------------------------------------------------------------------
def test_status_fault_fires_n_times_on_its_agency_only(site, server):
    fault = site.faults.add(Fault("status", status=500, times=2, agency="mod"))
    assert [news(server)[0] for _ in range(3)] == [500, 500, 200]
    assert news(server, "mfa-berlin")[0] == 200
    assert (fault.seen, fault.applied) == (3, 2)


def test_fault_after_lets_the_first_requests_through(site, server):
    site.faults.add(Fault("status", status=503, after=1, times=1))
    assert [news(server)[0] for _ in range(3)] == [200, 503, 200]


def test_always_faults_fire_until_removed(site, server):
    fault = site.faults.add(Fault("status", status=502, times=None))
    assert [news(server)[0] for _ in range(3)] == [502] * 3
    site.faults.remove(fault)
    assert news(server)[0] == 200


def test_faults_are_scoped_by_path(site, server):
    site.faults.add(Fault("status", status=500, times=None, path="/api/v1/public/rss/"))
    assert news(server)[0] == 200
    assert call(server, "/api/v1/public/rss/mod/news/ru")[0] == 500


def test_status_fault_can_send_retry_after(site, server):
    site.faults.add(Fault("status", status=503, retry_after=30))
    status, headers, _ = call(server, NEWS, query={"projects": "eq:mod"})
    assert status == 503 and headers["Retry-After"] == "30"
    assert "Retry-After" not in call(server, NEWS, query={"projects": "eq:mod"})[1]


def test_rate_limit_fault_answers_429_with_retry_after(site, server):
    site.faults.add(Fault("rate_limit", seconds=7))
    status, headers, body = call(server, NEWS, query={"projects": "eq:mod"})
    assert status == 429 and headers["Retry-After"] == "7"
    assert json.loads(body)["error"] == "tooManyRequests"


def test_truncate_fault_cuts_a_valid_body(site, server):
    full = call(server, NEWS, query={"projects": "eq:mod"})[2]
    site.faults.add(Fault("truncate", keep=0.5))
    status, headers, body = call(server, NEWS, query={"projects": "eq:mod"})
    assert status == 200 and full.startswith(body) and 0 < len(body) < len(full)
    assert int(headers["Content-Length"]) == len(body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_html_fault_answers_a_200_html_page_on_the_api(site, server):
    site.faults.add(Fault("html"))
    status, headers, body = call(server, NEWS, query={"projects": "eq:mod"})
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert body.lstrip().startswith(b"<!DOCTYPE html>")


@pytest.mark.parametrize("path", [NEWS, f"{NEWS}/"])
def test_rename_fault_changes_a_field_name(site, server, path):
    item_id = site.items("mod", "ru")[0]["id"]
    site.faults.add(Fault("rename", rename=("title", "name"), path=path))
    if path == NEWS:
        _, items = news(server)
        assert "title" not in items[0] and items[0]["name"] == "Новость 4"
    else:
        item = json.loads(call(server, f"{NEWS}/{item_id}")[2])
        assert "title" not in item and item["name"] == "Новость 4"


def test_envelope_fault_wraps_the_array(site, server):
    site.faults.add(Fault("envelope"))
    _, body = news(server)
    assert isinstance(body, dict) and len(body["content"]) == 5


def test_hang_then_answer_is_released_by_the_test(site, server):
    site.faults.add(Fault("hang", seconds=30))
    results: list[int] = []
    worker = threading.Thread(target=lambda: results.append(news(server)[0]))
    worker.start()
    assert site.faults.await_waiting(1)
    site.faults.release()
    worker.join(10)
    assert results == [200] and site.faults.waiting == 0


def test_hang_then_drop_closes_the_connection_without_an_answer(site, server):
    site.faults.add(Fault("hang", seconds=0.01, then="drop"))
    with pytest.raises((urllib.error.URLError, http.client.RemoteDisconnected, ConnectionError)):
        news(server)
    assert site.log.entries()[-1].status == 0
    assert news(server)[0] == 200


def test_stopping_the_server_releases_hanging_requests(site):
    running = serve_in_thread(site)
    site.faults.add(Fault("hang", seconds=30))
    results: list[int] = []
    worker = threading.Thread(target=lambda: results.append(news(running)[0]))
    worker.start()
    assert site.faults.await_waiting(1)
    running.stop()
    worker.join(10)
    assert results == [200]


def test_latency_fault_applies_to_every_request(site, server):
    latency = site.faults.add(Fault("latency", seconds=0.001, times=None, path="/"))
    assert news(server)[0] == 200 and call(server, "/robots.txt")[0] == 200
    assert latency.applied == 2


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "explode"},
        {"kind": "hang", "then": "retry"},
        {"kind": "hang", "seconds": 3600},
        {"kind": "status", "times": -1},
        {"kind": "status", "retry_after": -1},
        {"kind": "poison", "poison": ("number", "nope")},
    ],
)
def test_invalid_faults_are_refused(options):
    with pytest.raises(ValueError):
        Fault(**options)


def test_clearing_faults(site, server):
    site.faults.add(Fault("status", times=None))
    site.faults.clear()
    assert len(site.faults) == 0 and news(server)[0] == 200


# --- poison elements ----------------------------------------------------------------------------
def raw_news(server: MockServer, slug: str = "mod", **query: Any) -> bytes:
    status, _, body = call(server, NEWS, query={"projects": f"eq:{slug}", **query})
    assert status == 200, body
    return body


def good_ids(site: MockSite, slug: str = "mod", lang: str = "ru") -> list[int]:
    return [item["id"] for item in site.items(slug, lang)]


def test_each_poison_is_served_among_the_good_items(site, server):
    """One page, every poison: the good items all there, in order, each poison once, right
    after the first good item (the duplicate at the end), each fresh id not a real one."""
    fault = site.faults.add(Fault("poison", agency="mod"))
    raw = raw_news(server)
    page = json.loads(raw)
    good = good_ids(site)
    assert [e["id"] for e in page if isinstance(e, dict) and e.get("id") in good] == [
        *good, good[0]]  # the duplicate repeats the first
    assert page[0]["id"] == good[0] and page[-1] == page[0]
    names = [name for name, _ in fault.injected]
    assert names == list(POISON_JSON) and fault.applied == 1
    poisons = page[1:1 + len(POISON_JSON) - 1]  # all but the duplicate, in POISON_JSON order
    by_name = dict(zip(names, poisons, strict=False))
    assert by_name["number"] == 1
    assert isinstance(by_name["no_id"], dict) and "id" not in by_name["no_id"]
    assert by_name["bad_id"]["id"] == "abc"
    assert "\x07" in by_name["control_char"]["body"]
    assert "\ud800" in by_name["lone_surrogate"]["title"]
    assert by_name["far_date"]["created_date"] == FAR_DATE == "9999-12-31T23:59:59-12:00"
    fresh = [by_name[n]["id"] for n in ("control_char", "lone_surrogate", "far_date")]
    assert all(i >= POISON_FIRST_ID for i in fresh) and len(set(fresh)) == 3
    assert not set(fresh) & set(good)
    assert [i for name, i in fault.injected if name in ("control_char", "lone_surrogate",
                                                          "far_date")] == fresh
    # The raw bytes: both the control character and the surrogate are JSON escapes.
    assert b"\\u0007" in raw and b"\x07" not in raw
    assert b"\\ud800" in raw


@pytest.mark.parametrize("name", POISON_JSON)
def test_one_poison_by_name(site, server, name):
    fault = site.faults.add(Fault("poison", agency="mod", poison=name))
    page = json.loads(raw_news(server))
    good = good_ids(site)
    assert [name for name, _ in fault.injected] == [name]
    assert len(page) == len(good) + 1
    kept = [e for e in page if isinstance(e, dict) and e.get("id") in good]
    assert [e["id"] for e in kept] == (good + good[:1] if name == "duplicate" else good)
    assert kept[: len(good)] == site.items("mod", "ru")  # the good items are untouched
    element = page[-1] if name == "duplicate" else page[1]
    expected_id = {"number": None, "no_id": None, "bad_id": "abc", "duplicate": good[0]}
    if name in expected_id:
        assert fault.injected == [(name, expected_id[name])]
    if name in ("control_char", "lone_surrogate", "far_date"):
        assert element["id"] == fault.injected[0][1] >= POISON_FIRST_ID
        assert element["slug"] == f"poison-{name}" and element["projects"] == ["mod"]


def test_poison_ids_never_repeat(site, server):
    site.faults.add(Fault("poison", agency="mod", poison=("far_date",), times=None))
    first, second = (json.loads(raw_news(server))[1]["id"] for _ in range(2))
    assert first != second and min(first, second) >= POISON_FIRST_ID


def test_poison_is_scoped_and_spares_the_rest(site, server):
    site.publish("mfa-berlin", title="Посольство", body="<p>…</p>")
    fault = site.faults.add(Fault("poison", agency="mod", lang="en", poison=("number",)))
    assert 1 not in json.loads(raw_news(server, "mfa-berlin"))
    assert 1 not in news(server, lang="ru")[1]  # another language of the agency
    item_id = site.items("mod", "en")[0]["id"]
    assert json.loads(call(server, f"{NEWS}/{item_id}",  # a detail answer is not a list
                           headers={"Accept-Language": "en"})[2]) == site.item(item_id, "en")
    assert fault.applied == 0 and fault.injected == []
    assert news(server, lang="en")[1][1] == 1
    assert fault.applied == 1


def test_poison_leaves_empty_and_refused_pages_alone(site, server):
    """The end of a list stays `[]`, a refusal stays a refusal; the poison waits for a page
    with items (it is not used up)."""
    fault = site.faults.add(Fault("poison", agency="mod", poison=("number", "no_id")))
    assert news(server, page=2, size=10) == (200, [])
    site.set_access("k6v1")
    status, body = news(server)
    assert status == 400 and body["error"] == "notAllowed"
    assert fault.applied == 0
    status, page = news(server, headers={"Cookie": k6v1_cookie(server)})
    assert status == 200 and page[1] == 1 and "id" not in page[2]
    assert fault.applied == 1 and fault.seen == 3


def test_rss_bad_char_poisons_one_title(site, server):
    fault = site.faults.add(Fault("poison", path=RSS_PATH, agency="mod"))
    status, _, raw = call(server, "/api/v1/public/rss/mod/news/en")
    assert status == 200 and raw.count(b"\x0b") == 1
    with pytest.raises(ElementTree.ParseError):  # not well-formed XML any more
        ElementTree.fromstring(raw)
    titles = [i.findtext("title") for i in
              ElementTree.fromstring(raw.replace(b"\x0b", b"")).findall("channel/item")]
    expected = [item["title"] for item in site.items("mod", "en")]
    assert titles == [f"Bad  char: {expected[0]}", *expected[1:]]
    assert fault.injected == [("rss_bad_char", None)]
    # Other agencies' feeds, and JSON-only poisons on the RSS path, are left alone.
    assert b"\x0b" not in call(server, "/api/v1/public/rss/mfa-berlin/news/en")[2]
    json_only = site.faults.add(Fault("poison", path=RSS_PATH, poison=("number",)))
    ElementTree.fromstring(call(server, "/api/v1/public/rss/mod/news/en")[2])
    assert json_only.applied == 0


# --- connections --------------------------------------------------------------------------------
def raw_exchange(server: MockServer, request: bytes) -> bytes:
    """Send one raw request and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):  # b"": the server closed its side
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("path", ["/robots.txt", f"{NEWS}?projects=eq:mod", "/nowhere"])
def test_every_answer_is_http_1_1_with_a_length_and_closes_the_connection(server, path):
    answer = raw_exchange(server, f"GET {path} HTTP/1.1\r\nHost: mock\r\n"
                                  "Connection: keep-alive\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    assert status_line.startswith("HTTP/1.1 ")
    assert headers["connection"] == "close"  # even though the client asked to keep it
    assert int(headers["content-length"]) == len(body)  # and nothing follows the body


def test_a_client_that_reuses_connections_still_gets_every_answer(site, server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for _ in range(3):  # http.client reconnects when told the connection closes
            connection.request("GET", f"{NEWS}?projects=eq:mod")
            response = connection.getresponse()
            assert response.status == 200 and response.will_close
            assert len(json.loads(response.read())) == 5
    finally:
        connection.close()
    assert site.count(NEWS) == 3


@pytest.mark.parametrize("path", ["/robots.txt", f"{NEWS}?projects=eq:mod", "/nowhere"])
def test_keep_alive_answers_in_turn_on_one_connection(site, path):
    """keep_alive=True (the benchmarks): persistent HTTP/1.1, as a real web server keeps it;
    one socket carries every request and answer, each with its length, none says close."""
    with serve_in_thread(site, keep_alive=True) as running:
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        try:
            connection.request("GET", path)
            first = connection.getresponse()
            body = first.read()
            sock = connection.sock  # http.client keeps the socket only while it is open
            for _ in range(2):
                connection.request("GET", path)
                answer = connection.getresponse()
                assert answer.status == first.status and answer.read() == body
                assert not answer.will_close and connection.sock is sock
            assert first.getheader("Connection") is None
            assert int(first.getheader("Content-Length")) == len(body)
        finally:
            connection.close()
    assert site.count(path.partition("?")[0]) == 3


def test_keep_alive_still_closes_when_the_client_asks(site):
    with serve_in_thread(site, keep_alive=True) as running:
        answer = raw_exchange(running, f"GET {NEWS}?projects=eq:mod HTTP/1.1\r\nHost: mock\r\n"
                                       "Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 ")  # raw_exchange returned: the server closed


def test_keep_alive_is_a_command_line_flag():
    assert build_parser().parse_args(["--keep-alive"]).keep_alive is True
    assert build_parser().parse_args([]).keep_alive is False


def test_stop_returns_once_requests_in_flight_are_answered_and_logged(site):
    running = serve_in_thread(site)
    site.faults.add(Fault("latency", seconds=30))
    worker = threading.Thread(target=news, args=(running,))
    worker.start()
    assert site.faults.await_waiting(1)
    running.stop()  # releases the wait, then waits for the request thread
    assert [(e.path, e.status) for e in site.log.entries()] == [(NEWS, 200)]
    worker.join(10)


# --- the request log --------------------------------------------------------------------------
def test_log_counts_one_list_request_per_agency_and_language(site, server):
    site.reset_log()
    for slug in ("mod", "mfa-berlin"):
        for lang in ("ru", "kk", "en"):
            news(server, slug, lang=lang)
    call(server, f"{NEWS}/{site.items('mod', 'ru')[0]['id']}", headers={"Accept-Language": "en"})
    for slug in ("mod", "mfa-berlin"):
        for lang in ("ru", "kk", "en"):
            assert site.count(NEWS, agency=slug, lang=lang) == 1
    assert site.count(NEWS) == 6
    assert site.count(path_prefix=NEWS) == 7
    assert site.count(path_prefix=NEWS, agency="mod", lang="en") == 2
    assert site.count(method="POST") == 0 and site.count(status=200) == 7


def test_log_keeps_method_query_headers_status_and_time(site, server):
    site.set_access("k6v1")
    before = datetime.now(UTC)
    news(server, lang="kk", headers={"Cookie": "k6=wrong", "X-Other": "dropped"})
    [entry] = site.log.entries()
    assert (entry.method, entry.path, entry.status) == ("GET", NEWS, 400)
    assert entry.query["projects"] == "eq:mod" and entry.query["page"] == "1"
    assert entry.headers["accept-language"] == "kk" and entry.headers["cookie"] == "k6=wrong"
    assert "x-other" not in entry.headers
    assert entry.time >= before and entry.time.tzinfo is not None
    site.reset_log()
    assert len(site.log) == 0


def test_concurrent_requests_are_all_logged(site, server):
    threads = [threading.Thread(target=news, args=(server,)) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert site.count(NEWS, agency="mod") == 16


# --- building sites -------------------------------------------------------------------------------
def _seed(
    agency: str, item_id: int, lang: str, title: str, day: int | None, **extra: Any
) -> NewsItem:
    published = datetime(2026, 2, day, 9, 0, tzinfo=ALMATY) if day else None
    return NewsItem(
        agency,
        item_id,
        lang,
        item_url(agency, item_id, lang),
        title,
        published,
        incomplete=published is None,
        **extra,
    )


def test_from_seeds_keeps_real_ids_and_fills_in_languages():
    site = MockSite.from_seeds(
        [
            _seed("prokuror", 1_270_001, "en", "Council meeting", 27, body_text="Met.\nAgreed."),
            _seed("prokuror", 1_270_001, "ru", "Заседание совета", 27, body_text="Провели."),
            _seed("prokuror", 1_270_001, "en", "Council meeting (again)", 27),  # a duplicate
            _seed("primeminister", -42, "en", "Cabinet session", 20, body_html="<p>Cabinet</p>"),
            _seed("primeminister", -43, "en", "Cut off", None, body_text="Half a"),
        ]
    )
    assert [a.slug for a in site.agencies()] == ["prokuror", "primeminister"]
    [item] = site.items("prokuror", "en")
    assert item["id"] == 1_270_001 and item["title"] == "Council meeting"
    assert item["body"] == "<p>Met.</p><p>Agreed.</p>"
    assert site.items("prokuror", "ru")[0]["title"] == "Заседание совета"
    assert site.items("prokuror", "kk")[0]["title"] == "[kk] Council meeting"
    cabinet, cut = site.items("primeminister", "en")
    assert cabinet["id"] > 1_270_001 and cut["id"] > 1_270_001
    assert site.items("primeminister", "ru")[0]["title"] == "[ru] Cabinet session"
    assert cut["created_date"] == "2026-02-20T08:59:00.000+05:00"  # before the oldest
    assert site.publish("prokuror", title="New", body="x") > max(cabinet["id"], cut["id"])


def test_the_shipped_seeds_serve_in_three_languages():
    pytest.importorskip("crawler.extract.snapshot")
    site = build_site(build_parser().parse_args(["--seeds", str(ROOT / "seeds")]))
    assert site.agencies()
    slug = site.agencies()[0].slug
    assert (
        len(site.items(slug, "en"))
        == len(site.items(slug, "ru"))
        == len(site.items(slug, "kk"))
        > 0
    )


def test_synthetic_sites_are_deterministic_and_interleave_ids():
    one, two = MockSite.synthetic(3, 4, seed=1), MockSite.synthetic(3, 4, seed=1)
    assert one.items("test-agency-002", "kk") == two.items("test-agency-002", "kk")
    assert one.items("test-agency-002", "en") != MockSite.synthetic(3, 4, seed=2).items(
        "test-agency-002", "en"
    )
    ids = sorted(
        i["id"]
        for slug in ("test-agency-001", "test-agency-002", "test-agency-003")
        for i in one.items(slug, "ru")
    )
    assert ids == list(range(one.first_id, one.first_id + 12))
    assert [i["id"] - one.first_id for i in one.items("test-agency-002", "ru")] == [10, 7, 4, 1]
    titles = " ".join(i["title"] for i in one.items("test-agency-001", "kk"))
    assert re.search("[а-яәғқңөұүһі]", titles)


def test_synthetic_scale_site_with_2000_agencies():
    site = MockSite.synthetic(2000, 50)
    assert len(site.agencies()) == 2000 and site.agencies()[-1].slug == "test-agency-2000"
    with serve_in_thread(site) as running:
        status, items = news(running, "test-agency-1234", size=100)
        assert status == 200 and len(items) == 50
        # An id of an agency nobody listed yet is still found by the detail endpoint.
        item_id = site.first_id + 49 * 2000 + 1999
        status, _, body = call(running, f"{NEWS}/{item_id}")
        assert status == 200 and json.loads(body)["projects"] == ["test-agency-2000"]
        _, answer = gql(running, "{ projectdetails(_size: 5000, _page: 1) { slug } }")
        assert len(answer["data"]["projectdetails"]) == 2000


def test_command_line_options_build_the_site():
    site = build_site(
        build_parser().parse_args(
            [
                "--synthetic",
                "3",
                "--items",
                "2",
                "--access",
                "k6v2",
                "--latency-ms",
                "5",
                "--handshake-uses",
                "4",
                "--public-site",
                "https://www.gov.kz",
            ]
        )
    )
    assert len(site.agencies()) == 3 and len(site.items("test-agency-003", "en")) == 2
    assert (site.access, site.handshake_uses, site.public_site) == ("k6v2", 4, "https://www.gov.kz")
    [latency] = list(site.faults)
    assert (latency.kind, latency.seconds, latency.times, latency.path) == (
        "latency",
        0.005,
        None,
        "/",
    )


# --- serving ------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", ""])
def test_only_loopback_hosts_are_served(host):
    with pytest.raises(ValueError, match="loopback"):
        serve_in_thread(MockSite(), host=host)


def test_localhost_is_served_on_127_0_0_1_and_stop_closes_the_port(site):
    with serve_in_thread(site, host="localhost") as running:
        assert running.url.startswith("http://127.0.0.1:")
        assert news(running)[0] == 200
    with pytest.raises(urllib.error.URLError):
        news(running)


def test_wsgi_resource_mounts_the_app_in_twisted(site):
    from twisted.python.threadpool import ThreadPool
    from twisted.web.wsgi import WSGIResource

    class Reactor:  # the resource only needs a thread pool; no reactor gets installed here
        def getThreadPool(self) -> ThreadPool:  # noqa: N802 - Twisted's name
            return ThreadPool()

    resource = wsgi_resource(site, reactor=Reactor())
    assert isinstance(resource, WSGIResource)
