"""What a run did, per target (a seed file, or an agency/language), for the user and the archive.

The spider records what went wrong as typed problems (crawler/problems.py), the pipelines what
they stored and rejected; the CLI prints the result and the daemon reads it back as JSON from a
crawl subprocess. Nothing reading a summary has to parse English: every problem has a kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crawler.problems import Problem, ProblemKind

COUNTERS = ("found", "new", "updated", "unchanged", "rejected")
# Longest list of reject lines kept per target in a summary (the archive keeps every reject).
REJECT_LINES = 50


@dataclass
class TargetSummary:
    target: str
    found: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    pages: int = 0
    requests: int = 0
    discovered: int = 0  # agencies the site-wide stream named that the archive did not know
    strategy: str | None = None
    incomplete: list[str] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)  # "agency/id (lang): reason", capped
    problems: list[Problem] = field(default_factory=list)

    def add(self, kind: ProblemKind | str, message: str, url: str = "") -> Problem:
        """Record a problem of this target and return it."""
        problem = Problem(ProblemKind(kind), self.target, message, url)
        self.problems.append(problem)
        return problem

    def reject(self, line: str, reason: str, url: str = "") -> None:
        """Count one element that could not become an item (stored in the archive's rejects)."""
        self.rejected += 1
        if len(self.rejects) < REJECT_LINES:
            self.rejects.append(line)
        self.add(ProblemKind.REJECTED, reason, url)

    @property
    def errors(self) -> tuple[str, ...]:
        """The failing problems, one line each (read-only: record with `add`)."""
        return tuple(p.line() for p in self.problems if p.fails)

    @property
    def ok(self) -> bool:
        """No failing problem: a reject costs only itself, not its target."""
        return not any(p.fails for p in self.problems)

    @property
    def status(self) -> str:
        """ok (nothing went wrong), partial (something did, items still came), failed."""
        if not self.problems:
            return "ok"
        if self.ok or self.found:
            return "partial"
        return "failed"

    def kinds(self) -> set[str]:
        return {str(p.kind) for p in self.problems}

    def line(self) -> str:
        parts = [f"{getattr(self, name)} {name}" for name in COUNTERS]
        if self.incomplete:
            parts.append(f"{len(self.incomplete)} incomplete")
        if self.pages or self.requests:
            parts.append(f"{self.pages} pages, {self.requests} requests")
        if self.discovered:
            parts.append(f"{self.discovered} agencies discovered")
        if self.strategy:
            parts.append(f"access: {self.strategy}")
        return f"{self.target}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, **{name: getattr(self, name) for name in COUNTERS},
            "pages": self.pages, "requests": self.requests, "strategy": self.strategy,
            "discovered": self.discovered,
            "status": self.status, "incomplete": list(self.incomplete),
            "rejects": list(self.rejects), "problems": [p.to_dict() for p in self.problems],
            "errors": list(self.errors),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetSummary:
        t = cls(str(data.get("target", "")))
        for name in (*COUNTERS, "pages", "requests", "discovered"):
            setattr(t, name, int(data.get(name) or 0))
        t.strategy = data.get("strategy")
        t.incomplete = list(data.get("incomplete") or [])
        t.rejects = list(data.get("rejects") or [])
        t.problems = [Problem.from_dict(p) for p in data.get("problems") or ()]
        return t


@dataclass
class CrawlSummary:
    targets: dict[str, TargetSummary] = field(default_factory=dict)

    def target(self, name: str) -> TargetSummary:
        if name not in self.targets:
            self.targets[name] = TargetSummary(name)
        return self.targets[name]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets.values())

    @property
    def status(self) -> str:
        """The `crawls` row's status: ok, partial or failed, from every target's."""
        statuses = {t.status for t in self.targets.values()}
        if statuses <= {"ok"}:
            return "ok"
        if statuses == {"failed"}:
            return "failed"
        return "partial"

    def problems(self) -> list[Problem]:
        return [p for t in self.targets.values() for p in t.problems]

    def totals(self) -> dict[str, int]:
        totals = {name: 0 for name in (*COUNTERS, "incomplete", "requests")}
        for t in self.targets.values():
            for name in COUNTERS:
                totals[name] += getattr(t, name)
            totals["incomplete"] += len(t.incomplete)
            totals["requests"] += t.requests
        totals["errors"] = len(self.errors())
        return totals

    def errors(self) -> list[str]:
        return [f"{t.target}: {e}" for t in self.targets.values() for e in t.errors]

    def render(self) -> str:
        """Human-readable report: one line per target, then its details and a total."""
        lines: list[str] = []
        for t in sorted(self.targets.values(), key=lambda t: t.target):
            lines.append(t.line())
            lines += [f"    incomplete: {what}" for what in t.incomplete]
            lines += [f"    rejected: {what}" for what in t.rejects]
            if t.rejected > len(t.rejects):
                lines.append(f"    rejected: … {t.rejected - len(t.rejects)} more in the archive")
            lines += [f"    ERROR: {what}" for what in t.errors]
        tot = self.totals()
        lines.append("total: " + ", ".join(f"{tot[k]} {k}" for k in (*COUNTERS, "errors")))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "targets": [t.to_dict() for t in self.targets.values()],
            "totals": self.totals(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CrawlSummary:
        summary = cls()
        for raw in data.get("targets", []):
            t = TargetSummary.from_dict(raw)
            summary.targets[t.target] = t
        return summary


def summary_for(crawler: Any) -> CrawlSummary:
    """The summary of this crawler's run (created on first use, kept on the crawler)."""
    summary = getattr(crawler, "govkz_summary", None)
    if summary is None:
        summary = CrawlSummary()
        crawler.govkz_summary = summary
    return summary
