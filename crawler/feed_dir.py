"""Which feeds the feeds directory holds complete, without listing it on every publish.

A publish must write every feed that lacks a file (an agency enabled since, a directory an
older version wrote without .json or .gz copies, a file deleted by hand), so it must know what
is there. For 3,000 agencies that is 3,000 directories and 72,000 files: listing them cost 0.3 s
warm and over a second cold on every publish, however little changed. So a publish leaves a
record (STATE): per directory, its mtime and the feeds in it with all their files. The next
publish stats each directory instead, trusts the record of those whose mtime did not move (a
file created, renamed over or deleted moves its directory's mtime) and lists only the others.

The record only claims what was true: it is saved after the files it names are in place, and a
publish never deletes a feed file, so a publish killed before saving leaves the previous record
true, and one killed while saving leaves none (_sealed). A missing, unreadable or other-layout
record means every directory is listed, as before.
The temporary files of a killed publish turn up in those listings (writing them moved their
directory's mtime) and are removed once old enough not to be a live writer's; until then their
directory stays out of the record, so it is listed again. What the mtimes cannot show: a file
deleted by hand while a publish writes into its directory; the next `feeds --all`, or the
agency's next change, writes it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from crawler.feed_files import FORMATS, GZ, is_temporary, temporary_writer

STATE = ".feeds.state"  # hidden: neither the server nor the nginx snippet serve it
# What a complete feed is made of: a record written for other formats says nothing of these.
LAYOUT = f"feeds {' '.join(FORMATS)} {GZ}"
# A temporary file older than this is a dead writer's (a live one renames it within seconds).
STALE_TEMPORARY_NS = 3600 * 10**9
TOP = ""  # the directory itself: the mixed-language feeds, all.*, the indexes


def feed_files(rel: str) -> list[str]:
    """The files of the feed `rel` (its path sans extension), each with its .gz copy."""
    return [f"{rel}.{ext}{gz}" for ext in FORMATS for gz in ("", GZ)]


def _split(rel: str) -> tuple[str, str]:
    directory, _, name = rel.rpartition("/")
    return directory, name


class FeedDirectory:
    """The feeds `out_dir` holds complete (every format, every .gz copy), per directory."""

    def __init__(self, root: Path, *, assume_empty: bool = False) -> None:
        self.root = Path(root)
        self._root = os.fspath(self.root)
        # When nothing is to be looked up (a full rewrite renders every feed anyway): a
        # directory is taken to hold nothing until a feed is written to it.
        self._assume_empty = assume_empty
        self._complete: dict[str, set[str]] = {}
        self._mtime: dict[str, int] = {}  # directories whose _complete is true as of mtime
        self._unsettled: set[str] = set()  # holding temporary files too young to remove
        self._saved: dict[str, Any] | None = None

    @classmethod
    def load(cls, root: Path) -> FeedDirectory:
        """From the record the last publish left, each directory checked by its mtime."""
        found = cls(root)
        record = found._read()
        if record is not None:
            found._saved = record
            for directory, (mtime, names) in record.items():
                if found._stat(directory) == mtime:
                    found._complete[directory] = set(names)
                    found._mtime[directory] = mtime
        return found

    def complete(self, rel: str) -> bool:
        """Whether the feed `rel` (e.g. "mod/ru", "mod", "all/kk") has all its files."""
        directory, name = _split(rel)
        if directory not in self._complete:
            self._list(directory)
        return name in self._complete[directory]

    def written(self, rel: str) -> None:
        """The feed `rel` has all its files now (in place: after the commit that wrote them)."""
        directory, name = _split(rel)
        if directory not in self._complete:
            self._list(directory)  # the rest of it: what is recorded is all it holds
        self._complete[directory].add(name)
        self._mtime.pop(directory, None)  # stat again when saving: the writes moved it

    def save(self) -> None:
        """Record what is known, each directory with its mtime now; after every write."""
        path = self.root / STATE
        if not path.exists():  # created before the stats: creating it moves the top's mtime
            self.root.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o644)
        for directory in self._complete.keys() - self._mtime.keys() - self._unsettled:
            mtime = self._stat(directory)
            if mtime is not None:
                self._mtime[directory] = mtime
        record = {directory: [mtime, sorted(self._complete[directory])]
                  for directory, mtime in sorted(self._mtime.items())}  # fmt: skip
        if record == self._saved:
            return
        body = json.dumps({"layout": LAYOUT, "directories": record}, separators=(",", ":"))
        _overwrite(path, _sealed(body.encode("utf-8")))
        self._saved = record

    # --- the disk -----------------------------------------------------------------------------

    def _path(self, directory: str) -> str:
        # Strings, not Path objects: load() stats every directory (3,000) on every publish.
        return os.path.join(self._root, directory) if directory else self._root

    def _stat(self, directory: str) -> int | None:
        try:
            return os.stat(self._path(directory)).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _read(self) -> dict[str, Any] | None:
        try:
            kept = json.loads(_unsealed((self.root / STATE).read_bytes()))
        except (OSError, ValueError):
            return None
        if not isinstance(kept, dict) or kept.get("layout") != LAYOUT:
            return None
        record = kept.get("directories")
        if not isinstance(record, dict) or not all(
            isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
            and isinstance(entry[1], list) for entry in record.values()
        ):  # fmt: skip
            return None
        return record

    def _list(self, directory: str) -> None:
        self._complete[directory] = set()
        if self._assume_empty:
            return
        mtime = self._stat(directory)  # before listing: a change meanwhile shows next time
        files: set[str] = set()
        leftovers = []
        try:
            with os.scandir(self._path(directory)) as entries:
                for entry in entries:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    if is_temporary(entry.name):
                        leftovers.append(entry)
                    else:
                        files.add(entry.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        stems = (name.removesuffix(".atom") for name in files if name.endswith(".atom"))
        self._complete[directory] = {
            stem for stem in stems if all(f in files for f in feed_files(stem))
        }
        if leftovers:
            self._sweep(directory, leftovers)
        elif mtime is not None:
            self._mtime[directory] = mtime

    def _sweep(self, directory: str, leftovers: list[os.DirEntry[str]]) -> None:
        """Remove a dead writer's temporary files. One of a live writer's (or of an unknown
        one, while young) keeps its directory out of the record, so it is listed again next
        time; this process's own are being renamed into place and are left alone."""
        now = time.time_ns()
        for entry in leftovers:
            writer = temporary_writer(entry.name)
            if writer == os.getpid():
                continue
            try:
                old = now - entry.stat(follow_symlinks=False).st_mtime_ns > STALE_TEMPORARY_NS
                if old or (writer is not None and not _alive(writer)):
                    os.unlink(entry.path)
                else:
                    self._unsettled.add(directory)
            except FileNotFoundError:
                continue  # renamed or removed by its writer meanwhile


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


# The record is rewritten in place, not renamed into place like the feeds: a rename would move
# the mtime of the directory it describes, so the record could never hold that directory's
# mtime. A write cut short (a crash, a power cut) must then not pass for a record: the first
# line is the SHA-256 of the rest, and anything else is no record (everything is listed).


def _sealed(body: bytes) -> bytes:
    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def _unsealed(data: bytes) -> bytes:
    digest, _, body = data.partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise ValueError("not a whole record")
    return body


def _overwrite(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
