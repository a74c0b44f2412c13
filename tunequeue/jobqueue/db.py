"""The queue database: connection settings, schema, migrations, write transactions, backups and faults.

One SQLite file per home (``queue.db``) in WAL mode, opened with the standard `sqlite3` module. Every
process or thread opens its own connection with `open_db`. Writes always go through `write_txn`, which
starts with ``BEGIN IMMEDIATE``: in WAL mode a deferred transaction that later upgrades to a write fails
with SQLITE_BUSY at once instead of waiting for the busy timeout, so two runners or a CLI and a runner
would otherwise trip over each other.

The connection is opened in autocommit mode (``isolation_level=None``) so that the transaction
boundaries are exactly the ones written here, never ones the sqlite3 module adds implicitly.

Faults end in one clear line (a `UserError`), never a traceback:

- **locked**: when another process holds the write lock past the busy timeout, `write_txn` retries with
  backoff for ``queue.lock_wait_seconds`` more, then raises `QueueLocked` naming the holder's pid when
  /proc/locks shows it; the runner waits only the busy timeout and tries again at its next tick.
- **damaged**: a file that is not a database, a malformed one, or a 0-byte ``queue.db`` raises
  `QueueDamaged`, which names the newest backup and ``tunequeue db restore``. A new queue is created
  only when ``queue.db`` is missing, fully initialised under a temporary name and then linked into
  place, so a 0-byte ``queue.db`` is never one of ours and never silently becomes an empty queue.
- **disk full**: `as_user_error` turns ENOSPC/EDQUOT and SQLite's "database or disk is full" into
  `DiskFull`.

Backups use SQLite's online backup API into ``backups/queue-<time>-<why>.db`` (private): once a day from
the runner, before each migration and on ``tunequeue db backup``; the newest `KEEP_BACKUPS` are kept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunequeue.core import paths, private_files
from tunequeue.core.disk_full import nearly_full
from tunequeue.core.errors import UserError

BUSY_TIMEOUT_MS = 30_000
KEEP_BACKUPS = 7
DAILY_SECONDS = 24 * 3600.0

# Each entry moves the schema from version N-1 to N. Append only; never edit a released entry.
MIGRATIONS: list[list[str]] = [
    [
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            namespace TEXT NOT NULL DEFAULT 'default',
            kind TEXT NOT NULL DEFAULT 'train',
            state TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            task_yaml TEXT NOT NULL,
            requested_gpus INTEGER NOT NULL DEFAULT 1,
            requested_vram_gib REAL,
            allow_share INTEGER NOT NULL DEFAULT 0,
            assigned_gpus TEXT NOT NULL DEFAULT '[]',
            gpu_uuids TEXT NOT NULL DEFAULT '[]',
            attempt INTEGER NOT NULL DEFAULT 1,
            pid INTEGER,
            pgid INTEGER,
            proc_start_time REAL,
            run_dir TEXT NOT NULL DEFAULT '',
            submitted_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            exit_code INTEGER,
            signal INTEGER,
            reason TEXT NOT NULL DEFAULT '',
            after TEXT NOT NULL DEFAULT '[]',
            preset_ref TEXT,
            group_id TEXT,
            backend_job_id TEXT,
            updated_at REAL NOT NULL
        )
        """,
        "CREATE INDEX jobs_state_order ON jobs (state, priority DESC, submitted_at, id)",
        "CREATE INDEX jobs_priority_order ON jobs (priority DESC, submitted_at, id)",
        "CREATE INDEX jobs_group ON jobs (group_id)",
        """
        CREATE TABLE job_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            time REAL NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            attempt INTEGER NOT NULL
        )
        """,
        "CREATE INDEX job_events_job ON job_events (job_id, id)",
        """
        CREATE TABLE metrics (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            step INTEGER NOT NULL,
            total_steps INTEGER,
            loss REAL,
            eval_loss REAL,
            lr REAL,
            epoch REAL,
            percentage REAL,
            elapsed_time TEXT,
            remaining_time TEXT,
            throughput REAL,
            total_tokens INTEGER,
            time REAL NOT NULL,
            payload TEXT NOT NULL
        )
        """,
        "CREATE INDEX metrics_job_step ON metrics (job_id, step, attempt)",
        "CREATE INDEX metrics_job_latest ON metrics (job_id, attempt, seq)",
        """
        CREATE TABLE gpu_samples (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,
            uuid TEXT NOT NULL,
            gpu_index INTEGER NOT NULL,
            utilization REAL,
            memory_used_mib REAL,
            memory_total_mib REAL,
            temperature REAL,
            power_w REAL,
            job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
            simulated INTEGER NOT NULL DEFAULT 0
        )
        """,
        "CREATE INDEX gpu_samples_time ON gpu_samples (time)",
        "CREATE INDEX gpu_samples_uuid_time ON gpu_samples (uuid, time)",
        "CREATE INDEX gpu_samples_job_time ON gpu_samples (job_id, time)",
        """
        CREATE TABLE ingest_offsets (
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            byte_offset INTEGER NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (job_id, attempt)
        )
        """,
    ],
    # v2: indexes for the screens' reads of large runs.
    [
        # The dashboard reads a job's new metric rows by seq (seq > the last one it saw).
        "CREATE INDEX metrics_job_seq ON metrics (job_id, seq)",
        # The queue table shows each job's last loss and eval loss: without these, a job that never
        # logged an eval loss makes that lookup walk all its rows on every refresh.
        "CREATE INDEX metrics_job_loss ON metrics (job_id, attempt, seq) WHERE loss IS NOT NULL",
        "CREATE INDEX metrics_job_eval_loss ON metrics (job_id, attempt, seq) WHERE eval_loss IS NOT NULL",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


class QueueLocked(UserError):
    """Another process held the queue's write lock for longer than this command may wait."""


class QueueDamaged(UserError):
    """queue.db is not a readable SQLite database (garbage, malformed pages, or 0 bytes)."""


class DiskFull(UserError):
    """A write failed because the disk (or the user's quota) is full."""


class Database:
    """One open connection to the queue database; ``conn`` is the `sqlite3.Connection` to use.

    ``lock_wait_seconds`` is how long `write_txn` keeps retrying after the busy timeout (the runner sets
    0: it retries at its next tick instead).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, lock_wait_seconds: float) -> None:
        self.conn = conn
        self.path = path
        self.lock_wait_seconds = lock_wait_seconds

    def table_names(self) -> list[str]:
        """Names of the tables in the database."""
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [row[0] for row in rows]

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _connect(db_path: Path, busy_seconds: float) -> sqlite3.Connection:
    conn = sqlite3.connect(str(db_path), timeout=busy_seconds, isolation_level=None)
    # busy_timeout first: switching to WAL itself needs a lock another process may hold.
    conn.execute(f"PRAGMA busy_timeout = {int(busy_seconds * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _create(db_path: Path, busy_seconds: float) -> None:
    """Make a new, fully initialised queue under a temporary name, then link it into place.

    Linking fails when another process created the queue meanwhile; theirs is kept.
    """
    tmp = db_path.with_name(f".{db_path.name}.{os.getpid()}.new")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.close(private_files.open_fd(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL))
    try:
        conn = _connect(tmp, busy_seconds)
        try:
            migrate(Database(conn, tmp, 0.0), backup=False)
        finally:
            conn.close()
        with contextlib.suppress(FileExistsError):
            os.link(tmp, db_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def open_db(path: Path | None = None) -> Database:
    """Open the queue database (default: the home's ``queue.db``), configured and migrated.

    Use one returned object per thread or process; sqlite connections must not be shared. A missing
    file becomes a new queue; a damaged or empty one raises `QueueDamaged`.
    """
    from tunequeue.core.settings_file import queue_lock_timing

    db_path = Path(path) if path is not None else paths.queue_db_path()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    busy_seconds, wait_seconds = queue_lock_timing()
    try:
        if not os.path.lexists(db_path):
            _create(db_path, busy_seconds)
        if os.lstat(db_path).st_size == 0:
            raise damaged(db_path, "0 bytes")
        # Opened once through the no-follow helper: refuses a planted symlink and narrows an old 0644 file.
        os.close(private_files.open_fd(db_path, os.O_RDWR))
        try:
            conn = _connect(db_path, busy_seconds)
        except sqlite3.OperationalError:
            read_only = _connect_on_full_disk(db_path)
            if read_only is None:
                raise
            return Database(read_only, db_path, wait_seconds)
        db = Database(conn, db_path, wait_seconds)
        try:
            migrate(db)
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as err:
        raise as_user_error(err, db_path) or err from None
    return db


def _connect_on_full_disk(db_path: Path) -> sqlite3.Connection | None:
    """A read-only connection for a full disk, where SQLite cannot create the WAL index (-shm) it needs.

    Only when nothing is waiting in the write-ahead log (the last writer closed cleanly), so the file
    alone holds the whole queue: ``ls``, ``show`` and ``logs`` keep working; a write says the disk is full.
    """
    if not nearly_full(db_path.parent):
        return None
    wal = Path(f"{db_path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return None
    conn = sqlite3.connect(f"file:{db_path}?immutable=1", uri=True, isolation_level=None)
    if schema_version(Database(conn, db_path, 0.0)) != SCHEMA_VERSION:
        conn.close()
        return None
    return conn


def _is_locked(err: sqlite3.Error) -> bool:
    text = str(err).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


@contextmanager
def write_txn(db: Database) -> Iterator[sqlite3.Connection]:
    """Run the block in one ``BEGIN IMMEDIATE`` transaction; commit on success, roll back on error.

    Waiting for the write lock: the busy timeout, then retries with backoff for ``db.lock_wait_seconds``,
    then `QueueLocked`.
    """
    conn = db.conn
    deadline = time.monotonic() + db.lock_wait_seconds
    delay = 0.05
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as err:
            if not _is_locked(err):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise locked(db.path) from None
            time.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)
    try:
        yield conn
    except BaseException:
        # SQLite may already have rolled back by itself (disk full, I/O error); keep the original error.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(db: Database) -> int:
    """Return the schema version the database is at (0 for an empty file)."""
    row = db.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    value = db.conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return int(value or 0)


def migrate(db: Database, *, backup: bool = True) -> int:
    """Apply the migrations the database lacks, each in its own write transaction; return the version.

    A database that already holds a schema is backed up first (``backup``).
    """
    current = schema_version(db)
    if current == SCHEMA_VERSION:
        return current
    if current > SCHEMA_VERSION:
        raise UserError(
            f"the queue database has schema version {current} but this tunequeue knows only up to "
            f"{SCHEMA_VERSION}; upgrade tunequeue or point TUNEQUEUE_HOME at another directory"
        )
    if current == 0:
        with write_txn(db) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL)"
            )
    elif backup:
        backup_db(db, f"before-v{SCHEMA_VERSION}")
    while current < SCHEMA_VERSION:
        with write_txn(db) as conn:
            # Re-read inside the lock: another process may have migrated meanwhile.
            current = int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])
            if current < SCHEMA_VERSION:
                for statement in MIGRATIONS[current]:
                    conn.execute(statement)
                current += 1
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (current, time.time())
                )
    return current


# ----- backups ------------------------------------------------------------------------------------


def list_backups(directory: Path | None = None) -> list[Path]:
    """The home's backups, oldest first."""
    folder = directory or paths.home() / "backups"
    if not folder.is_dir():
        return []
    return sorted(folder.glob("queue-*.db"), key=lambda p: (p.stat().st_mtime, p.name))


def newest_backup() -> Path | None:
    """The most recent backup, or None when there is none."""
    found = list_backups()
    return found[-1] if found else None


def backup_db(db: Database, why: str) -> Path:
    """Copy the live database with SQLite's online backup API into the backups dir; keep the newest 7."""
    folder = paths.backups_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder / f"queue-{stamp}-{why}.db"
    count = 1
    while os.path.lexists(target):
        count += 1
        target = folder / f"queue-{stamp}-{why}-{count}.db"
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    os.close(private_files.open_fd(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC))
    try:
        dest = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            db.conn.backup(dest)
            dest.execute("PRAGMA journal_mode = DELETE")  # a backup is one self-contained file
        finally:
            dest.close()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    for old in list_backups(folder)[:-KEEP_BACKUPS]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return target


def backup_if_due(db: Database, every_seconds: float = DAILY_SECONDS) -> Path | None:
    """Make a backup when the newest one is older than ``every_seconds`` (the runner's daily backup)."""
    newest = newest_backup()
    if newest is not None and time.time() - newest.stat().st_mtime < every_seconds:
        return None
    return backup_db(db, "daily")


# ----- faults as one line -------------------------------------------------------------------------


def lock_holders(db_path: Path) -> list[int]:
    """Pids (other than ours) holding a write lock on the database or its WAL index, from /proc/locks."""
    inodes = set()
    for candidate in (db_path, Path(f"{db_path}-shm")):
        with contextlib.suppress(OSError):
            st = os.stat(candidate)
            inodes.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    pids: list[int] = []
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return pids
    for line in lines:
        fields = line.split()
        if "->" in fields:
            continue  # a waiter, not a holder
        try:
            kind, pid, device = fields[3], int(fields[4]), fields[5]
            major, minor, inode = device.split(":")
            key = (int(major, 16), int(minor, 16), int(inode))
        except (IndexError, ValueError):
            continue
        if kind == "WRITE" and key in inodes and pid != os.getpid() and pid not in pids:
            pids.append(pid)
    return pids


def locked(db_path: Path) -> QueueLocked:
    """The one-line error for a queue whose write lock another process keeps."""
    holders = lock_holders(db_path)
    who = f"pid {', '.join(map(str, holders))}" if holders else "another process"
    return QueueLocked(f"the queue database is locked by {who}; try again")


def damaged(db_path: Path, detail: str) -> QueueDamaged:
    """The one-line error for a damaged queue, naming the newest backup and how to restore it."""
    newest = newest_backup()
    if newest is not None:
        hint = f"the newest backup is {newest}; run `tunequeue db restore` to put it back"
    else:
        hint = f"no backup exists; move {db_path.name} away to start a new queue"
    return QueueDamaged(f"{db_path.name} is damaged ({detail}); {hint}")


def disk_full(where: Path | str) -> DiskFull:
    """The one-line error for a write that found the disk full."""
    return DiskFull(f"the disk holding {where} is full; free some space and try again")


def as_user_error(err: BaseException, db_path: Path | None = None) -> UserError | None:
    """The one-line `UserError` for a storage fault (disk full, locked, damaged), or None for others."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return disk_full(err.filename or paths.home())
    if not isinstance(err, sqlite3.Error):
        return None
    path = db_path or paths.queue_db_path()
    text = str(err).lower()
    if "disk is full" in text:
        return disk_full(path.parent)
    if ("disk i/o error" in text or "readonly database" in text) and nearly_full(path.parent):
        return disk_full(path.parent)
    if _is_locked(err):
        return locked(path)
    if isinstance(err, sqlite3.DatabaseError) and (
        "not a database" in text or "malformed" in text or "corrupt" in text
    ):
        return damaged(path, str(err))
    return None


# ----- check and restore (tunequeue db) -----------------------------------------------------------


def check_db(path: Path | None = None) -> dict:
    """Open the queue and run SQLite's integrity check; `QueueDamaged` when it finds a problem.

    Returns the path, schema version, job count and the backups (newest last).
    """
    db = open_db(path)
    try:
        try:
            problems = [row[0] for row in db.conn.execute("PRAGMA integrity_check")]
            job_count = db.conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise as_user_error(err, db.path) or err from None
        if problems != ["ok"]:
            raise damaged(db.path, f"integrity check: {problems[0]}")
        return {
            "path": str(db.path),
            "schema_version": schema_version(db),
            "jobs": int(job_count),
            "backups": [str(p) for p in list_backups()],
        }
    finally:
        db.close()


def _check_backup(backup: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            conn.execute("SELECT max(version) FROM schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise UserError(f"{backup} is not a usable queue backup ({err}); pick another one") from None
    if problems != ["ok"]:
        raise UserError(f"{backup} is not a usable queue backup ({problems[0]}); pick another one")


def resolve_backup(name: str | None) -> Path:
    """The backup named by ``name`` (a path, or a file name in the backups dir), else the newest one."""
    if not name:
        newest = newest_backup()
        if newest is None:
            raise UserError(
                f"there is no backup in {paths.home() / 'backups'}; make one with `tunequeue db backup`"
            )
        return newest
    candidate = Path(name).expanduser()
    if candidate.is_file():
        return candidate
    in_home = paths.home() / "backups" / name
    if in_home.is_file():
        return in_home
    raise UserError(f"backup {name} does not exist; `tunequeue db check` lists the backups")


def restore_backup(backup: Path) -> Path | None:
    """Replace queue.db by ``backup``; the current file (with its -wal/-shm) is kept in the backups dir.

    Returns the directory holding the replaced files (None when there was no queue.db). The caller makes
    sure no runner uses the queue.
    """
    _check_backup(backup)
    db_path = paths.queue_db_path()
    kept: Path | None = None
    present = [p for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")) if os.path.lexists(p)]
    if present:
        kept = private_files.ensure_dir(paths.backups_dir() / f"replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        for item in present:
            os.replace(item, kept / item.name)
    tmp = db_path.with_name(f".{db_path.name}.{os.getpid()}.restore")
    os.close(private_files.open_fd(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC))
    try:
        source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        dest = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            source.backup(dest)
        finally:
            dest.close()
            source.close()
        os.replace(tmp, db_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return kept
