"""The reader's web pages: home, agency, item (with its edit history), search, errors.

Pure rendering: plain values from the archive in, a whole UTF-8 HTML document out; this module
knows neither the archive nor Twisted (scheduler/site_pages.py reads and serves). Every piece of
text from outside is escaped; item bodies, although the archive stores them sanitized, are run
through the same allowlist again before they are shown, so a row edited by hand (the archive is
a public, writable SQLite file) cannot put markup on the page. The pages have no script at all;
the Content-Security-Policy allows nothing but their one style sheet, by hash, and images.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from crawler.items import LANGS, press_page_url
from crawler.sanitize import sanitize_html, text_to_html, truncate
from crawler.timeutil import ALMATY, isoformat, parse_iso
from scheduler.status_page import csp_hash
from scheduler.worddiff import Op, Segment, changed, word_diff

# Group headings of the home page, in the order shown (crawler/agencies.py KINDS).
KIND_TITLES = {
    "government": "Government",
    "ministry": "Ministries",
    "agency": "Agencies",
    "committee": "Committees",
    "department": "Departments",
    "office": "Offices",
    "akimat": "Akimats",
    "embassy": "Embassies",
    "consulate": "Consulates",
    "mission": "Missions",
    "court": "Courts",
    "other": "Other",
}
LANG_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}
FEED_FORMATS = (  # extension, MIME type of the <link rel="alternate">, label
    ("atom", "application/atom+xml", "Atom"),
    ("rss", "application/rss+xml", "RSS"),
    ("json", "application/feed+json", "JSON Feed"),
)
# An unchanged run longer than this, between two changes, is shortened to its two ends.
CONTEXT_CHARS = 160

# The status page's look (scheduler/status_page.py), plus what these pages add: wrapping of
# long words and URLs (break-word, not anywhere, which would squeeze table cells to a letter),
# bodies whose images fit and whose wide tables scroll inside the body at 400 px, diff colours.
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; overflow-wrap: break-word; }
time { white-space: nowrap; }
nav.top { margin-bottom: 1em; }
h1 { font-size: 1.6em; margin: .3em 0; }
h2 { font-size: 1.25em; margin: 1.2em 0 .4em; }
.list { list-style: none; padding: 0; margin: 0; }
.list li { border-bottom: 1px solid #ddd; padding: .3em .5em; }
small, .meta { color: #555; }
.lang { font: 12px monospace; border: 1px solid #bbb; border-radius: 3px; padding: 0 .3em; }
.tabs a, .tabs strong { display: inline-block; padding: .2em .6em; border: 1px solid #ddd; }
.tabs strong { background: #eee; }
.body { max-width: 48em; overflow-x: auto; }
.body img { max-width: 100%; height: auto; }
.body table { border-collapse: collapse; }
.body td, .body th { border: 1px solid #ddd; padding: .2em .4em; }
.diff { white-space: pre-wrap; max-width: 48em; }
ins { background: #dafbe1; text-decoration: none; }
del { background: #ffebe9; }
.notice { background: #fdecea; padding: .5em; }
form.search input[type=search] { width: 16em; max-width: 100%; }
"""


# Images: item bodies show gov.kz's pictures (absolute http/https links); `data:` admits the
# empty favicon that keeps browsers from asking for /favicon.ico.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src 'none'; style-src {csp_hash(STYLE)}; "
    "img-src data: https: http:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class AgencyEntry:
    """What the pages know of one agency: the registry's and the archive's view combined."""

    slug: str
    names: Mapping[str, str] = field(default_factory=dict)
    kind: str = "other"
    enabled: bool = False
    items: int = 0

    def name(self, lang: str = "en") -> str:
        for candidate in (lang, "en", "ru", "kk"):
            if self.names.get(candidate):
                return self.names[candidate]
        return self.slug


@dataclass(frozen=True)
class FeedLink:
    path: str  # under /feeds/, e.g. "mod/en.atom"
    mime: str
    title: str

    @property
    def url(self) -> str:
        return "/feeds/" + quote(self.path)


# --- small pieces ---------------------------------------------------------------------------


def agency_url(slug: str) -> str:
    return "/agency/" + quote(slug, safe="")


def item_url(agency: str, item_id: int, lang: str | None = None) -> str:
    url = f"/item/{quote(agency, safe='')}/{int(item_id)}"
    return url + ("?" + urlencode({"lang": lang}) if lang else "")


def search_query(query: str, agency: str = "", lang: str = "") -> str:
    """The query string of a search (empty filters left out)."""
    pairs = [(k, v) for k, v in (("q", query), ("agency", agency), ("lang", lang)) if v]
    return urlencode(pairs)


def feed_links(agency: AgencyEntry, langs: Iterable[str]) -> list[FeedLink]:
    """The agency's feeds, all languages first, then one per language, in every format."""
    links = []
    groups = [(agency.slug, agency.name("en"))]
    groups += [(f"{agency.slug}/{lang}", f"{agency.name(lang)} ({lang})")
               for lang in _ordered(langs)]
    for rel, title in groups:
        for ext, mime, label in FEED_FORMATS:
            links.append(FeedLink(f"{rel}.{ext}", mime, f"{title}, {label}"))
    return links


def _ordered(langs: Iterable[str]) -> list[str]:
    found = set(langs)
    return [lang for lang in LANGS if lang in found] + sorted(found - set(LANGS))


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _web_link(url: object) -> str | None:
    """`url` if it is an http(s) address (a stored URL goes into an href only then)."""
    text = str(url or "")
    return text if text.startswith(("https://", "http://")) else None


def local_time(value: object) -> str:
    """An archive date (ISO 8601) as Almaty time in a <time> element; '' when there is none."""
    when = parse_iso(value) if not isinstance(value, datetime) else value
    if when is None:
        return ""
    local = when.astimezone(ALMATY)
    return (f'<time datetime="{_e(isoformat(local))}">'
            f'{local.strftime("%Y-%m-%d %H:%M")}</time>')


def _lang_badge(lang: str) -> str:
    return f'<span class="lang" title="{_e(LANG_NAMES.get(lang, lang))}">{_e(lang)}</span>'


def _search_form(query: str = "", agency: str = "", lang: str = "",
                 agencies: Sequence[AgencyEntry] = ()) -> str:
    parts = ['<form class="search" method="get" action="/search" role="search">',
             '<label for="q">Search the news</label> ',
             f'<input type="search" id="q" name="q" value="{_e(query)}">']
    if agencies:
        options = ['<option value="">every agency</option>']
        options += [f'<option value="{_e(a.slug)}"{" selected" if a.slug == agency else ""}>'
                    f"{_e(truncate(a.name('en'), 60))}</option>" for a in agencies]
        parts.append('<label for="agency">in</label> <select id="agency" name="agency">'
                     + "".join(options) + "</select>")
    langs = ['<option value="">any language</option>']
    langs += [f'<option value="{code}"{" selected" if code == lang else ""}>{_e(name)}</option>'
              for code, name in LANG_NAMES.items()]
    parts.append('<label for="lang">language</label> <select id="lang" name="lang">'
                 + "".join(langs) + "</select>")
    parts.append(' <button type="submit">Search</button></form>')
    return "\n".join(parts)


def _document(title: str, body: str, *, head: str = "") -> bytes:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<link rel="icon" href="data:,">
{head}<style>{STYLE}</style>
</head>
<body>
<nav class="top"><a href="/">govkz-monitor</a> · <a href="/search">search</a> ·
<a href="/status">status</a> · <a href="/opml">OPML</a> ·
<a href="/feeds/all.atom">all.atom</a></nav>
{body}
</body>
</html>
""".encode("utf-8", "replace")  # "replace": a lone surrogate costs itself, not the page


# --- the pages ------------------------------------------------------------------------------


def render_home(agencies: Sequence[AgencyEntry], *, notice: str | None = None) -> bytes:
    """`/`: the search box, then the agencies grouped by kind, each with its item count."""
    groups: dict[str, list[AgencyEntry]] = {}
    for agency in agencies:
        kind = agency.kind if agency.kind in KIND_TITLES else "other"
        groups.setdefault(kind, []).append(agency)
    sections = []
    for kind, title in KIND_TITLES.items():
        members = sorted(groups.get(kind, []), key=lambda a: (a.name("en").casefold(), a.slug))
        if not members:
            continue
        rows = "\n".join(
            f'<li><a href="{_e(agency_url(a.slug))}">{_e(a.name("en"))}</a> '
            f"<small>{_e(a.slug)} · {a.items} item{'' if a.items == 1 else 's'}</small></li>"
            for a in members)
        sections.append(f'<section id="{kind}"><h2>{_e(title)} <small>({len(members)})</small>'
                        f'</h2>\n<ul class="list">\n{rows}\n</ul></section>')
    total = sum(a.items for a in agencies)
    body = [
        "<h1>gov.kz press news</h1>",
        f"<p>{len(agencies)} agencies, {total} items archived. Feeds: "
        '<a href="/opml">OPML</a>, <a href="/feeds/all.atom">all agencies (Atom)</a>.</p>',
    ]
    if notice:
        body.append(f'<p class="notice">{_e(notice)}</p>')
    body.append(_search_form())
    body += sections or ["<p>No agencies yet.</p>"]
    return _document("govkz-monitor", "\n".join(body))


def render_agency(agency: AgencyEntry, items: Sequence[Mapping[str, Any]],
                  lang_counts: Mapping[str, int], feed_langs: Iterable[str]) -> bytes:
    """`/agency/{slug}`: names, gov.kz press pages, feeds (and their autodiscovery links),
    the latest items in every language."""
    feeds = feed_links(agency, feed_langs)
    head = "".join(f'<link rel="alternate" type="{f.mime}" title="{_e(f.title)}" '
                   f'href="{_e(f.url)}">\n' for f in feeds)
    names = "".join(
        f'<li>{_lang_badge(lang)} <span lang="{lang}">{_e(agency.names[lang])}</span></li>'
        for lang in _ordered(agency.names) if agency.names.get(lang))
    press = " · ".join(f'<a href="{_e(press_page_url(agency.slug, lang))}" hreflang="{lang}">'
                       f"{_e(LANG_NAMES[lang])}</a>" for lang in LANGS)
    counts = ", ".join(f"{lang_counts[lang]} {_e(lang)}" for lang in _ordered(lang_counts))
    feed_rows = []
    for start in range(0, len(feeds), len(FEED_FORMATS)):
        group = feeds[start:start + len(FEED_FORMATS)]
        label = group[0].path.rsplit(".", 1)[0]
        links = " ".join(f'<a href="{_e(f.url)}" type="{f.mime}">{_e(f.path.rsplit(".", 1)[1])}'
                         "</a>" for f in group)
        feed_rows.append(f"<li>{_e(label)}: {links}</li>")
    rows = "\n".join(_item_row(row) for row in items)
    body = f"""<h1>{_e(agency.name("en"))}</h1>
<p class="meta">{_e(agency.slug)} · {_e(KIND_TITLES.get(agency.kind, "Other"))} ·
{agency.items} items{f" ({counts})" if counts else ""}</p>
<ul class="list">{names}</ul>
<p>Press page on gov.kz: {press}</p>
<h2>Feeds</h2>
<ul class="list">{"".join(feed_rows)}</ul>
<h2>Latest items</h2>
{f'<ul class="list">{rows}</ul>' if rows else "<p>No items archived yet.</p>"}
"""
    return _document(agency.name("en"), body, head=head)


def _item_row(row: Mapping[str, Any]) -> str:
    lang = str(row["lang"])
    edited = " · edited" if (row.get("version") or 1) > 1 else ""
    return (f'<li>{_lang_badge(lang)} <a href="{_e(item_url(row["agency"], row["id"], lang))}" '
            f'lang="{_e(lang)}">{_e(row["title"])}</a> '
            f"<small>{local_time(row.get('published'))}{edited}</small></li>")


def render_item(agency: AgencyEntry, languages: Mapping[str, Mapping[str, Any]], lang: str,
                versions: Sequence[Mapping[str, Any]]) -> bytes:
    """`/item/{agency}/{id}?lang=`: the item in `lang` (a key of `languages`), tabs for its
    other languages, and its edit history (`versions` of that language, oldest first) as word
    diffs between consecutive versions."""
    item = languages[lang]
    tabs = " ".join(
        f"<strong>{_e(LANG_NAMES.get(code, code))}</strong>" if code == lang else
        f'<a href="{_e(item_url(agency.slug, item["id"], code))}" hreflang="{_e(code)}">'
        f"{_e(LANG_NAMES.get(code, code))}</a>"
        for code in _ordered(languages))
    source = _web_link(item.get("url"))
    body_html = sanitize_html(str(item.get("body_html") or ""))
    if not body_html:
        body_html = text_to_html(str(item.get("body_text") or ""))
    flags = " · incomplete copy (cut off in a saved page)" if item.get("incomplete") else ""
    home = f'<a href="{_e(agency_url(agency.slug))}">{_e(agency.name("en"))}</a>'
    body = f"""<p class="meta">{home}</p>
<nav class="tabs" aria-label="languages">{tabs}</nav>
<article lang="{_e(lang)}">
<h1>{_e(item["title"])}</h1>
<p class="meta">{local_time(item.get("published")) or "no date"} (Almaty time){flags}
{f' · <a href="{_e(source)}">on gov.kz</a>' if source else ""}</p>
<div class="body">{body_html}</div>
</article>
<h2>Edit history</h2>
{render_history(versions)}
"""
    return _document(str(item["title"]), body)


def render_history(versions: Sequence[Mapping[str, Any]]) -> str:
    """The versions newest first, each with the word diff of its title and text against the
    version before it."""
    if len(versions) <= 1:
        seen = local_time(versions[0].get("seen_at")) if versions else ""
        return f"<p>No edits since it was first seen{' ' + seen if seen else ''}.</p>"
    entries: list[str] = []
    ordered = sorted(versions, key=lambda v: v["version"])
    for before, after in reversed(list(zip(ordered, ordered[1:], strict=False))):
        parts = []
        for label, key in (("Title", "title"), ("Text", "body_text")):
            segments = word_diff(str(before.get(key) or ""), str(after.get(key) or ""))
            if changed(segments):
                parts.append(f'<h3>{label}</h3>\n<p class="diff">{render_diff(segments)}</p>')
        if not parts:
            parts.append("<p>Only the markup changed.</p>")
        entries.append(
            f"<details{' open' if not entries else ''}><summary>Version {int(after['version'])}"
            f", seen {local_time(after.get('seen_at'))}</summary>\n" + "\n".join(parts)
            + "</details>")
    first = ordered[0]
    entries.append(f"<p>Version {int(first['version'])}, first seen "
                   f"{local_time(first.get('seen_at'))}.</p>")
    return "\n".join(entries)


def render_diff(segments: Sequence[Segment]) -> str:
    """Segments as escaped text in <ins>/<del>; long unchanged runs shortened to their ends."""
    out = []
    for n, segment in enumerate(segments):
        text = segment.text
        if segment.op is Op.EQUAL:
            out.append(_e(_elide(text, first=n == 0, last=n == len(segments) - 1)))
        else:
            tag = "ins" if segment.op is Op.INSERT else "del"
            out.append(f"<{tag}>{_e(text)}</{tag}>")
    return "".join(out)


def _elide(text: str, *, first: bool, last: bool) -> str:
    keep = CONTEXT_CHARS // 2
    if len(text) <= CONTEXT_CHARS:
        return text
    head = "" if first else text[:keep]
    tail = "" if last else text[-keep:]
    return f"{head} … {tail}"


def render_search(query: str, hits: Sequence[Mapping[str, Any]], *, agency: str = "",
                  lang: str = "", agencies: Sequence[AgencyEntry] = (),
                  error: str | None = None) -> bytes:
    """`/search?q=&agency=&lang=`: the form, the hits (language, agency, date, snippet) and the
    search's own feed."""
    names = {a.slug: a.name("en") for a in agencies}
    head = ""
    body = ["<h1>Search</h1>", _search_form(query, agency, lang, agencies)]
    if error:
        body.append(f'<p class="notice">{_e(error)}</p>')
    elif query.strip():
        feed = "/search.atom?" + search_query(query, agency, lang)
        head = (f'<link rel="alternate" type="application/atom+xml" '
                f'title="{_e("Search: " + query)}" href="{_e(feed)}">\n')
        body.append(f'<p>{len(hits)} result{"" if len(hits) == 1 else "s"} for '
                    f"<strong>{_e(query)}</strong>. "
                    f'<a href="{_e(feed)}">Subscribe to this search (Atom)</a></p>')
        rows = []
        for hit in hits:
            hit_lang, slug = str(hit["lang"]), str(hit["agency"])
            snippet = hit.get("snippet")
            if snippet is None:
                snippet = truncate(str(hit.get("summary") or hit.get("body_text") or ""), 240)
            rows.append(
                f'<li>{_lang_badge(hit_lang)} <a href="{_e(item_url(slug, hit["id"], hit_lang))}"'
                f' lang="{_e(hit_lang)}">{_e(hit["title"])}</a><br>'
                f'<small><a href="{_e(agency_url(slug))}">{_e(names.get(slug, slug))}</a> · '
                f"{local_time(hit.get('published'))}</small>"
                f'<br><span lang="{_e(hit_lang)}">{_e(snippet)}</span></li>')
        if rows:
            body.append('<ol class="list">\n' + "\n".join(rows) + "\n</ol>")
    return _document(f"Search: {query}" if query else "Search", "\n".join(body), head=head)


def render_error(code: int, title: str, message: str) -> bytes:
    """A 404 / 400 / 503 page in the site's look, with a way back home."""
    body = (f"<h1>{_e(title)}</h1>\n<p>{_e(message)}</p>\n"
            f'<p>HTTP {int(code)}. <a href="/">Back to the list of agencies</a></p>')
    return _document(title, body)
