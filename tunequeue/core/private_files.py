"""Private files and directories of a tunequeue home: the one way to create, open and remove them.

A home on a shared server holds task files, logs, the queue and model weights that other users must not
read. Everything tunequeue creates there goes through this module:

- directories are created 0700 and files 0600 whatever the process umask (an existing one of ours with
  wider bits is narrowed);
- a symbolic link planted inside the home or a run dir is never followed: files are opened with
  ``O_NOFOLLOW`` and directories checked with ``lstat``, and such a path is refused with `UnsafePathError`;
- `check_home` refuses a home owned by another user or writable by group or others;
- `remove_tree` removes a symlinked run dir as a link only, never what it points to.

Processes that write many files through other libraries (the trainer's checkpoints, the runner daemon)
call `restrict_umask` first so that those files are private too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path
from typing import IO

from tunequeue.core.errors import UserError

DIR_MODE = 0o700
FILE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class UnsafePathError(UserError, OSError):
    """A path tunequeue refuses to use: a planted symlink, or a home another user controls.

    It is an `OSError` too, so code that already handles failed file operations (a launch that could not
    write its run dir) records it the same way.
    """


def restrict_umask() -> None:
    """Make every file this process (and its children) creates private to the user: umask 077."""
    os.umask(0o077)


def _refuse_link(path: Path) -> UnsafePathError:
    return UnsafePathError(
        f"{path} is a symbolic link; tunequeue never follows links inside its home or a run dir; "
        "remove the link and try again"
    )


def _narrow(path: Path, st: os.stat_result, mode: int) -> None:
    """Drop group/other bits from a file or dir of ours (made by an older version or a wide umask)."""
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, stat.S_IMODE(st.st_mode) & mode, follow_symlinks=False)


def check_home(path: Path) -> None:
    """Refuse a home owned by another user or writable by group or others (one-line `UnsafePathError`)."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"tunequeue home {path} is not a directory; set TUNEQUEUE_HOME to a directory")
    if st.st_uid != os.geteuid():
        raise UnsafePathError(
            f"tunequeue home {path} is owned by another user (uid {st.st_uid}); "
            "use a home of your own (set TUNEQUEUE_HOME)"
        )
    if st.st_mode & 0o022:
        raise UnsafePathError(
            f"tunequeue home {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run `chmod 700 {path}` or use another home"
        )


def ensure_home(path: Path) -> Path:
    """Create the home (0700, parents as the umask says) or check an existing one; return it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, DIR_MODE)
    check_home(path)
    _narrow(path, os.stat(path), DIR_MODE)
    return path


def ensure_dir(path: Path) -> Path:
    """Create ``path`` as a private directory (its parent must exist) or check it; refuse a symlink."""
    path = Path(path)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    except FileNotFoundError:
        ensure_dir(path.parent)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, DIR_MODE)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise _refuse_link(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} exists but is not a directory; move it away and try again")
    _narrow(path, st, DIR_MODE)
    return path


def open_fd(path: Path, flags: int) -> int:
    """``os.open`` a file without following a symlink, created 0600; an existing file is narrowed to 0600."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _CLOEXEC, FILE_MODE)
    except OSError as err:
        if _NOFOLLOW and os.path.islink(path):
            raise _refuse_link(Path(path)) from err
        raise
    if flags & (os.O_WRONLY | os.O_RDWR):
        st = os.fstat(fd)
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, FILE_MODE)
    return fd


def open_file(path: Path, mode: str = "r", *, encoding: str | None = None) -> IO:
    """`open` for files of the home: no symlink following, created 0600.

    ``mode`` is one of r, rb, w, wb, a, ab (text modes take ``encoding``, default UTF-8).
    """
    binary = "b" in mode
    kind = mode.replace("b", "")
    flags = {
        "r": os.O_RDONLY,
        "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
        "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    }[kind]
    fd = open_fd(Path(path), flags)
    if binary:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding=encoding or "utf-8")


def read_text(path: Path) -> str:
    """The UTF-8 text of a file of the home, refusing a symlink."""
    with open_file(path, "r") as handle:
        return handle.read()


def write_text(path: Path, text: str) -> Path:
    """Replace ``path`` atomically with ``text`` (0600 temp file in the same dir, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def remove_tree(path: Path) -> None:
    """Remove a run dir; a symlink is removed as a link only, never what it points to."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
