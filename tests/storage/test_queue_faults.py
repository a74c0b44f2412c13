"""A locked, a damaged and an empty queue.db end in one clear line; backups make a damaged queue recoverable.

Locks are real SQLite locks held by a second process; damage is real garbage written into the file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from tq_cli_testkit import wait_for
from tq_storage_testkit import one_line_error

FAST_LOCK = {"TUNEQUEUE_DB_BUSY_TIMEOUT_SECONDS": "0.2", "TUNEQUEUE_DB_LOCK_WAIT_SECONDS": "1"}

HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("held", flush=True)
    sys.stdin.readline()
    conn.execute("ROLLBACK")
    """
)


class LockHolder:
    """A second process holding ``BEGIN EXCLUSIVE`` on the queue until `release`."""

    def __init__(self, db_path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "held"

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            self.process.wait(30)


@pytest.fixture
def holder(home):
    made = []

    def hold():
        made.append(LockHolder(home.path / "queue.db"))
        return made[-1]

    yield hold
    for each in made:
        each.release()


def test_a_write_gives_up_after_its_retries_naming_the_lock_holder(home, holder):
    job_id = home.submit("waiting")
    held = holder()
    home.env.update(FAST_LOCK)
    one_line_error(
        home.cli("hold", str(job_id)), "the queue database is locked by", f"pid {held.pid}", "try again"
    )
    listed = home.cli("ls")
    assert listed.returncode == 0 and "waiting" in listed.stdout  # reading needs no write lock
    held.release()
    assert home.cli("hold", str(job_id)).returncode == 0
    assert home.job(job_id).state.value == "held"


def test_a_write_retries_and_succeeds_once_the_lock_is_released(home, holder):
    job_id = home.submit("patient")
    held = holder()
    env = {**home.env, "TUNEQUEUE_DB_BUSY_TIMEOUT_SECONDS": "0.1", "TUNEQUEUE_DB_LOCK_WAIT_SECONDS": "60"}
    waiting = subprocess.Popen(
        [sys.executable, "-m", "tunequeue", "hold", str(job_id)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def opened_queue():
        try:
            return any(
                os.readlink(f"/proc/{waiting.pid}/fd/{fd}").endswith("queue.db")
                for fd in os.listdir(f"/proc/{waiting.pid}/fd")
            )
        except OSError:
            return False

    wait_for(opened_queue, timeout=30, what="the command to open the queue")
    held.release()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert home.job(job_id).state.value == "held"


def test_the_runner_keeps_ticking_while_the_queue_is_locked(home, holder):
    job_id = home.submit("later", steps=2)
    home.env.update(FAST_LOCK)
    held = holder()
    home.cli("runner", "start", check=True)
    try:
        log = home.path / "runner.log"
        wait_for(lambda: f"locked by pid {held.pid}" in log.read_text(), timeout=60, what="locked ticks")
        assert "Traceback" not in log.read_text()
        assert home.runner_pid()
        held.release()
        wait_for(lambda: home.job(job_id).state.value == "succeeded", timeout=60, what="job done")
    finally:
        home.cli("runner", "stop")


def _damage(path) -> bytes:
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)
    return garbage


def test_a_damaged_queue_is_reported_by_every_command_and_restored_from_a_backup(home):
    job_id = home.submit("precious")
    made = home.cli("db", "backup", check=True).stdout
    backup = made.split(": ", 1)[1].strip()
    assert os.stat(backup).st_mode & 0o077 == 0
    garbage = _damage(home.path / "queue.db")
    for args in (
        ["ls"],
        ["show", str(job_id)],
        ["submit", str(home.task("other"))],
        ["runner", "start"],
        ["db", "check"],
        ["cancel", str(job_id)],
    ):
        one_line_error(home.cli(*args), "queue.db is damaged", backup, "tunequeue db restore")
    assert home.runner_pid() is None
    restored = home.cli("db", "restore", check=True)
    assert "restored queue.db from" in restored.stdout
    kept = [p for p in (home.path / "backups").glob("replaced-*/queue.db")]
    assert [p.read_bytes() for p in kept] == [garbage]
    assert "precious" in home.cli("ls", check=True).stdout
    assert "intact" in home.cli("db", "check", check=True).stdout


def test_damage_inside_the_file_is_found_by_db_check(home):
    from tunequeue.jobqueue import jobs

    database = home.db()
    for index in range(40):
        jobs.submit(database, task_yaml="stage: sft\n" + "x: 1\n" * 200, name=f"bulk-{index}")
    database.close()
    home.cli("db", "backup", check=True)
    with open(home.path / "queue.db", "r+b") as handle:
        handle.seek(4096 * 2)
        handle.write(b"\xff" * 8192)
    one_line_error(home.cli("db", "check"), "queue.db is damaged", "tunequeue db restore")


def test_an_empty_queue_file_is_refused_never_made_a_new_queue(home):
    home.submit("first")
    home.cli("db", "backup", check=True)
    (home.path / "queue.db").write_bytes(b"")
    for name in ("queue.db-wal", "queue.db-shm"):
        (home.path / name).unlink(missing_ok=True)
    one_line_error(home.cli("ls"), "queue.db is damaged", "0 bytes", "tunequeue db restore")
    one_line_error(home.cli("submit", str(home.task("second"))), "0 bytes")
    assert (home.path / "queue.db").stat().st_size == 0


def test_a_missing_queue_file_makes_a_new_queue(home):
    assert home.cli("ls").returncode == 0
    assert (home.path / "queue.db").stat().st_size > 0


def test_a_damaged_queue_without_backups_says_so(home):
    home.submit("lonely")
    _damage(home.path / "queue.db")
    one_line_error(home.cli("ls"), "queue.db is damaged", "no backup exists")
    one_line_error(home.cli("db", "restore"), "there is no backup")


def test_restore_refuses_while_a_runner_runs(home):
    home.submit("busy", steps=2)
    home.cli("db", "backup", check=True)
    home.cli("runner", "start", check=True)
    try:
        one_line_error(home.cli("db", "restore"), "runner stop")
    finally:
        home.cli("runner", "stop", check=True)


def test_the_runner_makes_a_daily_backup_and_seven_are_kept(home):
    from tunequeue.jobqueue import db as queue_db

    home.submit("daily")
    home.cli("runner", "start", check=True)
    try:
        wait_for(lambda: list((home.path / "backups").glob("queue-*-daily.db")), timeout=30, what="backup")
    finally:
        home.cli("runner", "stop", check=True)
    database = home.db()
    for _ in range(9):
        queue_db.backup_db(database, "manual")
    kept = queue_db.list_backups()
    assert len(kept) == queue_db.KEEP_BACKUPS
    import sqlite3

    copy = sqlite3.connect(kept[-1])
    assert copy.execute("SELECT name FROM jobs").fetchall() == [("daily",)]
    copy.close()


def test_a_migration_is_preceded_by_a_backup(home, monkeypatch):
    from tunequeue.jobqueue import db as queue_db

    home.submit("old-schema")
    monkeypatch.setattr(queue_db, "MIGRATIONS", [*queue_db.MIGRATIONS, ["CREATE TABLE extra_v2 (x INTEGER)"]])
    monkeypatch.setattr(queue_db, "SCHEMA_VERSION", len(queue_db.MIGRATIONS))
    database = queue_db.open_db()
    assert "extra_v2" in database.table_names()
    before = list((home.path / "backups").glob(f"queue-*-before-v{queue_db.SCHEMA_VERSION}.db"))
    assert len(before) == 1
    import sqlite3

    copy = sqlite3.connect(before[0])
    version = copy.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    assert version == queue_db.SCHEMA_VERSION - 1
    assert copy.execute("SELECT name FROM jobs").fetchall() == [("old-schema",)]
    copy.close()
