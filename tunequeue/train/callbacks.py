"""Trainer callbacks: the live metrics file and graceful cancellation.

`TrainerLogCallback` appends one JSON object per logging step to ``trainer_log.jsonl`` in the run dir,
flushed at once, with LLaMA-Factory's keys (current_steps, total_steps, loss, eval_loss, lr, epoch,
percentage, elapsed_time, remaining_time) plus throughput (tokens/s of this process) and total_tokens
(input tokens seen since the run began, surviving resumes). Times are LLaMA-Factory's ``H:MM:SS`` strings;
``elapsed_seconds`` / ``remaining_seconds`` carry the same as numbers. Keys whose value is unknown on a
line (eval_loss on a training line) are left out, as LLaMA-Factory does. It also prints one progress
line per log to stdout for train.log.

`StopRequest` turns SIGTERM (and SIGINT) into a flag; `StopCallback` checks it at every step boundary and
asks the Trainer to save a checkpoint and stop. The workflow then exits with `EXIT_CANCELLED`.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tunequeue.core import private_files

TRAINER_LOG = "trainer_log.jsonl"
EXIT_CANCELLED = 3


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=int(max(seconds, 0))))


class TrainerLogCallback(TrainerCallback):
    """Write ``trainer_log.jsonl`` (one flushed line per log) and print a progress line."""

    def __init__(self, run_dir: Path, *, resuming: bool, echo: bool = True) -> None:
        self.path = Path(run_dir) / TRAINER_LOG
        self.resuming = resuming
        self.echo = echo
        self.start_time = 0.0
        self.start_step = 0
        self.start_tokens = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Remember where this process started; a fresh (non-resumed) run starts a fresh file."""
        self.start_time = time.time()
        self.start_step = state.global_step
        self.start_tokens = state.num_input_tokens_seen
        if state.is_world_process_zero and not self.resuming and self.path.exists():
            self.path.unlink()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Also log the last step, so a run shorter than logging_steps still reports its loss."""
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_log = True
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        """Append one record for this log event (training or evaluation)."""
        if not state.is_world_process_zero or not logs:
            return
        if "train_loss" in logs:  # the summary log at the end; it goes to train_results.json
            return
        record = self.record(state, logs)
        with private_files.open_file(self.path, "a") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self.echo:
            print(self.progress_line(record), flush=True)

    def record(self, state: Any, logs: dict) -> dict[str, Any]:
        """Build one trainer_log.jsonl object from the Trainer's state and a log dict."""
        now = time.time()
        elapsed = now - self.start_time
        steps_done = state.global_step - self.start_step
        total = state.max_steps
        remaining = (total - state.global_step) * elapsed / steps_done if steps_done > 0 else 0.0
        tokens_done = state.num_input_tokens_seen - self.start_tokens
        record: dict[str, Any] = {
            "current_steps": state.global_step,
            "total_steps": total,
            "loss": logs.get("loss"),
            "eval_loss": logs.get("eval_loss"),
            "lr": logs.get("learning_rate"),
            "epoch": round(float(state.epoch or 0.0), 4),
            "percentage": round(100.0 * state.global_step / total, 2) if total else 0.0,
            "elapsed_time": _clock(elapsed),
            "remaining_time": _clock(remaining),
            "elapsed_seconds": round(elapsed, 3),
            "remaining_seconds": round(remaining, 3),
            "throughput": round(tokens_done / elapsed, 2) if elapsed > 0 else 0.0,
            "total_tokens": int(state.num_input_tokens_seen),
            "grad_norm": logs.get("grad_norm"),
            "time": round(now, 3),
        }
        return {
            k: v for k, v in record.items() if v is not None and not (isinstance(v, float) and math.isnan(v))
        }

    @staticmethod
    def progress_line(record: dict[str, Any]) -> str:
        """One human line for train.log / the terminal."""
        parts = [f"step {record['current_steps']}/{record['total_steps']} ({record['percentage']:.0f}%)"]
        if "loss" in record:
            parts.append(f"loss {record['loss']:.4f}")
        if "eval_loss" in record:
            parts.append(f"eval_loss {record['eval_loss']:.4f}")
        if "lr" in record:
            parts.append(f"lr {record['lr']:.2e}")
        parts.append(f"{record['throughput']:.0f} tok/s")
        parts.append(f"elapsed {record['elapsed_time']} remaining {record['remaining_time']}")
        return " | ".join(parts)


class StopRequest:
    """A flag set by SIGTERM/SIGINT; the handler does nothing else (a second SIGINT interrupts at once)."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, Any] = {}

    def install(self) -> StopRequest:
        """Install the handlers for SIGTERM and SIGINT; returns self."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        """Restore the previous handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        print(
            f"{self.signal_name} received: saving a checkpoint at the next step, then stopping",
            file=sys.stderr,
            flush=True,
        )


def _agree_across_ranks(flag: bool) -> bool:
    """In distributed runs every rank must stop at the same step: take the max of the flags."""
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        return flag
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if torch.cuda.is_available()
        else torch.device("cpu")
    )
    tensor = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


class StopCallback(TrainerCallback):
    """Turn a pending `StopRequest` into save-checkpoint-and-stop at the next step boundary."""

    def __init__(self, request: StopRequest) -> None:
        self.request = request
        self.stopped_at_step: int | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Ask the Trainer to save now and end the loop when a stop was requested.

        At the natural end of training no extra checkpoint is written (the final weights are saved
        next); transformers would otherwise store a full checkpoint with optimizer state there.
        """
        if _agree_across_ranks(self.request.requested):
            self.request.requested = True
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at_step = state.global_step
        elif state.global_step >= state.max_steps and state.global_step % max(state.save_steps, 1) != 0:
            control.should_save = False
        return control
