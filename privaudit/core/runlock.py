"""One writer per run directory: an exclusive ``flock`` on ``RUN/.lock``.

Every command that writes a run (``run``, ``demo``, ``erase``, ``report`` in place) holds the
lock for as long as it writes; a second writer is refused at once (:class:`RunDirectoryError`,
exit 2) naming the holder's pid, which the lock file holds while the lock is held. The lock is
the kernel's, on an open file: it is released when the holder exits, however it exits (an
exception, Ctrl-C, ``kill -9``), so a stale ``.lock`` never blocks anyone. The file itself
stays (removing it would let a third process lock a fresh inode while the second still holds
the old one); it is no part of the run's evidence, and the manifest never lists it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from privaudit.core.errors import RunDirectoryError

LOCK_NAME = ".lock"


def _holder(fd: int) -> str:
    text = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip()
    return f"pid {text}" if text.isdigit() else "pid unknown: it has not written it yet"


@contextmanager
def run_dir_lock(root: Path, *, option: str) -> Iterator[Path]:
    """Hold the exclusive lock of the existing directory ``root``; yields the lock file.

    ``option`` names the command-line argument that gave ``root`` (``--out``, ``RUN``), so
    that a refusal says which one to change.
    """
    path = Path(root) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirectoryError(
                f"{option}: {root} is in use by another privaudit process ({_holder(fd)}, "
                f"holding {path}); wait for it to finish, or give another {option}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # no pid of a process that no longer holds it
    finally:
        os.close(fd)  # releases the lock
