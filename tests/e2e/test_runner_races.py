"""Races around the runner's own life: probes while it starts, a crash between launching and recording.

Real processes throughout: the runner runs detached (``tunequeue runner start``) or as a one-tick
subprocess that is made to die at the worst moment, the jobs run the stand-in trainer.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tq_cli_testkit import wait_for

from tunequeue.jobqueue import jobs
from tunequeue.runner import daemon, procs

PROBE_LOOP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tunequeue.runner.daemon import running_pid

    stop = Path(sys.argv[1])
    probes = 0
    while not stop.exists():
        running_pid()
        probes += 1
    print(probes)
    """
)

# A runner that claims and launches the queued job, then dies right after Popen: before it writes the
# process record or marks the job running (the wrapper, in its own process, is not affected).
DIE_AFTER_POPEN = textwrap.dedent(
    """
    import os
    from tunequeue.runner import launch
    from tunequeue.runner.daemon import Runner

    def die(*_args, **_kwargs):
        os._exit(137)

    launch.procs.write_record = die
    Runner().tick()
    """
)


def test_probing_the_runner_never_makes_it_fail_to_start(home, tmp_path):
    stop = tmp_path / "stop-probing"
    prober = subprocess.Popen(
        [sys.executable, "-c", PROBE_LOOP, str(stop)], env=home.env, stdout=subprocess.PIPE, text=True
    )
    try:
        for attempt in range(5000):
            fd = daemon.acquire_lock()  # raises "already running" if a probe held the lock right now
            if attempt % 500 == 0:
                assert daemon.running_pid() == daemon.os.getpid()
            daemon.release_lock(fd)
        for _ in range(2):
            started = home.cli("runner", "start")
            assert started.returncode == 0, started.stderr
            assert home.cli("runner", "status", check=True).stdout.startswith("runner: running (pid")
            home.cli("runner", "stop", check=True)
            assert home.runner_pid() is None
    finally:
        stop.touch()
        probes = int(prober.communicate(timeout=30)[0])
    assert probes > 0


def test_a_killed_runners_stale_identity_line_reads_as_not_running(home):
    home.cli("runner", "start", check=True)
    pid = home.runner_pid()
    assert pid and pid > 0
    daemon.os.kill(pid, daemon.signal.SIGKILL)
    wait_for(lambda: home.runner_pid() is None, what="the killed runner to read as not running")
    assert str(pid) in (home.path / "runner.lock").read_text()  # the line is still there, but stale
    assert home.cli("runner", "status", check=True).stdout.startswith("runner: not running")


def _die_after_popen(home) -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", DIE_AFTER_POPEN], env=home.env, capture_output=True, text=True, timeout=60
    )
    assert crashed.returncode == 137, crashed.stderr


def test_runner_dying_between_popen_and_recording_is_adopted_not_launched_twice(home):
    job_id = home.submit("launch-once", steps=30)
    _die_after_popen(home)
    job = home.job(job_id)
    assert job.state.value == "starting" and job.pid is None  # nothing was recorded in the queue
    run_dir = Path(job.run_dir)
    record = wait_for(lambda: procs.read_record(run_dir), what="the wrapper's own process record")
    assert record.attempt == 1 and record.alive()
    home.cli("runner", "start", check=True)
    assert home.cli("wait", str(job_id), "--timeout", "60").returncode == 0
    done = home.job(job_id)
    assert done.state.value == "succeeded" and done.pid == record.pid
    assert done.proc_start_time == record.start_ticks
    assert (run_dir / "train.log").read_text().count("training launch-once pid") == 1
    assert [e["to_state"] for e in jobs.events(home.db(), job_id)].count("running") == 1
    assert "launched by an earlier runner" in (home.path / "runner.log").read_text()


def test_a_job_that_ended_before_the_runner_came_back_is_recorded_not_run_again(home):
    job_id = home.submit("short-and-alone", steps=2)
    _die_after_popen(home)
    run_dir = Path(home.job(job_id).run_dir)
    wait_for(lambda: (run_dir / "exit.json").exists(), what="the job to end with no runner")
    home.cli("runner", "start", check=True)
    assert home.cli("wait", str(job_id), "--timeout", "60").returncode == 0
    assert home.job(job_id).state.value == "succeeded"
    assert (run_dir / "train.log").read_text().count("training short-and-alone pid") == 1
