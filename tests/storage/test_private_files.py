"""Files on a shared server: the home and everything in it are private, and planted symlinks are refused.

The CLI, the runner, the wrapper and the stand-in trainer run as real processes under umask 000, and
every mode is read back with os.stat.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from tq_cli_testkit import wait_for
from tq_storage_testkit import one_line_error

from tunequeue.core import private_files


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _cli_with_umask(home, *args, umask=0o000):
    return subprocess.run(
        [sys.executable, "-m", "tunequeue", *args],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=60,
        umask=umask,
    )


def test_every_file_of_a_finished_job_is_private_under_umask_000(home, tmp_path):
    (home.path).chmod(0o755)  # an older home: narrowed to 0700 on first use
    task = home.task("private", steps=4, save_steps=2).rename(tmp_path / "private.yaml")
    submitted = _cli_with_umask(home, "submit", str(task))
    assert submitted.returncode == 0, submitted.stderr
    job_id = int(submitted.stdout.split()[1])
    assert _cli_with_umask(home, "runner", "start").returncode == 0
    try:
        wait_for(lambda: home.job(job_id).state.value == "succeeded", timeout=60, what="job done")
        assert _cli_with_umask(home, "runner", "start", "--backend", "local").returncode in (0, 2)
    finally:
        assert _cli_with_umask(home, "runner", "stop").returncode == 0
    run_dir = home.path / "runs" / f"{job_id}-private"
    assert (run_dir / "checkpoint-2").is_dir()
    expected = [
        home.path / "queue.db",
        home.path / "runner.lock",
        home.path / "runner.log",
        run_dir / "task.yaml",
        run_dir / "train.log",
        run_dir / "trainer_log.jsonl",
        run_dir / "exit.json",
        run_dir / "process.json",
    ]
    for path in expected:
        assert path.is_file(), path
    seen = 0
    for root, dirs, files in os.walk(home.path):
        assert _mode(root) == 0o700, root
        for name in dirs:
            assert _mode(os.path.join(root, name)) == 0o700, os.path.join(root, name)
        for name in files:
            path = os.path.join(root, name)
            assert _mode(path) & 0o077 == 0, (path, oct(_mode(path)))
            seen += 1
    assert seen >= len(expected)


def test_settings_yaml_is_written_private(home):
    result = _cli_with_umask(home, "runner", "start", "--backend", "local")
    _cli_with_umask(home, "runner", "stop")
    assert result.returncode == 0, result.stderr
    assert _mode(home.path / "settings.yaml") == 0o600


def test_new_home_is_created_0700_whatever_the_umask(home, tmp_path):
    fresh = tmp_path / "fresh" / "home"
    home.env["TUNEQUEUE_HOME"] = str(fresh)
    result = _cli_with_umask(home, "ls")
    assert result.returncode == 0, result.stderr
    assert _mode(fresh) == 0o700
    assert _mode(fresh / "queue.db") == 0o600


def test_group_writable_home_is_refused(home):
    home.path.chmod(0o775)
    one_line_error(home.cli("ls"), "writable by group or others", "chmod 700")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the home to another user needs root (chown)")
def test_home_owned_by_another_user_is_refused_as_root(home):
    os.chown(home.path, 65534, 65534)
    one_line_error(home.cli("ls"), "owned by another user")


@pytest.mark.skipif(os.geteuid() == 0, reason="root owns every directory it makes; the root case chowns")
def test_home_owned_by_another_user_is_refused_as_user(home):
    home.env["TUNEQUEUE_HOME"] = "/"
    one_line_error(home.cli("ls"), "owned by another user")


def test_planted_runner_lock_symlink_is_not_followed(home, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (home.path / "runner.lock").symlink_to(victim)
    one_line_error(home.cli("runner", "start"), "symbolic link")
    assert victim.read_text() == "precious\n"


def test_planted_run_dir_symlink_fails_the_job_and_rm_removes_only_the_link(home, tmp_path):
    task = home.task("linked", steps=2)
    job_id = int(home.cli("submit", str(task), check=True).stdout.split()[1])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    (home.path / "runs").mkdir(mode=0o700, exist_ok=True)
    link = home.path / "runs" / f"{job_id}-linked"
    link.symlink_to(outside, target_is_directory=True)
    home.cli("runner", "start", check=True)
    try:
        job = wait_for(
            lambda: (j := home.job(job_id)).state.value == "failed" and j, timeout=60, what="job failed"
        )
    finally:
        home.cli("runner", "stop")
    assert "symbolic link" in job.reason
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    removed = home.cli("rm", str(job_id), "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "Traceback" not in removed.stderr
    assert not os.path.lexists(link)
    assert (outside / "keep.txt").read_text() == "keep\n"


@pytest.mark.parametrize("name", ["task.yaml", "train.log"])
def test_launch_refuses_symlinked_files_in_a_run_dir(tmp_path, name):
    from tunequeue.runner import launch

    run_dir = tmp_path / "runs" / "1-x"
    run_dir.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (run_dir / name).symlink_to(victim)
    if name == "task.yaml":
        # an atomic rename replaces the link itself, never the file it points to
        launch.write_task_file(run_dir, "a: 1\n")
        assert not (run_dir / name).is_symlink()
    else:
        with pytest.raises(private_files.UnsafePathError, match="symbolic link"):
            private_files.open_file(run_dir / name, "ab")
    assert victim.read_text() == "precious\n"


def test_existing_wide_files_are_narrowed_when_written(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    path.chmod(0o644)
    with private_files.open_file(path, "a") as handle:
        handle.write("y")
    assert _mode(path) == 0o600
