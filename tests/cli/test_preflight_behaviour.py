"""What the preflight computes and where files go: total steps from local data, step warnings, the
per-stage learning-rate range, Firefly JSON validated and submitted directly (its data registered in
the job's own folder, never in the package), `import` without -o writing nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from tunequeue.cli import main
from tunequeue.core.paths import DATA_DIR
from tunequeue.core.rules import check_task, recommended_learning_rate_range, suggested_learning_rate
from tunequeue.core.validate import preflight

TASK = {"task_name": "steps", "model_name_or_path": "tunequeue/tiny-llama"}
ROWS = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(40)]


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TUNEQUEUE_SIMULATED_GPUS", raising=False)
    return tmp_path / "home"


def _local_data(folder: Path) -> str:
    data = folder / "data"
    data.mkdir()
    (data / "rows.json").write_text(json.dumps(ROWS), encoding="utf-8")
    (data / "dataset_info.json").write_text(
        json.dumps({"mine": {"file_name": "rows.json"}}), encoding="utf-8"
    )
    return str(data)


def test_local_samples_give_total_steps_and_step_warnings(tmp_path):
    task = {
        **TASK,
        "dataset": "mine",
        "dataset_dir": _local_data(tmp_path),
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "num_train_epochs": 2.0,
        "save_steps": 20,
        "warmup_steps": 30,
        "eval_steps": 25,
        "val_size": 0.1,
        "eval_strategy": "steps",
    }
    checked = preflight(task)
    assert checked.report.errors == []
    assert checked.num_examples == 40
    assert checked.total_steps == 18  # 36 after val_size → 18 batches → 9 updates × 2 epochs
    warned = {p.key for p in checked.report.warnings}
    assert {"save_steps", "warmup_steps", "eval_steps"} <= warned
    checked = preflight({**task, "save_steps": 5, "warmup_steps": 2, "eval_steps": 5})
    assert not {"save_steps", "warmup_steps", "eval_steps"} & {p.key for p in checked.report.warnings}
    limited = preflight({**task, "max_samples": 10, "save_steps": 5, "warmup_steps": 0, "eval_steps": 5})
    assert limited.num_examples == 10


@pytest.mark.parametrize("method", ["lora", "freeze", "full"])
@pytest.mark.parametrize("stage", ["pt", "sft", "rm", "dpo", "kto", "ppo"])
def test_the_suggested_learning_rate_is_inside_the_recommended_range(method, stage):
    low, high = recommended_learning_rate_range(method, stage)
    suggested = suggested_learning_rate(method, stage)
    assert low <= suggested <= high
    report = check_task(
        {
            **TASK,
            "dataset": "demo_alpaca",
            "stage": stage,
            "finetuning_type": method,
            "learning_rate": suggested,
            "reward_model": "/x",
        }
    )
    assert "learning_rate" not in {p.key for p in report.warnings}


def test_dpo_learning_rate_far_off_still_warns():
    report = check_task({**TASK, "dataset": "demo_dpo", "stage": "dpo", "learning_rate": 1e-3})
    assert "learning_rate" in {p.key for p in report.warnings}


def _firefly(folder: Path) -> Path:
    rows = "".join(
        json.dumps({"conversation": [{"human": f"hi {i}", "assistant": f"yo {i}"}]}) + "\n" for i in range(6)
    )
    (folder / "train.jsonl").write_text(rows, encoding="utf-8")
    config = {
        "output_dir": "output/ff-run",
        "model_name_or_path": "tunequeue/tiny-llama",
        "train_file": str(folder / "train.jsonl"),
        "train_mode": "lora",
        "max_seq_length": 64,
        "save_steps": 2,
    }
    path = folder / "ff.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def test_firefly_json_is_validated_and_submitted_directly(tmp_path, home, capsys):
    path = _firefly(tmp_path)
    assert main(["validate", str(path)]) == 0, capsys.readouterr()
    assert main(["submit", str(path), "--hold"]) == 0, capsys.readouterr()
    assert not (tmp_path / "dataset_info.json").exists()
    assert "train" not in json.loads(
        (DATA_DIR / "datasets" / "dataset_info.json").read_text(encoding="utf-8")
    )
    with sqlite3.connect(home / "queue.db") as conn:
        [(task_yaml,)] = conn.execute("SELECT task_yaml FROM jobs").fetchall()
    dataset_dir = Path(yaml.safe_load(task_yaml)["dataset_dir"])
    assert dataset_dir.is_relative_to(home)
    info = json.loads((dataset_dir / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["train"]["file_name"] == str(tmp_path / "train.jsonl")


def test_import_without_output_prints_and_writes_nothing(tmp_path, capsys):
    path = _firefly(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["import", str(path)]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["dataset"] == "train"
    assert "not registered" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_train_accepts_what_validate_accepts_for_an_llamafactory_yaml(tmp_path, home, capsys):
    from tunequeue.cli.train_commands import prepare_manual_run

    lf = tmp_path / "lf.yaml"
    lf.write_text(
        "model_name_or_path: tunequeue/tiny-llama\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
        f"dataset: demo_alpaca\ndataset_dir: {DATA_DIR / 'datasets'}\nsave_strategy: steps\n"
        "save_only_model: false\noutput_dir: saves/x\n",
        encoding="utf-8",
    )
    assert main(["validate", str(lf)]) == 0
    task_yaml = prepare_manual_run(lf)
    written = yaml.safe_load(task_yaml.read_text(encoding="utf-8"))
    assert written["extra"]["save_strategy"] == "steps"


def test_hub_models_resolve_through_the_local_cache(tmp_path, monkeypatch):
    from tunequeue.core.models import model_problems, resolve_model_path

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))  # read at each lookup, not once at import
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    errors, warnings, _ = model_problems("some-org/not-cached")
    assert errors == [] and "downloaded when the job starts" in warnings[0]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    errors, warnings, _ = model_problems("some-org/not-cached")
    assert "HF_HUB_OFFLINE=1" in errors[0] and warnings == []

    snapshot = cache / "models--some-org--cached" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(
        (DATA_DIR / "tiny-llama" / "config.json").read_text(encoding="utf-8")
    )
    (cache / "models--some-org--cached" / "refs").mkdir()
    (cache / "models--some-org--cached" / "refs" / "main").write_text("abc123")
    errors, warnings, config = model_problems("some-org/cached")
    assert errors == [] and warnings == [] and config["num_hidden_layers"] > 0
    assert resolve_model_path("some-org/cached") == str(snapshot)


def test_a_refused_firefly_submit_leaves_no_registered_dataset(tmp_path, home, capsys):
    path = _firefly(tmp_path)
    config = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**config, "learning_rate": True}), encoding="utf-8")
    assert main(["submit", str(path), "--hold"]) == 2
    assert "learning_rate must be a number" in capsys.readouterr().err
    datasets = home / "datasets"
    assert not datasets.exists() or not any(datasets.iterdir())


def test_an_unknown_template_names_the_closest_from_the_engine_registry(tmp_path, capsys):
    path = tmp_path / "task.yaml"
    path.write_text(
        yaml.safe_dump({**TASK, "dataset": "demo_alpaca", "template": "llama33"}), encoding="utf-8"
    )
    assert main(["submit", str(path), "--hold"]) == 2
    err = capsys.readouterr().err
    assert "template 'llama33' is unknown; use 'llama3'" in err


def test_the_template_registry_is_read_without_torch():
    import subprocess
    import sys

    code = (
        "import sys; from tunequeue.core.validate import engine_template_names; "
        "names = engine_template_names(); print('llama3' in names, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]


def test_relative_paths_are_stored_absolute_so_the_run_dir_sees_the_same_files(tmp_path, home, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(DATA_DIR / "datasets", tmp_path / "data")
    shutil.copytree(DATA_DIR / "tiny-llama", tmp_path / "model")
    task = {**TASK, "model_name_or_path": "./model", "dataset": "demo_alpaca", "dataset_dir": "data"}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task), encoding="utf-8")
    assert main(["submit", "task.yaml", "--hold"]) == 0
    with sqlite3.connect(home / "queue.db") as conn:
        [(task_yaml,)] = conn.execute("SELECT task_yaml FROM jobs").fetchall()
    stored = yaml.safe_load(task_yaml)
    assert stored["dataset_dir"] == str(tmp_path / "data")
    assert stored["model_name_or_path"] == str(tmp_path / "model")
