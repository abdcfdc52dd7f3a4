"""The status page's pure parts: relative times, uptimes, sparklines, the summary line and its
JSON, the gov.kz press links (the page in a browser: tests/test_status_browser.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest

from scheduler.health import FAIL, OK, Health
from scheduler.provider import press_site
from scheduler.status_page import (
    AgencyStatus,
    Overview,
    duration,
    relative,
    render_status_html,
    sparkline,
    status_json,
)

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
EVIL = "<script>alert(1)</script>"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=-30), "just now"),
        (timedelta(seconds=0), "just now"),
        (timedelta(seconds=20), "in < 1 min"),  # the future is never "just now"
        (timedelta(minutes=12, seconds=5), "in 12 min"),
        (timedelta(hours=-3, minutes=-1), "3 h ago"),
        (timedelta(days=2, hours=1), "in 2 d"),
    ],
)
def test_relative_times(delta: timedelta, text: str) -> None:
    assert relative(NOW + delta, NOW) == text


@pytest.mark.parametrize(
    ("delta", "text"),
    [(timedelta(minutes=7), "7 min"), (timedelta(hours=2, minutes=5), "2 h 5 min"),
     (timedelta(days=3, hours=4, minutes=9), "3 d 4 h"), (timedelta(seconds=-5), "0 min")],
)
def test_uptimes(delta: timedelta, text: str) -> None:
    assert duration(delta) == text


class Svg(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.rects: list[dict[str, str | None]] = []
        self.svg: dict[str, str | None] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self.svg = dict(attrs)
        elif tag == "rect":
            self.rects.append(dict(attrs))


@pytest.mark.parametrize(
    ("counts", "bars", "tallest"),
    [([0] * 30, 0, None), ([0] * 29 + [4], 1, "19"), ([1, 2, 4] + [0] * 27, 3, "19")],
)
def test_a_sparkline_is_one_bar_per_day_with_items(counts: list[int], bars: int,
                                                   tallest: str | None) -> None:
    svg = Svg(sparkline(counts))
    assert svg.svg["width"] == "90" and svg.svg["role"] == "img"
    assert svg.svg["aria-label"] == (f"{sum(counts)} items in 30 days, up to {max(counts)} a day")
    assert len(svg.rects) == bars
    if tallest:
        assert max(int(r["height"] or 0) for r in svg.rects) == int(tallest)
    assert sparkline([]) == ""


def overview(health: Health) -> Overview:
    return Overview(
        targets={"ok": 2, "failing": 1, "never": 0}, items_today=3, items_week=10,
        health=health, access="k6v2", last_cycle=NOW - timedelta(minutes=4),
        started=NOW - timedelta(hours=5, minutes=1),
        incidents=[{"id": 7, "at": (NOW - timedelta(hours=1)).isoformat(), "agency": "mod/en",
                    "kind": "silent", "message": f"mod/en: silent since {EVIL}"}],
        days=[date(2026, 9, 1) - timedelta(days=n) for n in range(29, -1, -1)],
    )


def test_the_summary_line_is_escaped_and_in_the_json_too() -> None:
    agencies = [AgencyStatus(slug="mod", name="Defence", enabled=True, langs=("en",),
                             press=(("en", "https://www.gov.kz/memleket/entities/mod/press/"
                                           "news?lang=en"),), daily=[1] * 30)]
    o = overview(Health(FAIL, f"most targets are failing {EVIL}"))
    html = render_status_html(agencies, now=NOW, overview=o)
    assert EVIL not in html and "&lt;script&gt;" in html
    for text in ("targets: 2 ok, 1 failing, 0 never", "items: 3 today, 10 this week",
                 "mode: per-agency", "access: k6v2", "daemon up 5 h 1 min", "(4 min ago)",
                 'href="/feeds/incidents.atom"', 'id="incident-7"', 'class="health-fail"',
                 'href="https://www.gov.kz/memleket/entities/mod/press/news?lang=en"'):
        assert text in html, text
    # Almaty time (UTC+5) on the page; the machine-readable value as given.
    assert '<time datetime="2026-09-01T11:56:00+00:00"' in html and "2026-09-01 16:56" in html
    data = status_json(agencies, now=NOW, overview=o)
    summary = data["summary"]
    assert summary["targets"] == {"ok": 2, "failing": 1, "never": 0}
    assert (summary["items_today"], summary["items_week"]) == (3, 10)
    assert summary["uptime_seconds"] == 5 * 3600 + 60 and summary["daemon"] is True
    assert summary["health"]["status"] == "fail"
    assert summary["incidents"][0]["kind"] == "silent"
    assert data["agencies"][0]["press"][0]["lang"] == "en"
    assert data["agencies"][0]["daily"] == [1] * 30


def test_serve_only_says_there_is_no_daemon() -> None:
    o = Overview(targets={}, items_today=0, items_week=0,
                 health=Health(OK, "no scheduler"))
    html = render_status_html([], now=NOW, overview=o)
    assert "serve only: no daemon in this process" in html and "last cycle: never" in html
    assert "None recorded." in html


@pytest.mark.parametrize(
    ("base_url", "site"),
    [("https://www.gov.kz", "https://www.gov.kz"), ("https://gov.kz/", "https://gov.kz"),
     ("http://127.0.0.1:8081", "https://www.gov.kz"), ("https://mirror.example.org", "https://www.gov.kz"),
     ("https://evilgov.kz", "https://www.gov.kz")],
)
def test_press_links_go_to_gov_kz(base_url: str, site: str) -> None:
    assert press_site(base_url) == site
