"""Which crawls are worth telling someone about, and the incidents' Atom feed.

Pure: a crawl's states before and after (scheduler/policy.py) and its outcome in, incidents
out; the daemon stores them (archive.monitor.add_incident, the target as "agency/lang" in the
`incidents` table's `agency` column) and publishes the feed.

Rules, chosen so that a broken agency yields a few incidents, not one per crawl:

* "failing": the crawl that makes `threshold` failures in a row, exactly once per streak.
* "recovered": the first successful crawl after a streak that had reached the threshold.
* "layout-changed", "access-refused", "timeout", "crashed", "unexpected": a crawl whose typed
  problems (crawler/problems.py, mapped by policy.INCIDENT_KINDS) show that kind when the crawl
  before did not show it (it succeeded, or failed for another reason). So the same problem
  persisting over many crawls is reported once; it is reported again after a success or after
  the failure changed its nature, because then it is news again. They are reported from the
  first failure, before "failing", since they are rarely passing and say what to fix.
* "silent": an agency (in one language) that crawls fine but has published nothing for longer
  than its own rhythm: over SILENCE_FACTOR x the median gap between its newest items AND over
  SILENCE_MIN. A ministry that posts daily and stops for a week is news; an embassy that posts
  monthly is not. Judged only after a successful crawl (a failing crawl sees nothing, and
  "failing" covers it), once per silence; "resumed" closes it when a new item arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from crawler.feeds import EntryData, FeedMeta, render_atom
from crawler.store_monitor import Target
from crawler.timeutil import ALMATY, parse_iso
from scheduler.policy import AgencyState, CrawlOutcome, one_line

KINDS = ("failing", "recovered", "layout-changed", "access-refused", "timeout", "crashed",
         "unexpected", "silent", "resumed")
CRAWL_KINDS = KINDS[:7]  # what one crawl's outcome can open (detect)
SILENCE_KINDS = ("silent", "resumed")  # opened and closed by judge_silence
SILENCE_FACTOR = 3  # quiet for longer than this many usual gaps...
SILENCE_MIN = timedelta(days=3)  # ...and longer than this is silence
RHYTHM_ITEMS = 31  # the newest items a rhythm is measured on (30 gaps)
RHYTHM_MIN_GAPS = 5  # fewer gaps than this is no rhythm yet: nothing is judged
MESSAGE_CHARS = 300
FEED_PATH = "feeds/incidents.atom"

_PROBLEMS = {  # kind -> what it means, for the message
    "layout-changed": "gov.kz answered in a shape the extractors do not know",
    "access-refused": "gov.kz refused every way of access",
    "timeout": "the crawl did not finish in time and was stopped",
    "crashed": "the crawl process failed",
    "unexpected": "the crawler met an unexpected error (a bug: see the log)",
}
_TITLES = {
    "failing": "failing", "recovered": "recovered", "layout-changed": "layout changed",
    "access-refused": "access refused", "timeout": "crawl timed out", "crashed": "crawl crashed",
    "unexpected": "unexpected error", "silent": "silent", "resumed": "publishing again",
}


@dataclass(frozen=True)
class Incident:
    target: Target
    kind: str  # one of KINDS
    message: str  # one line, names the target ("agency/lang") and the reason


def _evidence(outcome: CrawlOutcome, kind: str) -> str:
    return next((line for k, line in outcome.evidence if k == kind), outcome.error or "")


def _message(target: Target, text: str) -> str:
    return one_line(f"{target.key}: {text}", MESSAGE_CHARS)


def detect(
    before: AgencyState, after: AgencyState, outcome: CrawlOutcome, *, threshold: int
) -> list[Incident]:
    """The incidents one crawl opens (usually none), in KINDS order."""
    if threshold < 1:
        raise ValueError(f"the failure threshold must be at least 1, not {threshold}")
    target = after.target
    found: list[Incident] = []
    if outcome.ok:
        if before.consecutive_failures >= threshold:
            n = before.consecutive_failures
            found.append(Incident(target, "recovered", _message(
                target, f"crawled successfully again after {n} failed crawl(s) in a row")))
        return found
    if after.consecutive_failures == threshold:
        found.append(Incident(target, "failing", _message(
            target, f"{threshold} crawl(s) failed in a row; last error: {outcome.error}")))
    previous = set(before.last_kinds) if before.consecutive_failures else set()
    for kind in CRAWL_KINDS[2:]:
        if kind in outcome.kinds and kind not in previous:
            found.append(Incident(target, kind, _message(
                target, f"{_PROBLEMS[kind]}: {_evidence(outcome, kind)}")))
    return found


ACCESS_REFUSED = "access-refused"  # held by the daemon until `doctor` has said why


def with_diagnosis(incident: Incident, verdict: str | None) -> Incident:
    """The incident with the verdict of `govkz-monitor doctor` (crawler/doctor.py) appended:
    when every way in is refused, the likely reason (a network gov.kz refuses, a block page)
    is what the operator needs to read first."""
    if not verdict:
        return incident
    return replace(incident, message=one_line(f"{incident.message}; doctor: {verdict}",
                                              MESSAGE_CHARS))


# --- silence -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rhythm:
    """How often a target publishes, from its newest publication dates."""

    newest: datetime | None  # the newest item's publication
    gap: timedelta | None  # the median gap between consecutive items; None: too few items

    @classmethod
    def of(cls, published: Sequence[datetime], *, min_gaps: int = RHYTHM_MIN_GAPS) -> Rhythm:
        """The rhythm of these publication dates (any order). The median, not the mean, so a
        holiday pause or a burst of ten items in one minute does not set the rhythm."""
        dates = sorted(published, reverse=True)
        if not dates:
            return cls(None, None)
        gaps = sorted(a - b for a, b in zip(dates, dates[1:], strict=False))
        if len(gaps) < max(1, min_gaps):
            return cls(dates[0], None)
        middle = len(gaps) // 2
        median = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
        return cls(dates[0], median)

    def quiet_limit(self) -> timedelta | None:
        """How long a quiet spell may last before it is silence; None: no rhythm to judge by."""
        if self.gap is None:
            return None
        return max(self.gap * SILENCE_FACTOR, SILENCE_MIN)

    def is_silent(self, now: datetime) -> bool:
        limit = self.quiet_limit()
        return self.newest is not None and limit is not None and now - self.newest > limit


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def _local(when: datetime) -> str:
    return when.astimezone(ALMATY).strftime("%Y-%m-%d %H:%M")


def judge_silence(target: Target, rhythm: Rhythm, now: datetime, *, is_open: bool
                  ) -> Incident | None:
    """The silence incident one successful crawl of `target` opens or closes, if any.
    `is_open`: its last silence incident was "silent" (no "resumed" since)."""
    newest, gap = rhythm.newest, rhythm.gap
    if newest is None:
        return None
    silent = rhythm.is_silent(now)
    if silent and not is_open and gap is not None:
        return Incident(target, "silent", _message(
            target, f"silent since {_local(newest)} (Almaty): nothing new for "
                    f"{_span(now - newest)}, usually an item every {_span(gap)}"))
    if is_open and not silent:
        return Incident(target, "resumed", _message(
            target, f"publishing again: a new item of {_local(newest)} (Almaty) ends the "
                    "silence"))
    return None


# --- the incidents feed ---------------------------------------------------------------------


def _base(base_url: str) -> str:
    return base_url.rstrip("/") + "/"


def incident_entries(rows: Iterable[Mapping[str, Any]], *, base_url: str) -> list[EntryData]:
    """Rows of the `incidents` table (archive.monitor.incidents) as feed entries. The id is the
    incident's anchor on this installation's status page, the link that page filtered to the
    agency. A row without a readable date is left out."""
    base = _base(base_url)
    entries = []
    for row in rows:
        at = parse_iso(row.get("at"))
        if at is None or row.get("id") is None:
            continue
        agency, kind = str(row.get("agency") or ""), str(row.get("kind") or "")
        entries.append(EntryData(
            id=f"{base}status#incident-{row['id']}",
            title=f"{agency}: {_TITLES.get(kind, kind)}",
            link=f"{base}status?q={quote(agency)}",
            published=at,
            updated=at,
            summary=one_line(str(row.get("message") or ""), 1000),
            categories=(kind,) if kind else (),
            lang="en",
            author="govkz-monitor",
        ))
    return entries


def incident_feed(rows: Iterable[Mapping[str, Any]], *, base_url: str,
                  path: str = FEED_PATH) -> bytes:
    """The Atom feed of the given incidents, served at base_url + path."""
    base = _base(base_url)
    meta = FeedMeta(
        title="govkz-monitor: incidents",
        self_url=base + path.lstrip("/"),
        alternate_url=base + "status",
        description="Agencies whose crawls fail, recover, or meet a changed gov.kz",
        lang="en",
        author="govkz-monitor",
    )
    return render_atom(meta, incident_entries(rows, base_url=base_url))
