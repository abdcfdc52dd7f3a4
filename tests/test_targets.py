"""The schedule's target type (crawler.store_monitor.Target: an agency in one language), its
string form at the edges, and what reads targets from the `schedule` table: the monitor
component and the status provider."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.agencies import Agency, AgencyRegistry
from crawler.items import NewsItem, item_url
from crawler.store import Archive
from crawler.store_monitor import Target
from scheduler.policy import AgencyState, CrawlOutcome
from scheduler.provider import ArchiveStatus

T0 = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
NAME = st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s)


# --- the type -------------------------------------------------------------------------------


def test_a_target_is_an_agency_in_one_language() -> None:
    target = Target("mod", "en")
    assert (target.agency, target.lang, target.key, str(target)) == ("mod", "en", "mod/en",
                                                                      "mod/en")
    assert Target.parse("mod/en") == target
    assert Target.of("mod/en") == target and Target.of(target) is target
    assert {target: 1}[Target("mod", "en")] == 1  # a value: equal, hashable
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.lang = "ru"  # type: ignore[misc]


@pytest.mark.parametrize("text", ["mod", "", "/", "/en", "mod/", "mod/en/x", "a//b"])
def test_parse_takes_only_agency_slash_lang(text: str) -> None:
    with pytest.raises(ValueError):
        Target.parse(text)


@pytest.mark.parametrize(("agency", "lang"), [("", "en"), ("mod", ""), ("a/b", "en"),
                                              ("mod", "en/x")])
def test_a_target_refuses_parts_that_would_not_round_trip(agency: str, lang: str) -> None:
    with pytest.raises(ValueError):
        Target(agency, lang)


@given(NAME, NAME)
def test_the_string_form_round_trips(agency: str, lang: str) -> None:
    target = Target(agency, lang)
    assert Target.parse(target.key) == target


def test_a_summary_reads_the_same_for_a_target_and_its_key() -> None:
    summary = {"targets": [{"target": "mod/en", "new": 2}, {"target": "mod/ru", "new": 5}]}
    assert CrawlOutcome.from_summary(summary, agency=Target("mod", "en")) == (
        CrawlOutcome.from_summary(summary, agency="mod/en")) == CrawlOutcome(True, 2, 0, None)


# --- the schedule table ---------------------------------------------------------------------


def test_the_schedule_is_keyed_by_target(archive: Archive) -> None:
    monitor = archive.monitor
    state = AgencyState(Target("mod", "en"), 1800, T0, consecutive_failures=1,
                        last_error="HTTP 500", last_error_at=T0)
    monitor.save_schedule(state.target, **state.fields())
    monitor.save_schedule(Target("mod", "ru"), interval=900)
    rows = archive.db.execute("SELECT agency, lang, interval FROM schedule ORDER BY lang")
    assert rows.fetchall() == [("mod", "en", 1800), ("mod", "ru", 900)]
    assert AgencyState.from_row(monitor.schedule()[state.target]) == state
    # A second save of a target updates its row and keeps what it does not name.
    monitor.save_schedule(state.target, interval=1200, next_crawl=T0 + timedelta(hours=1))
    row = monitor.schedule()[state.target]
    assert (row["interval"], row["consecutive_failures"], row["last_error"]) == (
        1200, 1, "HTTP 500")


def test_save_schedule_refuses_unknown_fields(archive: Archive) -> None:
    with pytest.raises(ValueError, match="bogus"):
        archive.monitor.save_schedule(Target("mod", "en"), bogus=1)


def test_a_schedule_row_is_saved_under_a_target_parsed_from_its_key(archive: Archive) -> None:
    archive.monitor.save_schedule(Target.of("mod/en"), interval=1800)
    archive.monitor.save_schedule(Target("mfa", "kk"), interval=600)
    assert {t.key: row["interval"] for t, row in archive.monitor.schedule().items()} == {
        "mfa/kk": 600, "mod/en": 1800}
    with pytest.raises(ValueError):
        Target.of("mod")


# --- the status provider --------------------------------------------------------------------


def provider(archive: Archive, tmp_path: Path, targets: Any = None) -> ArchiveStatus:
    registry = AgencyRegistry([Agency("mod", {"en": "Ministry of Defence"})])
    return ArchiveStatus(archive, registry, tmp_path, targets)


def stored(archive: Archive) -> None:
    archive.save_item(NewsItem(agency="mvd", id=1, lang="ru", url=item_url("mvd", 1, "ru"),
                               title="t", published=T0))
    monitor = archive.monitor
    monitor.save_schedule(Target("mod", "en"), interval=1800, last_success=T0,
                          next_crawl=T0 + timedelta(hours=2))
    monitor.save_schedule(Target("mod", "ru"), interval=1800, consecutive_failures=2,
                          last_error="mod/ru: HTTP 500", last_error_at=T0,
                          next_crawl=T0 + timedelta(hours=1))


def test_the_provider_groups_the_targets_of_an_agency(archive: Archive, tmp_path: Path) -> None:
    stored(archive)
    mod, mvd = provider(archive, tmp_path).agencies_status()
    assert (mod.slug, mod.name, mod.enabled, list(mod.langs)) == (
        "mod", "Ministry of Defence", True, ["en", "ru"])
    assert (mod.state, mod.consecutive_failures, mod.last_error) == ("failing", 2,
                                                                      "mod/ru: HTTP 500")
    assert mod.next_crawl == T0 + timedelta(hours=1) and mod.last_success == T0
    # An archived agency that is not scheduled still shows, as not crawled.
    assert (mvd.slug, mvd.enabled, mvd.items, list(mvd.langs)) == ("mvd", False, 1, [])


def test_the_provider_takes_targets_or_their_string_form(archive: Archive,
                                                         tmp_path: Path) -> None:
    stored(archive)
    as_targets = provider(archive, tmp_path, [Target("mod", "en")]).agencies_status()
    as_strings = provider(archive, tmp_path, ["mod/en"]).agencies_status()
    assert as_targets == as_strings
    assert list(as_targets[0].langs) == ["en"] and as_targets[0].state == "ok"
