"""Which way the daemon crawls: the site-wide stream or one walk per agency (pure decisions).

Site-wide mode: one target per language, Target(SITE_WIDE, lang) ("*/ru", the same agency key
the site-wide walk keeps its mark under, crawler/sync.py), on the usual adaptive schedule: a
quiet cycle costs one list request per language for all of gov.kz. Beside it every enabled
agency x language is still walked about once per `audit_interval` (scheduler/audit.py), to catch
what a stream newest first cannot show: edits to older items and back-dated items.

Per-agency mode: one target per enabled agency x language, batched by what fits in a crawl
(scheduler/batching.py).

The choice comes from the configuration (`[schedule] mode`) or, with "auto", from a probe of the
site-wide list (crawler/sitewide_probe.py, run in a child process at start and every
`probe_interval`); the daemon says which mode it is in and why (Daemon.mode, Daemon.mode_reason:
/status, /status.json and the log).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from crawler.store_monitor import Target
from crawler.sync import SITE_WIDE

SITE_WIDE_MODE = "site-wide"
PER_AGENCY_MODE = "per-agency"
AUTO = "auto"
PROBE_MODULE = "crawler.sitewide_probe"


@dataclass(frozen=True)
class Mode:
    name: str  # SITE_WIDE_MODE or PER_AGENCY_MODE
    reason: str  # one line for people

    @property
    def site_wide(self) -> bool:
        return self.name == SITE_WIDE_MODE


def is_stream(target: Target) -> bool:
    """Whether `target` is the site-wide stream of a language (not an agency)."""
    return target.agency == SITE_WIDE


def stream_targets(langs: Iterable[str]) -> list[Target]:
    return [Target(SITE_WIDE, lang) for lang in dict.fromkeys(langs)]


def configured(setting: str) -> Mode | None:
    """The mode the configuration forces, or None for "auto" (probe)."""
    if setting == SITE_WIDE_MODE:
        return Mode(SITE_WIDE_MODE, "set by the configuration ([schedule] mode)")
    if setting == PER_AGENCY_MODE:
        return Mode(PER_AGENCY_MODE, "set by the configuration ([schedule] mode)")
    return None


def from_probe(output: str, *, exit_code: int | None, detail: str = "") -> Mode:
    """The mode a probe child's output decides: site-wide only when it answered that the list
    works; anything else (a refusal, an unknown shape, no answer, a crash) is per-agency mode,
    which works wherever the site-wide list does not."""
    try:
        answer = json.loads(output) if output.strip() else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("works"), bool):
        why = detail or f"exit code {exit_code}"
        return Mode(PER_AGENCY_MODE, f"the site-wide probe gave no answer ({why})")
    reason = " ".join(str(answer.get("reason") or "").split()) or "no reason given"
    if answer["works"]:
        return Mode(SITE_WIDE_MODE, f"probe: {reason}")
    return Mode(PER_AGENCY_MODE, f"probe: {reason}")
