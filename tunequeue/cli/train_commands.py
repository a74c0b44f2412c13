"""CLI command `tunequeue train FILE`: train one task in the foreground, without the queue.

It validates the task (any format `validate` reads: our YAML, LLaMA-Factory YAML, Firefly JSON), creates
a run dir ``runs/manual-<timestamp>-<task_name>`` under TUNEQUEUE_HOME (or reuses ``--run-dir``, which
resumes from its newest checkpoint), writes the resolved ``task.yaml`` there and runs
``python -m tunequeue.train RUN_DIR/task.yaml`` — the very process the runner launches — copying its
output to the terminal and to ``train.log``. The exit code is the training process's (0 done, 2 bad
task, 3 cancelled after a checkpoint). A task ``output_dir`` also receives the final weights and results.
"""

from __future__ import annotations

from pathlib import Path

import typer


def prepare_manual_run(task_file: Path, run_dir: Path | None = None) -> Path:
    """Validate `task_file`, create (or reuse) the run dir, write the resolved task.yaml; return its path.

    The file may be our YAML, an LLaMA-Factory YAML or a Firefly JSON, checked by the same preflight as
    `validate` and `submit`; its first error is a one-line `UserError` and nothing is written.
    """
    import time

    import yaml

    from tunequeue.cli.job_commands import check, load_task
    from tunequeue.core import paths

    data, warnings = load_task(task_file)
    report = check(data, str(task_file))
    spec = report.spec
    for warning in [*warnings, *(problem.message("en") for problem in report.warnings)]:
        typer.echo(f"warning: {warning}", err=True)
    if run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = paths.runs_dir() / f"manual-{stamp}-{spec.task_name}"
        suffix = 1
        while run_dir.exists():
            suffix += 1
            run_dir = paths.runs_dir() / f"manual-{stamp}-{spec.task_name}-{suffix}"
    run_dir.mkdir(parents=True, exist_ok=True)
    task_yaml = run_dir / "task.yaml"
    resolved = spec.to_yaml_dict(include_defaults=True)
    task_yaml.write_text(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return task_yaml


def run_training_process(task_yaml: Path, *, echo: bool = True) -> int:
    """Run ``python -m tunequeue.train task_yaml``, teeing its output into train.log; return its exit code.

    Ctrl-C reaches the training process (same process group), which checkpoints and exits with 3; a
    SIGTERM sent to this command is forwarded to it.
    """
    import signal
    import subprocess
    import sys

    log_path = task_yaml.parent / "train.log"
    command = [sys.executable, "-u", "-m", "tunequeue.train", str(task_yaml)]
    with log_path.open("ab") as log:
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
