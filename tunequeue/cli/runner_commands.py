"""CLI commands for the runner daemon: `runner start | stop | status | install-service`."""

from __future__ import annotations

import typer

from tunequeue.cli.output import print_json
from tunequeue.core.errors import UserError

runner_app = typer.Typer(
    help="Start, stop and inspect the runner daemon that starts queued jobs on free GPUs.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@runner_app.command()
def start(
    foreground: bool = typer.Option(
        False, "--foreground", help="Run in this process (for systemd); default: detach and return."
    ),
    backend: str = typer.Option(
        None, "--backend", help="local (this machine's GPUs) or slurm (submit with sbatch); kept."
    ),
    partition: str = typer.Option(None, "--partition", help="Slurm partition (kept)."),
    account: str = typer.Option(None, "--account", help="Slurm account (kept)."),
    qos: str = typer.Option(None, "--qos", help="Slurm QOS (kept)."),
    time_limit: str = typer.Option(None, "--time-limit", help="Slurm time limit, e.g. 1-00:00:00 (kept)."),
    mem: str = typer.Option(None, "--mem", help="Slurm memory per node, e.g. 64G (kept)."),
    cpus_per_task: int = typer.Option(None, "--cpus-per-task", help="Slurm CPUs per node (kept)."),
    sbatch_option: list[str] = typer.Option(
        None, "--sbatch-option", help="Extra sbatch argument, e.g. --constraint=a100 (repeat; kept)."
    ),
) -> None:
    """Start the runner for this home (one per home); it keeps running after you log out."""
    from tunequeue.core import paths
    from tunequeue.core.disk_full import require_free_space
    from tunequeue.runner import daemon

    require_free_space(paths.home(), "the runner")

    slurm_options = {
        "partition": partition,
        "account": account,
        "qos": qos,
        "time_limit": time_limit,
        "mem": mem,
        "cpus_per_task": cpus_per_task,
        "sbatch_options": list(sbatch_option or []) or None,
    }
    if backend is not None or any(value is not None for value in slurm_options.values()):
        from tunequeue.runner.backends import configure

        if daemon.running_pid() is not None:
            raise UserError("stop the runner (`tunequeue runner stop`) before changing its backend options")
        configure(backend, slurm_options)
    from tunequeue.runner.settings import load_settings

    if load_settings().backend == "slurm":
        from tunequeue.runner.backends.slurm import check_available

        check_available()
    if foreground:
        daemon.serve_foreground()
        return
    pid = daemon.start_detached()
    typer.echo(f"runner started (pid {pid}) for {paths.home()}; log: {paths.runner_log_path()}")


@runner_app.command()
def stop(
    cancel_jobs: bool = typer.Option(
        False, "--cancel-jobs", help="Also cancel running jobs (default: they keep running)."
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for the runner to stop."),
) -> None:
    """Stop scheduling; running jobs keep running and are re-adopted at the next start."""
    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db
    from tunequeue.runner import daemon

    if cancel_jobs:
        db = open_db()
        active = jobs.list_jobs(db, states=list(jobs.ACTIVE_STATES))
        for job in active:
            jobs.request_cancel(db, job.id)
        if active:
            typer.echo(f"cancelling {len(active)} job(s)…")
            if daemon.running_pid() is not None:
                daemon.wake_runner()
                _wait_until_inactive(db, timeout)
            else:
                daemon.Runner(db).drain(timeout)
    pid = daemon.stop_runner(timeout)
    if pid is None:
        typer.echo("no runner is running")
    else:
        still = len(jobs.list_jobs(open_db(), states=list(jobs.ACTIVE_STATES)))
        kept = f"; {still} running job(s) keep running and are re-adopted at the next start" if still else ""
        typer.echo(f"runner (pid {pid}) stopped{kept}")


def _wait_until_inactive(db, timeout: float) -> None:
    import time

    from tunequeue.jobqueue import jobs

    deadline = time.monotonic() + timeout
    while jobs.list_jobs(db, states=list(jobs.ACTIVE_STATES)) and time.monotonic() < deadline:
        time.sleep(0.2)


@runner_app.command()
def status(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Whether the runner runs, its pid, and how many jobs are in each state."""
    from tunequeue.core import paths
    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db
    from tunequeue.runner import daemon
    from tunequeue.runner.settings import load_settings

    pid = daemon.running_pid()
    counts = jobs.counts_by_state(open_db())
    settings = load_settings()
    data = {
        "running": pid is not None,
        "pid": pid,
        "home": str(paths.home()),
        "log": str(paths.runner_log_path()),
        "tick_seconds": settings.tick_seconds,
        "backend": settings.backend,
        "slurm": settings.slurm if settings.backend == "slurm" else None,
        "jobs": counts,
    }
    if json_out:
        print_json(data)
        return
    typer.echo(f"runner: {'running (pid ' + str(pid) + ')' if pid else 'not running'}")
    typer.echo(f"home:   {data['home']}")
    typer.echo(f"log:    {data['log']}")
    backend_text = settings.backend
    if settings.backend == "slurm" and settings.slurm:
        backend_text += " (" + ", ".join(f"{k}={v}" for k, v in settings.slurm.items()) + ")"
    typer.echo(f"backend: {backend_text}")
    summary = ", ".join(f"{count} {state}" for state, count in counts.items() if count) or "none"
    typer.echo(f"jobs:   {summary}")


@runner_app.command("install-service")
def install_service() -> None:
    """Write a systemd user unit for this home and print how to enable it."""
    from tunequeue.runner import daemon

    path = daemon.install_service()
    name = daemon.SERVICE_NAME
    typer.echo(f"wrote {path}")
    typer.echo("enable it with:")
    typer.echo("  systemctl --user daemon-reload")
    typer.echo(f"  systemctl --user enable --now {name}")
    typer.echo("keep it running after you log out with:")
    typer.echo("  loginctl enable-linger $USER")
    typer.echo(
        f"(stop any runner started with `tunequeue runner start` first; logs: journalctl --user -u {name})"
    )


def register(app: typer.Typer) -> None:
    """Add the `runner` command group to the root app."""
    app.add_typer(runner_app, name="runner")
