"""CLI commands for jobs: submit (with sweeps), ls, show, logs, wait, cancel, retry, rm, hold, release,
priority, gpus, and the `demo`.

Commands are thin: they validate input, call `tunequeue.jobqueue.jobs` (the one owner of job state) and
print a table or ``--json``. Nothing invalid is queued: a task file is checked completely (every sweep
combination too) before the first job is inserted.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import typer

from tunequeue.cli.output import print_json
from tunequeue.core.errors import UserError

WAIT_EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 3}
MAX_SWEEP_JOBS = 256
_NAME_MAX = 63


def _db():
    from tunequeue.jobqueue.db import open_db

    return open_db()


# ----- task files, validation and sweeps -----------------------------------------------------------


def load_task(path: Path, dataset_home: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """Read a task file (our YAML, LLaMA-Factory YAML or Firefly JSON) into our keys plus warnings."""
    from tunequeue.cli.task_commands import load_task_mapping

    return load_task_mapping(path, dataset_home)


def check(data: dict[str, Any], source: str):
    """Preflight a task mapping for this home's runner; raise `UserError` with the first error, one line."""
    from tunequeue.cli.task_commands import host_gpus
    from tunequeue.core.validate import first_error, preflight
    from tunequeue.runner.backends import multi_node_allowed

    on_cluster = multi_node_allowed()  # a cluster's GPUs are not this machine's
    checked = preflight(data, host_gpus=None if on_cluster else host_gpus(), multi_node=on_cluster)
    if checked.report.errors:
        raise first_error(checked, source)
    return checked.report


def parse_sweep(text: str) -> list[dict[str, Any]]:
    """``"learning_rate=1e-4,5e-5 lora_rank=8,16"`` → one dict of values per combination.

    The number of combinations is checked before any is built.
    """
    import math

    from tunequeue.core.spec import KEYS, unknown_key_message
    from tunequeue.core.yaml_files import parse_yaml

    axes: list[tuple[str, list[Any]]] = []
    for word in text.split():
        key, sep, values = word.partition("=")
        if not sep or not key or not values:
            shown = word if len(word) <= 60 else word[:57] + "..."
            raise UserError(f"--sweep item {shown!r} is not KEY=V1,V2; write e.g. learning_rate=1e-4,5e-5")
        if key not in KEYS:
            raise UserError(f"--sweep: {unknown_key_message(key[:60])}")
        if key in ("task_name", "namespace"):
            raise UserError(f"--sweep cannot vary {key}; sweep jobs are named after the task automatically")
        if any(existing == key for existing, _ in axes):
            raise UserError(f"--sweep names {key} twice; give all its values in one KEY=V1,V2 item")
        raw_values = values.split(",")
        if len(raw_values) > MAX_SWEEP_JOBS:
            raise UserError(
                f"--sweep {key} has {len(raw_values)} values; keep it to {MAX_SWEEP_JOBS} or fewer"
            )
        axes.append((key, raw_values))
    if not axes:
        raise UserError('--sweep is empty; write e.g. --sweep "learning_rate=1e-4,5e-5 lora_rank=8,16"')
    count = math.prod(len(values) for _, values in axes)
    if count > MAX_SWEEP_JOBS:
        raise UserError(f"--sweep makes {count} jobs; keep it to {MAX_SWEEP_JOBS} or fewer")
    parsed_axes = []
    for key, raw_values in axes:
        parsed = []
        for raw in raw_values:
            try:
                parsed.append(parse_yaml(raw, f"--sweep {key}") if raw else raw)
            except UserError:
                parsed.append(raw)
        parsed_axes.append((key, parsed))
    return [
        dict(zip([k for k, _ in parsed_axes], values, strict=True))
        for values in itertools.product(*[v for _, v in parsed_axes])
    ]


def _suffixed(name: str, index: int) -> str:
    suffix = f"-s{index}"
    return name[: _NAME_MAX - len(suffix)].rstrip("-") + suffix


def task_dataset_home(path: Path) -> Path:
    """The folder under TUNEQUEUE_HOME where a submitted Firefly file's train data is registered."""
    import hashlib

    from tunequeue.core import paths

    digest = hashlib.sha256(str(path.expanduser().resolve()).encode()).hexdigest()[:12]
    return paths.home() / "datasets" / f"{path.stem[:40]}-{digest}"


@contextlib.contextmanager
def _removed_on_error(folder: Path):
    """Remove ``folder`` when the block fails and the folder did not exist before it."""
    fresh = not folder.exists()
    try:
        yield
    except BaseException:
        if fresh:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def submit_file(
    path: Path,
    *,
    name: str | None = None,
    gpus: int | None = None,
    vram: float | None = None,
    share: bool | None = None,
    priority: int = 0,
    after: list[int] | None = None,
    hold: bool = False,
    preset: str | None = None,
    sweep: str | None = None,
) -> tuple[list, list[str]]:
    """Validate ``path`` (and every sweep combination) and queue it; return (jobs, warnings).

    A refused Firefly file leaves no registered dataset behind.
    """
    import uuid

    from tunequeue.jobqueue import jobs, submission

    if name is not None and not name.strip():
        raise UserError("--name is empty; give a job name, e.g. --name my-run, or leave --name out")
    if gpus is not None:
        submission.check_gpus(gpus)
    submission.check_priority(priority)
    submission.check_after(after or ())
    submission.check_free_space()  # before the task's dataset is registered: a refusal leaves nothing
    combos = parse_sweep(sweep) if sweep is not None else [{}]
    dataset_home = task_dataset_home(path)
    with _removed_on_error(dataset_home):
        data, warnings = load_task(path, dataset_home)
        if preset:
            from tunequeue.core.presets import apply_preset, get_preset

            data = apply_preset(get_preset(preset), data)
        if name is not None:
            data["task_name"] = name
        prepared = []
        for index, combo in enumerate(combos, start=1):
            values = {**data, **combo}
            if sweep:
                values["task_name"] = _suffixed(str(data.get("task_name") or path.stem), index)
            label = f"{path} ({', '.join(f'{k}={v}' for k, v in combo.items())})" if combo else str(path)
            report = check(values, label)
            warnings.extend(problem.message("en") for problem in report.warnings if index == 1 or combo)
            prepared.append(report.spec)
        group_id = uuid.uuid4().hex[:12] if sweep else None
        db = _db()
        for spec in prepared:  # refuse a taken name before queueing any job of a sweep
            jobs.check_name_free(db, spec.namespace, spec.task_name)
        created = [
            submission.submit_task(
                db,
                spec,
                gpus=gpus,
                vram_gib=vram,
                allow_share=share,
                preset_ref=preset,
                priority=priority,
                after=after or (),
                hold=hold,
                group_id=group_id,
            )
            for spec in prepared
        ]
    from tunequeue.runner.daemon import wake_runner

    wake_runner()
    return created, list(dict.fromkeys(warnings))


def retry_job(job_id: int):
    """Check a failed or cancelled job's stored task again (files may have changed) and queue it again."""
    from tunequeue.cli.task_commands import host_gpus
    from tunequeue.core.task_files import read_stored_task
    from tunequeue.jobqueue import jobs
    from tunequeue.runner.backends import multi_node_allowed

    db = _db()
    job = jobs.get(db, job_id)
    on_cluster = multi_node_allowed()
    read_stored_task(
        job.task_yaml, f"job {job_id}", host_gpus=None if on_cluster else host_gpus(), multi_node=on_cluster
    )
    return jobs.retry(db, job_id)


# ----- presentation --------------------------------------------------------------------------------


def _fmt_time(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _gpus_text(job) -> str:
    if job.assigned_gpus:
        return ",".join(str(i) for i in job.assigned_gpus)
    if job.backend_job_id:
        return f"{job.requested_gpus} (slurm)"  # Slurm picks the GPUs on its nodes
    if job.is_active or job.is_final:
        return "cpu" if job.started_at else "-"
    return f"{job.requested_gpus}" if job.requested_gpus else "cpu"


def _progress_text(progress: dict | None) -> tuple[str, str]:
    if not progress:
        return "-", "-"
    pct = progress.get("percentage")
    step, total = progress.get("step"), progress.get("total_steps")
    text = f"{pct:.0f}%" if pct is not None else "-"
    if step is not None and total:
        text += f" {step}/{total}"
    loss = progress.get("loss")
    return text, (f"{loss:.4f}" if isinstance(loss, (int, float)) else "-")


def _job_json(job, progress: dict | None) -> dict[str, Any]:
    data = job.to_dict()
    data.pop("task_yaml", None)
    data["progress"] = progress
    return data


def _log_path(job) -> Path:
    return Path(job.run_dir) / "train.log"


# ----- follow (used by `demo`; the TUI may replace it with the dashboard) --------------------------


def follow_jobs(job_ids: list[int], *, poll_seconds: float = 0.5, out=None) -> dict[int, str]:
    """Print progress and loss of ``job_ids`` until all are final; return each job's final state."""
    from tunequeue.jobqueue import jobs, metrics

    out = out or sys.stdout
    db = _db()
    last_line: dict[int, str] = {}
    while True:
        current = {job_id: jobs.get(db, job_id) for job_id in job_ids}
        progress = metrics.latest_metrics(db, job_ids)
        for job_id, job in current.items():
            pct, loss = _progress_text(progress.get(job_id))
            line = f"job {job_id} {job.name}: {job.state.value}"
            if job.state.value in ("running", "cancelling") or progress.get(job_id):
                line += f"  progress {pct}  loss {loss}"
            if job.reason and not job.is_active:
                line += f"  ({job.reason})"
            if last_line.get(job_id) != line:
                print(line, file=out, flush=True)
                last_line[job_id] = line
        if all(job.is_final for job in current.values()):
            return {job_id: job.state.value for job_id, job in current.items()}
        time.sleep(poll_seconds)


# ----- commands ------------------------------------------------------------------------------------


def submit_command(
    file: Path = typer.Argument(..., help="Task file: our YAML, LLaMA-Factory YAML or Firefly JSON."),
    name: str = typer.Option(None, "--name", help="Job (and task) name; default: the task's task_name."),
    gpus: int = typer.Option(None, "--gpus", help="GPUs to use (0 = CPU only); default: gpu_count."),
    vram: float = typer.Option(None, "--vram", help="VRAM the job needs, GiB (used with --share)."),
    share: bool = typer.Option(None, "--share/--no-share", help="May share a GPU when VRAM fits."),
    priority: int = typer.Option(0, "--priority", help="Higher starts first."),
    after: list[int] = typer.Option(None, "--after", help="Start only after job ID succeeded (repeat)."),
    hold: bool = typer.Option(False, "--hold", help="Queue it held; `tunequeue release ID` lets it run."),
    preset: str = typer.Option(None, "--preset", help="Apply preset NS/NAME under the task's own values."),
    json_out: bool = typer.Option(False, "--json", help="Print the created jobs as JSON."),
    sweep: str = typer.Option(
        None, "--sweep", help='One job per combination, e.g. "learning_rate=1e-4,5e-5 lora_rank=8,16".'
    ),
) -> None:
    """Validate a task file and queue it (nothing invalid is queued)."""
    created, warnings = submit_file(
        file,
        name=name,
        gpus=gpus,
        vram=vram,
        share=share,
        priority=priority,
        after=after,
        hold=hold,
        preset=preset,
        sweep=sweep,
    )
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if json_out:
        print_json([_job_json(job, None) for job in created])
    else:
        for job in created:
            typer.echo(f"job {job.id} {job.name} {job.state.value}")
    from tunequeue.runner.daemon import running_pid

    if running_pid() is None and not json_out:
        typer.echo("no runner is running here; start one with `tunequeue runner start`", err=True)


def list_command(
    state: list[str] = typer.Option(None, "--state", help="Only jobs in this state (repeat for several)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List jobs with state, GPUs, progress, loss and why they wait or failed."""
    from tunequeue.jobqueue import jobs, metrics

    states = None
    if state:
        valid = [s.value for s in jobs.JobState]
        for value in state:
            if value not in valid:
                raise UserError(f"--state {value!r} is not a job state; use one of {', '.join(valid)}")
        states = state
    db = _db()
    listed = jobs.list_jobs(db, states=states)
    progress = metrics.latest_metrics(db, [job.id for job in listed if job.started_at])
    if json_out:
        print_json([_job_json(job, progress.get(job.id)) for job in listed])
        return
    if not listed:
        typer.echo("no jobs" + (f" in state {', '.join(state)}" if state else ""))
        return
    from rich.table import Table

    from tunequeue.cli.output import console

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "NAME", "STATE", "GPUS", "PROGRESS", "LOSS", "ELAPSED", "REASON"):
        table.add_column(
            column, overflow="fold" if column == "REASON" else "ellipsis", no_wrap=column != "REASON"
        )
    now = time.time()
    for job in listed:
        pct, loss = _progress_text(progress.get(job.id))
        elapsed = (job.finished_at or now) - job.started_at if job.started_at else None
        table.add_row(
            str(job.id),
            job.name,
            job.state.value,
            _gpus_text(job),
            pct,
            loss,
            _fmt_duration(elapsed),
            job.reason or "",
        )
    console().print(table)


def show_command(
    job_id: int = typer.Argument(..., metavar="ID"),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (with events and metrics)."),
) -> None:
    """Show one job: settings, state history, progress, and the log tail when it failed."""
    from tunequeue.jobqueue import jobs, metrics
    from tunequeue.runner.wrapper import log_tail

    db = _db()
    job = jobs.get(db, job_id)
    progress = metrics.latest_metrics(db, [job.id]).get(job.id)
    history = jobs.events(db, job.id)
    tail = log_tail(_log_path(job), 20) if job.state.value == "failed" else []
    if json_out:
        data = _job_json(job, progress)
        data["task_yaml"] = job.task_yaml
        data["events"] = history
        data["metrics"] = metrics.get_metrics(db, job.id)
        data["log_tail"] = tail
        print_json(data)
        return
    rows = [
        ("job", f"{job.id} {job.name} ({job.namespace})"),
        ("state", job.state.value + (f" — {job.reason}" if job.reason else "")),
        ("attempt", str(job.attempt)),
        ("priority", str(job.priority)),
        (
            "gpus",
            f"requested {job.requested_gpus}, assigned {_gpus_text(job)}"
            + (f", vram {job.requested_vram_gib} GiB" if job.requested_vram_gib else ""),
        ),
        ("after", ", ".join(map(str, job.after)) or "-"),
        ("submitted", _fmt_time(job.submitted_at)),
        ("started", _fmt_time(job.started_at)),
        ("finished", _fmt_time(job.finished_at)),
        (
            "exit",
            "-"
            if job.exit_code is None and not job.signal
            else jobs.describe_exit(job.exit_code, job.signal),
        ),
        ("pid", f"{job.pid} (group {job.pgid})" if job.pid else "-"),
        ("run dir", job.run_dir),
    ]
    if job.backend_job_id:
        rows.append(("slurm job", job.backend_job_id))
    if job.preset_ref:
        rows.append(("preset", job.preset_ref))
    if progress:
        pct, loss = _progress_text(progress)
        rows.append(
            (
                "progress",
                f"{pct}, loss {loss}, elapsed {progress.get('elapsed_time') or '-'}, "
                f"remaining {progress.get('remaining_time') or '-'}",
            )
        )
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        typer.echo(f"{key:<{width}}  {value}")
    typer.echo("\nhistory:")
    for event in history:
        typer.echo(
            f"  {_fmt_time(event['time'])}  {event.get('from_state') or '-'} → {event['to_state']}"
            f"  (attempt {event['attempt']}){'  ' + event['reason'] if event.get('reason') else ''}"
        )
    if tail:
        typer.echo("\nlast lines of train.log:")
        for line in tail:
            typer.echo(f"  {line}")


def logs_command(
    job_id: int = typer.Argument(..., metavar="ID"),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing until the job ends."),
) -> None:
    """Print a job's train.log (stdout and stderr of the training process)."""
    from tunequeue.jobqueue import jobs

    db = _db()
    job = jobs.get(db, job_id)
    path = _log_path(job)
    if not follow:
        if not path.exists():
            raise UserError(f"job {job_id} has no log yet (it is {job.state.value}); add -f to wait for it")
        with open(path, "rb") as handle:
            sys.stdout.buffer.write(handle.read())
        sys.stdout.flush()
        return
    offset = 0
    while True:
        job = jobs.get(db, job_id)
        if path.exists():
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            offset += len(chunk)
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
        if job.is_final:
            return
        time.sleep(0.3)


def wait_command(
    job_id: int = typer.Argument(..., metavar="ID"),
    timeout: float = typer.Option(None, "--timeout", help="Give up after this many seconds (exit 124)."),
) -> None:
    """Wait until a job ends; exit code 0 succeeded, 1 failed, 3 cancelled (124 on --timeout)."""
    from tunequeue.jobqueue import jobs

    db = _db()
    deadline = None if timeout is None else time.time() + timeout
    while True:
        job = jobs.get(db, job_id)
        if job.is_final:
            typer.echo(f"job {job.id} {job.state.value}" + (f": {job.reason}" if job.reason else ""))
            raise typer.Exit(WAIT_EXIT_CODES[job.state.value])
        if deadline is not None and time.time() > deadline:
            typer.echo(f"job {job.id} is still {job.state.value} after {timeout:g} s", err=True)
            raise typer.Exit(124)
        time.sleep(0.3)


def cancel_command(job_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Cancel a job: a waiting one at once, a running one gets SIGTERM (SIGKILL after a grace period)."""
    from tunequeue.jobqueue import jobs
    from tunequeue.runner.daemon import running_pid, wake_runner

    job = jobs.request_cancel(_db(), job_id)
    typer.echo(f"job {job.id} {job.state.value}")
    if job.is_active:
        if running_pid() is None:
            typer.echo(
                "no runner is running; the job stops when one starts (`tunequeue runner start`)", err=True
            )
        wake_runner()


def retry_command(job_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Queue a failed or cancelled job again (new attempt; resumes from its newest checkpoint)."""
    from tunequeue.runner.daemon import wake_runner

    job = retry_job(job_id)
    typer.echo(f"job {job.id} {job.state.value} (attempt {job.attempt})")
    wake_runner()


def remove_command(
    job_id: int = typer.Argument(..., metavar="ID"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    keep_files: bool = typer.Option(False, "--keep-files", help="Keep the run dir (checkpoints, adapter)."),
) -> None:
    """Delete a job that is not active, with its run dir unless --keep-files."""
    from tunequeue.jobqueue import jobs

    db = _db()
    job = jobs.get(db, job_id)
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"add --yes to delete job {job_id} without a prompt")
        what = "" if keep_files else f" and {job.run_dir}"
        if not typer.confirm(f"delete job {job_id} ({job.name}){what}?"):
            raise typer.Exit(1)
    jobs.delete(db, job_id, keep_files=keep_files)
    typer.echo(f"job {job_id} deleted" + (" (files kept)" if keep_files else ""))


def hold_command(job_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Keep a queued job from starting until `release`."""
    from tunequeue.jobqueue import jobs

    job = jobs.hold(_db(), job_id)
    typer.echo(f"job {job.id} {job.state.value}")


def release_command(job_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Let a held job be scheduled again."""
    from tunequeue.jobqueue import jobs
    from tunequeue.runner.daemon import wake_runner

    job = jobs.release(_db(), job_id)
    typer.echo(f"job {job.id} {job.state.value}")
    wake_runner()


def priority_command(
    job_id: int = typer.Argument(..., metavar="ID"),
    value: int = typer.Argument(..., metavar="P", help="New priority; higher starts first."),
) -> None:
    """Change the priority of a job that has not started."""
    from tunequeue.jobqueue import jobs

    job = jobs.set_priority(_db(), job_id, value)
    typer.echo(f"job {job.id} priority {job.priority}")


def _clip(command: str, width: int = 40) -> str:
    return command if len(command) <= width else command[: width - 1] + "…"


def _mib(value: float | None) -> str:
    return "? MiB" if value is None else f"{value:.0f} MiB"


def gpus_command(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List GPUs (NVML, or simulated via TUNEQUEUE_SIMULATED_GPUS) with memory, load and processes."""
    import dataclasses

    from tunequeue.gpus import processes, read_gpus

    snapshot = read_gpus()
    processes.describe(snapshot.gpus)
    if json_out:
        print_json(dataclasses.asdict(snapshot))
        return
    if snapshot.error:
        typer.echo(snapshot.error, err=True)
    if not snapshot.gpus:
        typer.echo("no GPUs; jobs that allow it run on the CPU")
        return
    from rich.table import Table

    from tunequeue.cli.output import console

    table = Table(
        box=None,
        pad_edge=False,
        header_style="bold",
        title="simulated GPUs" if snapshot.simulated else None,
    )
    for column in ("IDX", "NAME", "MEMORY", "UTIL", "TEMP", "POWER", "PROCESSES"):
        table.add_column(column)
    for gpu in snapshot.gpus:
        procs = (
            ", ".join(
                f"{p.pid} {p.user or '?'} {_clip(p.command or p.name)} ({_mib(p.used_memory_mib)})"
                for p in gpu.all_processes
            )
            or "-"
        )
        table.add_row(
            str(gpu.index),
            gpu.name + (" [simulated]" if gpu.simulated else ""),
            f"{gpu.memory_used_mib:.0f}/{gpu.memory_total_mib:.0f} MiB",
            "-" if gpu.utilization_pct is None else f"{gpu.utilization_pct:.0f}%",
            "-" if gpu.temperature_c is None else f"{gpu.temperature_c:.0f}°C",
            "-" if gpu.power_w is None else f"{gpu.power_w:.0f} W",
            procs,
        )
    console().print(table)


def demo_command(
    home: Path = typer.Option(None, "--home", help="Use this tunequeue home instead of your own."),
    no_follow: bool = typer.Option(False, "--no-follow", help="Submit and start the runner, then return."),
) -> None:
    """Train two short LoRA SFT jobs on the bundled tiny model in your home (namespace demo)."""
    raise typer.Exit(run_demo(home=home, follow=not no_follow))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app, one function per command."""
    app.command("submit")(submit_command)
    app.command("ls")(list_command)
    app.command("show")(show_command)
    app.command("logs")(logs_command)
    app.command("wait")(wait_command)
    app.command("cancel")(cancel_command)
    app.command("retry")(retry_command)
    app.command("rm")(remove_command)
    app.command("hold")(hold_command)
    app.command("release")(release_command)
    app.command("priority")(priority_command)
    app.command("gpus")(gpus_command)
    app.command("demo")(demo_command)


# ----- demo ----------------------------------------------------------------------------------------

DEMO_NAMESPACE = "demo"
DEMO_TASKS = (
    {"task_name": "demo-lora-r8", "lora_rank": 8, "learning_rate": 1.0e-3},
    {"task_name": "demo-lora-r16", "lora_rank": 16, "learning_rate": 5.0e-4},
)
DEMO_COMMON = {
    "namespace": DEMO_NAMESPACE,
    "model_name_or_path": "tunequeue/tiny-llama",
    "stage": "sft",
    "finetuning_type": "lora",
    "dataset": "demo_alpaca",
    "num_train_epochs": 1.0,
    "max_samples": 96,
    "cutoff_len": 128,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "logging_steps": 2,
    "save_steps": 12,
}


def demo_task_names(db) -> list[str]:
    """The demo's task names, suffixed (``-2``, ``-3``…) where an unfinished demo job still holds one."""
    from tunequeue.jobqueue import jobs

    names = []
    for task in DEMO_TASKS:
        base = task["task_name"]
        for attempt in itertools.count(1):
            name = base if attempt == 1 else f"{base}-{attempt}"
            try:
                jobs.check_name_free(db, DEMO_NAMESPACE, name)
            except UserError:
                continue
            names.append(name)
            break
    return names


def write_demo_tasks(directory: Path, names: list[str] | None = None) -> list[Path]:
    """Write the demo's two task files into ``directory`` (task names from ``names`` when given)."""
    from tunequeue.core import private_files
    from tunequeue.core.task_files import dump_task_yaml

    private_files.ensure_dir(directory)
    written = []
    for index, task in enumerate(DEMO_TASKS):
        task = {**task, "task_name": names[index]} if names else dict(task)
        path = directory / f"{task['task_name']}.yaml"
        private_files.write_text(path, dump_task_yaml({**task, **DEMO_COMMON}))
        written.append(path)
    return written


def run_demo(*, home: Path | None = None, follow: bool = True) -> int:
    """Submit the demo jobs in the user's home (namespace demo), run them and say what to try next.

    A runner that is already running takes the jobs; otherwise one is started (detached) and stopped
    again when the demo ends. Returns 0 when both jobs succeeded.
    """
    from tunequeue.core import paths
    from tunequeue.gpus import read_gpus
    from tunequeue.runner import daemon

    own_home = home is None
    if not own_home:
        os.environ["TUNEQUEUE_HOME"] = str(Path(home).expanduser().resolve())
    home = paths.home()
    typer.echo(f"tunequeue demo in {home} (namespace {DEMO_NAMESPACE})")
    gpu_count = 1 if read_gpus().gpus else 0
    db = _db()
    job_ids = []
    for task_file in write_demo_tasks(home / "demo-tasks", demo_task_names(db)):
        created, _ = submit_file(task_file, gpus=gpu_count)
        job_ids.extend(job.id for job in created)
        typer.echo(f"submitted job {created[0].id} {created[0].name} ({'GPU' if gpu_count else 'CPU'})")
    running = daemon.running_pid()
    started_here = running is None
    if started_here:
        pid = daemon.start_detached()
        typer.echo(f"runner started (pid {pid}); its log is {paths.runner_log_path()}")
    else:
        typer.echo(f"using the runner that is already running (pid {running})")
    env_line = None if own_home else f"export TUNEQUEUE_HOME={home}"
    if not follow:
        _print_next_steps(env_line, job_ids, None, runner_left=True)
        return 0
    try:
        if sys.stdin.isatty() and sys.stdout.isatty():
            # a terminal is attached: watch the first job on its dashboard; after `q`, keep printing
            from tunequeue.tui.app import run_dashboard

            run_dashboard(job_ids[0])
        states = follow_jobs(job_ids)
    finally:
        if started_here:
            daemon.stop_runner()
    from tunequeue.jobqueue import jobs

    finished = [jobs.get(db, job_id) for job_id in job_ids]
    for job in finished:
        if states[job.id] == "succeeded":
            typer.echo(f"job {job.id} {job.name}: adapter in {job.run_dir}")
        else:
            typer.echo(f"job {job.id} {job.name}: {states[job.id]} ({job.reason}); see {_log_path(job)}")
    if started_here:
        typer.echo("runner stopped (it was started for the demo)")
    trained = next((job for job in finished if states[job.id] == "succeeded"), None)
    _print_next_steps(env_line, job_ids, trained, runner_left=not started_here)
    return 0 if all(state == "succeeded" for state in states.values()) else 1


def _print_next_steps(env_line: str | None, job_ids: list[int], trained, *, runner_left: bool) -> None:
    """The commands to try after the demo, with this demo's job IDs and run dir filled in; ``env_line``
    (for a home other than the user's own) comes first."""
    first = job_ids[0]
    steps = [
        ("tunequeue ui", "the queue with these jobs; Enter opens a dashboard, n a new task"),
        ("tunequeue ls", "every job of this home"),
        (f"tunequeue show {first}", "one job: its task, state and run dir"),
        (f"tunequeue logs {first}", "its train.log"),
    ]
    if trained is not None:
        steps.append(
            (
                f"tunequeue chat --model tunequeue/tiny-llama --adapter {trained.run_dir}",
                "talk to the adapter just trained",
            )
        )
    if runner_left:
        steps.append(("tunequeue runner stop", "stop the runner when you are done"))
    else:
        steps.append(("tunequeue runner start", "start the runner to work through your own jobs"))
    width = max((len(c) for c, _ in steps if len(c) <= _NEXT_STEP_WIDTH), default=_NEXT_STEP_WIDTH)
    typer.echo("")
    typer.echo("next, try:")
    if env_line:
        typer.echo(f"  {env_line}")
    for command, what in steps:
        if len(command) <= width:
            typer.echo(f"  {command.ljust(width)}   # {what}")
        else:  # a long command (the chat line with its run dir) gets its own line
            typer.echo(f"  {command}")
            typer.echo(f"  {'':{width}}   # {what}")


_NEXT_STEP_WIDTH = 40
