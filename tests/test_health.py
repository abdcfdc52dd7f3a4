"""Health that tells the truth: the verdict (scheduler/health.py) as a pure function, then a
daemon whose every crawl fails, driven with a controlled clock (the harness of
tests/test_daemon.py): an incident within two normal cycles, /healthz 503, and /metrics that
shows it. Nothing sleeps; no assertion depends on how long anything took."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from test_daemon import (
    T0,
    Harness,
    make,  # noqa: F401 (the daemon harness fixture, a fake reactor and clock)
    metric,
    summary,
    target,
)
from twisted.web.test.requesthelper import DummyRequest

from crawler.paths import feeds_dir
from scheduler.health import FAIL, OK, SERVE_ONLY, STALE_AFTER, Health, Liveness, judge
from scheduler.provider import ArchiveStatus
from scheduler.server import HealthPage

MAX = 21600
ALIVE = Liveness(running=True, started=T0 - timedelta(days=1), heartbeat=T0)


@pytest.mark.parametrize(
    ("liveness", "counts", "newest", "status", "reason"),
    [
        (ALIVE, {"ok": 3}, T0 - timedelta(hours=1), OK, "scheduler running"),
        (None, {"ok": 3}, T0, SERVE_ONLY, "no scheduler in this process"),
        (Liveness(False, T0), {"ok": 3}, T0, FAIL, "the scheduler is not running"),
        (Liveness(True, T0 - timedelta(hours=1), T0 - STALE_AFTER - timedelta(seconds=1)),
         {"ok": 3}, T0, FAIL, "job loop has not run for 181 s"),
        (Liveness(True, T0 - timedelta(seconds=30)), {"never": 3}, None, OK, "0 ok"),
        (ALIVE, {"ok": 1, "failing": 2}, T0, FAIL, "most targets are failing: 2 of 3"),
        (ALIVE, {"ok": 2, "failing": 2}, T0, OK, "2 failing"),  # half is not most
        (ALIVE, {"ok": 3}, T0 - timedelta(seconds=2 * MAX + 1), FAIL,
         "no successful crawl for 12.0 h"),
        (ALIVE, {"never": 2}, None, FAIL, "since the daemon started"),
        # A restart after a long downtime gets a full round before it is judged.
        (Liveness(True, T0 - timedelta(hours=1), T0), {"ok": 2}, T0 - timedelta(days=9), OK,
         "scheduler running"),
        (ALIVE, {}, None, OK, "of 0"),  # nothing to crawl: nothing is failing
    ],
)
def test_the_verdict(liveness: Liveness | None, counts: dict[str, int], newest: Any,
                     status: str, reason: str) -> None:
    health = judge(liveness, counts, newest, T0, max_interval=MAX)
    assert health.status == status
    assert reason in health.reason
    assert health.code == (503 if status == FAIL else 200)
    assert health.to_json()["targets"] == {"ok": 0, "failing": 0, "never": 0, **counts}


@pytest.mark.parametrize(("pair", "status"), [((True, "fine"), OK), ((False, "down"), FAIL)])
def test_a_provider_of_the_old_pair_is_still_understood(pair: tuple[bool, str],
                                                        status: str) -> None:
    assert Health.of(pair) == Health(status, pair[1])


def healthz(provider: Any, data_dir: Any) -> tuple[int, dict[str, Any]]:
    request = DummyRequest([b""])
    body = HealthPage(provider, data_dir).render_GET(request)
    return request.responseCode or 200, json.loads(body)


def provider_of(h: Harness) -> ArchiveStatus:
    d = h.daemon
    registry: Any = type("Registry", (), {"name": staticmethod(lambda slug, lang: slug)})()
    return ArchiveStatus(d.archive, registry, feeds_dir(d.settings), d.targets, daemon=d)


BROKEN = [("access_refused", "every access strategy was refused: HTTP 403 notAllowed")]


def test_every_crawl_failing_is_an_incident_within_two_cycles_and_a_503(make: Any) -> None:  # noqa: F811
    keys = ["mod/en", "mfa/en", "economy/en"]
    h = make(keys)
    h.daemon._beat()  # the heartbeat job, as APScheduler runs it
    provider = provider_of(h)
    data = feeds_dir(h.daemon.settings).parent
    assert healthz(provider, data)[0] == 200  # nothing crawled yet, just started
    h.crawl(summary(*(target(k, new=2) for k in keys)))
    assert healthz(provider, data) == (200, provider.health().to_json())
    interval = h.row("mod/en")["interval"]

    # gov.kz refuses everything from the next normal crawl on.
    h.advance(interval)
    first_failure = h.now
    threshold = h.daemon.config.schedule.failure_threshold
    for failures in range(1, threshold + 1):
        h.crawl(summary(*(target(k, problems=BROKEN) for k in keys)))
        if failures == 1:  # every strategy refused: the daemon asks doctor why, first
            doctor = h.reactor.children[-1]
            assert "doctor" in doctor.args, doctor.args
            doctor.exit(stdout=b'{"ok": false, "verdict": "every path was refused"}', code=1)
            h.reactor.advance(0)
        assert h.row("mod/en")["consecutive_failures"] == failures
        if failures < threshold:  # on to the next (quick) retry
            next_crawl = min(s.next_crawl for s in h.daemon.states.values())
            h.advance((next_crawl - h.now).total_seconds())
    kinds = {(i["agency"], i["kind"]) for i in h.daemon.archive.monitor.incidents()}
    assert {(k, "failing") for k in keys} | {(k, "access-refused") for k in keys} <= kinds
    # The quick retries: the threshold is reached well within two normal cycles.
    assert h.now - first_failure <= timedelta(seconds=2 * interval)

    h.daemon._beat()
    code, body = healthz(provider, data)
    assert (code, body["status"]) == (503, "fail")
    assert body["reason"] == "most targets are failing: 3 of 3"
    assert body["targets"] == {"ok": 0, "failing": 3, "never": 0}
    assert metric(h.daemon, "targets", state="failing") == 3
    assert metric(h.daemon, "targets", state="ok") == 0
    assert metric(h.daemon, "target_last_success_timestamp_seconds",
                  target="mod/en") is not None


def test_a_stopped_scheduler_is_a_503_and_serve_only_says_so(make: Any) -> None:  # noqa: F811
    h = make(["mod/en"])
    h.daemon._beat()
    provider = provider_of(h)
    data = feeds_dir(h.daemon.settings).parent
    assert healthz(provider, data)[1]["status"] == "ok"
    h.daemon.stop()
    assert healthz(provider, data) == (503, {
        "status": "fail", "reason": "the scheduler is not running",
        "targets": {"ok": 0, "failing": 0, "never": 1}})
    serve_only = ArchiveStatus(h.daemon.archive, provider.registry, provider.feeds,
                               config=h.daemon.config)
    code, body = healthz(serve_only, data)
    assert (code, body["status"]) == (200, "serve-only")


def test_metrics_show_states_durations_lag_and_rejects(make: Any) -> None:  # noqa: F811
    h = make(["mod/en", "mfa/en"])
    assert metric(h.daemon, "targets", state="never") == 2
    with_rejects = target("mod/en", new=1, problems=[("rejected", "mod/en: no id")])
    with_rejects["rejected"] = 1
    h.crawl(summary(with_rejects, target("mfa/en", problems=BROKEN)))
    assert metric(h.daemon, "targets", state="ok") == 1
    assert metric(h.daemon, "targets", state="failing") == 1
    assert metric(h.daemon, "target_last_success_timestamp_seconds",
                  target="mod/en") == h.now.timestamp()
    assert metric(h.daemon, "rejects_total", agency="mod") == 1
    assert metric(h.daemon, "crawl_duration_seconds_count") == 1
    assert metric(h.daemon, "schedule_lag_seconds") == 0  # every next crawl is ahead
    due = min(s.next_crawl for s in h.daemon.states.values())
    h.advance((due - h.now).total_seconds() + 90)  # a crawl that should have started 90 s ago
    assert metric(h.daemon, "schedule_lag_seconds") == 90


def test_a_silent_agency_is_an_incident_once_and_its_next_item_closes_it(make: Any) -> None:  # noqa: F811
    from crawler.items import NewsItem, item_url

    h = make(["mod/en", "mfa/en"])

    def publish(agency: str, item_id: int, when: Any) -> None:
        h.daemon.archive.save_item(NewsItem(
            agency=agency, id=item_id, lang="en", url=item_url(agency, item_id, "en"),
            title=f"news {item_id}", published=when, body_html="<p>b</p>", body_text="b"))

    for n in range(20):  # mod publishes daily, then stops 6 days ago; mfa goes on
        publish("mod", 1000 + n, T0 - timedelta(days=6 + n))
        publish("mfa", 2000 + n, T0 - timedelta(days=n, hours=1))
    ok = summary(target("mod/en"), target("mfa/en"))
    h.crawl(ok)
    assert [(i["agency"], i["kind"]) for i in h.daemon.archive.monitor.incidents()] == [
        ("mod/en", "silent")]
    h.advance(3600)
    h.crawl(ok)  # still silent: not said again
    assert len(h.daemon.archive.monitor.incidents()) == 1
    publish("mod", 1100, h.now - timedelta(minutes=5))
    h.advance(3600)
    h.crawl(summary(target("mod/en", new=1), target("mfa/en")))
    incidents = h.daemon.archive.monitor.incidents()
    assert [i["kind"] for i in incidents] == ["resumed", "silent"]
    assert "publishing again" in incidents[0]["message"]
    feed = (feeds_dir(h.daemon.settings) / "incidents.atom").read_text(encoding="utf-8")
    assert "mod/en: silent" in feed and "mod/en: publishing again" in feed
