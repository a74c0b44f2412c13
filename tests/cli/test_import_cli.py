"""`tunequeue import FILE`: LLaMA-Factory YAML and Firefly JSON to our YAML, warnings on stderr."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunequeue.cli import main
from tunequeue.core.compat import load_task_file, read_dataset_info
from tunequeue.core.rules import check_task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_lf_to_stdout(capsys):
    code, out, err = run(capsys, "import", str(FIXTURES / "lf" / "llama3_lora_sft.yaml"))
    assert code == 0, err
    task = yaml.safe_load(out)
    assert task["task_name"] == "sft" and task["compute_type"] == "bf16"
    assert task["extra"]["trust_remote_code"] is True
    assert "kept but not used" not in err  # every extra key of this file is honoured
    assert check_task(task).errors == []


def test_import_lf_format_round_trips_to_lf(capsys):
    code, out, _ = run(capsys, "import", str(FIXTURES / "lf" / "llama3_lora_dpo.yaml"), "--format", "lf")
    assert code == 0
    lf = yaml.safe_load(out)
    original = yaml.safe_load((FIXTURES / "lf" / "llama3_lora_dpo.yaml").read_text())
    for key, value in original.items():
        assert lf[key] == value, key
    assert "task_name" not in lf and "compute_type" not in lf


def test_import_to_file_then_validate(capsys, tmp_path):
    out_file = tmp_path / "out" / "ppo.yaml"
    code, out, err = run(capsys, "import", str(FIXTURES / "lf" / "llama3_lora_ppo.yaml"), "-o", str(out_file))
    assert code == 0, err
    assert out == "" and f"wrote {out_file}" in err
    values, warnings = load_task_file(out_file)
    assert warnings == []
    spec = check_task(values).spec
    assert spec.stage == "ppo" and spec.reward_model == "saves/llama3-8b/lora/reward"
    assert spec.extra["top_k"] == 0


def test_import_firefly_registers_dataset(capsys, tmp_path):
    config_dir = tmp_path / "firefly"
    shutil.copytree(FIXTURES / "firefly", config_dir)
    out_file = tmp_path / "tasks" / "qlora.yaml"
    code, _, err = run(capsys, "import", str(config_dir / "qwen1.5-7b-sft-qlora.json"), "-o", str(out_file))
    assert code == 0, err
    task = yaml.safe_load(out_file.read_text())
    assert task["finetuning_type"] == "lora" and task["quantization_bit"] == 4
    assert task["template"] == "qwen" and task["cutoff_len"] == 1024
    assert task["dataset"] == "dummy_data"
    assert task["dataset_dir"] == str(out_file.parent.resolve())
    info = read_dataset_info(task["dataset_dir"])
    assert info["dummy_data"].path.is_file()
    assert "registered dataset dummy_data" in err
    raw = json.loads((out_file.parent / "dataset_info.json").read_text())
    assert raw["dummy_data"]["formatting"] == "sharegpt"


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("model_name_or_path: /m\ndataset: d\nlearnig_rate: 1.0e-4\n", ".yaml", "did you mean"),
        ("model_name_or_path: /m\n  bad: [\n", ".yaml", "not valid YAML"),
        ('{"train_mode": "lora", "model_name_or_path": "/m"}', ".json", "names no training data"),
        ('{"train_mode": "qqlora", "train_file": "x.jsonl", "model_name_or_path": "/m"}', ".json", "qlora"),
        ("model_name_or_path: /m\ndataset: d\nlearning_rate: 0.5\n", ".yaml", "learning_rate"),
    ],
)
def test_import_errors_one_line(capsys, tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    code, out, err = run(capsys, "import", str(path))
    assert code == 2 and message in err
    assert err.startswith("error: ") and "Traceback" not in err


def test_unknown_key_error_text_through_a_real_process(tmp_path, home):
    path = tmp_path / "typo.yaml"
    path.write_text("model_name_or_path: /m\ndataset: d\nlearnig_rate: 1.0e-4\n")
    done = subprocess.run(
        [sys.executable, "-m", "tunequeue", "import", str(path)],
        capture_output=True, text=True, env={"TUNEQUEUE_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    expected = f"error: unknown key 'learnig_rate' in {path}; did you mean 'learning_rate'?"
    assert done.stderr.strip() == expected
