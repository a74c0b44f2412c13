"""Stand-in for `python -m tunequeue.train TASK_YAML` in runner tests (no torch; fast and deterministic).

It reads the task file the runner wrote, "trains" ``max_samples`` steps of STAND_IN_STEP_SECONDS each,
appends LLaMA-Factory-style lines to trainer_log.jsonl, creates checkpoint-N every ``save_steps``,
resumes after the newest checkpoint like the real engine, exits 3 after a checkpoint on SIGTERM, and
fails with exit code 1 at step 2 when the task name contains "fail".
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
save_every = int(task.get("save_steps") or 2)
step_seconds = float(os.environ.get("STAND_IN_STEP_SECONDS", "0.1"))
stop_requested = False


def on_term(*_):
    global stop_requested
    stop_requested = True


signal.signal(signal.SIGTERM, on_term)
checkpoints = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
first = int(checkpoints[-1].name.split("-")[1]) + 1 if checkpoints else 1
if checkpoints:
    print(f"resuming from {checkpoints[-1].name}", flush=True)
print(f"training {task['task_name']} pid {os.getpid()} steps {first}..{steps}", flush=True)
with open(run_dir / "trainer_log.jsonl", "a") as log:
    for step in range(first, steps + 1):
        time.sleep(step_seconds)
        if "fail" in task["task_name"] and step == 2:
            print("RuntimeError: stand-in failure at step 2", file=sys.stderr, flush=True)
            sys.exit(1)
        row = {
            "current_steps": step,
            "total_steps": steps,
            "loss": round(3.0 / step, 4),
            "lr": 1e-4,
            "epoch": round(step / steps, 3),
            "percentage": round(100.0 * step / steps, 2),
            "elapsed_time": "0:00:01",
            "remaining_time": "0:00:01",
        }
        log.write(json.dumps(row) + "\n")
        log.flush()
        if step % save_every == 0 or stop_requested:
            (run_dir / f"checkpoint-{step}").mkdir(exist_ok=True)
        if stop_requested:
            print(f"SIGTERM: saved checkpoint-{step}, stopping", flush=True)
            sys.exit(3)
(run_dir / "adapter_config.json").write_text("{}")
print("done", flush=True)
