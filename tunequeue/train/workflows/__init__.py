"""One straight-line workflow per training stage: load → template → data → model → trainer → train → save."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tunequeue.core.errors import UserError


def get_workflow(stage: str) -> Callable[..., Any]:
    """The workflow function of `stage` (`workflow(spec, run_dir, stop) -> TrainOutcome`)."""
    if stage == "sft":
        from tunequeue.train.workflows.sft import run_sft

        return run_sft
    if stage == "pt":
        from tunequeue.train.workflows.pt import run_pt

        return run_pt
    raise UserError(f"stage {stage} is not available in this version; use stage sft or pt")
