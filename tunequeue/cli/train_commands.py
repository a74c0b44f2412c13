"""CLI command `tunequeue train FILE`: train one task in the foreground, without the queue.

It runs the preflight `validate` runs, creates a run dir ``runs/manual-<timestamp>-<task_name>``
under TUNEQUEUE_HOME (or reuses ``--run-dir``, which resumes from its newest checkpoint), writes the
resolved ``task.yaml`` there and runs ``python -m tunequeue.train RUN_DIR/task.yaml`` — the very
process the runner launches — copying its output to the terminal and to ``train.log``. The exit code
is the training process's (0 done, 2 bad task, 3 cancelled after a checkpoint). A task ``output_dir``
also receives the final weights and results.
"""

from __future__ import annotations

from pathlib import Path

import typer


def prepare_manual_run(task_file: Path, run_dir: Path | None = None) -> Path:
    """Preflight `task_file` as `validate` does, create (or reuse) the run dir, write the resolved task.

    Any file `validate` accepts is accepted: our YAML, LLaMA-Factory YAML or Firefly JSON (whose train
    file is registered in the run dir's ``dataset`` folder). Returns the path of the written task.yaml.
    """
    import shutil
    import tempfile
    import time

    from tunequeue.cli.task_commands import preflight_file
    from tunequeue.core import paths, private_files
    from tunequeue.core.task_files import anchor_paths, dump_task_yaml
    from tunequeue.core.validate import first_error

    with tempfile.TemporaryDirectory(prefix="tunequeue-train-") as scratch:
        checked, warnings = preflight_file(task_file, dataset_home=Path(scratch))
        if checked.report.errors:
            raise first_error(checked, str(task_file))
        spec = anchor_paths(checked.report.spec)
        for warning in warnings + [p.message("en") for p in checked.report.warnings]:
            typer.echo(f"warning: {warning}", err=True)
        if run_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = paths.runs_dir() / f"manual-{stamp}-{spec.task_name}"
            suffix = 1
            while run_dir.exists():
                suffix += 1
                run_dir = paths.runs_dir() / f"manual-{stamp}-{spec.task_name}-{suffix}"
        private_files.ensure_dir(run_dir)
        if spec.dataset_dir == str(Path(scratch).resolve()):  # a Firefly train file: keep it with the run
            shutil.copytree(scratch, run_dir / "dataset", dirs_exist_ok=True)
            spec = spec.model_copy(update={"dataset_dir": str((run_dir / "dataset").resolve())})
    return private_files.write_text(run_dir / "task.yaml", dump_task_yaml(spec, include_defaults=True))


def run_training_process(task_yaml: Path, *, echo: bool = True) -> int:
    """Run ``python -m tunequeue.train task_yaml``, teeing its output into train.log; return its exit code.

    Ctrl-C reaches the training process (same process group), which checkpoints and exits with 3; a
    SIGTERM sent to this command is forwarded to it.
    """
    import signal
    import subprocess
    import sys

    from tunequeue.core import private_files

    log_path = task_yaml.parent / "train.log"
    command = [sys.executable, "-u", "-m", "tunequeue.train", str(task_yaml)]
    with private_files.open_file(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def forward(signum: int, _frame: object) -> None:
            if signum == signal.SIGTERM and process.poll() is None:
                process.send_signal(signal.SIGTERM)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            assert process.stdout is not None
            for line in iter(process.stdout.readline, b""):
                log.write(line)
                log.flush()
                if echo:
                    sys.stdout.write(line.decode("utf-8", errors="replace"))
                    sys.stdout.flush()
            return process.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("train")
    def train(
        file: Path = typer.Argument(..., help="Task YAML (our keys, LLaMA-Factory names)."),
        run_dir: Path | None = typer.Option(
            None,
            "--run-dir",
            help="Use this run dir instead of a new one; resumes from its newest checkpoint.",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Only write train.log; print the run dir."),
    ) -> None:
        """Train one task in the foreground (no queue); output goes to the terminal and train.log."""
        task_yaml = prepare_manual_run(file, run_dir)
        typer.echo(f"run dir: {task_yaml.parent}")
        code = run_training_process(task_yaml, echo=not quiet)
        if code == 3:
            typer.echo(f"cancelled; run `tunequeue train {file} --run-dir {task_yaml.parent}` to resume")
        raise typer.Exit(code)
