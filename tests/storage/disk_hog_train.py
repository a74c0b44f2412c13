"""Stand-in trainer that needs real disk space: every step appends a metrics line and a 512 KiB block.

Checkpoints are written the way the engine writes them (``.partial-checkpoint-N`` then a rename) and a run
resumes after its newest complete checkpoint. An OSError (ENOSPC on a full disk) ends it with a traceback,
as an unprepared program would, leaving the wrapper to recognise the full disk.
"""

import json
import os
import sys
import time
from pathlib import Path

import yaml

task_file = Path(sys.argv[1])
run_dir = task_file.parent
task = yaml.safe_load(task_file.read_text())
steps = int(task.get("max_samples") or 5)
step_seconds = float(os.environ.get("STAND_IN_STEP_SECONDS", "0.05"))
done = sorted(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*") if (p / "state.json").exists())
first = done[-1] + 1 if done else 1
if done:
    print(f"resuming from checkpoint-{done[-1]}", flush=True)
for step in range(first, steps + 1):
    time.sleep(step_seconds)
    with open(run_dir / "trainer_log.jsonl", "a") as log:
        log.write(json.dumps({"current_steps": step, "total_steps": steps, "loss": 1.0 / step}) + "\n")
    partial = run_dir / f".partial-checkpoint-{step}"
    partial.mkdir(exist_ok=True)
    (partial / "weights.bin").write_bytes(os.urandom(512 * 1024))
    (partial / "state.json").write_text(json.dumps({"step": step}))
    os.replace(partial, run_dir / f"checkpoint-{step}")
print("done", flush=True)
