"""Simulated GPUs: the TUNEQUEUE_SIMULATED_GPUS format, the state file, and read_gpus' choice."""

from __future__ import annotations

import json

import pytest

from tunequeue.core.errors import UserError
from tunequeue.gpus import read_gpus
from tunequeue.gpus import simulated as sim


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "sizes"),
    [
        ("4x80", [80.0] * 4),
        ("2x24,1x80", [24.0, 24.0, 80.0]),
        (" 1X40GB , 1x24gib ", [40.0, 24.0]),
        ("1x0.5", [0.5]),
        ("0", []),
        ("none", []),
    ],
)
def test_parse_spec(spec, sizes):
    assert sim.parse_spec(spec) == sizes


@pytest.mark.parametrize("spec", ["4", "x80", "4x", "4x80,", "two x 80", "4x0", "-1x80", "100x80"])
def test_bad_spec_says_how_to_write_it(spec):
    with pytest.raises(UserError, match=r"TUNEQUEUE_SIMULATED_GPUS|at most 64"):
        sim.parse_spec(spec)
    with pytest.raises(UserError) as error:
        sim.parse_spec(spec)
    assert "\n" not in str(error.value)


def test_simulated_gpus_are_idle_deterministic_and_labelled(monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "2x24,1x80")
    snapshot = read_gpus()
    assert snapshot.simulated and snapshot.error is None
    assert [g.index for g in snapshot.gpus] == [0, 1, 2]
    assert [g.memory_total_mib for g in snapshot.gpus] == [24576.0, 24576.0, 81920.0]
    first = snapshot.gpus[0]
    assert first.simulated and first.name == "Simulated GPU 24 GB"
    assert first.compute_capability == (9, 0)
    assert (first.memory_used_mib, first.processes, first.exclusive_process, first.mig) == (
        0.0,
        [],
        False,
        False,
    )
    assert len({g.uuid for g in snapshot.gpus}) == 3 and first.uuid.startswith("GPU-")
    assert read_gpus() == snapshot
    assert json.dumps(snapshot.to_dict())


def test_state_file_overrides_one_gpu(home, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "2x80")
    (home / sim.STATE_FILE_NAME).write_text(
        json.dumps(
            {
                "1": {
                    "memory_used_mib": 30000,
                    "utilization_pct": 97,
                    "processes": [{"pid": 4242, "used_memory_mib": 30000, "name": "python"}],
                    "exclusive_process": True,
                }
            }
        )
    )
    idle, busy = read_gpus().gpus
    assert idle.memory_used_mib == 0.0
    assert (busy.memory_used_mib, busy.utilization_pct, busy.exclusive_process) == (30000, 97, True)
    assert busy.processes[0].pid == 4242 and busy.processes[0].name == "python"
    assert busy.memory_free_mib == 80 * 1024 - 30000


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "is not valid"), ("[1, 2]", "is not valid"), ('{"0": {"colour": "red"}}', "unknown field")],
)
def test_bad_state_file_is_a_user_error(home, monkeypatch, content, message):
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "1x80")
    (home / sim.STATE_FILE_NAME).write_text(content)
    with pytest.raises(UserError, match=message):
        read_gpus()


def test_zero_simulated_gpus_means_a_machine_without_gpus(monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "0")
    snapshot = read_gpus()
    assert (snapshot.gpus, snapshot.simulated, snapshot.error) == ([], True, None)


def test_without_simulation_this_machine_reports_the_missing_driver(monkeypatch):
    monkeypatch.delenv("TUNEQUEUE_SIMULATED_GPUS", raising=False)
    snapshot = read_gpus()
    if snapshot.gpus:
        pytest.skip("this machine has NVIDIA GPUs")
    assert not snapshot.simulated
    assert "TUNEQUEUE_SIMULATED_GPUS=2x24" in snapshot.error


def test_sample_rows_match_the_queue_columns(monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "1x80")
    row = read_gpus().gpus[0].as_sample(123.0, job_id=7)
    assert row["time"] == 123.0 and row["job_id"] == 7 and row["simulated"] is True
    assert row["gpu_index"] == 0 and row["memory_total_mib"] == 81920.0


def test_simulated_processes_with_owner_command_kind_and_power_limit(home, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "2x24")
    (home / "simulated-gpus.json").write_text(
        json.dumps(
            {
                "1": {
                    "power_limit_w": 450,
                    "processes": [
                        {"pid": 4242, "used_memory_mib": 30000, "user": "alice", "command": "python a.py"}
                    ],
                    "graphics_processes": [{"pid": 1201, "name": "Xorg"}],
                }
            }
        )
    )
    first, second = read_gpus().gpus
    assert (first.power_limit_w, second.power_limit_w) == (sim.SIMULATED_POWER_LIMIT_W, 450)
    (proc,) = second.processes
    assert (proc.pid, proc.used_memory_mib, proc.user, proc.command, proc.kind) == (
        4242,
        30000.0,
        "alice",
        "python a.py",
        "compute",
    )
    (xorg,) = second.graphics_processes
    assert (xorg.pid, xorg.name, xorg.kind, xorg.used_memory_mib) == (1201, "Xorg", "graphics", None)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"used_memory_mib": 1}, "needs at least a pid"),
        ({"pid": 1, "owner": "x"}, "unknown field 'owner'"),
        ({"pid": 1, "kind": "video"}, "kind 'video'"),
        ({"pid": "one"}, "not a number"),
    ],
)
def test_bad_simulated_process_is_one_clear_line(home, monkeypatch, entry, problem):
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "1x24")
    (home / "simulated-gpus.json").write_text(json.dumps({"0": {"processes": [entry]}}))
    with pytest.raises(UserError, match=problem) as error:
        read_gpus()
    assert "\n" not in str(error.value) and "GPU 0" in str(error.value)
