"""What a run did, per target (a seed file, or an agency/language), for the user and the archive.

The spider records what it could not read, the pipelines record what they stored; the CLI prints
the result and the daemon reads it back as JSON from a crawl subprocess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

COUNTERS = ("found", "new", "updated", "unchanged")


@dataclass
class TargetSummary:
    target: str
    found: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    pages: int = 0
    requests: int = 0
    strategy: str | None = None
    incomplete: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def line(self) -> str:
        parts = [f"{n} {name}" for name, n in zip(COUNTERS, self.counts()[:4], strict=True)]
        parts.append(f"{len(self.skipped)} skipped")
        if self.incomplete:
            parts.append(f"{len(self.incomplete)} incomplete")
        if self.pages or self.requests:
            parts.append(f"{self.pages} pages, {self.requests} requests")
        if self.strategy:
            parts.append(f"access: {self.strategy}")
        return f"{self.target}: " + ", ".join(parts)

    def counts(self) -> tuple[int, ...]:
        return (self.found, self.new, self.updated, self.unchanged)


@dataclass
class CrawlSummary:
    targets: dict[str, TargetSummary] = field(default_factory=dict)
    # Agencies with a new or edited item: the only ones whose feeds need rewriting.
    changed_agencies: set[str] = field(default_factory=set)

    def target(self, name: str) -> TargetSummary:
        if name not in self.targets:
            self.targets[name] = TargetSummary(name)
        return self.targets[name]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets.values())

    def totals(self) -> dict[str, int]:
        totals = {name: 0 for name in (*COUNTERS, "skipped", "incomplete", "requests")}
        for t in self.targets.values():
            for name in COUNTERS:
                totals[name] += getattr(t, name)
            totals["skipped"] += len(t.skipped)
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
            lines += [f"    skipped: {what}" for what in t.skipped]
            lines += [f"    ERROR: {what}" for what in t.errors]
        tot = self.totals()
        lines.append(
            "total: " + ", ".join(f"{tot[k]} {k}" for k in (*COUNTERS, "skipped", "errors"))
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": [asdict(t) for t in self.targets.values()],
            "totals": self.totals(),
            "changed_agencies": sorted(self.changed_agencies),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CrawlSummary:
        summary = cls(changed_agencies=set(data.get("changed_agencies", [])))
        for raw in data.get("targets", []):
            t = TargetSummary(**raw)
            summary.targets[t.target] = t
        return summary


def summary_for(crawler: Any) -> CrawlSummary:
    """The summary of this crawler's run (created on first use, kept on the crawler)."""
    summary = getattr(crawler, "govkz_summary", None)
    if summary is None:
        summary = CrawlSummary()
        crawler.govkz_summary = summary
    return summary
