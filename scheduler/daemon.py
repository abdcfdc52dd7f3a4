"""The daemon: crawl every agency × language on its own adaptive schedule, publish, serve.

One Twisted reactor runs everything: APScheduler's TwistedScheduler holds one job per target
(a Target, crawler/store_monitor.py: an agency in one language; explicit ids "crawl:agency/lang",
coalesced, one instance), the twisted.web server serves the feeds and the status pages, and
crawls run as supervised child processes (scheduler/crawlproc.py), told their targets as
`--target agency/lang`: the one place the daemon spells a target as a string.
Targets that fall due together are crawled in one child process, one batch at a time, so gov.kz
sees one polite crawler. The schedule lives in the archive's `schedule` table, so a restart
picks up where the daemon stopped instead of re-crawling everything at once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from typing import Any

from crawler.config import Config
from crawler.errors import GovkzError
from crawler.feeds import write_if_changed
from crawler.paths import db_path, feeds_dir
from crawler.store import Archive
from crawler.store_monitor import Target
from crawler.timeutil import utcnow
from scheduler.crawlproc import CrawlProcess, CrawlRun
from scheduler.incidents import FEED_PATH, Incident, detect, incident_feed
from scheduler.metrics import Metrics
from scheduler.policy import AgencyState, CrawlOutcome, Policy

log = logging.getLogger(__name__)

BATCH_WINDOW = timedelta(seconds=30)  # targets due this soon join the batch starting now


class Daemon:
    def __init__(self, settings: Any, config: Config, targets: Iterable[Target | str], *,
                 reactor: Any = None, crawl_args: list[str] | None = None,
                 clock: Any = None, rng: random.Random | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        self.settings = settings
        self.config = config
        # Targets, or their "agency/lang" form from the command line.
        self.targets = [Target.of(target) for target in targets]
        self.crawl_args = crawl_args or []
        self.now = clock or utcnow
        self.policy = Policy(config.schedule, rng or random.Random())
        self.metrics = Metrics()
        self.archive = Archive.open(db_path(settings))
        self.states: dict[Target, AgencyState] = {}
        self.queue: list[Target] = []
        self.running: CrawlProcess | None = None
        self.scheduler: Any = None
        self.stopping = False
        self._batch_started = utcnow()

    # --- start and stop -----------------------------------------------------------------------

    def plan(self) -> None:
        """Restore or create every target's state, spreading overdue ones (policy.startup)."""
        known = [AgencyState.from_row(row) for row in self.archive.monitor.schedule().values()]
        for state in self.policy.startup(known, self.targets, self.now()):
            self.states[state.target] = state
            self._save(state)
        # The metrics start empty; the last success of every agency is in the archive already.
        latest: dict[str, datetime] = {}
        for target, state in self.states.items():
            agency = target.agency
            if state.last_success and (agency not in latest or state.last_success > latest[agency]):
                latest[agency] = state.last_success
        for agency, when in latest.items():
            self.metrics.set_last_success(agency, when)
        for agency, n in self.archive.item_counts().items():
            self.metrics.set_items(agency, n)

    def start(self) -> None:
        from apscheduler.schedulers.twisted import TwistedScheduler

        self.plan()
        self.scheduler = TwistedScheduler(
            reactor=self.reactor,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        for target, state in self.states.items():
            self._schedule(target, state.next_crawl or self.now())
        self.scheduler.start()
        self.reactor.addSystemEventTrigger("before", "shutdown", self.stop)
        log.info("daemon started: %d targets, next crawl %s", len(self.states),
                 min((s.next_crawl for s in self.states.values() if s.next_crawl), default="-"))

    def stop(self) -> Any:
        """Stop scheduling; let a running crawl stop within a few seconds (SIGTERM, then
        SIGKILL): every item is its own transaction, so nothing is half-written."""
        self.stopping = True
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.running is not None:
            self.running.terminate(grace=4.0)
            return self._running_done
        return None

    # --- jobs ---------------------------------------------------------------------------------

    def _schedule(self, target: Target, when: datetime) -> None:
        self.scheduler.add_job(
            self._due, "date", run_date=when, args=[target], id=f"crawl:{target.key}",
            name=f"crawl {target.key}", replace_existing=True,
        )

    def _due(self, target: Target) -> None:
        # APScheduler's Twisted executor may call this from a worker thread: hop to the reactor.
        self.reactor.callFromThread(self.enqueue, target)

    def enqueue(self, target: Target) -> None:
        running = self.running is not None and target.key in self.running.targets
        if self.stopping or target in self.queue or running:
            return  # never two crawls of one target at once
        self.queue.append(target)
        self.reactor.callLater(0, self.kick)

    def kick(self) -> None:
        """Start the next batch unless one is running: the due queue plus targets due soon."""
        if self.running is not None or not self.queue or self.stopping:
            return
        soon = self.now() + BATCH_WINDOW
        for target, state in sorted(self.states.items(), key=lambda kv: kv[1].next_crawl or soon):
            if target not in self.queue and state.next_crawl and state.next_crawl <= soon:
                self.queue.append(target)
        batch, self.queue = self.queue, []
        # Real time, not the daemon's clock: it is compared with what the child writes.
        self._batch_started = utcnow()
        self.running = CrawlProcess(
            self.reactor, self.crawl_args, [target.key for target in batch],
            timeout=self.config.schedule.crawl_timeout, config=self.config.path,
        )
        self._running_done = self.running.start()
        self._running_done.addCallback(self.finished)
        self._running_done.addErrback(lambda f: log.error("crawl supervision failed: %s", f))

    # --- results ------------------------------------------------------------------------------

    def outcome_of(self, run: CrawlRun, target: Target,
                   walked: AbstractSet[Target] = frozenset()) -> CrawlOutcome:
        """The outcome of one target of a batch, judged by its own record: a target whose walk
        completed (its mark is in the archive) succeeded even if the batch was killed later."""
        if run.timed_out or run.summary is None:
            if target in walked:
                return CrawlOutcome(True, 0, 0, None)
            if run.timed_out:
                return CrawlOutcome.timeout(self.config.schedule.crawl_timeout,
                                            "this target had not finished")
            return CrawlOutcome.crash(run.crash_detail())
        targets = run.summary.get("targets", [])
        if not any(t.get("target") == target.key for t in targets):
            # A target the child never reached (it died early): crawl-wide problems explain.
            return CrawlOutcome.from_summary(
                {"targets": [t for t in targets if "/" not in t.get("target", "/")]},
                agency=target)
        return CrawlOutcome.from_summary(run.summary, agency=target)

    def _walked(self, run: CrawlRun) -> set[Target]:
        if run.summary is not None and not run.timed_out:
            return set()
        try:
            return self.archive.monitor.walked_since(self._batch_started)
        except GovkzError as exc:
            log.error("cannot read which walks completed: %s", exc)
            return set()

    def finished(self, run: CrawlRun) -> None:
        self.running = None
        now = self.now()
        changed = False
        walked = self._walked(run)
        if run.summary is None:
            self.publish_feeds()  # what a killed crawl stored reaches the feeds now
        # The run names its targets as the child was told them: "agency/lang".
        for target in [Target.parse(key) for key in run.targets]:
            if run.stopped:
                continue  # not a verdict on the agency: retried on the next start
            before = self.states.get(target) or self.policy.initial(target, now)
            outcome = self.outcome_of(run, target, walked)
            after = self.policy.after_crawl(before, outcome, now)
            self.states[target] = after
            self._save(after)
            for incident in detect(before, after, outcome,
                                   threshold=self.config.schedule.failure_threshold):
                self._record_incident(incident)
                changed = True
            self.metrics.record_crawl(
                target.agency, "ok" if outcome.ok else "failed", new=outcome.new,
                updated=outcome.updated, errors=0 if outcome.ok else 1,
                requests=self._requests(run, target),
                problems=self._problem_counts(run, target), at=now,
            )
            log.info("%s: %s; next crawl %s", target,
                     "ok" if outcome.ok else f"FAILED: {outcome.error}",
                     after.next_crawl.isoformat() if after.next_crawl else "-")
            if not self.stopping and after.next_crawl:
                self._schedule(target, after.next_crawl)
        try:
            for agency, n in self.archive.item_counts().items():
                self.metrics.set_items(agency, n)
        except GovkzError as exc:
            log.error("cannot read item counts: %s", exc)
        if changed:
            self.publish_incidents()
        self.reactor.callLater(0, self.kick)

    @staticmethod
    def _requests(run: CrawlRun, target: Target) -> int:
        for reported in (run.summary or {}).get("targets", []):
            if reported.get("target") == target.key:
                return int(reported.get("requests") or 0)
        return 0

    @staticmethod
    def _problem_counts(run: CrawlRun, target: Target) -> dict[str, int]:
        counts: dict[str, int] = {}
        for reported in (run.summary or {}).get("targets", []):
            if reported.get("target") == target.key:
                for problem in reported.get("problems") or ():
                    kind = str(problem.get("kind", "unexpected"))
                    counts[kind] = counts.get(kind, 0) + 1
        return counts

    def _save(self, state: AgencyState) -> None:
        try:
            self.archive.monitor.save_schedule(state.target, **state.fields())
        except GovkzError as exc:  # a full or read-only disk: keep crawling and serving
            log.error("cannot save the schedule of %s: %s", state.target, exc)

    def _record_incident(self, incident: Incident) -> None:
        log.warning("incident: %s", incident.message)
        try:
            # The incidents table names what an incident is about in its text `agency`
            # column; for a target that is its "agency/lang".
            self.archive.monitor.add_incident(incident.target.key, incident.kind,
                                              incident.message)
        except GovkzError as exc:
            log.error("cannot record an incident: %s", exc)

    def publish_feeds(self) -> None:
        """Bring every feed that is behind the archive up to date (crawler.pipelines.publish)."""
        from crawler.pipelines import publish

        try:
            publish(self.settings)
        except (GovkzError, OSError) as exc:
            log.error("cannot publish the feeds: %s", exc)

    def publish_incidents(self) -> None:
        """DATA/feeds/incidents.atom: the monitor's own feed, read in the same RSS reader."""
        try:
            data = incident_feed(self.archive.monitor.incidents(limit=50),
                                 base_url=self.settings.get("GOVKZ_PUBLIC_URL"))
            write_if_changed(feeds_dir(self.settings) / FEED_PATH.split("/", 1)[-1], data)
        except (GovkzError, OSError) as exc:
            log.error("cannot write the incidents feed: %s", exc)
