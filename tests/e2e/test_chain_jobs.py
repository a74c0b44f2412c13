"""A chain through the queue and the runner with the real engine: train → predict → export with --after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunequeue.jobqueue import jobs, metrics


def _cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "tunequeue", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"tunequeue {' '.join(args)} → {result.returncode}\n{result.stdout}{result.stderr}"
    )
    return result


def _write(path: Path, **task) -> Path:
    path.write_text(
        yaml.safe_dump({"model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca", **task})
    )
    return path


def _submit(env, path: Path, *args: str) -> dict:
    return json.loads(_cli(env, "submit", str(path), "--json", *args).stdout)[0]


@pytest.mark.slow
def test_train_predict_export_chain_runs_to_the_end(tmp_path, monkeypatch):
    home = tmp_path / "home"
    settings = {
        "TUNEQUEUE_HOME": str(home),
        "TUNEQUEUE_SIMULATED_GPUS": "1x24",
        "TUNEQUEUE_TICK_SECONDS": "0.2",
        "OMP_NUM_THREADS": "1",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TUNEQUEUE_TRAIN_COMMAND", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "TUNEQUEUE_TRAIN_COMMAND"} | settings

    train = _submit(
        env,
        _write(
            tmp_path / "train.yaml",
            task_name="chain-train",
            max_samples=4,
            num_train_epochs=1,
            per_device_train_batch_size=2,
            cutoff_len=64,
            save_steps=1000,
        ),
    )
    adapter = train["run_dir"]
    predict = _submit(
        env,
        _write(
            tmp_path / "predict.yaml",
            task_name="chain-predict",
            adapter_name_or_path=adapter,
            do_train=False,
            do_predict=True,
            predict_with_generate=True,
            max_samples=2,
            max_new_tokens=4,
            extra={"do_sample": False},
        ),
        "--after",
        str(train["id"]),
    )
    exported = tmp_path / "exported"
    export = _submit(
        env,
        _write(
            tmp_path / "export.yaml",
            task_name="chain-export",
            adapter_name_or_path=adapter,
            do_train=False,
            export_dir=str(exported),
        ),
        "--after",
        str(predict["id"]),
    )
    assert [train["kind"], predict["kind"], export["kind"]] == ["train", "predict", "export"]
    try:
        _cli(env, "runner", "start")
        waited = subprocess.run(
            [sys.executable, "-m", "tunequeue", "wait", str(export["id"])],
            env=env,
            capture_output=True,
            text=True,
            timeout=420,
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "tunequeue", "runner", "stop"], env=env, capture_output=True, timeout=60
        )
    from tunequeue.jobqueue.db import open_db

    db = open_db(home / "queue.db")
    states = {job.id: (job.kind, job.state.value, job.reason) for job in jobs.list_jobs(db)}
    logs = {
        job.id: (Path(job.run_dir) / "train.log").read_text(errors="replace")[-1500:]
        for job in jobs.list_jobs(db)
        if (Path(job.run_dir) / "train.log").exists()
    }
    assert waited.returncode == 0, f"{states}\n{logs}"
    assert all(state == "succeeded" for _kind, state, _reason in states.values()), states
    assert (Path(adapter) / "adapter_model.safetensors").is_file()
    predict_dir = Path(predict["run_dir"])
    assert len((predict_dir / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()) == 2
    assert "predict_rouge-l" in json.loads((predict_dir / "predict_results.json").read_text())
    assert (exported / "model.safetensors").is_file() and (exported / "tokenizer.json").is_file()
    assert metrics.get_metrics(db, predict["id"])[-1]["percentage"] == 100.0
    shown = _cli(env, "ls", "--json").stdout
    assert {row["kind"] for row in json.loads(shown)} == {"train", "predict", "export"}
