"""Continued pre-training: next-token loss on every token of plain text (packed by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunequeue.train.callbacks import StopRequest
from tunequeue.train.runtime import TrainOutcome
from tunequeue.train.workflows.causal_lm import run_causal_lm


def run_pt(spec: Any, run_dir: Path, stop: StopRequest) -> TrainOutcome:
    """Train `spec` with stage pt in `run_dir`, resuming from its newest checkpoint unless overwriting."""
    return run_causal_lm(spec, run_dir, stop, stage="pt")
