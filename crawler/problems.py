"""What went wrong, as data: a typed record that travels from the spider and the pipelines
through the crawl summary, the `crawls` row and the child process's JSON to the daemon, the
incidents and the metrics. Nothing downstream reads English text to learn what happened."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class ProblemKind(StrEnum):
    ACCESS_REFUSED = "access_refused"  # every access strategy was refused
    LAYOUT_CHANGED = "layout_changed"  # a response of a shape the extractors do not know
    HTTP_ERROR = "http_error"  # an HTTP error status, or a connection that failed
    TIMEOUT = "timeout"  # a request or the whole crawl ran out of time
    REJECTED = "rejected"  # one element could not become an item; its neighbours were stored
    UNEXPECTED = "unexpected"  # a bug: an exception nobody expected (traceback in the log)
    STORE = "store"  # the archive or the feeds could not be written
    CRASHED = "crashed"  # the crawl process died without a summary


# Kinds that do not make a target fail: its crawl worked, one element did not.
NOT_FAILURES = frozenset({ProblemKind.REJECTED})


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    target: str  # "agency/lang", a seed file, or a crawl-wide name ("crawl", "feeds")
    message: str  # one line for people
    url: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ProblemKind(self.kind))
        object.__setattr__(self, "message", " ".join(str(self.message).split()))

    @property
    def fails(self) -> bool:
        return self.kind not in NOT_FAILURES

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": str(self.kind)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        """A problem read back from JSON; an unknown kind (a newer writer) is `unexpected`."""
        try:
            kind = ProblemKind(str(data.get("kind")))
        except ValueError:
            kind = ProblemKind.UNEXPECTED
        return cls(kind, str(data.get("target") or ""), str(data.get("message") or ""),
                   str(data.get("url") or ""))

    def line(self) -> str:
        """One line for people: the message and the URL (the kind is for programs)."""
        return self.message + (f" ({self.url})" if self.url else "")
