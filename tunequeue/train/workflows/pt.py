"""Continued pre-training: next-token loss on every token of plain text (packed by default)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tunequeue.train.callbacks import StopRequest
from tunequeue.train.runtime import TrainOutcome
from tunequeue.train.workflows.causal_lm import run_causal_lm

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec


def run_pt(spec: TaskSpec, run_dir: Path, stop: StopRequest) -> TrainOutcome:
    """Train `spec` with stage pt in `run_dir`, resuming from its newest checkpoint unless overwriting."""
    return run_causal_lm(spec, run_dir, stop, stage="pt")
