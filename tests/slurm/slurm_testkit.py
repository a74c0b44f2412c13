"""Helpers of the Slurm backend tests: a home driven through the CLI, and polling."""

from __future__ import annotations

from pathlib import Path

from tq_cli_testkit import CliHome, wait_for


class SlurmHome(CliHome):
    """A tunequeue home whose runner submits to the test cluster, with CLI and queue helpers."""

    def task(self, name: str, *, steps: int = 5, **extra) -> Path:
        """Write a valid task file whose stand-in run takes ``steps`` steps."""
        return super().task(name, steps=steps, **extra)

    def start_runner(self, *args: str) -> None:
        """Start the detached runner with the slurm backend."""
        self.cli("runner", "start", "--backend", "slurm", *args, check=True)


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):
    """`wait_for` with the longer timeout and interval that jobs going through Slurm need."""
    return wait_for(predicate, timeout=timeout, interval=interval, what=what)
