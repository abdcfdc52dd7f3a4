"""Putting files into the feeds directory: each replaced atomically, beside its gzip copy, and
on disk before it takes the old one's place.

A file is written under a hidden temporary name beside its target (the server and the nginx
snippet refuse hidden names), its data synced (fdatasync), and only then renamed over the
target: a reader, and after a power cut the disk, holds the old file or the new one, never a
part of one. A file that already holds the bytes is not touched at all, so its mtime, and with
it the ETag and Last-Modified readers' conditional GETs compare, stay as they were.

A publish stages many files (StagedWrites): reading the old copy, compressing, writing and
syncing run in a few threads while the next feed renders, the renames too (replacing a file
frees the old one's blocks: on ext4 a millisecond or more of journal work each, paid one after
the other it was most of an incremental publish), and every directory renamed into is synced
before commit() returns, so a caller that records the publish afterwards never records files
the disk may not have.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

GZ = ".gz"
# Every feed is written in each of these formats, beside each other: {rel}.atom, .rss, .json.
FORMATS = ("atom", "rss", "json")
# The .gz copies are served as they are (the embedded server, nginx's gzip_static): zlib's
# default level, its balance of size and time; mtime 0 makes the bytes a function of the feed.
GZIP_LEVEL = 6
TEMP_SUFFIX = ".tmp"
# Threads that stage and rename: the work is mostly waiting on the disk (zlib and the system
# calls release the GIL), so a few overlap it with rendering even on 2 cores.
WORKERS = 4
# fdatasync where there is one: the data and the size, not the access times.
_sync_data = getattr(os, "fdatasync", os.fsync)
_T = TypeVar("_T")


def gz_path(path: Path) -> Path:
    """Where the precompressed copy of a written file lives: beside it, `.gz` appended."""
    return path.with_name(path.name + GZ)


def gz_fresh(path: Path) -> bool:
    """Whether `path`'s .gz copy is current: written with it, it carries its mtime."""
    try:
        return os.stat(gz_path(path)).st_mtime_ns == os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return False


def is_temporary(name: str) -> bool:
    """Whether a file name is one of the temporary files written here."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def temporary_writer(name: str) -> int | None:
    """The process id in a temporary file's name (.{target}.{pid}.{random}.tmp), if any."""
    parts = name.removesuffix(TEMP_SUFFIX).rsplit(".", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdecimal() else None


def _temporary(path: Path, data: bytes, mtime_ns: int | None = None) -> str:
    """`data` in a new hidden file beside `path`, synced to disk; stamped `mtime_ns` if given.
    Its name holds the writer's pid, so whoever finds it can tell a dead writer's."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                               suffix=TEMP_SUFFIX)  # fmt: skip
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from a separate web server
            if mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns))
            _sync_data(out.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _compressed(data: bytes) -> bytes:
    return gzip.compress(data, GZIP_LEVEL, mtime=0)


@dataclass
class _Staged:
    """What one target needs: its new file and/or its new .gz copy, written and synced."""

    path: Path
    tmp: str | None  # the new file; None when the target holds these bytes already
    gz_tmp: str | None  # the new .gz copy; None when there is none to write

    def install(self) -> None:
        # The .gz first, then the file: a reader never gets a .gz older than the feed beside
        # it for longer than between two renames (and the server serves a .gz only when its
        # mtime is the feed's, so not in between either).
        if self.gz_tmp is not None:
            os.replace(self.gz_tmp, gz_path(self.path))
            self.gz_tmp = None
        if self.tmp is not None:
            os.replace(self.tmp, self.path)
            self.tmp = None

    def discard(self) -> None:
        for tmp in (self.tmp, self.gz_tmp):
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)


def _stage(path: Path, data: bytes, gz: bool) -> tuple[bool, _Staged | None]:
    """(whether `path` changes, what to rename into place: None for nothing)."""
    try:
        st = os.stat(path)
        # The size first: an edited feed usually has another, and then it need not be read.
        same = st.st_size == len(data) and path.read_bytes() == data
    except FileNotFoundError:
        same = False
    if same:
        if gz and not gz_fresh(path):  # a missing or stale copy of an unchanged file
            return False, _Staged(path, None, _temporary(gz_path(path), _compressed(data),
                                                         st.st_mtime_ns))  # fmt: skip
        return False, None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path, data)
    try:
        gz_tmp = _temporary(gz_path(path), _compressed(data), os.stat(tmp).st_mtime_ns) \
            if gz else None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True, _Staged(path, tmp, gz_tmp)


def sync_directory(path: Path) -> None:
    """Make the renames into a directory durable (its entries are the directory's data)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_if_changed(path: Path, data: bytes, *, gz: bool = True) -> bool:
    """Replace `path` atomically with `data` unless it already holds exactly these bytes;
    True when it was replaced.

    With `gz`, `path`.gz holds the same bytes gzip-compressed, with `path`'s mtime, so both
    answer with the same Last-Modified and a server can tell a stale copy (its mtime differs).
    A missing or stale .gz of an unchanged file is written again."""
    changed, staged = _stage(Path(path), data, gz)
    if staged is not None:
        try:
            staged.install()
        finally:
            staged.discard()
        sync_directory(Path(path).parent)
    return changed


class StagedWrites:
    """Files written together: put() stages each in a worker thread, commit() renames every
    staged file into place and syncs their directories. A file is in place only after the
    commit that follows its put; one that failed to stage fails the commit, and the others
    of that commit are not put in place (each file is atomic, a commit is not: the caller
    records nothing until every commit succeeded, and so redoes it all)."""

    def __init__(self, workers: int = WORKERS) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="feed-write")
        self._pending: list[tuple[Path, Future[tuple[bool, _Staged | None]]]] = []
        self.written: list[Path] = []  # replaced (or created), in the order they were put
        self.unchanged = 0  # already held their bytes
        self.directories: set[Path] = set()  # renamed into, and synced

    def put(self, path: Path, data: bytes, *, gz: bool = True) -> None:
        """Stage `path` to hold `data` (and its .gz copy when `gz`): see write_if_changed."""
        self._pending.append((path, self._pool.submit(_stage, path, data, gz)))

    def __len__(self) -> int:
        """Files put and not committed yet."""
        return len(self._pending)

    def commit(self) -> None:
        """Put every staged file in place and make that durable."""
        pending, self._pending = self._pending, []
        staged: list[_Staged] = []
        failure: BaseException | None = None
        results = []
        for path, future in pending:
            try:
                changed, found = future.result()
            except BaseException as exc:  # waited for all the same, to clean every temporary
                failure = failure or exc
                continue
            results.append((path, changed))
            if found is not None:
                staged.append(found)
        touched = {one.path.parent for one in staged}
        try:
            if failure is not None:
                raise failure
            self._run(_Staged.install, staged)
            self._run(sync_directory, touched)
        finally:
            for one in staged:
                one.discard()  # only what was not renamed: nothing, when all went well
        self.directories |= touched
        for path, changed in results:
            if changed:
                self.written.append(path)
            else:
                self.unchanged += 1

    def _run(self, work: Callable[[_T], object], items: Iterable[_T]) -> None:
        futures = [self._pool.submit(work, item) for item in items]
        wait(futures)
        for future in futures:
            future.result()  # the first failure, once every one has finished

    def abort(self) -> None:
        """Drop what was staged and not committed, temporary files and all."""
        pending, self._pending = self._pending, []
        for _, future in pending:
            try:
                _, found = future.result()
            except BaseException:  # noqa: S112 - it left no file behind (see _stage)
                continue
            if found is not None:
                found.discard()

    def close(self) -> None:
        self.abort()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> StagedWrites:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        try:
            if kind is None:
                self.commit()
        finally:
            self.close()
