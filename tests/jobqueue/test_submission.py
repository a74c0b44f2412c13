"""One path from a checked task to a job row: kind, GPUs, VRAM, allow_share and preset follow the task,
for a new job and for an edited one, command-line values are range-checked, and a full disk (a real
20 MB tmpfs, root only) refuses both in one line."""

from __future__ import annotations

import re

import pytest
import yaml
from tq_storage_testkit import fill_disk, mounted_small_disk

from tunequeue.core.errors import UserError
from tunequeue.core.rules import check_task
from tunequeue.jobqueue import db as queue_db
from tunequeue.jobqueue import jobs, submission

BASE = {"task_name": "one", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    return queue_db.open_db()


def spec(**changes):
    return check_task({**BASE, **changes}, multi_node=True).raise_if_errors()


def test_columns_follow_the_task():
    columns = submission.job_columns(spec(gpu_count=2, nnodes=2, preset_ref="default/lora-sft"))
    assert columns.kind == "train" and columns.gpus == 2  # GPUs per node, as the Slurm backend reads it
    assert columns.preset_ref == "default/lora-sft" and columns.allow_share is False
    assert yaml.safe_load(columns.task_yaml)["task_name"] == "one"
    evaluate = submission.job_columns(spec(do_train=False, do_eval=True, val_size=0.2))
    assert evaluate.kind == "eval"
    export = submission.job_columns(spec(do_train=False, dataset=None, export_dir="/tmp/out"))
    assert export.kind == "export"


def test_sharing_gets_the_vram_estimate_when_no_amount_is_given():
    columns = submission.job_columns(spec(allow_share=True))
    assert columns.allow_share is True and columns.vram_gib and columns.vram_gib > 0
    assert submission.job_columns(spec(allow_share=True), vram_gib=3.5).vram_gib == 3.5


def test_an_edit_keeps_every_derived_column(db):
    job = submission.submit_task(db, spec(allow_share=True, gpu_count=2), preset_ref="default/x")
    assert job.allow_share and job.requested_gpus == 2 and job.preset_ref == "default/x"
    edited = submission.update_task(
        db, job.id, spec(allow_share=True, gpu_count=1, do_train=False, do_eval=True, val_size=0.1)
    )
    assert edited.allow_share and edited.requested_gpus == 1 and edited.kind == "eval"
    assert edited.preset_ref == "default/x"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"gpus": 10**20}, "--gpus"),
        ({"gpus": -1}, "--gpus"),
        ({"priority": 10**20}, "--priority"),
        ({"after": [10**20]}, "--after"),
        ({"after": [0]}, "--after"),
        ({"vram_gib": float("nan")}, "--vram"),
    ],
)
def test_command_line_values_out_of_range_are_refused(db, options, words):
    with pytest.raises(UserError, match=words):
        submission.submit_task(db, spec(), **options)
    assert db.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0


@pytest.fixture
def full_disk_db(tmp_path, monkeypatch):
    """A queue holding one job (returned with it) in a home on a small tmpfs that is then filled up."""
    with mounted_small_disk(tmp_path) as disk:
        monkeypatch.setenv("TUNEQUEUE_HOME", str(disk / "home"))
        db = queue_db.open_db()
        job = submission.submit_task(db, spec())
        fill_disk(disk)
        try:
            yield db, job
        finally:
            db.conn.close()


def test_a_full_disk_refuses_a_new_job_and_an_edit_in_one_line_and_writes_nothing(full_disk_db):
    db, job = full_disk_db
    home = db.path.parent
    with pytest.raises(UserError) as refused:
        submission.submit_task(db, spec(task_name="two"))
    assert str(refused.value).startswith(f"the disk holding {home} is full (")
    assert str(refused.value).endswith("a new job cannot start; free some space and try again")
    with pytest.raises(UserError, match=f"is full .*; the edited job {job.id} cannot start; free some space"):
        submission.update_task(db, job.id, spec(gpu_count=2))
    assert [(j.id, j.name, j.requested_gpus) for j in jobs.list_jobs(db)] == [(job.id, "one", 1)]


def test_a_disk_that_fills_during_the_write_is_one_line_too(full_disk_db):
    # The space check ran before the disk filled: the write itself meets SQLite's full-disk error.
    db, job = full_disk_db
    late = pytest.raises(
        queue_db.DiskFull, match=f"^the disk holding {re.escape(str(db.path.parent))} is full"
    )
    with late, submission._storage_faults_in_one_line(db):
        jobs.submit(db, task_yaml="x: 1\n" * 20000, name="late")
    assert [j.id for j in jobs.list_jobs(db)] == [job.id]
