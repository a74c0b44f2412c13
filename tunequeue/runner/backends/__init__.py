"""Where the runner starts jobs: on this machine (``local``, the default) or through Slurm (``slurm``).

Both backends have the shape of `Backend`, the phases of one runner tick: reap ended jobs, adopt jobs
an earlier runner started, schedule (decide and claim), launch, ingest metrics. The queue, the CLI and
the TUI are the same for both; only how a claimed job starts and how its end is learnt differ. The
backend is a setting of the home (``runner: {backend: ..., slurm: {...}}`` in settings.yaml), written
by ``tunequeue runner start --backend ...``. Switching backend while jobs are
active under the other one is refused: each backend only supervises the jobs it started.
"""

from __future__ import annotations

from typing import Any, Protocol

from tunequeue.core.errors import UserError

BACKEND_NAMES = ("local", "slurm")


class Backend(Protocol):
    """One way of running jobs; `tunequeue.runner.daemon.Runner.tick` calls these phases in order.

    ``runner`` gives the queue (``runner.db``), the settings and ``runner.active_jobs()``; ``report``
    (a `TickReport`) collects what the phase did; ``now`` is wall-clock time, for stored timestamps.
    """

    name: str

    def reap(self, runner, report, now: float) -> None:
        """Record the end of jobs that ended; drive cancellations."""

    def adopt(self, runner, report) -> None:
        """Supervise live jobs started by an earlier runner; resume claimed jobs it left half-started."""

    def schedule(self, runner, report, snapshot, now: float) -> list:
        """Decide which queued jobs start now, record why the others wait; return the claimed jobs."""

    def launch(self, runner, job, report) -> None:
        """Start one claimed job."""

    def ingest(self, runner, report) -> None:
        """Store the new trainer_log.jsonl rows of running jobs."""


def create_backend(settings) -> Backend:
    """The backend object named by ``settings.backend``."""
    name = (settings.backend or "local").strip().lower()
    if name == "local":
        from tunequeue.runner.backends.local import LocalBackend

        return LocalBackend()
    if name == "slurm":
        from tunequeue.runner.backends.slurm import SlurmBackend, SlurmOptions

        return SlurmBackend(SlurmOptions.from_mapping(settings.slurm or {}, source="runner settings"))
    raise UserError(f"runner backend {settings.backend!r} is unknown; use one of {', '.join(BACKEND_NAMES)}")


def multi_node_allowed() -> bool:
    """True when this home's runner submits to Slurm, where a task may span several nodes (nnodes > 1)."""
    from tunequeue.runner.settings import load_settings

    try:
        return load_settings().backend == "slurm"
    except UserError:
        return False


def _active_elsewhere(db, backend: str) -> list[int]:
    """Ids of active jobs that a switch to ``backend`` would leave without supervision."""
    from tunequeue.jobqueue import jobs

    active = jobs.list_jobs(db, states=list(jobs.ACTIVE_STATES))
    if backend == "slurm":
        return [job.id for job in active if not job.backend_job_id and job.pid is not None]
    return [job.id for job in active if job.backend_job_id or job.pid is None]


def configure(backend: str | None, slurm_changes: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Save the runner backend and Slurm options in settings.yaml; return the resulting (backend, slurm).

    ``slurm_changes`` maps SlurmOptions keys to new values (None leaves a key as it was). Refuses a
    backend switch while jobs of the other backend are active, and Slurm options for the local backend.
    """
    from tunequeue.core.settings_file import read_settings, write_settings
    from tunequeue.runner.backends.slurm import SlurmOptions
    from tunequeue.runner.settings import load_settings

    current = load_settings()
    chosen = (backend or current.backend or "local").strip().lower()
    if chosen not in BACKEND_NAMES:
        raise UserError(f"--backend {backend!r} is unknown; use one of {', '.join(BACKEND_NAMES)}")
    changes = {key: value for key, value in slurm_changes.items() if value not in (None, [], ())}
    if changes and chosen != "slurm":
        first = next(iter(changes)).replace("_", "-")
        raise UserError(f"--{first} applies to the slurm backend; add --backend slurm")
    slurm = {**(current.slurm or {}), **changes}
    SlurmOptions.from_mapping(slurm, source="the runner options")  # refuse bad values before saving
    if chosen != current.backend:
        from tunequeue.jobqueue.db import open_db

        stranded = _active_elsewhere(open_db(), chosen)
        if stranded:
            ids = ", ".join(map(str, stranded[:5]))
            raise UserError(
                f"job(s) {ids} are active under the {current.backend} backend; wait for them or cancel "
                f"them before switching the runner to {chosen}"
            )
    data = read_settings()
    block = data.get("runner")
    runner: dict[str, Any] = block if isinstance(block, dict) else {}
    runner["backend"] = chosen
    if slurm:
        runner["slurm"] = slurm
    data["runner"] = runner
    write_settings(data)
    return chosen, slurm
