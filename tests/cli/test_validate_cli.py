"""`tunequeue validate FILE`, and import hygiene of the CLI and core modules."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tunequeue.cli import main
from tunequeue.core.paths import DATA_DIR

GOOD = """\
task_name: demo
model_name_or_path: tunequeue/tiny-llama
dataset: demo_alpaca
lora_rank: 16
"""


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TUNEQUEUE_LANG", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


def _write(tmp_path, text, name="task.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_valid_task(tmp_path, capsys):
    assert main(["validate", _write(tmp_path, GOOD)]) == 0
    out = capsys.readouterr().out
    assert "task_name: demo" in out and "lora_rank: 16" in out
    assert "OK: the task is valid." in out


def test_warnings_are_shown_and_allowed(tmp_path, capsys):
    assert main(["validate", _write(tmp_path, GOOD + "learning_rate: 0.005\n")]) == 0
    out = capsys.readouterr().out
    assert "Warnings:" in out and "learning_rate 0.005 is outside the recommended" in out


def test_errors_exit_2(tmp_path, capsys):
    path = _write(tmp_path, GOOD + "learning_rate: 0.5\nfinetuning_type: full\nquantization_bit: 4\n")
    assert main(["validate", path]) == 2
    captured = capsys.readouterr()
    assert "Errors:" in captured.out
    assert "learning_rate must be a number > 0 and ≤ 0.01; got 0.5" in captured.out
    assert "quantization_bit needs finetuning_type lora" in captured.out
    assert "2 error(s)" in captured.err


def test_json_and_chinese(tmp_path, capsys):
    path = _write(tmp_path, GOOD + "do_eval: true\n")
    assert main(["validate", path, "--json", "--lang", "zh"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["task"] is None
    assert data["errors"][0]["key"] == "do_eval" and "验证数据" in data["errors"][0]["message"]
    assert main(["validate", _write(tmp_path, GOOD, "ok.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["task"]["lora_rank"] == 16


def test_cutoff_beyond_model_context_warns(tmp_path, capsys):
    # The bundled tiny model has 2048 positions when present; without it the check is skipped.
    from tunequeue.core.paths import DATA_DIR

    assert main(["validate", _write(tmp_path, GOOD + "cutoff_len: 8192\n")]) == 0
    out = capsys.readouterr().out
    if (DATA_DIR / "tiny-llama" / "config.json").is_file():
        assert "above the model's" in out
        assert "estimated peak VRAM per GPU" in out


def test_missing_chat_template_warns_until_template_is_set(tmp_path, capsys):
    model = tmp_path / "plain-model"
    model.mkdir()
    (model / "tokenizer_config.json").write_text('{"eos_token": "</s>"}', encoding="utf-8")
    shutil.copy(DATA_DIR / "tiny-llama" / "config.json", model / "config.json")
    task = GOOD.replace("tunequeue/tiny-llama", str(model))
    assert main(["validate", _write(tmp_path, task)]) == 0
    out = capsys.readouterr().out
    assert f"the tokenizer in {model} has no chat template" in out and "set template" in out
    assert main(["validate", _write(tmp_path, task), "--json", "--lang", "zh"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert any(w["key"] == "template" and "对话模板" in w["message"] for w in warnings)

    assert main(["validate", _write(tmp_path, task + "template: llama3\n")]) == 0
    assert "chat template" not in capsys.readouterr().out
    (model / "chat_template.jinja").write_text("{{ messages }}", encoding="utf-8")
    assert main(["validate", _write(tmp_path, task)]) == 0
    assert "chat template" not in capsys.readouterr().out
    assert main(["validate", _write(tmp_path, GOOD)]) == 0  # the bundled tiny model has one
    assert "chat template" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("a: [1\nb: 2\n", "line 2"),
        ("- just\n- a list\n", "mapping"),
        ("task_name: demo\nlearnig_rate: 0.1\n", "did you mean 'learning_rate'"),
    ],
)
def test_bad_files_are_one_line(tmp_path, capsys, content, fragment):
    assert main(["validate", _write(tmp_path, content)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and fragment in err and "\n" not in err


def test_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "no task file at" in capsys.readouterr().err


def test_dataset_must_exist_and_fit_the_stage(tmp_path, capsys):
    from tunequeue.core.compat import read_dataset_info

    try:
        bundled = read_dataset_info(None)
    except Exception:  # noqa: BLE001 — demo datasets not built yet
        pytest.skip("bundled demo datasets are not available")
    path = _write(tmp_path, GOOD.replace("demo_alpaca", "demo_alpacaa"))
    assert main(["validate", path]) == 2
    assert "dataset 'demo_alpacaa'" in capsys.readouterr().out
    if "demo_pairwise" in bundled:
        path = _write(tmp_path, GOOD.replace("demo_alpaca", "demo_pairwise"), "pairs.yaml")
        assert main(["validate", path]) == 2
        assert "rm or dpo" in capsys.readouterr().out
        path = _write(tmp_path, GOOD.replace("demo_alpaca", "demo_pairwise") + "stage: dpo\n", "dpo.yaml")
        assert main(["validate", path]) == 0


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    env_home = tmp_path / "home"
    path = _write(tmp_path, "task_name: Bad_Name\nmodel_name_or_path: m\ndataset: d\n")
    done = subprocess.run(
        [sys.executable, "-m", "tunequeue", "validate", path],
        capture_output=True,
        text=True,
        env={"TUNEQUEUE_HOME": str(env_home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    assert "task_name must be 1–63 lowercase letters" in done.stdout


def test_import_hygiene():
    code = (
        "import sys, tunequeue.cli, tunequeue.core, tunequeue.core.spec, tunequeue.core.rules, "
        "tunequeue.core.i18n; heavy = ('torch', 'transformers', 'textual', 'peft', 'datasets'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_shipped_tiny_example_is_valid(monkeypatch, tmp_path):
    """The README's example task validates with no error."""
    from pathlib import Path

    from tunequeue.cli import main

    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    example = Path(__file__).resolve().parents[2] / "examples" / "tiny-lora-sft.yaml"
    assert main(["validate", str(example)]) == 0
