"""What the daemon knows about each agency, as an HTML page for people and as JSON.

Pure rendering: AgencyStatus values in, text out. The server asks a StatusProvider for the values,
so this module knows neither the archive nor the scheduler. Every piece of text that comes from
outside (agency names, error messages, the query) is escaped; the page also ships a
Content-Security-Policy that only allows its own inline script and style, by hash.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import PurePosixPath
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from crawler.timeutil import isoformat, localize, utcnow


@dataclass(frozen=True)
class AgencyStatus:
    slug: str
    name: str
    enabled: bool
    langs: Sequence[str] = ()
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    items: int = 0
    next_crawl: datetime | None = None
    consecutive_failures: int = 0
    # Paths relative to the feeds directory, e.g. "astana/ru.atom".
    feeds: Sequence[str] = ()

    @property
    def state(self) -> str:
        if not self.enabled:
            return "disabled"
        if self.consecutive_failures:
            return "failing"
        return "ok" if self.last_success else "never"


@runtime_checkable
class StatusProvider(Protocol):
    def agencies_status(self) -> list[AgencyStatus]: ...

    def health(self) -> tuple[bool, str]: ...


def filter_agencies(agencies: list[AgencyStatus], query: str) -> list[AgencyStatus]:
    """The agencies whose name or slug contains `query` (case-insensitive); all when empty."""
    needle = query.strip().casefold()
    if not needle:
        return list(agencies)
    return [a for a in agencies if needle in _search_text(a)]


def feed_url(path: str) -> str:
    return "/feeds/" + quote(path)


def status_json(agencies: list[AgencyStatus], *, now: datetime | None = None) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return isoformat(value) if value else None

    return {
        "generated_at": isoformat(now or utcnow()),
        "agencies": [
            {
                "slug": a.slug,
                "name": a.name,
                "enabled": a.enabled,
                "state": a.state,
                "langs": list(a.langs),
                "last_success": when(a.last_success),
                "last_error": a.last_error,
                "last_error_at": when(a.last_error_at),
                "items": a.items,
                "next_crawl": when(a.next_crawl),
                "consecutive_failures": a.consecutive_failures,
                "feeds": [{"path": p, "url": feed_url(p)} for p in a.feeds],
            }
            for a in agencies
        ],
    }


def relative(when: datetime, now: datetime) -> str:
    """'5 min ago' / 'in 2 h': coarse on purpose, the exact time is in the ISO text next to it."""
    seconds = int((when - now).total_seconds())
    span = abs(seconds)
    if span < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if span >= size:
            amount = f"{span // size} {unit}"
            break
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


# Filters the table rows as the user types. It only reads and sets the `hidden` attribute, so it
# needs no style permissions; the form still submits ?q= for the server-side filter without JS.
SCRIPT = """
(function () {
  var box = document.getElementById("q");
  var table = document.getElementById("agencies");
  var shown = document.getElementById("shown");
  if (!box || !table) { return; }
  var rows = table.querySelectorAll("tbody tr");
  function apply() {
    var needle = box.value.trim().toLowerCase();
    var count = 0;
    rows.forEach(function (row) {
      var hit = !needle || (row.getAttribute("data-search") || "").indexOf(needle) !== -1;
      row.hidden = !hit;
      if (hit) { count += 1; }
    });
    if (shown) { shown.textContent = String(count); }
  }
  box.addEventListener("input", apply);
  apply();
})();
"""

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .5em; text-align: left; vertical-align: top; }
tr.failing td { background: #fdecea; }
tr.disabled td { color: #888; }
.error { font-family: monospace; white-space: pre-wrap; max-width: 40em; }
"""


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# `img-src data:` admits the empty data: favicon, which keeps browsers from requesting
# /favicon.ico (a 404 in the console).
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_csp_hash(SCRIPT)}; style-src {_csp_hash(STYLE)}; "
    "img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def render_status_html(
    agencies: list[AgencyStatus], *, query: str = "", total: int | None = None,
    now: datetime | None = None,
) -> str:
    """The status page; `agencies` is already filtered by `query`, `total` counts all of them."""
    now = now or utcnow()
    total = len(agencies) if total is None else total
    rows = "\n".join(_row(a, now) for a in agencies)
    q = escape(query)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>govkz-monitor status</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head>
<body>
<h1>govkz-monitor status</h1>
<p>Generated {_time(now, now)}. <a href="/status.json">JSON</a> ·
<a href="/opml">OPML</a> · <a href="/feeds/all.atom">all.atom</a> ·
<a href="/metrics">metrics</a></p>
<form method="get" action="/status" role="search">
<label for="q">Filter by name</label>
<input type="search" id="q" name="q" value="{q}" autocomplete="off">
<button type="submit">Filter</button>
</form>
<p>Showing <span id="shown">{len(agencies)}</span> of {total} agencies.</p>
<table id="agencies">
<thead><tr><th>Agency</th><th>State</th><th>Items</th><th>Last success</th>
<th>Last error</th><th>Next crawl</th><th>Feeds</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<script>{SCRIPT}</script>
</body>
</html>
"""


def render_index_html() -> str:
    return """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>govkz-monitor</title>
<link rel="icon" href="data:,">
</head>
<body>
<h1>govkz-monitor</h1>
<ul>
<li><a href="/status">Status of every agency</a></li>
<li><a href="/opml">OPML list of all feeds</a></li>
<li><a href="/feeds/all.atom">All news (Atom)</a></li>
</ul>
</body>
</html>
"""


def _row(a: AgencyStatus, now: datetime) -> str:
    error = ""
    if a.last_error:
        at = f" ({_time(a.last_error_at, now)})" if a.last_error_at else ""
        failures = ""
        if a.consecutive_failures:
            failures = f"<br>{a.consecutive_failures} failure(s) in a row"
        error = f'<div class="error">{escape(a.last_error)}</div>{at}{failures}'
    feeds = " ".join(
        f'<a href="{escape(feed_url(p))}">{escape(PurePosixPath(p).name)}</a>' for p in a.feeds
    )
    langs = escape(", ".join(a.langs))
    return (
        f'<tr class="{a.state}" data-search="{escape(_search_text(a))}">'
        f"<td>{escape(a.name)}<br><small>{escape(a.slug)}"
        f"{' · ' + langs if langs else ''}</small></td>"
        f"<td>{a.state}</td>"
        f"<td>{a.items}</td>"
        f"<td>{_time(a.last_success, now) if a.last_success else 'never'}</td>"
        f"<td>{error}</td>"
        f"<td>{_time(a.next_crawl, now) if a.next_crawl else '—'}</td>"
        f"<td>{feeds}</td></tr>"
    )


def _time(when: datetime | None, now: datetime) -> str:
    if when is None:
        return ""
    when = localize(when)
    iso = isoformat(when)
    return f'<time datetime="{iso}" title="{iso}">{iso} ({relative(when, now)})</time>'


def _search_text(a: AgencyStatus) -> str:
    # Lower-cased the same way on both sides as far as JS allows (toLowerCase vs casefold differ
    # only for a few letters such as ß, which agency names do not use).
    return f"{a.name} {a.slug}".casefold()
