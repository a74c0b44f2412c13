"""A full disk: one line from every command that needs space, reads still work, a trainer that dies of
ENOSPC is failed with reason "disk full" at once, and retry resumes from the last complete checkpoint.

The real thing is a 20 MB tmpfs holding the home (root only: mounting needs it). Without root the same
classification is exercised with /dev/full, a device whose every write fails with ENOSPC.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tq_cli_testkit import wait_for
from tq_storage_testkit import fill_disk, mounted_small_disk, one_line_error

from tunequeue.core import disk_full

HOG = Path(__file__).with_name("disk_hog_train.py")


@pytest.fixture
def small_disk(tmp_path):
    """A 20 MB tmpfs mounted for this test (skipped, saying why, where mounting is not possible)."""
    with mounted_small_disk(tmp_path) as mount_point:
        yield mount_point


@pytest.fixture
def full_home(home, small_disk, monkeypatch):
    """The `home` fixture moved onto the small tmpfs."""
    root = small_disk / "home"
    root.mkdir(mode=0o700)
    home.path = root
    home.env["TUNEQUEUE_HOME"] = str(root)
    monkeypatch.setenv("TUNEQUEUE_HOME", str(root))
    return home


def test_every_command_says_the_disk_is_full_and_reads_still_work(full_home, small_disk, tmp_path):
    home = full_home
    task = Path(shutil.move(home.task("small", steps=2), tmp_path / "small.yaml"))
    job_id = int(home.cli("submit", str(task), check=True).stdout.split()[1])
    home.cli("runner", "start", check=True)
    try:
        wait_for(lambda: home.job(job_id).state.value == "succeeded", timeout=60, what="job done")
    finally:
        home.cli("runner", "stop", check=True)
    fill_disk(small_disk)
    for args in (["submit", str(task), "--name", "other"], ["db", "backup"], ["rm", str(job_id), "--yes"]):
        fill_disk(small_disk)  # the stopped runner's last writes (WAL checkpoint) may have freed a little
        one_line_error(home.cli(*args), "disk holding", "is full")
    assert (home.path / "runs" / f"{job_id}-small" / "train.log").exists()  # the failed rm removed nothing
    one_line_error(home.cli("runner", "start"), "is full", "the runner cannot start")
    assert home.runner_pid() is None
    for args in (["ls"], ["show", str(job_id)], ["logs", str(job_id)], ["runner", "status"]):
        result = home.cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert "succeeded" in home.cli("ls").stdout
    assert "done" in home.cli("logs", str(job_id)).stdout


def test_a_trainer_that_dies_of_enospc_fails_at_once_and_retry_resumes(full_home, small_disk):
    home = full_home
    home.env["TUNEQUEUE_TRAIN_COMMAND"] = f"{sys.executable} {HOG}"
    home.env["STAND_IN_STEP_SECONDS"] = "0.2"
    job_id = home.submit("hog", steps=30)
    home.cli("runner", "start", check=True)
    try:
        run_dir = home.path / "runs" / f"{job_id}-hog"
        wait_for(lambda: (run_dir / "checkpoint-2" / "state.json").exists(), timeout=60, what="checkpoint")
        filler = fill_disk(small_disk, leave=256 * 1024)
        failed = wait_for(
            lambda: (j := home.job(job_id)).state.value == "failed" and j, timeout=60, what="failed job"
        )
        assert failed.reason.startswith("disk full"), failed.reason
        record = json.loads((run_dir / "exit.json").read_text())
        assert record["reason"].startswith("disk full")
        filler.unlink()
        home.cli("retry", str(job_id), check=True)
        wait_for(lambda: home.job(job_id).state.value == "succeeded", timeout=120, what="resumed job")
    finally:
        home.cli("runner", "stop")
    log = (run_dir / "train.log").read_text()
    assert "resuming from checkpoint-" in log
    assert all((p / "state.json").exists() for p in run_dir.glob("checkpoint-*"))


def test_output_to_a_full_device_is_one_line(home):
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "tunequeue", "ls"],
            env=home.env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    one_line_error(result, "is full")


def test_the_wrapper_records_enospc_as_disk_full(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    writer = "open('/dev/full', 'wb', buffering=0).write(b'x' * 65536)"
    with open(run_dir / "train.log", "ab") as log:
        code = subprocess.run(
            [
                sys.executable,
                "-m",
                "tunequeue.runner.wrapper",
                str(run_dir),
                "--",
                sys.executable,
                "-c",
                writer,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=60,
        ).returncode
    assert code == 1
    record = json.loads((run_dir / "exit.json").read_text())
    assert record["exit_code"] == 1
    assert record["reason"].startswith("disk full")
    assert not (run_dir / ".exit.json.reserved").exists()


def test_the_trainer_exit_code_for_a_full_disk_is_recorded_as_disk_full(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    exit_disk_full = f"import sys; sys.exit({disk_full.EXIT_DISK_FULL})"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tunequeue.runner.wrapper",
            str(run_dir),
            "--",
            sys.executable,
            "-c",
            exit_disk_full,
        ],
        timeout=60,
        check=False,
    )
    assert json.loads((run_dir / "exit.json").read_text())["reason"].startswith("disk full")


def test_enospc_is_recognised_inside_wrapping_errors():
    with pytest.raises(OSError) as caught, open("/dev/full", "wb", buffering=0) as full:
        full.write(b"x")
    assert disk_full.is_disk_full(caught.value)
    try:
        try:
            raise caught.value
        except OSError as inner:
            raise RuntimeError("PytorchStreamWriter failed writing file data/0") from inner
    except RuntimeError as outer:
        assert disk_full.is_disk_full(outer)
    assert disk_full.is_disk_full(RuntimeError("IoError(Os { code: 28, kind: StorageFull })"))
    assert not disk_full.is_disk_full(RuntimeError("shape mismatch"))


def test_resume_ignores_and_removes_partial_checkpoints(tmp_path):
    from tunequeue.train.checkpoints import remove_partial_checkpoints
    from tunequeue.train.runtime import newest_checkpoint

    for name in ("checkpoint-4", ".partial-checkpoint-8"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "trainer_state.json").write_text("{}")
    assert newest_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert remove_partial_checkpoints(tmp_path) == [tmp_path / ".partial-checkpoint-8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4"]


@pytest.mark.slow
def test_real_training_on_a_full_disk_fails_as_disk_full_and_resumes_from_a_complete_checkpoint(
    full_home, small_disk, monkeypatch
):
    home = full_home
    for key in ("TUNEQUEUE_TRAIN_COMMAND", "TUNEQUEUE_SIMULATED_GPUS"):
        monkeypatch.delenv(key)
        home.env.pop(key)
    job_id = home.submit(
        "real-full",
        "--gpus",
        "0",
        steps=64,
        save_steps=2,
        lora_rank=4,
        cutoff_len=64,
        per_device_train_batch_size=4,
        logging_steps=1,
    )
    home.cli("runner", "start", check=True)
    try:
        run_dir = home.path / "runs" / f"{job_id}-real-full"
        wait_for(lambda: (run_dir / "checkpoint-2" / "trainer_state.json").exists(), timeout=240, what="ckpt")
        filler = fill_disk(small_disk, leave=150 * 1024)
        failed = wait_for(
            lambda: (j := home.job(job_id)).state.value == "failed" and j, timeout=240, what="failed job"
        )
        assert failed.reason.startswith("disk full"), failed.reason
        assert failed.exit_code == disk_full.EXIT_DISK_FULL
        assert not list(run_dir.glob(".partial-*"))  # a half-written save gave its space back
        complete = sorted(run_dir.glob("checkpoint-*"))
        assert complete and all((p / "trainer_state.json").exists() for p in complete)
        filler.unlink()
        home.cli("retry", str(job_id), check=True)
        assert home.cli("wait", str(job_id), "--timeout", "300").returncode == 0
    finally:
        home.cli("runner", "stop")
    assert "resuming from checkpoint-" in (run_dir / "train.log").read_text()
    assert (run_dir / "adapter_model.safetensors").exists()
