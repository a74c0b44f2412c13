"""Regenerate tests/fixtures/tui/{trainer_log.jsonl,train.log} from a real tiny training run.

The TUI snapshot tests need metrics that never change, so they read the files of one real run of the
bundled tiny model (LoRA SFT on demo_alpaca, CPU, ~40 steps) committed under tests/fixtures/tui/.
Run: ``.venv/bin/python scripts/tui_fixture.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TASK = """\
task_name: tui-fixture
model_name_or_path: tunequeue/tiny-llama
stage: sft
finetuning_type: lora
template: qwen
dataset: demo_alpaca
cutoff_len: 128
per_device_train_batch_size: 4
gradient_accumulation_steps: 1
learning_rate: 0.002
num_train_epochs: 1
max_samples: 176
val_size: 16
eval_steps: 10
logging_steps: 2
save_steps: 20
lora_rank: 8
lora_target: all
seed: 7
"""


def main() -> int:
    """Train once into a temp run dir and copy its trainer_log.jsonl and train.log into the fixtures."""
    target = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tui"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "runs" / "1-tui-fixture"
        run_dir.mkdir(parents=True)
        (run_dir / "task.yaml").write_text(TASK)
        env = dict(os.environ, TUNEQUEUE_HOME=tmp, CUDA_VISIBLE_DEVICES="")
        with (run_dir / "train.log").open("wb") as log:
            code = subprocess.call(
                [sys.executable, "-m", "tunequeue.train", str(run_dir / "task.yaml")],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp,
            )
        if code != 0:
            print((run_dir / "train.log").read_text()[-2000:], file=sys.stderr)
            return code
        shutil.copy(run_dir / "trainer_log.jsonl", target / "trainer_log.jsonl")
        text = (run_dir / "train.log").read_text(errors="replace").replace(tmp, "/home/user/.tunequeue")
        text = text.replace(str(Path(sys.prefix).parent), "/opt/tunequeue")
        (target / "train.log").write_text(text)
    print(f"wrote {target / 'trainer_log.jsonl'} and {target / 'train.log'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
