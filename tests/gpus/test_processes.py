"""Who runs on the GPUs: owner and command from the host's process table, our jobs by pid, group or parent.

Real processes stand in for GPU processes: the matching and lookups are the same whether NVML or the
simulation named the pid.
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tunequeue.gpus import processes
from tunequeue.gpus.devices import Gpu, GpuProcess

# Leader of a new session: starts one child in its own group and one that starts its own session.
LEADER = (
    "import subprocess, sys, time\n"
    "sleep = [sys.executable, '-c', 'import time; time.sleep(600)']\n"
    "same = subprocess.Popen(sleep)\n"
    "own = subprocess.Popen(sleep, start_new_session=True)\n"
    "print(same.pid, own.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def _gpu(index: int, *procs: GpuProcess, graphics: tuple[GpuProcess, ...] = ()) -> Gpu:
    return Gpu(
        index=index,
        uuid=f"GPU-{index}",
        name="test",
        pci_bus_id="",
        memory_total_mib=1000.0,
        memory_used_mib=0.0,
        utilization_pct=None,
        temperature_c=None,
        power_w=None,
        compute_capability=None,
        processes=list(procs),
        graphics_processes=list(graphics),
    )


@pytest.fixture
def job_tree():
    """A job's process tree: leader pid, a member of its group, and a descendant in another session."""
    leader = subprocess.Popen([sys.executable, "-c", LEADER], start_new_session=True, stdout=subprocess.PIPE)
    same, own = (int(value) for value in leader.stdout.readline().split())
    try:
        yield leader.pid, same, own
    finally:
        os.kill(own, signal.SIGKILL)
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(timeout=30)
        leader.stdout.close()


def test_describe_reads_owner_and_command_line_of_a_live_process(job_tree):
    leader, _, _ = job_tree
    known = GpuProcess(pid=4242, used_memory_mib=1.0, name="python", user="alice", command="python x.py")
    live = GpuProcess(pid=leader, used_memory_mib=1.0, name="python")
    gone = GpuProcess(pid=2**22 + 7, used_memory_mib=None, name="ghost")
    processes.describe([_gpu(0, known, live), _gpu(1, graphics=(gone,))])
    assert (known.user, known.command) == ("alice", "python x.py")
    assert live.user == getpass.getuser()
    assert live.command.startswith(sys.executable) and "subprocess" in live.command
    assert (gone.user, gone.command) == ("", "ghost")


def test_our_jobs_are_found_by_pid_process_group_and_parent(job_tree):
    leader, same, own = job_tree
    ours = SimpleNamespace(id=7, name="sft", pid=leader, pgid=leader)
    other = SimpleNamespace(id=8, name="other", pid=os.getpid() + 10**6, pgid=None)
    stranger = os.getpid()
    gpus = [
        _gpu(0, GpuProcess(pid=leader, used_memory_mib=1.0), GpuProcess(pid=same, used_memory_mib=1.0)),
        _gpu(1, GpuProcess(pid=own, used_memory_mib=1.0), GpuProcess(pid=stranger, used_memory_mib=1.0)),
    ]
    assert processes.match_jobs(gpus, [other, ours]) == {leader: ours, same: ours, own: ours}
    assert processes.job_of(stranger, [ours, other]) is None
    assert processes.job_of(own, []) is None


def test_processes_are_ordered_by_gpu_memory_unknown_last():
    gpus = [
        _gpu(0, GpuProcess(pid=5, used_memory_mib=None), GpuProcess(pid=3, used_memory_mib=100.0)),
        _gpu(
            1, GpuProcess(pid=9, used_memory_mib=5000.0), graphics=(GpuProcess(pid=2, used_memory_mib=100.0),)
        ),
    ]
    order = [(gpu.index, proc.pid) for gpu, proc in processes.processes_by_memory(gpus)]
    assert order == [(1, 9), (0, 3), (1, 2), (0, 5)]


def test_host_stats_are_plausible():
    host = processes.read_host()
    assert 0.0 <= host.cpu_pct <= 100.0 and host.cpu_count >= 1
    assert 0.0 < host.memory_used_mib <= host.memory_total_mib
    assert 0.0 <= host.swap_used_mib <= max(host.swap_total_mib, host.swap_used_mib)
