"""Stand-in for `python -m tunequeue.train TASK_YAML` inside Slurm jobs (no torch; a few seconds).

Logs the CUDA_VISIBLE_DEVICES Slurm gave it and its start and end times to train.log, appends
LLaMA-Factory-style rows to trainer_log.jsonl (``max_samples`` steps of STAND_IN_STEP_SECONDS), exits 3
on SIGTERM like the real engine, and exits 1 at step 2 when the task name contains "fail".
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml

task_file = Path(sys.argv[1])
run_dir = task_file.parent
task = yaml.safe_load(task_file.read_text())
steps = int(task.get("max_samples") or 5)
step_seconds = float(os.environ.get("STAND_IN_STEP_SECONDS", "0.2"))
stop_requested = False


def on_term(*_):
    global stop_requested
    stop_requested = True


signal.signal(signal.SIGTERM, on_term)
cvd = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
print(f"STAND-IN start={time.time():.3f} cvd={cvd} slurm_job={os.environ.get('SLURM_JOB_ID')}", flush=True)
with open(run_dir / "trainer_log.jsonl", "a") as log:
    for step in range(1, steps + 1):
        time.sleep(step_seconds)
        if "fail" in task["task_name"] and step == 2:
            print("RuntimeError: stand-in failure at step 2", file=sys.stderr, flush=True)
            sys.exit(1)
        row = {"current_steps": step, "total_steps": steps, "loss": round(3.0 / step, 4),
               "percentage": round(100.0 * step / steps, 2)}
        log.write(json.dumps(row) + "\n")
        log.flush()
        if stop_requested:
            print(f"SIGTERM at step {step}, stopping", flush=True)
            sys.exit(3)
print(f"STAND-IN end={time.time():.3f}", flush=True)
