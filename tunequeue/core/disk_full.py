"""Recognising a full disk: in an exception, in a training log's last lines, or by free space now.

The training process exits with `EXIT_DISK_FULL` when it dies of ENOSPC/EDQUOT (also when a library wraps
the error in its own, as torch and safetensors do), and the wrapper records such a job as failed with a
reason starting "disk full". Commands refuse to start work that needs space with `require_free_space`;
the runner keeps a `SpaceReserve` so that it can still record jobs that end while the disk is full.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from tunequeue.core.errors import UserError

EXIT_DISK_FULL = 4
# A filesystem with less than this free counts as full when a process has just failed on it.
NEARLY_FULL_BYTES = 4 * 1024 * 1024  # more than a released SpaceReserve, so a release never hides a full disk
_MARKERS = (
    "no space left on device",
    "disk quota exceeded",
    "storagefull",
    "database or disk is full",
    "errno 28",
)


def is_disk_full(err: BaseException | None) -> bool:
    """True when ``err`` or an exception it was raised from says the disk or the quota is full."""
    seen = 0
    while err is not None and seen < 20:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if text_says_disk_full([str(err)]):
            return True
        err = err.__cause__ or err.__context__
        seen += 1
    return False


def text_says_disk_full(lines: Iterable[str]) -> bool:
    """True when any of ``lines`` (a log tail) carries an out-of-space message."""
    return any(marker in line.lower() for line in lines for marker in _MARKERS)


def free_bytes(path: Path) -> int | None:
    """Free bytes for unprivileged users on the filesystem holding ``path`` (None when unknown)."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def nearly_full(path: Path) -> bool:
    """True when the filesystem holding ``path`` has (almost) no space left."""
    free = free_bytes(path)
    return free is not None and free < NEARLY_FULL_BYTES


def require_free_space(path: Path, what: str) -> None:
    """Raise a one-line `UserError` when the disk holding ``path`` is full (``what`` cannot start)."""
    if nearly_full(path):
        free = free_bytes(path) or 0
        raise UserError(
            f"the disk holding {path} is full ({free // 1024} KiB free); {what} cannot start; "
            "free some space and try again"
        )


class SpaceReserve:
    """A file of reserved space in the home that the runner gives back when the disk fills up.

    With the disk full, SQLite cannot grow its write-ahead log, so the runner could not even record that
    a job died of it. The runner keeps this much space taken while there is plenty (`ensure`) and
    deletes the file when a tick meets a full disk (`release`), so finished jobs are recorded at once.
    """

    def __init__(self, path: Path, size: int = 2 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.size = size

    def ensure(self) -> bool:
        """Take the space again when it is free (at least three times the reserve); True when held."""
        from tunequeue.core import private_files

        try:
            if self.path.is_file() and self.path.stat().st_size >= self.size:
                return True
            free = free_bytes(self.path.parent)
            if free is None or free < 3 * self.size:
                return False
            with private_files.open_file(self.path, "wb") as handle:
                handle.write(b"\0" * self.size)
                handle.flush()
                os.fsync(handle.fileno())
            return True
        except OSError:
            self.path.unlink(missing_ok=True)
            return False

    def release(self) -> bool:
        """Delete the reserve; True when there was one to give back."""
        try:
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False
