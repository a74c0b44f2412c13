"""Where tunequeue keeps its files: TUNEQUEUE_HOME (or the platform's user data dir) and run dirs.

Layout of a home::

    queue.db            the job queue (SQLite)
    runs/<id>-<name>/    one run dir per job
    presets/<ns>/<name>.yaml   user presets
    runner.lock  runner.log    runner daemon
    settings.yaml               user settings
    backups/queue-*.db          rolling backups of the queue
    .space-reserve              space the runner gives back on a full disk

The home is private (0700, refused when another user owns it or can write to it); every dir and file
in it is created through `tunequeue.core.private_files`.
"""

from __future__ import annotations

import os
from pathlib import Path

from tunequeue.core import private_files

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = PACKAGE_DIR / "data"
BUILTIN_PRESETS_DIR = PACKAGE_DIR / "presets"


def home() -> Path:
    """Return the tunequeue home directory, creating it (0700) if needed; refuse one that is not private."""
    value = os.environ.get("TUNEQUEUE_HOME")
    if value:
        path = Path(value).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("tunequeue", appauthor=False))
    return private_files.ensure_home(path)


def queue_db_path() -> Path:
    """Path of the SQLite queue database."""
    return home() / "queue.db"


def runs_dir() -> Path:
    """Directory holding every job's run dir."""
    return private_files.ensure_dir(home() / "runs")


def run_dir_for(job_id: int, name: str) -> Path:
    """Run dir of a job: ``runs/<id>-<name>``."""
    return runs_dir() / f"{job_id}-{name}"


def user_presets_dir() -> Path:
    """Directory of user presets, one YAML file per preset under its namespace."""
    return home() / "presets"


def runner_lock_path() -> Path:
    """Lock file held by the one runner daemon of this home."""
    return home() / "runner.lock"


def runner_log_path() -> Path:
    """Log file of the runner daemon."""
    return home() / "runner.log"


def settings_path() -> Path:
    """Small YAML file of user settings (language, runner options)."""
    return home() / "settings.yaml"


def backups_dir() -> Path:
    """Directory of the queue's rolling backups (created private)."""
    return private_files.ensure_dir(home() / "backups")
