"""When every access strategy is refused, the daemon asks `govkz-monitor doctor` why and puts
its verdict in the incident (README, "The daemon"). Driven with the fake reactor and fake
children of tests/test_daemon.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_daemon import make, summary, target  # noqa: F401

# ruff: noqa: F811 - the `make` fixture, imported, is every test's parameter

REFUSED = [("access_refused", "every access strategy was refused")]
VERDICT = ("no path answered: gov.kz refuses some networks (cloud/datacenter); try another "
           "network or set HTTPS_PROXY")


def incident_messages(harness: Any) -> list[str]:
    return [row["message"] for row in harness.daemon.archive.monitor.incidents()
            if row["kind"] == "access-refused"]


def refused_crawl(harness: Any) -> None:
    harness.crawl(summary(target("mod/en", problems=REFUSED)))


def test_a_refused_target_waits_for_doctor_and_its_incident_carries_the_verdict(
    make: Any,
) -> None:
    harness = make(["mod/en"])
    refused_crawl(harness)
    assert incident_messages(harness) == []  # held until doctor has said why
    doctor = harness.reactor.children[-1]
    assert "doctor" in doctor.args and "--json" in doctor.args, doctor.args
    doctor.exit(stdout=json.dumps({"ok": False, "verdict": VERDICT}).encode(), code=1)
    harness.reactor.advance(0)
    [message] = incident_messages(harness)
    assert message.startswith("mod/en: ") and f"doctor: {VERDICT}"[:80] in message


@pytest.mark.parametrize("ending", [
    {"stdout": b"not json", "code": 1},
    {"stdout": b"", "code": None, "signo": 9},
])
def test_a_doctor_without_a_verdict_still_records_the_incident(
    make: Any, ending: dict[str, Any]
) -> None:
    harness = make(["mod/en"])
    refused_crawl(harness)
    harness.reactor.children[-1].exit(**ending)
    harness.reactor.advance(0)
    [message] = incident_messages(harness)
    assert "doctor:" not in message and message.startswith("mod/en: ")


def test_other_incidents_do_not_wait_for_doctor(make: Any) -> None:
    harness = make(["mod/en"])
    children = len(harness.reactor.children)
    harness.crawl(summary(target("mod/en", problems=[("layout_changed", "not a list")])))
    kinds = [row["kind"] for row in harness.daemon.archive.monitor.incidents()]
    assert kinds == ["layout-changed"]
    assert len(harness.reactor.children) == children + 1  # the crawl only: no doctor child
