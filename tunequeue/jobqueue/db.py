"""The queue database: connection settings, schema, migrations and write transactions.

One SQLite file per home (``queue.db``) in WAL mode. Every process or thread opens its own connection
with `open_db`. Writes always go through `write_txn`, which starts with ``BEGIN IMMEDIATE``: in WAL
mode a deferred transaction that later upgrades to a write fails with SQLITE_BUSY at once instead of
waiting for the busy timeout, so two runners or a CLI and a runner would otherwise trip over each other.

The connection is opened in autocommit mode (``isolation_level=None``) so that the transaction
boundaries are exactly the ones written here, never ones the sqlite3 module adds implicitly.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunequeue.core import paths, private_files


def _import_sqlite_utils():
    """Import sqlite-utils without letting it pull in pandas and numpy.

    sqlite-utils imports both at import time when installed (they are, for the training side) only to
    map their scalar types; the queue never stores them, and the import costs most of a second on
    every CLI call. Modules already imported elsewhere are left alone.
    """
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes `import name` raise ImportError
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()

BUSY_TIMEOUT_MS = 30_000

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
]

SCHEMA_VERSION = len(MIGRATIONS)


def open_db(path: Path | None = None) -> sqlite_utils.Database:
    """Open the queue database (default: the home's ``queue.db``), configured and migrated.

    Use one returned object per thread or process; sqlite connections must not be shared.
    """
    db_path = Path(path) if path is not None else paths.queue_db_path()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 before SQLite opens it: its -wal and -shm files take the database file's mode.
    os.close(private_files.open_fd(db_path, os.O_RDWR | os.O_CREAT))
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    # busy_timeout first: switching to WAL itself needs a lock another process may hold.
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    migrate(db)
    return db


@contextmanager
def write_txn(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """Run the block in one ``BEGIN IMMEDIATE`` transaction; commit on success, roll back on error.

    Inside the block write with plain SQL on the yielded connection (sqlite-utils' table helpers
    commit on their own and would end the transaction early).
    """
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite may already have rolled back by itself (disk full, I/O error); keep the original error.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(db: sqlite_utils.Database) -> int:
    """Return the schema version the database is at (0 for an empty file)."""
    row = db.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    value = db.conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return int(value or 0)


def migrate(db: sqlite_utils.Database) -> int:
    """Apply the migrations the database lacks, each in its own write transaction; return the version."""
    current = schema_version(db)
    if current == SCHEMA_VERSION:
        return current
    if current == 0:
        with write_txn(db) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL)"
            )
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
    if current > SCHEMA_VERSION:
        from tunequeue.core.errors import UserError

        raise UserError(
            f"the queue database has schema version {current} but this tunequeue knows only up to "
            f"{SCHEMA_VERSION}; upgrade tunequeue or point TUNEQUEUE_HOME at another directory"
        )
    return current
