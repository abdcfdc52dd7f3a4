"""Run one crawl in a child process and collect its JSON summary (the Scrapyd way).

The Twisted reactor cannot be restarted, and a crawl that hangs or crashes must not take the
daemon with it, so each crawl is `python -m crawler.cli crawl --target … --json` in a process
of its own, supervised from the reactor: killed after a timeout, terminated on shutdown.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol

log = logging.getLogger(__name__)

STDERR_TAIL = 4000  # bytes of a child's stderr kept to explain a crash


@dataclass
class CrawlRun:
    targets: list[str]
    exit_code: int | None = None
    signal: int | None = None  # the signal that ended the child, if one did
    summary: dict[str, Any] | None = None
    timed_out: bool = False
    stopped: bool = False  # terminated because the daemon is shutting down
    stderr: str = ""
    stdout: str = ""

    def crash_detail(self) -> str:
        """How the child ended and its last line of stderr (CrawlOutcome.crash adds
        "crawl crashed")."""
        last = [line for line in self.stderr.strip().splitlines() if line.strip()]
        detail = last[-1].strip() if last else "no output"
        if self.exit_code is None and self.signal is not None:
            return f"killed by signal {self.signal}: {detail}"
        return f"exit code {self.exit_code}: {detail}"


class _Collector(protocol.ProcessProtocol):
    def __init__(self, run: CrawlRun, done: defer.Deferred[CrawlRun]) -> None:
        self.run, self.done = run, done
        self.out, self.err = bytearray(), bytearray()

    def outReceived(self, data: bytes) -> None:  # noqa: N802 (Twisted's name)
        self.out += data

    def errReceived(self, data: bytes) -> None:  # noqa: N802
        self.err += data
        del self.err[:-STDERR_TAIL]

    def processEnded(self, reason: Any) -> None:  # noqa: N802
        self.run.exit_code = getattr(reason.value, "exitCode", None)
        self.run.signal = getattr(reason.value, "signal", None)
        self.run.stderr = self.err.decode("utf-8", "replace")
        self.run.stdout = self.out.decode("utf-8", "replace")
        try:
            parsed = json.loads(self.run.stdout or "null")
            self.run.summary = parsed if isinstance(parsed, dict) else None
        except ValueError:
            self.run.summary = None
        self.done.callback(self.run)


class CrawlProcess:
    """One supervised crawl child; `start()` returns a Deferred firing with its CrawlRun."""

    def __init__(self, reactor: Any, argv_tail: list[str], targets: list[str], *,
                 timeout: float, env: dict[str, str] | None = None,
                 config: Path | None = None, module: str | None = None,
                 name: str | None = None) -> None:
        self.reactor = reactor
        self.targets = targets
        # --config is an option of the program, not of `crawl`: it goes before the command.
        before = ["--config", str(config)] if config else []
        if module is not None:
            # Another child under the same supervision (the site-wide probe, scheduler/mode.py):
            # `python -m MODULE [--config FILE] ARGV_TAIL`, its stdout kept as its answer.
            self.args = [sys.executable, "-m", module, *before, *argv_tail]
        else:
            self.args = [sys.executable, "-m", "crawler.cli", *before, "crawl", *argv_tail,
                         "--json"]
            for target in targets:
                self.args += ["--target", target]
        self.timeout = timeout
        self.name = name or module or "crawl"  # for the log
        # The child asks the kernel to stop it if the daemon dies (crawler/runner.py).
        self.env = {**os.environ, "GOVKZ_DIE_WITH_PARENT": "1", **(env or {})}
        self.run = CrawlRun(targets)
        self.transport: Any = None
        self._timer: Any = None

    def start(self) -> defer.Deferred[CrawlRun]:
        done: defer.Deferred[CrawlRun] = defer.Deferred()
        try:
            self.transport = self.reactor.spawnProcess(
                _Collector(self.run, done), self.args[0], self.args, env=self.env
            )
        except OSError as exc:
            # fork failed (memory, process limits): a crash of this run, reported on the next
            # turn like any other, so the daemon is not left waiting for a child that never was.
            self.run.stderr = f"cannot start the crawl process: {exc}"
            log.error("%s (targets: %s)", self.run.stderr, " ".join(self.targets))
            self.reactor.callLater(0, done.callback, self.run)
            return done
        self._timer = self.reactor.callLater(self.timeout, self._time_out)
        done.addBoth(self._finished)
        if self.targets:
            log.info("crawl started (pid %s): %s", self.transport.pid, " ".join(self.targets))
        else:  # another child in the crawl slot: the site-wide probe or doctor
            log.info("%s started (pid %s)", self.name, self.transport.pid)
        return done

    def _finished(self, result: Any) -> Any:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        return result

    def _time_out(self) -> None:
        self.run.timed_out = True
        log.warning("crawl of %s timed out after %.0f s: killing it",
                    ", ".join(self.targets), self.timeout)
        self._signal(signal.SIGKILL)

    def terminate(self, grace: float = 5.0) -> None:
        """Ask the child to stop (Scrapy closes the spider on SIGTERM), kill it after `grace`.
        Every item is stored in its own transaction, so either way nothing is half-written."""
        self.run.stopped = True
        self._signal(signal.SIGTERM)
        self.reactor.callLater(grace, self._signal, signal.SIGKILL)

    def kill(self) -> None:
        """Stop the child at once (a second SIGTERM/Ctrl-C to the daemon)."""
        self.run.stopped = True
        self._signal(signal.SIGKILL)

    def _signal(self, signo: int) -> None:
        try:
            if self.transport is not None and self.transport.pid:
                self.transport.signalProcess(signo)
        except Exception:  # noqa: BLE001 - already gone (ProcessExitedAlready): nothing to do
            pass
