"""Incident rules over whole crawl histories (policy + detect, a controlled clock), and the
incidents' Atom feed read back with feedparser."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from store_helpers import memory_archive

from crawler.config import Schedule
from crawler.items import NewsItem, item_url
from crawler.problems import ProblemKind
from crawler.store import Archive
from crawler.store_monitor import Target
from crawler.summary import CrawlSummary
from crawler.timeutil import ALMATY
from scheduler.incidents import (
    SILENCE_KINDS,
    Incident,
    Rhythm,
    detect,
    incident_entries,
    incident_feed,
    judge_silence,
)
from scheduler.policy import AgencyState, CrawlOutcome, Policy

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=ALMATY)
BASE = "https://monitor.example.org/govkz/"
LAYOUT_MESSAGE = "akimat astana: layout changed & 'x' (1 < 2)"
MOD = Target("mod", "ru")
ASTANA = Target("astana", "en")

def crawled(agency: str = "mod", **targets: list[tuple[ProblemKind, str]]) -> CrawlOutcome:
    """The outcome the daemon reads from a crawl summary whose targets ("mod__ru" is
    "mod/ru") recorded these typed problems."""
    s = CrawlSummary()
    for name, problems in targets.items():
        t = s.target(name.replace("__", "/"))
        t.found = t.new = 1
        for kind, message in problems:
            t.add(kind, message, "https://x.test/api")
    return CrawlOutcome.from_summary(s.to_dict(), agency=agency)


OUTCOMES = {
    "S": CrawlOutcome(ok=True, new=1, updated=0, error=None),
    "J": crawled(mod__ru=[(ProblemKind.REJECTED, "no id")]),  # one element rejected: a success
    "F": crawled(mod__ru=[(ProblemKind.HTTP_ERROR, "HTTP 500 from https://x.test/api")]),
    "L": crawled(
        mod__ru=[(ProblemKind.HTTP_ERROR, "HTTP 503 from https://x.test/api (after retries)")],
        mod__en=[(ProblemKind.LAYOUT_CHANGED, "layout changed: a str, not an object")],
    ),
    "A": crawled(mod__ru=[(
        ProblemKind.ACCESS_REFUSED,
        "every access strategy was refused and the official RSS failed too: HTTP 403",
    )]),
    "R": crawled(mod__kk=[(ProblemKind.ACCESS_REFUSED, "access refused: refused 3 times")]),
    "U": crawled(mod__ru=[(ProblemKind.UNEXPECTED, "KeyError in ArchivePipeline: 'title'")]),
    "V": crawled(mod__en=[(ProblemKind.UNEXPECTED, "TypeError: 'NoneType' is not iterable")]),
    "T": CrawlOutcome.timeout(900),
    "C": CrawlOutcome.crash("exit status -11"),
}


def policy() -> Policy:
    return Policy(Schedule(), random.Random(11))


def run(history: str, *, threshold: int = 3, archive: Archive | None = None) -> list[list[str]]:
    """Feed one outcome per letter through the policy; the incident kinds of each crawl. With
    an archive, every state goes through the schedule table between crawls (a restart)."""
    p = Policy(Schedule(jitter=30), random.Random(3))
    state = p.initial(MOD, NOW)
    kinds = []
    for step, letter in enumerate(history):
        now = NOW + timedelta(hours=step)
        after = p.after_crawl(state, OUTCOMES[letter], now)
        found = detect(state, after, OUTCOMES[letter], threshold=threshold)
        assert all(i.target == MOD and i.message.startswith("mod/ru: ") for i in found)
        kinds.append([i.kind for i in found])
        state = after
        if archive is not None:
            archive.monitor.save_schedule(state.target, **state.fields())
            state = AgencyState.from_row(archive.monitor.schedule()[MOD])
    return kinds


def test_the_outcomes_are_what_their_letters_say() -> None:
    assert OUTCOMES["J"] == CrawlOutcome(True, 1, 0, None)
    assert {letter: set(o.kinds) for letter, o in OUTCOMES.items()} == {
        "S": set(), "J": set(), "F": set(), "L": {"layout-changed"}, "A": {"access-refused"},
        "R": {"access-refused"}, "U": {"unexpected"}, "V": {"unexpected"}, "T": {"timeout"},
        "C": {"crashed"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("history", "threshold", "expected"),
    [
        ("SSS", 3, [[], [], []]),
        ("FFSFF", 3, [[], [], [], [], []]),  # never three in a row
        ("FFFFFF", 3, [[], [], ["failing"], [], [], []]),  # exactly once, at the threshold
        ("FFFS", 3, [[], [], ["failing"], ["recovered"]]),
        ("FFFJ", 3, [[], [], ["failing"], ["recovered"]]),  # rejects do not fail a crawl
        ("FFJFF", 3, [[], [], [], [], []]),
        ("FFFFSS", 3, [[], [], ["failing"], [], ["recovered"], []]),
        ("FFSFFFS", 3, [[], [], [], [], [], ["failing"], ["recovered"]]),
        ("FS", 1, [["failing"], ["recovered"]]),
        ("FFSF", 2, [[], ["failing"], ["recovered"], []]),
    ],
)
def test_failing_and_recovered(history: str, threshold: int, expected: list[list[str]]) -> None:
    assert run(history, threshold=threshold) == expected


@pytest.mark.parametrize("restarts", [False, True], ids=["in memory", "through the archive"])
@pytest.mark.parametrize(
    ("history", "expected"),
    [
        # a problem is news when the crawl before did not show it
        ("LLLLS", [["layout-changed"], [], ["failing"], [], ["recovered"]]),
        ("LSL", [["layout-changed"], [], ["layout-changed"]]),
        ("LJL", [["layout-changed"], [], ["layout-changed"]]),
        ("FLL", [[], ["layout-changed"], ["failing"]]),
        ("LTL", [["layout-changed"], ["timeout"], ["failing", "layout-changed"]]),
        ("AAR", [["access-refused"], [], ["failing"]]),  # both messages are the same kind
        ("RS", [["access-refused"], []]),
        ("TTTT", [["timeout"], [], ["failing"], []]),
        ("CCSC", [["crashed"], [], [], ["crashed"]]),
        ("TC", [["timeout"], ["crashed"]]),
        # an unexpected error (a bug) once per run of it, whatever its target and text
        ("UUUU", [["unexpected"], [], ["failing"], []]),
        ("UVU", [["unexpected"], [], ["failing"]]),
        ("UUSU", [["unexpected"], [], [], ["unexpected"]]),
        ("UJU", [["unexpected"], [], ["unexpected"]]),
        ("UFU", [["unexpected"], [], ["failing", "unexpected"]]),
        ("ULU", [["unexpected"], ["layout-changed"], ["failing", "unexpected"]]),
    ],
)
def test_problem_kinds_once_per_run_of_the_same_problem(
    archive: Archive, history: str, expected: list[list[str]], restarts: bool
) -> None:
    assert run(history, archive=archive if restarts else None) == expected


def test_threshold_one_reports_failing_and_the_problem_together() -> None:
    assert run("L", threshold=1) == [["failing", "layout-changed"]]
    assert run("U", threshold=1) == [["failing", "unexpected"]]


def test_a_request_timeout_inside_a_crawl_is_not_a_crawl_timeout() -> None:
    outcome = crawled(mod__ru=[(ProblemKind.TIMEOUT, "timed out: https://x.test/api")])
    assert not outcome.ok
    state = AgencyState(MOD, 3600, NOW)
    after = policy().after_crawl(state, outcome, NOW)
    assert detect(state, after, outcome, threshold=3) == []


@pytest.mark.parametrize(
    ("last_kinds", "last_error", "expected"),
    [
        # a schedule row from before the last_kinds column: its text is not read
        ((), "mod/en: layout changed: a str, not an object", ["layout-changed"]),
        (("layout-changed",), "mod/ru: HTTP 500 from https://x.test/api", []),
        (("layout-changed", "timeout"), None, []),
        (("access-refused",), None, ["layout-changed"]),
    ],
)
def test_the_crawl_before_is_judged_by_its_kinds_not_its_text(
    last_kinds: tuple[str, ...], last_error: str | None, expected: list[str]
) -> None:
    before = AgencyState(MOD, 3600, NOW, consecutive_failures=1, last_error=last_error,
                         last_kinds=last_kinds)
    after = policy().after_crawl(before, OUTCOMES["L"], NOW)
    assert [i.kind for i in detect(before, after, OUTCOMES["L"], threshold=3)] == expected


def test_the_kinds_of_a_crawl_before_a_success_are_no_longer_the_previous_ones() -> None:
    before = AgencyState(MOD, 3600, NOW, consecutive_failures=0, last_kinds=("unexpected",))
    after = policy().after_crawl(before, OUTCOMES["U"], NOW)
    assert [i.kind for i in detect(before, after, OUTCOMES["U"], threshold=3)] == ["unexpected"]


def test_messages_are_one_line_and_name_agency_and_reason() -> None:
    outcome = crawled(
        "astana/en", astana__en=[(ProblemKind.LAYOUT_CHANGED, "layout changed:\n  id: not an int")]
    )
    before = AgencyState(ASTANA, 3600, NOW, consecutive_failures=2, last_error="x")
    after = policy().after_crawl(before, outcome, NOW)
    found = detect(before, after, outcome, threshold=3)
    line = "astana/en: layout changed: id: not an int (https://x.test/api)"
    assert found == [
        Incident(ASTANA, "failing", f"astana/en: 3 crawl(s) failed in a row; last error: {line}"),
        Incident(ASTANA, "layout-changed",
                 f"astana/en: gov.kz answered in a shape the extractors do not know: {line}"),
    ]


def test_an_unexpected_incident_names_the_bug() -> None:
    outcome = crawled(mod__ru=[(ProblemKind.HTTP_ERROR, "HTTP 500 from https://x.test/api")],
                      mod__kk=[(ProblemKind.UNEXPECTED, "KeyError in ArchivePipeline: 'x'")])
    before = AgencyState(MOD, 3600, NOW)
    after = policy().after_crawl(before, outcome, NOW)
    assert detect(before, after, outcome, threshold=3) == [Incident(
        MOD, "unexpected", "mod/ru: the crawler met an unexpected error (a bug: see the log): "
        "mod/kk: KeyError in ArchivePipeline: 'x' (https://x.test/api)",
    )]  # fmt: skip


def test_long_messages_are_cut() -> None:
    outcome = crawled(mod__ru=[(ProblemKind.LAYOUT_CHANGED, "layout changed: " + "x " * 400)])
    before = AgencyState(MOD, 3600, NOW)
    after = policy().after_crawl(before, outcome, NOW)
    (incident,) = detect(before, after, outcome, threshold=3)
    assert len(incident.message) <= 300 and "\n" not in incident.message


@pytest.mark.parametrize("threshold", [0, -1])
def test_threshold_must_be_positive(threshold: int) -> None:
    state = AgencyState(MOD, 3600, NOW)
    with pytest.raises(ValueError):
        detect(state, state, OUTCOMES["F"], threshold=threshold)


# --- the feed -----------------------------------------------------------------------------------


def stored_incidents() -> list[dict]:
    with memory_archive() as archive:
        monitor = archive.monitor
        monitor.add_incident("mod", "failing", "mod: 3 crawl(s) failed in a row; last error: x",
                             now=NOW)
        monitor.add_incident("akimat astana", "layout-changed", LAYOUT_MESSAGE,
                             now=NOW + timedelta(minutes=5))
        monitor.add_incident("mod", "recovered", "mod: crawled successfully again",
                             now=(NOW + timedelta(hours=1)).astimezone(UTC))
        return monitor.incidents()


def test_incident_entries() -> None:
    entries = incident_entries(stored_incidents(), base_url=BASE.rstrip("/"))
    assert [e.id for e in entries] == [f"{BASE}status#incident-{i}" for i in (3, 2, 1)]
    assert [e.title for e in entries] == ["mod: recovered", "akimat astana: layout changed",
                                          "mod: failing"]
    assert entries[1].link == f"{BASE}status?q=akimat%20astana"
    assert entries[0].updated == NOW + timedelta(hours=1)
    assert all(e.updated.tzinfo is not None and e.published == e.updated for e in entries)
    assert entries[2].categories == ("failing",)


def test_rows_without_a_date_are_left_out() -> None:
    rows = [
        {"id": 1, "agency": "mod", "kind": "timeout", "message": "m", "at": "yesterday"},
        {"id": 2, "agency": "mod", "kind": "timeout", "message": "m", "at": NOW.isoformat()},
    ]
    assert [e.id for e in incident_entries(rows, base_url=BASE)] == [f"{BASE}status#incident-2"]


def test_incident_feed_reads_back_as_atom() -> None:
    parsed = feedparser.parse(incident_feed(stored_incidents(), base_url=BASE))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "govkz-monitor: incidents"
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links == {"self": f"{BASE}feeds/incidents.atom", "alternate": f"{BASE}status"}
    assert [e.id for e in parsed.entries] == [f"{BASE}status#incident-{i}" for i in (3, 2, 1)]
    assert parsed.entries[1].summary == LAYOUT_MESSAGE
    assert parsed.entries[0].tags[0].term == "recovered"
    assert parsed.feed.updated_parsed[:5] == (2026, 9, 1, 8, 0)  # the newest incident, in UTC


def test_an_empty_incident_feed_is_valid() -> None:
    parsed = feedparser.parse(incident_feed([], base_url=BASE))
    assert not parsed.bozo and parsed.entries == []


# --- silence ----------------------------------------------------------------------------------

DAY = timedelta(days=1)


def every(gap: timedelta, *, newest: datetime, count: int = 20) -> list[datetime]:
    return [newest - n * gap for n in range(count)]


@pytest.mark.parametrize(
    ("published", "newest", "gap"),
    [
        ([], None, None),
        (every(DAY, newest=NOW, count=5), NOW, None),  # 4 gaps: no rhythm yet
        (every(DAY, newest=NOW, count=6), NOW, DAY),
        # The median: a burst of items in one minute and one long pause do not set it.
        ([NOW, NOW - timedelta(minutes=1), NOW - 2 * DAY, NOW - 3 * DAY, NOW - 4 * DAY,
          NOW - 5 * DAY, NOW - 40 * DAY], NOW, DAY),
        (list(reversed(every(7 * DAY, newest=NOW, count=8))), NOW, 7 * DAY),  # any order
    ],
)
def test_the_rhythm_is_the_median_gap(published: list[datetime], newest: datetime | None,
                                      gap: timedelta | None) -> None:
    assert Rhythm.of(published) == Rhythm(newest, gap)


@pytest.mark.parametrize(
    ("gap", "quiet", "is_open", "expected"),
    [
        (DAY, 2 * DAY, False, None),  # within its rhythm
        (DAY, 3 * DAY, False, None),  # exactly 3 days and 3 gaps is not yet over them
        (DAY, 4 * DAY, False, "silent"),
        (timedelta(hours=1), 2 * DAY, False, None),  # 48 usual gaps, but under 3 days
        (timedelta(hours=1), 3 * DAY + timedelta(minutes=1), False, "silent"),
        (7 * DAY, 20 * DAY, False, None),  # a weekly agency may be quiet for 3 weeks
        (7 * DAY, 22 * DAY, False, "silent"),
        (DAY, 9 * DAY, True, None),  # still silent: said once
        (DAY, timedelta(hours=2), True, "resumed"),  # a new item ends it
        (DAY, timedelta(hours=2), False, None),
    ],
)
def test_silence_is_judged_by_the_agencys_own_rhythm(
    gap: timedelta, quiet: timedelta, is_open: bool, expected: str | None
) -> None:
    rhythm = Rhythm.of(every(gap, newest=NOW - quiet))
    incident = judge_silence(MOD, rhythm, NOW, is_open=is_open)
    assert (incident.kind if incident else None) == expected
    if incident is not None:
        assert incident.target == MOD and incident.message.startswith("mod/ru: ")
        assert "\n" not in incident.message


def test_a_silence_message_says_since_when_in_almaty_time() -> None:
    newest = datetime(2026, 8, 20, 9, 30, tzinfo=UTC)  # 14:30 in Almaty (UTC+5)
    incident = judge_silence(MOD, Rhythm.of(every(DAY, newest=newest)), NOW, is_open=False)
    assert incident is not None
    assert "silent since 2026-08-20 14:30 (Almaty)" in incident.message
    assert "usually an item every 24.0 h" in incident.message


def test_no_rhythm_no_silence() -> None:
    assert judge_silence(MOD, Rhythm(None, None), NOW, is_open=True) is None
    assert judge_silence(MOD, Rhythm(NOW - 300 * DAY, None), NOW, is_open=False) is None


def save(archive: Archive, target: Target, published: list[datetime], first_id: int = 1) -> None:
    for n, when in enumerate(published):
        item_id = first_id + n
        archive.save_item(NewsItem(
            agency=target.agency, id=item_id, lang=target.lang,
            url=item_url(target.agency, item_id, target.lang), title=f"news {item_id}",
            published=when, body_html="<p>b</p>", body_text="b"))


def test_the_archive_gives_each_targets_newest_dates_in_one_query(archive: Archive) -> None:
    save(archive, MOD, every(DAY, newest=NOW - 2 * DAY, count=40))
    save(archive, ASTANA, [NOW - DAY], first_id=100)
    found = archive.recent_published([MOD, ASTANA, Target("nobody", "kk")], per_target=31)
    assert found[MOD] == every(DAY, newest=NOW - 2 * DAY, count=31)
    assert found[ASTANA] == [NOW - DAY]
    assert found[Target("nobody", "kk")] == []
    assert archive.recent_published([]) == {}


def test_the_newest_silence_incident_of_each_target_says_whether_it_is_open(
    archive: Archive,
) -> None:
    monitor = archive.monitor
    monitor.add_incident("mod/ru", "silent", "m")
    monitor.add_incident("mod/ru", "failing", "m")  # another kind: not about silence
    monitor.add_incident("astana/en", "silent", "m")
    monitor.add_incident("astana/en", "resumed", "m")
    assert monitor.latest_incident_kinds(SILENCE_KINDS) == {"mod/ru": "silent",
                                                            "astana/en": "resumed"}
    assert monitor.latest_incident_kinds([]) == {}
