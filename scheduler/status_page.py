"""What the daemon knows about each agency, as an HTML page for people and as JSON.

Pure rendering: AgencyStatus values and an Overview in, text out. The server asks a
StatusProvider for the values, so this module knows neither the archive nor the scheduler.
Every piece of text that comes from outside (agency names, error messages, incidents, the
query) is escaped; the page also ships a Content-Security-Policy that only allows its own
inline script and style, by hash (the sparklines are inline SVG with presentation attributes,
which need no style permission).

Times are shown in gov.kz local time (Asia/Almaty) with a relative hint ("3 h ago", "in 12
min"); the machine-readable <time datetime> keeps the value as given. Below 700 px the agency
table becomes one card per agency, each cell labelled, so nothing runs off a phone's screen.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from pathlib import PurePosixPath
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from crawler.timeutil import ALMATY, isoformat, localize, utcnow
from scheduler.health import Health

DEFAULT_MODE = "per-agency"  # how the daemon crawls, when its provider does not say
INCIDENTS_FEED = "/feeds/incidents.atom"
SPARK_DAYS = 30


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
    # (lang, URL) of the agency's press page on gov.kz, per language crawled.
    press: Sequence[tuple[str, str]] = ()
    # Items published per day, oldest first (the sparkline); () when unknown.
    daily: Sequence[int] = ()

    @property
    def state(self) -> str:
        if not self.enabled:
            return "disabled"
        if self.consecutive_failures:
            return "failing"
        return "ok" if self.last_success else "never"


@dataclass(frozen=True)
class Overview:
    """The summary line and the latest incidents (ArchiveStatus.overview)."""

    targets: Mapping[str, int]  # targets by state: ok, failing, never
    items_today: int  # published today, gov.kz local day
    items_week: int  # published in the last 7 local days, today included
    health: Health
    mode: str = DEFAULT_MODE
    mode_reason: str | None = None  # why the daemon crawls in that mode (one line)
    access: str | None = None  # the access strategy of the newest crawl that got in
    last_cycle: datetime | None = None  # the newest crawl of any target
    started: datetime | None = None  # the daemon's start; None: no daemon (`serve`)
    serving_since: datetime | None = None  # this process's server
    incidents: Sequence[Mapping[str, Any]] = ()  # rows of `incidents`, newest first
    days: Sequence[date] = ()  # the sparklines' days, oldest first

    @property
    def daemon(self) -> bool:
        return self.started is not None


@runtime_checkable
class StatusProvider(Protocol):
    def agencies_status(self) -> list[AgencyStatus]: ...

    def health(self) -> Health | tuple[bool, str]: ...


def filter_agencies(agencies: list[AgencyStatus], query: str) -> list[AgencyStatus]:
    """The agencies whose name or slug contains `query` (case-insensitive); all when empty."""
    needle = query.strip().casefold()
    if not needle:
        return list(agencies)
    return [a for a in agencies if needle in _search_text(a)]


def feed_url(path: str) -> str:
    return "/feeds/" + quote(path)


def _iso(value: datetime | None) -> str | None:
    return isoformat(value) if value else None


def overview_json(o: Overview, now: datetime) -> dict[str, Any]:
    return {
        "targets": dict(o.targets),
        "items_today": o.items_today,
        "items_week": o.items_week,
        "mode": o.mode,
        "mode_reason": o.mode_reason,
        "daemon": o.daemon,
        "access": o.access,
        "last_cycle": _iso(o.last_cycle),
        "started": _iso(o.started),
        "uptime_seconds": int((now - o.started).total_seconds()) if o.started else None,
        "health": o.health.to_json(),
        "incidents": [
            {key: row.get(key) for key in ("id", "at", "agency", "kind", "message")}
            for row in o.incidents
        ],
        "incidents_feed": INCIDENTS_FEED,
        "days": [d.isoformat() for d in o.days],
    }


def status_json(agencies: list[AgencyStatus], *, now: datetime | None = None,
                overview: Overview | None = None) -> dict[str, Any]:
    now = now or utcnow()
    data: dict[str, Any] = {"generated_at": isoformat(now)}
    if overview is not None:
        data["summary"] = overview_json(overview, now)
    data["agencies"] = [
        {
            "slug": a.slug,
            "name": a.name,
            "enabled": a.enabled,
            "state": a.state,
            "langs": list(a.langs),
            "last_success": _iso(a.last_success),
            "last_error": a.last_error,
            "last_error_at": _iso(a.last_error_at),
            "items": a.items,
            "next_crawl": _iso(a.next_crawl),
            "consecutive_failures": a.consecutive_failures,
            "feeds": [{"path": p, "url": feed_url(p)} for p in a.feeds],
            "press": [{"lang": lang, "url": url} for lang, url in a.press],
            "daily": list(a.daily),
        }
        for a in agencies
    ]
    return data


def relative(when: datetime, now: datetime) -> str:
    """'5 min ago' / 'in 2 h': coarse on purpose, the exact time is next to it. Only the past
    is "just now": a crawl due in 20 s is "in < 1 min", never a thing that happened."""
    seconds = int((when - now).total_seconds())
    span = abs(seconds)
    if span < 60:
        return "in < 1 min" if seconds > 0 else "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if span >= size:
            amount = f"{span // size} {unit}"
            break
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def duration(delta: timedelta) -> str:
    """An uptime: '3 d 4 h', '2 h 5 min', '7 min'."""
    minutes = max(0, int(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


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
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; overflow-wrap: anywhere; }
h1 { font-size: 1.6em; margin: .3em 0; }
h2 { font-size: 1.2em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .5em; text-align: left; vertical-align: top; }
tr.failing td { background: #fdecea; }
tr.disabled td { color: #888; }
#agencies tr[hidden] { display: none; }  /* the filter's, also over the cards' display */
time { white-space: nowrap; }
.error { font-family: monospace; white-space: pre-wrap; max-width: 40em; }
.summary { display: flex; flex-wrap: wrap; gap: .3em 1.2em; padding: .5em; margin: 0;
  background: #f4f6f8; border-radius: 4px; list-style: none; }
.summary li { white-space: nowrap; }
.health-fail { color: #a40000; font-weight: bold; }
.incidents { padding-left: 1.2em; }
.incidents li { margin: .2em 0; }
.kind { font: 12px monospace; border: 1px solid #bbb; border-radius: 3px; padding: 0 .3em; }
.spark { display: block; }
small { color: #555; }
input[type=search] { max-width: 100%; }
@media (max-width: 700px) {
  body { margin: .6em; }
  #agencies, #agencies tbody, #agencies tr, #agencies td { display: block; width: auto; }
  #agencies thead { display: none; }
  #agencies tr { border: 1px solid #ddd; border-radius: 4px; margin: 0 0 .6em; }
  #agencies td { border: 0; padding: .15em .5em; }
  #agencies td[data-label]::before { content: attr(data-label) ": "; color: #555; }
  time { white-space: normal; }
}
"""


def csp_hash(source: str) -> str:
    """The CSP source that admits exactly this inline style or script (its SHA-256)."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# `img-src data:` admits the empty data: favicon, which keeps browsers from requesting
# /favicon.ico (a 404 in the console).
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {csp_hash(SCRIPT)}; style-src {csp_hash(STYLE)}; "
    "img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

COLUMNS = ("Agency", "State", "Items", "30 days", "Last success", "Last error", "Next crawl",
           "Feeds")


def render_status_html(
    agencies: list[AgencyStatus], *, query: str = "", total: int | None = None,
    now: datetime | None = None, overview: Overview | None = None,
) -> str:
    """The status page; `agencies` is already filtered by `query`, `total` counts all of them."""
    now = now or utcnow()
    total = len(agencies) if total is None else total
    rows = "\n".join(_row(a, now) for a in agencies)
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    q = escape(query)
    top = _summary(overview, now) + _incidents(overview, now) if overview else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>govkz-monitor status</title>
<link rel="icon" href="data:,">
<link rel="alternate" type="application/atom+xml" title="incidents" href="{INCIDENTS_FEED}">
<style>{STYLE}</style>
</head>
<body>
<h1>govkz-monitor status</h1>
<p>Generated {_time(now, now)}, times in Almaty. <a href="/status.json">JSON</a> ·
<a href="/opml">OPML</a> · <a href="/feeds/all.atom">all.atom</a> ·
<a href="{INCIDENTS_FEED}">incidents.atom</a> · <a href="/metrics">metrics</a> ·
<a href="/healthz">healthz</a></p>
{top}<h2>Agencies</h2>
<form method="get" action="/status" role="search">
<label for="q">Filter by name</label>
<input type="search" id="q" name="q" value="{q}" autocomplete="off">
<button type="submit">Filter</button>
</form>
<p>Showing <span id="shown">{len(agencies)}</span> of {total} agencies.</p>
<table id="agencies">
<thead><tr>{head}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
<script>{SCRIPT}</script>
</body>
</html>
"""


def _summary(o: Overview, now: datetime) -> str:
    t = {state: int(o.targets.get(state, 0)) for state in ("ok", "failing", "never")}
    health_class = "health-fail" if not o.health.healthy else ""
    if o.started is not None:
        daemon = f"daemon up {escape(duration(now - o.started))}"
    else:
        daemon = "serve only: no daemon in this process"
    parts = [
        f'<li class="{health_class}">health: {escape(o.health.status)}</li>',
        f"<li>targets: {t['ok']} ok, {t['failing']} failing, {t['never']} never</li>",
        f"<li>items: {o.items_today} today, {o.items_week} this week</li>",
        f"<li>mode: {escape(o.mode)}"
        + (f" <small>({escape(o.mode_reason)})</small>" if o.mode_reason else "") + "</li>",
        f"<li>access: {escape(o.access or '—')}</li>",
        f"<li>last cycle: {_time(o.last_cycle, now) if o.last_cycle else 'never'}</li>",
        f"<li>{daemon}</li>",
    ]
    reason = f'<p><small>{escape(o.health.reason)}</small></p>\n'
    return f'<ul class="summary" id="summary">{"".join(parts)}</ul>\n{reason}'


def _incidents(o: Overview, now: datetime) -> str:
    heading = f'<h2>Latest incidents (<a href="{INCIDENTS_FEED}">Atom feed</a>)</h2>\n'
    if not o.incidents:
        return heading + "<p>None recorded.</p>\n"
    items = []
    for row in o.incidents:
        at = row.get("at")
        when = _parse(at)
        items.append(
            f'<li id="incident-{escape(str(row.get("id", "")))}">'
            f"{_time(when, now) if when else escape(str(at or ''))} "
            f'<span class="kind">{escape(str(row.get("kind") or ""))}</span> '
            f'{escape(str(row.get("message") or ""))}</li>')
    return heading + '<ul class="incidents">' + "".join(items) + "</ul>\n"


def _parse(value: Any) -> datetime | None:
    try:
        return localize(datetime.fromisoformat(str(value))) if value else None
    except ValueError:
        return None


def sparkline(counts: Sequence[int], days: Sequence[date] = ()) -> str:
    """Items per day as an inline SVG bar chart, oldest day left; its title says the total."""
    if not counts:
        return ""
    width, height, bar = 3 * len(counts), 20, 2
    top = max(max(counts), 1)
    bars = []
    for i, n in enumerate(counts):
        h = max(1, round(n / top * (height - 1))) if n else 0
        if h:
            tip = f"{days[i].isoformat()}: {n}" if i < len(days) else str(n)
            bars.append(f'<rect x="{3 * i}" y="{height - h}" width="{bar}" height="{h}">'
                        f"<title>{escape(tip)}</title></rect>")
    label = f"{sum(counts)} items in {len(counts)} days, up to {max(counts)} a day"
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} '
            f'{height}" role="img" aria-label="{escape(label)}" fill="#3a6ea5">'
            f'<title>{escape(label)}</title>'
            f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" '
            f'stroke="#ccc" stroke-width="1"></line>{"".join(bars)}</svg>')


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
    press = " ".join(
        f'<a href="{escape(url)}" rel="external" hreflang="{escape(lang)}">gov.kz {escape(lang)}'
        "</a>" for lang, url in a.press)
    cells = [
        f"{escape(a.name)}<br><small>{escape(a.slug)}{' · ' + langs if langs else ''}</small>"
        + (f"<br><small>{press}</small>" if press else ""),
        a.state,
        str(a.items),
        sparkline(a.daily),
        _time(a.last_success, now) if a.last_success else "never",
        error,
        _time(a.next_crawl, now) if a.next_crawl else "—",
        feeds,
    ]
    tds = "".join(
        f'<td data-label="{escape(label)}">{cell}</td>' if i else f"<td>{cell}</td>"
        for i, (label, cell) in enumerate(zip(COLUMNS, cells, strict=True)))
    return f'<tr class="{a.state}" data-search="{escape(_search_text(a))}">{tds}</tr>'


def _time(when: datetime | None, now: datetime) -> str:
    if when is None:
        return ""
    when = localize(when)
    iso = isoformat(when)
    local = when.astimezone(ALMATY).strftime("%Y-%m-%d %H:%M")
    return (f'<time datetime="{iso}" title="{iso}">{local} '
            f"<small>({relative(when, now)})</small></time>")


def _search_text(a: AgencyStatus) -> str:
    # Lower-cased the same way on both sides as far as JS allows (toLowerCase vs casefold differ
    # only for a few letters such as ß, which agency names do not use).
    return f"{a.name} {a.slug}".casefold()


def render_index_html() -> str:
    """A minimal index, for a server without the reader's pages."""
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

