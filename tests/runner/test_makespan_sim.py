"""The makespan simulation (benchmarks/makespan_sim.py) on a few cells: the real scheduler against FIFO.

Pure computation on simulated time: no processes, no wall clock.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "makespan_sim.py"


@pytest.fixture(scope="module")
def sim():
    spec = importlib.util.spec_from_file_location("makespan_sim", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["makespan_sim"] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("makespan_sim", None)


def _mix(sim, name):
    return next(mix for mix in sim.make_mixes(7) if mix.name.startswith(name))


def test_sharing_shortens_a_small_sweep_when_jobs_barely_slow_each_other(sim):
    shared, fifo = sim.cell(_mix(sim, "small sweep"), 1.3)
    assert shared.shared_starts > 0
    assert shared.makespan_s / fifo.makespan_s <= 0.80
    assert shared.mean_completion_s < fifo.mean_completion_s


def test_compute_bound_jobs_are_not_joined_and_lose_nothing(sim):
    shared, fifo = sim.cell(_mix(sim, "small sweep"), 2.0)
    assert shared.shared_starts == 0
    assert shared.makespan_s / fifo.makespan_s <= 1.05


def test_headroom_prevents_the_overflows_that_low_estimates_cause(sim):
    with_headroom, _ = sim.cell(_mix(sim, "small sweep, estimates 25 % low"), 1.0)
    without, fifo = sim.cell(_mix(sim, "the same without headroom"), 1.0)
    assert with_headroom.oom_retries == 0
    assert without.oom_retries > 0  # each went through the runner's retry rule onto a whole GPU
    assert without.makespan_s / fifo.makespan_s <= 1.05
