"""Fixtures for the Slurm backend tests: a real single-node Slurm with two fake GPUs, and a home using it.

The cluster is started once per session by scripts/slurm_localhost.sh (munged, slurmctld and slurmd on
free ports, state under a temp dir) and stopped at the end. Without Slurm installed, or when not root,
the tests that need it are skipped with a message saying how to install it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_testkit import SlurmHome, wait_until

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm_localhost.sh"
STAND_IN = Path(__file__).with_name("slurm_stand_in.py")
INSTALL_HINT = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """Start a real Slurm cluster (localhost, 2 fake GPUs) for the session; yields its SLURM_CONF path."""
    missing = [tool for tool in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(tool) is None]
    if missing:
        names = ", ".join(missing)
        pytest.skip(f"Slurm is not installed ({names} missing); to run these tests: {INSTALL_HINT}")
    if os.geteuid() != 0:
        pytest.skip("the Slurm tests start slurmctld/slurmd/munged and need root")
    state = tmp_path_factory.mktemp("slurm")
    env = {
        **os.environ,
        "SLURM_LOCALHOST_CTLD_PORT": str(_free_port()),
        "SLURM_LOCALHOST_SLURMD_PORT": str(_free_port()),
        "SLURM_LOCALHOST_GPUS": "2",
    }
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(state)], env=env, capture_output=True, text=True, timeout=120
    )
    if started.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=env, timeout=60)
        pytest.fail(f"could not start Slurm:\n{started.stdout}{started.stderr}")
    conf = str(state / "slurm.conf")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        yield conf
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=env, timeout=120)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


@pytest.fixture
def slurm_home(slurm_cluster, tmp_path, monkeypatch) -> SlurmHome:
    """A temp home on the test cluster: 0.2 s ticks and the stand-in trainer; runner and jobs cleaned up."""
    root = tmp_path / "home"
    root.mkdir()
    settings = {
        "TUNEQUEUE_HOME": str(root),
        "TUNEQUEUE_TICK_SECONDS": "0.2",
        "TUNEQUEUE_CANCEL_GRACE_SECONDS": "5",
        "TUNEQUEUE_TRAIN_COMMAND": f"{sys.executable} {STAND_IN}",
        "STAND_IN_STEP_SECONDS": "0.2",
        "SLURM_CONF": slurm_cluster,
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    home = SlurmHome(root, {**os.environ, **settings})
    yield home
    home.kill_runner()
    # Leave the cluster empty for the next test (a test may have pointed SLURM_CONF elsewhere).
    cluster_env = {**os.environ, "SLURM_CONF": slurm_cluster}
    subprocess.run(["scancel", "--user", "root"], capture_output=True, timeout=30, env=cluster_env)
    wait_until(
        lambda: not subprocess.run(
            ["squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING"],
            capture_output=True,
            text=True,
            timeout=30,
            env=cluster_env,
        ).stdout.strip(),
        timeout=30,
        what="an empty cluster",
    )
