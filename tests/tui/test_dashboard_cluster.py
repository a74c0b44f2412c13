"""Jobs on a Slurm cluster in the dashboard and queue screens: Slurm job id, nodes, pending reason, GPU note.

The jobs are real queue rows moved through the same `tunequeue.jobqueue.jobs` calls the Slurm backend
makes (claim without local GPUs, `set_backend_job`, running), with RUN_DIR/slurm.json written in the
backend's format; no Slurm is needed to show them.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from tq_tui_testkit import settle, wait_until

from tunequeue.tui.cluster import ClusterInfo, cluster_line, gpu_note, read_cluster_info
from tunequeue.tui.screens.dashboard import DashboardScreen
from tunequeue.tui.widgets.gpu_pane import GpuPane

TASK = """\
task_name: {name}
model_name_or_path: tunequeue/tiny-llama
dataset: demo_alpaca
"""


def _state_file(run_dir: str, slurm_id: str, state: str, reason: str = "None", nodes: str = "", **extra):
    """RUN_DIR/slurm.json as the Slurm backend writes it."""
    record = {
        "slurm_job_id": slurm_id,
        "attempt": 1,
        "state": state,
        "reason": reason,
        "nodes": nodes,
        "exit_code": extra.get("exit_code"),
        "signal": extra.get("signal"),
        "comment": "tunequeue:abc:1:1",
        "gres": extra.get("gres", ""),
    }
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / "slurm.json").write_text(json.dumps(record), encoding="utf-8")


@pytest.fixture
def cluster_jobs(tq_home):
    """A job pending in Slurm's queue and one running on two nodes, both submitted through the backend."""
    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db

    db = open_db()
    try:
        pending = jobs.submit(db, task_yaml=TASK.format(name="wait-nodes"), name="wait-nodes", gpus=2)
        jobs.claim(db, pending.id, [], [])
        pending = jobs.set_backend_job(db, pending.id, "4242", "Slurm PENDING (Resources)")
        _state_file(pending.run_dir, "4242", "PENDING", "Resources")

        running = jobs.submit(db, task_yaml=TASK.format(name="two-nodes"), name="two-nodes", gpus=2)
        jobs.claim(db, running.id, [], [])
        jobs.set_backend_job(db, running.id, "4243", "Slurm PENDING (Priority)")
        running = jobs.transition(
            db, running.id, jobs.JobState.RUNNING, reason="Slurm job 4243 RUNNING on node[1-2]"
        )
        _state_file(running.run_dir, "4243", "RUNNING", nodes="node[1-2]", gres="gpu:2")
    finally:
        db.conn.close()
    return SimpleNamespace(pending=pending.id, running=running.id)


def _text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


pytestmark = pytest.mark.anyio


async def test_dashboard_of_a_running_cluster_job_shows_slurm_id_nodes_and_gpu_note(
    cluster_jobs, app_factory
):
    app = app_factory(open_job=cluster_jobs.running)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        header = _text(screen, "#dash-header")
        assert "Slurm job 4243" in header and "CPU" not in header
        assert "Slurm job 4243 · RUNNING · nodes node[1-2]" in _text(screen, "#dash-message")
        note = screen.query_one("#gpu-cluster-note")
        assert note.display and note.has_class("shown")
        assert "NVML data of this machine's GPUs only" in _text(screen, "#gpu-cluster-note")
        assert "node[1-2]" in _text(screen, "#gpu-cluster-note")
        assert not screen.query(GpuPane) and screen.query_one("#gpu-panes").has_class("no-gpus")
        await pilot.press("l")
        await settle(pilot)
        assert "只显示本机GPU的NVML数据" in _text(screen, "#gpu-cluster-note")
        assert "节点 node[1-2]" in _text(screen, "#dash-message")


async def test_dashboard_of_a_pending_cluster_job_shows_the_pending_reason(cluster_jobs, app_factory):
    app = app_factory(open_job=cluster_jobs.pending)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert "Slurm job 4242 · pending: Resources" in _text(screen, "#dash-message")
        assert screen.query_one("#gpu-cluster-note").has_class("shown")


async def test_local_job_dashboard_has_no_cluster_note(populated_home, app_factory):
    app = app_factory(open_job=populated_home.running)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert not screen.query_one("#gpu-cluster-note").has_class("shown")
        assert "Slurm" not in _text(screen, "#dash-message") and screen.query(GpuPane)


async def test_queue_detail_line_of_cluster_jobs(cluster_jobs, app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#jobs")
        keys = [row.key.value for row in table.ordered_rows]
        for job_id, expected in (
            (cluster_jobs.pending, "Slurm job 4242 · pending: Resources"),
            (cluster_jobs.running, "Slurm job 4243 · RUNNING · nodes node[1-2]"),
        ):
            table.move_cursor(row=keys.index(str(job_id)))
            await wait_until(pilot, lambda e=expected: e in _text(app.screen, "#job-detail"), what=expected)


def test_cluster_info_from_slurm_json_or_from_the_reason(tmp_path):
    run_dir = tmp_path / "run"
    local = SimpleNamespace(backend_job_id=None, reason="launched", run_dir=str(run_dir))
    assert read_cluster_info(local) is None

    # no slurm.json yet: the backend's reason is parsed
    job = SimpleNamespace(
        backend_job_id="77", reason="Slurm PENDING (QOSMaxGRESPerUser)", run_dir=str(run_dir)
    )
    info = read_cluster_info(job)
    assert (info.job_id, info.state, info.reason, info.pending) == (
        "77",
        "PENDING",
        "QOSMaxGRESPerUser",
        True,
    )
    job.reason = "Slurm job 77 RUNNING on gpu-a01 (gpu:1)"
    assert (read_cluster_info(job).state, read_cluster_info(job).nodes) == ("RUNNING", "gpu-a01")

    # slurm.json of an earlier Slurm job of the same queue job is not used
    _state_file(str(run_dir), "76", "FAILED", nodes="old-node", exit_code=1, signal=0)
    assert read_cluster_info(job).nodes == "gpu-a01"

    _state_file(str(run_dir), "77", "CANCELLED", nodes="gpu-a01", exit_code=0, signal=15)
    done = read_cluster_info(job)
    assert (done.state, done.exit_status) == ("CANCELLED", "0:15")
    assert cluster_line(done, "en") == "Slurm job 77 · CANCELLED · nodes gpu-a01 · exit 0:15"
    assert cluster_line(done, "zh") == "Slurm作业 77 · CANCELLED · 节点 gpu-a01 · 退出状态 0:15"
    assert "(gpu-a01)" in gpu_note(done, "en") and "NVML" in gpu_note(ClusterInfo("1"), "zh")
