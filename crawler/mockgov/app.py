"""The mock gov.kz as a plain WSGI application: news API, access control, RSS, GraphQL, pages.

What it imitates is gov.kz as README "Crawling gov.kz" describes it (the access paths of
crawler/access.py, the JSON API of crawler/extract/api.py). Every request goes: classify (agency,
language) -> faults -> route -> access check (news API only) -> handler -> fault manglers -> request
log.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import format_datetime
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit
from wsgiref.util import application_uri
from xml.etree import ElementTree

import bcrypt

from crawler.items import GOVKZ_SITE, LANGS, item_url, press_page_url
from crawler.mockgov.faults import (
    MANGLERS,
    WAITS,
    Dialect,
    DropConnection,
    Fault,
    Target,
    mangle,
    poison_body,
    refusal,
)
from crawler.mockgov.site import LoggedRequest, MockSite, Story
from crawler.timeutil import require_iso, utcnow

TOKEN_SALT = "$2a$10$HxyKf0Cy3Ecnp874AXBXOe"
TOKEN_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
K6_COOKIE = "k6"
K6_HEADER = "x-k6-key"
NEWS_API = "/api/v1/public/content-manager/news"
MAX_PAGE_SIZE = 100
JSON_TYPE = "application/json;charset=UTF-8"
# Request headers kept in the log: the ones a gov.kz client's behaviour is judged by.
LOGGED_HEADERS = ("accept-language", "origin", "referer", "user-agent", "content-type", "cookie",
                  "token", "hash", K6_HEADER, "if-none-match", "if-modified-since")
SHELL = (
    b'<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>Egov.kz</title>'
    b'<meta name="viewport" content="width=device-width,initial-scale=1"></head><body>'
    b'<noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div>'
    b'<script src="/static/js/main.chunk.js"></script></body></html>'
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # the mock's own URL, as the client addressed it
    dialect: Dialect = field(default_factory=Dialect)  # the site's, set by MockApp

    @property
    def lang(self) -> str:
        """gov.kz's rule: the first Accept-Language tag wins; anything else means Russian
        (with the "kz" dialect, "kk" is anything else)."""
        first = self.headers.get("accept-language", "").split(",")[0].split(";")[0]
        return self.dialect.language(first.split("-")[0])

    def cookie(self, name: str) -> str | None:
        try:
            jar = SimpleCookie(self.headers.get("cookie", ""))
        except CookieError:
            return None
        return jar[name].value if name in jar else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(data: object, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False).encode()
    return Response(status, body, [("Content-Type", JSON_TYPE)])


def api_error(status: int, code: str, message: str) -> Response:
    return json_response({"error": code, "status": status, "message": message}, status)


def token_headers(token: str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0") -> dict[str, str]:
    """Valid `token` + `hash` headers, as gov.kz's web client sends them (for tests and demos)."""
    hashed = bcrypt.hashpw(token.encode(), TOKEN_SALT.encode()).decode()
    return {"token": token, "hash": hashed}


class MockApp:
    """WSGI callable serving one MockSite."""

    def __init__(self, site: MockSite) -> None:
        self.site = site
        # bcrypt costs ~50 ms per check: remember the pairs already verified.
        self._tokens: dict[tuple[str, str], bool] = {}
        self._tokens_lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("GET", re.compile(re.escape(NEWS_API)), self.news_list),
            ("GET", re.compile(re.escape(NEWS_API) + r"/(\d+)"), self.news_detail),
            ("POST", re.compile(r"/api/v1/public/_/c/k6"), self.handshake_v1),
            ("POST", re.compile(r"/api/v2/_/c/k6"), self.handshake_v2),
            ("GET", re.compile(r"/api/v1/public/rss/([^/]+)/news/([^/]+)"), self.rss),
            ("POST", re.compile(r"/graphql"), self.graphql),
            ("GET", re.compile(r"/robots\.txt"), self.robots),
            ("GET", re.compile(r"/|/memleket(?:/.*)?"), self.page),
        ]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = _read_request(environ)
        request.dialect = self.site.dialect
        target = self._target(request)
        response: Response | None = None
        try:
            response = self._respond(request, target)
        finally:  # a dropped connection is logged too, with status 0
            self.site.log.record(LoggedRequest(
                request.method, request.path, request.query,
                {k: v for k, v in request.headers.items() if k in LOGGED_HEADERS},
                response.status if response else 0, utcnow(), target.agency, target.lang,
            ))
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
        return [b"" if request.method == "HEAD" else response.body]

    # --- pipeline -----------------------------------------------------------------------------
    def _target(self, request: Request) -> Target:
        agency = lang = None
        path = request.path
        if path == NEWS_API:
            projects = request.query.get("projects", "")
            agency, lang = (projects[3:] if projects.startswith("eq:") else None), request.lang
        elif m := re.fullmatch(re.escape(NEWS_API) + r"/(\d+)", path):
            agency, lang = self.site.agency_of(int(m[1])), request.lang
        elif m := re.fullmatch(r"/api/v1/public/rss/([^/]+)/news/([^/]+)", path):
            agency, lang = m[1], m[2]
        elif m := re.match(r"/memleket/entities/([^/]+)", path):
            agency, lang = m[1], request.query.get("lang")
        return Target(request.method, path, agency, lang)

    def _respond(self, request: Request, target: Target) -> Response:
        fired = self.site.faults.take(target)
        for fault in fired:
            if fault.kind == "switch_access":
                self.site.set_access(fault.scheme)
        for fault in fired:
            if fault.kind in WAITS:
                self.site.faults.wait(fault.seconds)
                if fault.kind == "hang" and fault.then == "drop":
                    raise DropConnection(request.path)
        for fault in fired:
            if answer := refusal(fault):
                status, headers, body = answer
                return Response(status, body, headers)
        response = self._route(request)
        for fault in fired:
            if fault.kind in MANGLERS:
                response.body = mangle(fault, response.body)
            elif fault.kind == "poison":
                self._poison(fault, response)
        return response

    def _poison(self, fault: Fault, response: Response) -> None:
        content_type = dict(response.headers).get("Content-Type", "")
        body = None
        if response.status == 200:
            body = poison_body(fault, response.body, content_type, self.site.faults.poison_ids)
        if body is None:  # a refused or empty page: the poison waits for a real one
            self.site.faults.void(fault)
        else:
            response.body = body

    def _route(self, request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        allowed = False
        for route_method, pattern, handler in self._routes:
            if m := pattern.fullmatch(request.path):
                if route_method == method:
                    return handler(request, *m.groups())
                allowed = True
        if allowed:
            return api_error(405, "methodNotAllowed", f"{request.method} not allowed here")
        if request.path.startswith(("/api/", "/graphql")):
            return api_error(404, "notFound", "no such endpoint")
        return Response(404, b"Not Found", [("Content-Type", "text/plain")])

    # --- access control -----------------------------------------------------------------------
    def _refuse(self, request: Request) -> Response | None:
        """The refusal gov.kz's API gateway answers under the current scheme, or None."""
        scheme = self.site.access
        if scheme == "plain":
            return None
        if scheme == "token":
            if self._token_ok(request.headers.get("token", ""), request.headers.get("hash", "")):
                return None
            return api_error(403, "forbidden", "valid token and hash headers required")
        if scheme == "k6v1":
            granted = self.site.use_grant("k6v1", request.cookie(K6_COOKIE))
        else:
            granted = self.site.use_grant("k6v2", request.headers.get(K6_HEADER))
        return None if granted else api_error(400, "notAllowed", "request is notAllowed")

    def _token_ok(self, token: str, hashed: str) -> bool:
        if not TOKEN_RE.match(token) or not hashed.startswith(TOKEN_SALT):
            return False
        with self._tokens_lock:
            known = self._tokens.get((token, hashed))
        if known is None:
            known = bcrypt.checkpw(token.encode(), hashed.encode())
            with self._tokens_lock:
                if len(self._tokens) > 10_000:
                    self._tokens.clear()
                self._tokens[(token, hashed)] = known
        return known

    def handshake_v1(self, request: Request) -> Response:
        # gov.kz's own origin; the mock also accepts its own, for clients that derive the
        # Origin header from the base URL they were given.
        origins = {GOVKZ_SITE, request.base_url, _origin(self.site.public_site)} - {None}
        if request.headers.get("origin") not in origins:
            return api_error(400, "notAllowed", "handshake from a foreign origin is notAllowed")
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return api_error(400, "notAllowed", "handshake body must be a JSON object")
        value = self.site.issue_grant("k6v1")
        response = json_response({"status": "ok"})
        response.headers.append(("Set-Cookie", f"{K6_COOKIE}={value}; Path=/; HttpOnly"))
        return response

    def handshake_v2(self, request: Request) -> Response:
        return json_response({K6_HEADER: self.site.issue_grant("k6v2")})

    # --- news API -----------------------------------------------------------------------------
    def news_list(self, request: Request) -> Response:
        if refused := self._refuse(request):
            return refused
        q = request.query
        sort = q.get("sort-by", "created_date:DESC")
        if sort not in ("created_date:DESC", "created_date:ASC"):
            return api_error(400, "badRequest", f"unsupported sort-by {sort!r}")
        projects = q.get("projects")
        if projects is not None and not projects.startswith("eq:"):
            return api_error(400, "badRequest", "projects filter must be eq:<slug>")
        try:
            page, size = int(q.get("page", "1")), int(q.get("size", "10"))
        except ValueError:
            return api_error(400, "badRequest", "page and size must be integers")
        base = self.site.dialect.page_base  # 1 as on gov.kz; 0 as one 2026 client pages
        if page < base or size < 1:
            return api_error(400, "badRequest", f"page starts at {base}, size at 1")
        size = min(size, MAX_PAGE_SIZE)
        after = None
        if "created_date" in q:
            op, _, value = q["created_date"].partition(":")
            if op != "gt":  # as observed on gov.kz: only gt works, gte and others fail
                return api_error(500, "internalServerError", "Internal Server Error")
            try:
                after = require_iso(value)
            except ValueError:
                return api_error(400, "badRequest", f"bad created_date {value!r}")
        stories = self.site.select(projects[3:] if projects else None, request.lang,
                                   after=after, ascending=sort.endswith("ASC"))
        chunk = stories[(page - base) * size: (page - base + 1) * size]
        # `projects` in the site's shape: the site-wide list (no projects=) is filed by it.
        return json_response([self.site.story_json(story, request.lang) for story in chunk])

    def news_detail(self, request: Request, item_id: str) -> Response:
        if refused := self._refuse(request):
            return refused
        item = self.site.item(int(item_id), request.lang)
        if item is None:
            return api_error(404, "notFound", f"news {item_id} not found")
        return json_response(item)

    # --- RSS, GraphQL, pages ------------------------------------------------------------------
    def rss(self, request: Request, slug: str, lang: str) -> Response:
        agency = self.site.agency(slug)
        if agency is None or lang not in LANGS:
            return api_error(404, "notFound", f"no rss for {slug}/{lang}")
        site = self.site.public_site or request.base_url
        rss = ElementTree.Element("rss", version="2.0")
        channel = ElementTree.SubElement(rss, "channel")
        _sub(channel, "title", agency.names.get(lang, slug))
        _sub(channel, "link", press_page_url(slug, lang, site))
        _sub(channel, "description", agency.names.get(lang, slug))
        _sub(channel, "language", lang)
        for story in self.site.select(slug, lang)[: self.site.rss_limit]:
            text = story.texts[lang]
            entry = ElementTree.SubElement(channel, "item")
            link = item_url(slug, story.id, lang, site)
            _sub(entry, "title", text.title)
            _sub(entry, "link", link)
            _sub(entry, "guid", link).set("isPermaLink", "true")
            _sub(entry, "pubDate", format_datetime(story.created))
            _sub(entry, "description", text.body)
        body = ElementTree.tostring(rss, encoding="utf-8", xml_declaration=True)
        return Response(200, body, [("Content-Type", "application/rss+xml; charset=utf-8")])

    def graphql(self, request: Request) -> Response:
        try:
            payload = json.loads(request.body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return json_response({"errors": [{"message": "POST body must be a JSON object"}]},
                                 400)
        return json_response(run_graphql(self.site, payload))

    def robots(self, request: Request) -> Response:
        if self.site.robots_txt is None:
            return Response(404, b"Not Found", [("Content-Type", "text/plain")])
        return Response(200, self.site.robots_txt.encode(),
                        [("Content-Type", "text/plain; charset=utf-8")])

    def page(self, request: Request) -> Response:
        # The real site is a React app: every page is the same shell, the news come from the API.
        return Response(200, SHELL, [("Content-Type", "text/html; charset=utf-8")])


def create_app(site: MockSite) -> MockApp:
    return MockApp(site)


def _read_request(environ: dict) -> Request:
    headers = {key[5:].replace("_", "-").lower(): value
               for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE") and environ.get("CONTENT_LENGTH"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), 1 << 20)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length else b""
    # WSGI hands the path over as latin-1 decoded bytes.
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace") or "/"
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                          keep_blank_values=True).items()}
    return Request(environ.get("REQUEST_METHOD", "GET").upper(), path, query, headers, body,
                   application_uri(environ).rstrip("/"))


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _sub(parent: ElementTree.Element, tag: str, text: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag)
    element.text = text
    return element


# --- GraphQL: just enough of it for the two queries gov.kz clients use -------------------------
# No parser: the root field, its alias and arguments are read with regular expressions, and a
# field is "selected" when its name occurs in the rest of the query.
_ROOT_RE = re.compile(r"\{\s*(?:(\w+)\s*:\s*)?(\w+)\s*(?:\(([^)]*)\))?")
_ARG_RE = re.compile(r'(\w+)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|\$(\w+)|(-?\d+)|(\w+))')
PROJECT_FIELDS = ("slug", "project_name", "parent_govorg")
NEWS_FIELDS = ("id", "slug", "title", "body", "created_date", "heropic", "short_description",
               "projects")
NEWS_FILTERS = ("projects", "project", "_project", "slug", "_slug")


def run_graphql(site: MockSite, payload: dict) -> dict:
    """The answer to a GraphQL request body: {"data": ...} or {"errors": [...]}."""
    query, variables = payload.get("query"), payload.get("variables") or {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        return _gql_error("Must provide query string.")
    root = _ROOT_RE.search(query)
    if root is None:
        return _gql_error("Syntax Error: Expected Name, found <EOF>.")
    alias, name, arg_text = root[1], root[2], root[3] or ""
    args = {key: value for key, value in variables.items() if key.startswith("_")}
    for key, text, var, number, word in _ARG_RE.findall(arg_text):
        args[key] = (variables.get(var) if var else int(number) if number
                     else text if text or not word else word)
    selection = query[root.end():]
    code = args.get("_lang", "ru")
    if code not in (*LANGS, "kz"):
        return _gql_error(f'Invalid value "{code}" for argument "_lang".')
    lang = site.dialect.language(str(code))  # as the API: a code the site lacks is Russian
    base = site.dialect.page_base
    try:
        size, page = int(args.get("_size", 10)), int(args.get("_page", 1))
    except (TypeError, ValueError):
        return _gql_error("_size and _page must be integers.")
    if size < 1 or page < base:
        return _gql_error("_size and _page start at 1." if base else
                          "_size starts at 1, _page at 0.")
    if name == "projectdetails":
        if page < 1:  # the directory pages from 1 whatever the news list does
            return _gql_error("_page starts at 1.")
        rows = [_project_row(site, slug, lang) for slug in
                [a.slug for a in site.agencies()][(page - 1) * size: page * size]]
        fields: tuple[str, ...] = PROJECT_FIELDS
    elif name == "news":
        if not site.dialect.graphql_news:
            return _gql_error("news: request is notAllowed")
        slug = next((str(args[k]) for k in NEWS_FILTERS if args.get(k)), None)
        slug = slug[3:] if slug and slug.lower().startswith("eq:") else slug
        size = min(size, MAX_PAGE_SIZE)
        stories = site.select(slug, lang)[(page - base) * size: (page - base + 1) * size]
        rows = [_news_row(story, lang) for story in stories]
        fields = NEWS_FIELDS
    else:
        return _gql_error(f'Cannot query field "{name}" on type "Query".')
    wanted = [f for f in fields if re.search(rf"\b{f}\b", selection)] or list(fields)
    return {"data": {alias or name: [{f: row.get(f) for f in wanted} for row in rows]}}


def _project_row(site: MockSite, slug: str, lang: str) -> dict:
    agency = site.agency(slug)
    assert agency is not None
    parent = site.agency(agency.parent) if agency.parent else None
    return {"slug": slug, "project_name": agency.names.get(lang, slug),
            "parent_govorg": {"id": parent.org_id} if parent else None}


def _news_row(story: Story, lang: str) -> dict:
    row = story.to_json(lang)
    row["id"] = str(row["id"])  # GraphQL's ID type: gov.kz sends the id as a string here
    row["body"] = row["body"] or None  # GraphQL answers null where there is no body
    return row


def _gql_error(message: str) -> dict:
    return {"errors": [{"message": message}]}
