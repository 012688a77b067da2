"""One voxemoset run per output folder: an advisory `flock` on `<out>/.voxemoset.lock`.

`flock` belongs to the open file, so the kernel drops it when the holder exits or is killed: a crashed
run never leaves a stale lock behind, and the file itself may stay. Within one process the lock is
re-entrant (the build flow holds it, then runs stage flows and worker threads that ask for it again),
counted per resolved folder; two file descriptors in one process would otherwise block each other.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from voxemoset.errors import UserError

LOCK_NAME = ".voxemoset.lock"
_POLL_S = 0.2

_guard = threading.Lock()
_held: dict[str, list] = {}  # resolved lock path -> [fd, count]


def _holder_pid(path: Path) -> str:
    """The pid the holder wrote into the lock file, or "unknown" if it has not written it yet."""
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def _try_acquire(path: Path) -> int | None:
    """Open and lock the file without blocking; the locked fd, or None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _acquire(out: Path, wait: bool) -> str:
    """Take (or re-enter) the lock on `out`; the key to release it with."""
    out.mkdir(parents=True, exist_ok=True)
    path = out.resolve() / LOCK_NAME
    key = str(path)
    while True:
        # Poll instead of a blocking flock, so a waiter never holds the guard other threads need.
        with _guard:
            entry = _held.get(key)
            if entry is not None:
                entry[1] += 1
                return key
            fd = _try_acquire(path)
            if fd is not None:
                _held[key] = [fd, 1]
                return key
        if not wait:
            raise UserError(
                f"{out} is in use by another voxemoset run (pid {_holder_pid(path)}); "
                "wait for it or use another out folder"
            )
        time.sleep(_POLL_S)


def _release(key: str) -> None:
    with _guard:
        entry = _held[key]
        entry[1] -= 1
        if entry[1] == 0:
            del _held[key]
            fd = entry[0]
            os.ftruncate(fd, 0)  # no stale pid for the next reader
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@contextmanager
def out_lock(out: Path, wait: bool = False) -> Iterator[None]:
    """Hold the output folder `out` for this process (created if missing); raise UserError if another run has it."""
    key = _acquire(Path(out), wait)
    try:
        yield
    finally:
        _release(key)
