"""`tunequeue demo` in the user's own home (namespace demo), run twice while the first demo's jobs are
still unfinished: the second takes free names and the running runner, and both say what to try next."""

from __future__ import annotations

import contextlib
import os
import signal

from tq_cli_testkit import CliHome, wait_for

from tunequeue.jobqueue import jobs


def test_demo_twice_in_the_own_home_shares_the_runner_and_takes_free_names(home):
    home.env["STAND_IN_STEP_SECONDS"] = "0.5"  # 96 steps: the first demo's jobs outlive the second call
    first = home.cli("demo", "--no-follow", timeout=120, check=True)
    assert f"tunequeue demo in {home.path} (namespace demo)" in first.stdout
    assert "runner started (pid" in first.stdout
    runner = home.runner_pid()
    assert runner is not None
    second = home.cli("demo", "--no-follow", timeout=120, check=True)
    assert f"using the runner that is already running (pid {runner})" in second.stdout

    listed = jobs.list_jobs(home.db())
    assert [(job.name, job.namespace) for job in listed] == [
        ("demo-lora-r8", "demo"),
        ("demo-lora-r16", "demo"),
        ("demo-lora-r8-2", "demo"),
        ("demo-lora-r16-2", "demo"),
    ]
    assert not any(job.is_final for job in listed)
    for output, first_id in ((first.stdout, listed[0].id), (second.stdout, listed[2].id)):
        next_steps = output.split("next, try:", 1)[1]
        for command in ("tunequeue ui", "tunequeue ls", f"tunequeue show {first_id}",
                        f"tunequeue logs {first_id}", "tunequeue runner stop"):
            assert f"  {command} " in next_steps, (command, output)
        assert "TUNEQUEUE_HOME=" not in next_steps  # the own home needs no variable

    shown = home.cli("ls", check=True).stdout
    for name in ("demo-lora-r8", "demo-lora-r16-2"):
        assert name in shown
    wait_for(lambda: jobs.get(home.db(), listed[0].id).state.value == "running", timeout=60, what="running")


def test_demo_with_another_home_names_it_in_the_next_steps(home, tmp_path, monkeypatch):
    other = CliHome(tmp_path / "other-home", {**home.env, "TUNEQUEUE_HOME": str(tmp_path / "unused")})
    try:
        result = other.cli("demo", "--no-follow", "--home", str(other.path), timeout=120, check=True)
        where = other.path.resolve()
        assert f"tunequeue demo in {where} (namespace demo)" in result.stdout
        after = result.stdout.split("next, try:", 1)[1]
        lines = [line.strip() for line in after.splitlines() if line.strip()]
        assert lines[0] == f"export TUNEQUEUE_HOME={where}"
        assert any(line.startswith("tunequeue ls ") for line in lines)
        assert [job.namespace for job in jobs.list_jobs(other.db())] == ["demo", "demo"]
    finally:
        monkeypatch.setenv("TUNEQUEUE_HOME", str(other.path.resolve()))  # the runner lock looked up here
        other.kill_runner()
        if (other.path / "queue.db").exists():
            for job in jobs.list_jobs(other.db()):
                if job.pgid:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(job.pgid, signal.SIGKILL)
