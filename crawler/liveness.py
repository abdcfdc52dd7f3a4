"""Whether the process that started a crawl still runs: a `crawls` row left `running` by a
process that is gone (SIGKILL, a crash, crawl_timeout) is marked `killed` when the archive next
opens. The pid alone is not enough, pids are reused, so the process's start time (Linux:
/proc/PID/stat, field 22, in clock ticks since boot) is recorded with it where available."""

from __future__ import annotations

import os


def _stat(pid: int) -> list[bytes]:
    """/proc/PID/stat from field 3 (state) on, or [] where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return []
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return data.rsplit(b")", 1)[-1].split()


def start_time(pid: int) -> str | None:
    """An opaque token for when `pid` started, or None where it cannot be read."""
    fields = _stat(pid)
    return fields[19].decode() if len(fields) > 19 else None


def is_running(pid: int | None, started: str | None) -> bool:
    """Whether the process `pid` that started at `started` (start_time) still runs."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    fields = _stat(pid)
    if fields[:1] == [b"Z"]:
        return False  # a zombie: dead, only not yet reaped by its parent
    if started is None or len(fields) <= 19:
        return True
    return fields[19].decode() == started
