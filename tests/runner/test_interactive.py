"""pick_device: a chat gets a GPU no job of ours holds (simulated 2x24 GPUs), else the CPU."""

from __future__ import annotations

import pytest

from tunequeue.jobqueue import jobs
from tunequeue.jobqueue.db import open_db
from tunequeue.runner.interactive import device_env, pick_device

TASK = "model_name_or_path: tunequeue/tiny-llama\ndataset: demo_alpaca\n"


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "2x24")
    database = open_db()
    yield database
    database.conn.close()


def _running_on(db, index: int, name: str) -> None:
    job = jobs.submit(db, task_yaml=TASK, name=name)
    jobs.claim(db, job.id, [index], [f"GPU-sim-{index}"])
    jobs.mark_running(db, job.id, 900_000 + index, 900_000 + index, 1.0)


def test_pick_device_takes_the_first_gpu_when_all_are_free(db):
    assert pick_device(db) == "cuda:0"


def test_pick_device_avoids_the_gpu_a_running_job_holds(db):
    _running_on(db, 0, "holds-0")
    assert pick_device(db) == "cuda:1"
    assert device_env("cuda:1") == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1"}


def test_pick_device_returns_cpu_when_every_gpu_is_held(db):
    _running_on(db, 0, "holds-0")
    _running_on(db, 1, "holds-1")
    assert pick_device(db) == "cpu"
    assert device_env("cpu")["CUDA_VISIBLE_DEVICES"] == ""


def test_a_finished_job_gives_its_gpu_back(db):
    _running_on(db, 0, "holds-0")
    held = jobs.list_jobs(db, states=[jobs.JobState.RUNNING])[0]
    jobs.finish(db, held.id, exit_code=0)
    assert pick_device(db) == "cuda:0"
