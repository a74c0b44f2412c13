"""Process identity, liveness and process groups of the runner's jobs and of the runner itself.

A process is identified by (pid, start ticks, boot id): the start time in clock ticks since boot, the raw
field 22 of ``/proc/PID/stat``, and ``/proc/sys/kernel/random/boot_id``. Neither depends on the wall
clock, so an NTP step or a suspend never makes a healthy job look like a different process, and a pid
recycled after a restart or a reboot never looks like the job. Epoch start times (``btime`` + ticks, and
psutil's ``create_time``, which is computed the same way) move when the wall clock is stepped, so they
are not used for identity.

Liveness, zombies and process-group membership come from psutil. The process record
(RUN_DIR/process.json: attempt, pid, pgid, start ticks, boot id) is written by the wrapper itself before
it starts the trainer, and by the runner right after launching it, so a runner that dies in between
finds the job again instead of launching it twice.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from tunequeue.core import private_files

PROCESS_FILE = "process.json"
_BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True)
class Identity:
    """Who a process is: pid, start time in clock ticks since boot, and the boot it started in."""

    pid: int
    start_ticks: int
    boot_id: str


@functools.cache
def boot_id() -> str:
    """This boot's id (``/proc/sys/kernel/random/boot_id``); empty when the kernel does not offer it."""
    try:
        with open(_BOOT_ID_PATH, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="utf-8", errors="replace") as handle:
            data = handle.read()
    except (OSError, ValueError):
        return None
    # The command name (field 2) may contain spaces and parentheses; fields resume after the last ')'.
    return data[data.rfind(")") + 2 :].split()


def start_ticks(pid: int | None) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    if not pid:
        return None
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])  # field 22, counting the pid and the name that precede the split


def identify(pid: int | None) -> Identity | None:
    """The identity of a running process, or None when there is none with that pid."""
    ticks = start_ticks(pid)
    return None if ticks is None or pid is None else Identity(int(pid), ticks, boot_id())


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def is_alive(pid: int | None, ticks: float | int | None, boot: str | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, when known, started at ``ticks`` in boot ``boot``."""
    if not pid or not _running(int(pid)):
        return False
    if boot and boot_id() and boot != boot_id():
        return False
    if ticks is None:
        return True
    return start_ticks(pid) == int(ticks)


def group_members(pgid: int | None) -> list[psutil.Process]:
    """Live (non-zombie) processes of the process group ``pgid``."""
    if not pgid:
        return []
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


def group_alive(pgid: int | None) -> bool:
    """True while any process of the group still exists (zombies aside: they hold no resources)."""
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(group_members(pgid))  # killpg also succeeds when only zombies are left


def terminate(pid: int | None, ticks: float | int | None, pgid: int | None, boot: str | None = None) -> None:
    """Ask a job to stop: SIGTERM to its wrapper, which forwards it once to the whole group."""
    if pid is not None and is_alive(pid, ticks, boot):
        _send(lambda: os.kill(int(pid), signal.SIGTERM))
    elif pgid:
        _send(lambda: os.killpg(pgid, signal.SIGTERM))


def kill_group(pgid: int | None) -> None:
    """SIGKILL every process left in the job's group."""
    if pgid:
        _send(lambda: os.killpg(pgid, signal.SIGKILL))


def _send(action) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        action()


def find_wrapper(run_dir: Path) -> Identity | None:
    """A live wrapper process (``python -m tunequeue.runner.wrapper RUN_DIR``) of ``run_dir``, if any.

    Finds a job launched by a runner that died before anything was recorded, even before the wrapper
    wrote its own record.
    """
    wanted = str(run_dir)
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        with contextlib.suppress(ValueError, IndexError):
            at = cmdline.index("tunequeue.runner.wrapper")
            if cmdline[at - 1] == "-m" and cmdline[at + 1] == wanted and _running(process.pid):
                found = identify(process.pid)
                if found is not None:
                    return found
    return None


# ----- the process record -------------------------------------------------------------------------


@dataclass
class ProcessRecord:
    """RUN_DIR/process.json: which attempt runs as which process (and its group)."""

    attempt: int
    pid: int
    pgid: int
    start_ticks: int
    boot_id: str

    @property
    def identity(self) -> Identity:
        """The recorded process's identity."""
        return Identity(self.pid, self.start_ticks, self.boot_id)

    def alive(self) -> bool:
        """True while the recorded process runs."""
        return is_alive(self.pid, self.start_ticks, self.boot_id)


def write_record(run_dir: Path, record: ProcessRecord) -> None:
    """Write RUN_DIR/process.json atomically and private (a 0600 tmp file, then rename)."""
    private_files.write_text(Path(run_dir) / PROCESS_FILE, json.dumps(asdict(record)))


def read_record(run_dir: Path) -> ProcessRecord | None:
    """RUN_DIR/process.json, or None when it is missing, unreadable or of an older format."""
    try:
        data = json.loads(private_files.read_text(Path(run_dir) / PROCESS_FILE))
        return ProcessRecord(
            attempt=int(data["attempt"]),
            pid=int(data["pid"]),
            pgid=int(data["pgid"]),
            start_ticks=int(data["start_ticks"]),
            boot_id=str(data["boot_id"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def legacy_start_time(run_dir: Path) -> float | None:
    """The epoch ``start_time`` of a process.json written by an earlier version (no start ticks), or None."""
    try:
        data = json.loads(private_files.read_text(Path(run_dir) / PROCESS_FILE))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "start_ticks" in data or not isinstance(data.get("start_time"), float):
        return None
    return data["start_time"]


def matches_legacy_start_time(pid: int | None, epoch: float) -> bool:
    """True when ``pid`` runs and started at ``epoch`` (±2 s) by the btime-based reckoning of earlier
    versions; only for jobs launched before an upgrade, until they end."""
    ticks = start_ticks(pid)
    if ticks is None or pid is None or not _running(int(pid)):
        return False
    btime = 0.0
    with contextlib.suppress(OSError), open("/proc/stat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("btime "):
                btime = float(line.split()[1])
    return abs(btime + ticks / os.sysconf("SC_CLK_TCK") - epoch) <= 2.0


def own_record(attempt: int) -> ProcessRecord:
    """The record of the calling process (the wrapper, a session and group leader)."""
    me = identify(os.getpid())
    return ProcessRecord(
        attempt=attempt,
        pid=os.getpid(),
        pgid=os.getpgrp(),
        start_ticks=me.start_ticks if me else 0,
        boot_id=boot_id(),
    )
