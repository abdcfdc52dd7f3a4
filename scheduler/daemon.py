"""The daemon: crawl gov.kz on an adaptive schedule, publish, serve.

One Twisted reactor runs everything: APScheduler's TwistedScheduler holds one job per target
(a Target, crawler/store_monitor.py: an agency in one language, or the site-wide stream of a
language, agency "*"; explicit ids "crawl:agency/lang", coalesced, one instance), the
twisted.web server serves the feeds and the status pages, and crawls run as supervised child
processes (scheduler/crawlproc.py), told their targets as `--target agency/lang`: the one place
the daemon spells a target as a string.

The mode (scheduler/mode.py): site-wide (one stream target per language plus a daily audit of
every agency, scheduler/audit.py) when the site-wide list works, per-agency otherwise; probed
in a child at start and every probe_interval. Due targets are crawled in one child process,
one batch at a time and no bigger than fits in crawl_timeout (scheduler/batching.py), so gov.kz
sees one polite crawler; a target left out waits its turn, first in line. The schedule lives in
the archive's `schedule` table, so a restart picks up where the daemon stopped instead of
re-crawling everything at once.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from crawler.config import Config
from crawler.errors import GovkzError
from crawler.feeds import write_if_changed
from crawler.paths import db_path, feeds_dir
from crawler.store import Archive
from crawler.store_monitor import Target
from crawler.timeutil import utcnow
from scheduler import audit, batching
from scheduler.crawlproc import CrawlProcess, CrawlRun
from scheduler.health import HEARTBEAT, Liveness
from scheduler.incidents import (
    ACCESS_REFUSED,
    FEED_PATH,
    RHYTHM_ITEMS,
    SILENCE_KINDS,
    Incident,
    Rhythm,
    detect,
    incident_feed,
    judge_silence,
    with_diagnosis,
)
from scheduler.metrics import Metrics
from scheduler.mode import (
    PER_AGENCY_MODE,
    PROBE_MODULE,
    SITE_WIDE_MODE,
    Mode,
    configured,
    from_probe,
    is_stream,
    stream_targets,
)
from scheduler.policy import AgencyState, CrawlOutcome, Policy

log = logging.getLogger(__name__)

BATCH_WINDOW = timedelta(seconds=30)  # targets due this soon join the batch starting now
AUDIT_GAP = 2 * BATCH_WINDOW  # audit slots never fall into one batch
PROBE_TIMEOUT = 120  # seconds: a probe is one request (and its retries)
DOCTOR_TIMEOUT = 600  # seconds: `doctor` tries about ten paths, each bounded at 20 s


@dataclass(frozen=True)
class Reported:
    """A crawl child's summary indexed by target once, so a batch of thousands of targets is
    judged in one pass (each target by its own record plus the crawl-wide ones)."""

    by_key: dict[str, dict[str, Any]]
    general: list[dict[str, Any]]  # crawl-wide records ("crawl", "feeds"): every target's

    @classmethod
    def of(cls, run: CrawlRun) -> Reported:
        records = [t for t in (run.summary or {}).get("targets", []) if isinstance(t, dict)]
        return cls({str(t.get("target")): t for t in records},
                   [t for t in records if "/" not in str(t.get("target", "/"))])

    def requests(self, target: Target) -> int:
        return int((self.by_key.get(target.key) or {}).get("requests") or 0)

    def rejected(self, target: Target) -> int:
        return max(0, int((self.by_key.get(target.key) or {}).get("rejected") or 0))

    def problem_counts(self, target: Target) -> dict[str, int]:
        counts: dict[str, int] = {}
        for problem in (self.by_key.get(target.key) or {}).get("problems") or ():
            kind = str(problem.get("kind", "unexpected"))
            counts[kind] = counts.get(kind, 0) + 1
        return counts


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
        # Every enabled agency x language (or their "agency/lang" form from the command line):
        # the targets of per-agency mode, the audits of site-wide mode.
        self.targets = [Target.of(target) for target in targets]
        self.crawl_args = crawl_args or []
        self.now = clock or utcnow
        self.rng = rng or random.Random()
        self.policy = Policy(config.schedule, self.rng)
        self.metrics = Metrics(clock=self.now)  # the schedule lag is on the daemon's clock
        self.archive = Archive.open(db_path(settings))
        self.states: dict[Target, AgencyState] = {}
        # Due targets waiting for a child, in arrival order: an ordered set (a dict), so that
        # thousands of them cost nothing to look up.
        self.queue: dict[Target, None] = {}
        self._kick_pending = False  # one kick queued on the reactor at a time
        self.running: CrawlProcess | None = None
        self.scheduler: Any = None
        self.stopping = False
        self._batch_started = utcnow()
        self.started_at = self.now()  # for /healthz and the status page's uptime
        self.heartbeat_at: datetime | None = None  # the heartbeat job's last run
        # The mode (scheduler/mode.py): forced by the configuration, else per-agency until a
        # probe of the site-wide list says otherwise. /status shows both lines.
        forced = configured(config.schedule.mode)
        initial = forced or Mode(PER_AGENCY_MODE, "probing the site-wide list")
        self.mode: str = initial.name
        self.mode_reason: str = initial.reason
        self.probe_due = forced is None  # a probe runs before the first batch
        self.pace = batching.Pace()  # seconds per request, learned from finished crawls
        self.carried: set[Target] = set()  # due, but not crawled yet: they go first
        self.strikes: dict[Target, int] = {}  # timed-out batches each was left unfinished by
        # "Every access strategy refused" incidents wait for `doctor` (crawler/doctor.py) to
        # say why, in the one child slot, before they are recorded with its verdict.
        self.refusals: list[Incident] = []

    @property
    def stream_targets(self) -> list[Target]:
        """The site-wide stream of each language, in site-wide mode (else none)."""
        return stream_targets(self.config.crawl.langs) if self.mode == SITE_WIDE_MODE else []

    def wanted(self) -> list[Target]:
        """What the current mode schedules: the streams first, then every agency x language."""
        return self.stream_targets + self.targets

    # --- start and stop -----------------------------------------------------------------------

    def plan(self) -> None:
        """Restore or create the state of every target the mode schedules: per-agency targets
        spread when overdue (policy.startup); in site-wide mode, the streams the same way and
        the agencies as audits, spread over audit_interval (scheduler/audit.py)."""
        now = self.now()
        known = [AgencyState.from_row(row) for row in self.archive.monitor.schedule().values()]
        if self.mode == SITE_WIDE_MODE:
            streams = self.stream_targets
            states = self.policy.startup(known, streams, now)
            states += self._plan_audits(known, now)
        else:
            states = self.policy.startup(known, self.targets, now)
        self.states = {state.target: state for state in states}
        self._save_all(states)
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
        self.metrics.set_targets(self.states.values())

    def _plan_audits(self, known: list[AgencyState], now: datetime) -> list[AgencyState]:
        period = timedelta(seconds=self.config.schedule.audit_interval)
        by_target = {state.target: state for state in known}
        kept = [by_target[t] for t in self.targets
                if t in by_target and audit.keep(by_target[t].next_crawl, now, period)]
        slots = audit.spread([t for t in self.targets if t not in {s.target for s in kept}],
                             now, period, min_gap=AUDIT_GAP)
        out = []
        for target in self.targets:
            if target in slots:
                state = by_target.get(target) or self.policy.initial(target, now)
                out.append(replace(state, next_crawl=slots[target],
                                   interval=self.policy.clamp(state.interval)))
            else:
                out.append(by_target[target])
        return out

    def start(self) -> None:
        from apscheduler.schedulers.twisted import TwistedScheduler

        if not self.probe_due:
            self.plan()  # else after the probe: the mode decides what is planned (set_mode)
        self.scheduler = TwistedScheduler(
            reactor=self.reactor,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        for target, state in self.states.items():
            self._schedule(target, state.next_crawl or self.now())
        # A job that only notes the time: /healthz knows the job loop still turns.
        self.scheduler.add_job(self._beat, "interval", seconds=HEARTBEAT, id="heartbeat",
                               name="heartbeat", replace_existing=True)
        if configured(self.config.schedule.mode) is None:
            self.scheduler.add_job(self._probe_job, "interval",
                                   seconds=self.config.schedule.probe_interval, id="probe",
                                   name="probe the site-wide list", replace_existing=True)
        self.scheduler.start()
        self.reactor.addSystemEventTrigger("before", "shutdown", self.stop)
        if self.probe_due:
            log.info("daemon started: probing the site-wide list of %s before planning %d "
                     "agency targets", self.config.crawl.base_url, len(self.targets))
            self._kick_soon()
        else:
            self._log_plan()

    def _log_plan(self) -> None:
        log.info("%s mode (%s): %d targets, next crawl %s", self.mode, self.mode_reason,
                 len(self.states),
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

    def _beat(self) -> None:
        self.heartbeat_at = self.now()  # one attribute, written whole: safe from a thread

    def liveness(self) -> Liveness:
        """Whether the scheduler runs, and when its job loop last turned (scheduler/health.py)."""
        running = (self.scheduler is not None and bool(self.scheduler.running)
                   and not self.stopping)
        return Liveness(running, self.started_at, self.heartbeat_at)

    # --- the mode -----------------------------------------------------------------------------

    def _probe_job(self) -> None:
        self.reactor.callFromThread(self.request_probe)

    def request_probe(self) -> None:
        """Probe the site-wide list before the next batch (daily, or when the stream fails)."""
        if configured(self.config.schedule.mode) is not None or self.stopping:
            return
        self.probe_due = True
        self._kick_soon()

    def _start_probe(self) -> None:
        self.probe_due = False
        # In the one child slot: gov.kz still sees one polite crawler.
        self._batch_started = utcnow()
        self.running = CrawlProcess(
            self.reactor, [*self.crawl_args, "--lang", self.config.crawl.langs[0]], [],
            timeout=PROBE_TIMEOUT, config=self.config.path, module=PROBE_MODULE,
            name="site-wide probe",
        )
        self._running_done = self.running.start()
        self._running_done.addCallback(self.probed)
        self._running_done.addErrback(lambda f: log.error("probe supervision failed: %s", f))

    def _start_doctor(self) -> None:
        self._batch_started = utcnow()
        self.running = CrawlProcess(
            self.reactor, ["doctor", "--json", *self.crawl_args], [],
            timeout=DOCTOR_TIMEOUT, config=self.config.path, module="crawler.cli",
            name="doctor",
        )
        self._running_done = self.running.start()
        self._running_done.addCallback(self.diagnosed)
        self._running_done.addErrback(lambda f: log.error("doctor supervision failed: %s", f))

    def diagnosed(self, run: CrawlRun) -> None:
        """Record the held access-refused incidents with doctor's verdict (none if it could
        not say: the incidents are recorded as they were)."""
        from crawler.doctor import verdict_of

        self.running = None
        verdict = None if run.stopped or run.timed_out else verdict_of(run.stdout)
        log.info("doctor: %s", verdict or "no verdict (%s)" % (
            "timed out" if run.timed_out else run.crash_detail()))
        held, self.refusals = self.refusals, []
        for incident in held:
            self._record_incident(with_diagnosis(incident, verdict))
        if held:
            self.publish_incidents()
        self._kick_soon()

    def probed(self, run: CrawlRun) -> None:
        self.running = None
        if not run.stopped:
            detail = "timed out" if run.timed_out else run.crash_detail()
            self.set_mode(from_probe(run.stdout, exit_code=run.exit_code, detail=detail))
        self._kick_soon()

    def set_mode(self, mode: Mode) -> None:
        """Switch to `mode` (or note the new reason): the schedule is planned again for the
        targets it crawls (the first time, or when the mode changed), and the jobs of the
        others are dropped."""
        changed = mode.name != self.mode
        self.mode, self.mode_reason = mode.name, mode.reason
        if self.states and not changed:
            log.info("mode: %s (%s)", mode.name, mode.reason)
            return
        if self.states:
            log.warning("mode changed to %s: %s", mode.name, mode.reason)
        before = set(self.states)
        self.plan()
        self._log_plan()
        soon = self.now() + BATCH_WINDOW
        self.queue = {t: None for t in self.queue if t in self.states
                      and (self.states[t].next_crawl or soon) <= soon}
        self.carried &= set(self.queue)
        if self.scheduler is None:
            return
        for target in before - set(self.states):
            try:
                self.scheduler.remove_job(f"crawl:{target.key}")
            except Exception:  # noqa: BLE001 - JobLookupError: it ran already
                pass
        if not self.stopping:
            for target, state in self.states.items():
                self._schedule(target, state.next_crawl or self.now())

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
        if self.stopping or target in self.queue or running or target not in self.states:
            return  # never two crawls of one target at once; nor one the mode dropped
        self.queue[target] = None
        self._kick_soon()

    def _kick_soon(self) -> None:
        if not self._kick_pending:
            self._kick_pending = True
            self.reactor.callLater(0, self.kick)

    def kick(self) -> None:
        """Start the next child unless one is running: a probe when one is due, else a batch of
        the due queue plus targets due soon, as much of it as fits (scheduler/batching.py)."""
        self._kick_pending = False
        if self.running is not None or self.stopping:
            return
        if self.probe_due:
            self._start_probe()
            return
        if self.refusals:
            self._start_doctor()
            return
        if not self.queue:
            return
        soon = self.now() + BATCH_WINDOW
        for target, state in sorted(self.states.items(), key=lambda kv: kv[1].next_crawl or soon):
            if target not in self.queue and state.next_crawl and state.next_crawl <= soon:
                self.queue[target] = None
        batch = self.plan_batch(list(self.queue))
        self.queue = dict.fromkeys(batch.left)
        self.carried = set(batch.left)
        if batch.left:
            log.info("batch of %d targets (about %d requests, %.0f s); %d more wait their turn",
                     len(batch.targets), batch.requests, batch.seconds, len(batch.left))
        # Real time, not the daemon's clock: it is compared with what the child writes.
        self._batch_started = utcnow()
        self.running = CrawlProcess(
            self.reactor, self.crawl_args, [target.key for target in batch.targets],
            timeout=self.config.schedule.crawl_timeout, config=self.config.path,
        )
        self._running_done = self.running.start()
        self._running_done.addCallback(self.finished)
        self._running_done.addErrback(lambda f: log.error("crawl supervision failed: %s", f))

    def plan_batch(self, due: list[Target]) -> batching.Batch:
        """The next batch out of `due`: streams, then targets that waited, then the busiest,
        as many as fit in crawl_timeout at the configured (or observed) rate."""
        crawl = self.config.crawl
        ordered = batching.order(due, carried=self.carried, rates=self._rates())
        return batching.take(
            ordered, self.states,
            budget=batching.budget_seconds(self.config.schedule.crawl_timeout),
            seconds_per_request=self.pace.seconds_per_request(crawl.download_delay),
            page_size=crawl.page_size, backfill=crawl.backfill,
        )

    def _rates(self) -> dict[Target, int]:
        try:
            return self.archive.recent_rates(self.now() - timedelta(days=batching.RATE_DAYS))
        except (GovkzError, sqlite3.Error) as exc:
            log.error("cannot read how busy the agencies are: %s", exc)
            return {}

    # --- results ------------------------------------------------------------------------------

    def outcome_of(self, run: CrawlRun, target: Target,
                   walked: AbstractSet[Target] = frozenset(),
                   reported: Reported | None = None) -> CrawlOutcome:
        """The outcome of one target of a batch, judged by its own record: a target whose walk
        completed (its mark is in the archive) succeeded even if the batch was killed later."""
        if run.timed_out or run.summary is None:
            if target in walked:
                return CrawlOutcome(True, 0, 0, None)
            if run.timed_out:
                return CrawlOutcome.timeout(self.config.schedule.crawl_timeout,
                                            "this target had not finished")
            return CrawlOutcome.crash(run.crash_detail())
        reported = reported or Reported.of(run)
        own = reported.by_key.get(target.key)
        # A target the child never reached (it died early): crawl-wide problems explain.
        mine = [own] if own is not None else []
        return CrawlOutcome.from_summary({"targets": mine + reported.general}, agency=target)

    def _walked(self, run: CrawlRun) -> set[Target]:
        if run.summary is not None and not run.timed_out:
            return set()
        try:
            return self.archive.monitor.walked_since(self._batch_started)
        except GovkzError as exc:
            log.error("cannot read which walks completed: %s", exc)
            return set()

    def _not_reached(self, run: CrawlRun, batch: list[Target], walked: set[Target]
                     ) -> set[Target]:
        """The targets of a timed-out batch that get no verdict: carried over, first in line
        (batching.judge_unfinished); the pace is halved for the batches to come."""
        if not run.timed_out or run.stopped:
            return set()
        unfinished = [t for t in batch if t not in walked]
        for target in walked:
            self.strikes.pop(target, None)
        if not unfinished:
            return set()
        self.pace.slow_down()
        verdict = batching.judge_unfinished(unfinished, strikes=self.strikes)
        for target in verdict.fail:
            self.strikes.pop(target, None)
        for target in verdict.carry:
            self.strikes[target] = self.strikes.get(target, 0) + 1
        if verdict.carry:
            log.warning("the batch timed out before %d of its targets finished: they go "
                        "first next time, in smaller batches", len(verdict.carry))
        return set(verdict.carry)

    def finished(self, run: CrawlRun) -> None:
        self.running = None
        now = self.now()
        changed = False
        elapsed = (utcnow() - self._batch_started).total_seconds()
        self.metrics.observe_crawl_duration(elapsed)
        succeeded: list[Target] = []
        walked = self._walked(run)
        if run.summary is None:
            self.publish_feeds()  # what a killed crawl stored reaches the feeds now
        elif not run.timed_out:
            self.pace.learn(elapsed, sum(int(t.get("requests") or 0)
                                         for t in run.summary.get("targets", [])))
        # The run names its targets as the child was told them: "agency/lang".
        batch = [Target.parse(key) for key in run.targets]
        carried = self._not_reached(run, batch, walked)
        reported = Reported.of(run)
        saved: list[AgencyState] = []
        for target in batch:
            if run.stopped:
                continue  # not a verdict on the agency: retried on the next start
            if target in carried:
                if target in self.states:
                    self.queue[target] = None  # still due: first in line (self.carried)
                    self.carried.add(target)
                continue
            if target not in self.states:
                continue  # the mode changed while it crawled: no longer scheduled
            self.strikes.pop(target, None)
            before = self.states[target]
            outcome = self.outcome_of(run, target, walked, reported)
            after = self._after(before, outcome, now)
            self.states[target] = after
            saved.append(after)
            for incident in detect(before, after, outcome,
                                   threshold=self.config.schedule.failure_threshold):
                if incident.kind == ACCESS_REFUSED and not self.stopping:
                    self.refusals.append(incident)  # recorded once doctor has said why
                    continue
                self._record_incident(incident)
                changed = True
            self.metrics.record_crawl(
                target.agency, "ok" if outcome.ok else "failed", new=outcome.new,
                updated=outcome.updated, errors=0 if outcome.ok else 1,
                requests=reported.requests(target),
                problems=reported.problem_counts(target), at=now,
            )
            self.metrics.record_rejects(target.agency, reported.rejected(target))
            if outcome.ok and not is_stream(target):
                succeeded.append(target)
            # A failure is what an operator greps the log for: WARNING, not INFO.
            log.log(logging.INFO if outcome.ok else logging.WARNING, "%s: %s; next crawl %s",
                    target, "ok" if outcome.ok else f"FAILED: {outcome.error}",
                    after.next_crawl.isoformat() if after.next_crawl else "-")
            if not self.stopping and after.next_crawl:
                self._schedule(target, after.next_crawl)
            if is_stream(target) and not outcome.ok and \
                    after.consecutive_failures >= self.config.schedule.failure_threshold:
                self.request_probe()  # the stream broke: is the site-wide list still there?
        self._save_all(saved)
        try:
            for agency, n in self.archive.item_counts().items():
                self.metrics.set_items(agency, n)
        except GovkzError as exc:
            log.error("cannot read item counts: %s", exc)
        self.metrics.set_targets(self.states.values())
        changed = self.check_silence(succeeded, now) or changed
        if changed:
            self.publish_incidents()
        self._kick_soon()

    def _after(self, before: AgencyState, outcome: CrawlOutcome, now: datetime) -> AgencyState:
        """The policy's next state; in site-wide mode an agency's successful audit comes round
        again after audit_interval instead of its learned interval."""
        after = self.policy.after_crawl(before, outcome, now)
        if self.mode != SITE_WIDE_MODE or is_stream(before.target) or not outcome.ok:
            return after
        jitter = self.config.schedule.jitter
        offset = self.rng.randint(-jitter, jitter) if jitter else 0
        period = max(self.config.schedule.audit_interval + offset,
                     self.config.schedule.min_interval)
        return replace(after, next_crawl=now.replace(microsecond=0) + timedelta(seconds=period))

    def check_silence(self, targets: list[Target], now: datetime) -> bool:
        """Open or close the silence incidents of targets that just crawled fine
        (scheduler/incidents.py judges); True if one was recorded."""
        if not targets:
            return False
        try:
            published = self.archive.recent_published(targets, RHYTHM_ITEMS)
            last = self.archive.monitor.latest_incident_kinds(SILENCE_KINDS)
        except GovkzError as exc:
            log.error("cannot read the publication rhythm: %s", exc)
            return False
        found = [judge_silence(t, Rhythm.of(published.get(t, [])), now,
                               is_open=last.get(t.key) == "silent") for t in targets]
        for incident in [i for i in found if i is not None]:
            self._record_incident(incident)
        return any(found)

    def _save_all(self, states: Iterable[AgencyState]) -> None:
        states = list(states)
        try:  # one transaction for a plan or a batch of thousands of targets
            self.archive.monitor.save_schedules((s.target, s.fields()) for s in states)
        except GovkzError as exc:  # a full or read-only disk: keep crawling and serving
            log.error("cannot save the schedule of %d target(s): %s", len(states), exc)

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
            # Every target it crawls has feeds, empty or not (in --demo too, whose agencies
            # the config does not name).
            publish(self.settings, targets=[(t.agency, t.lang) for t in self.targets])
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
