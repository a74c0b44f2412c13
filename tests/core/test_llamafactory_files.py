"""LLaMA-Factory's own files, unchanged: its data/dataset_info.json is read whole, and its example
training YAMLs (model path pointed at the tiny model) validate and submit, or are refused in one line
naming the switch tunequeue cannot honour here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from tunequeue.cli import main
from tunequeue.core.dataset_info import read_dataset_info
from tunequeue.jobqueue import jobs
from tunequeue.jobqueue.db import open_db

LF = Path(__file__).resolve().parents[1] / "fixtures" / "llamafactory"
EXAMPLES = sorted(path.relative_to(LF / "examples").as_posix() for path in (LF / "examples").rglob("*.yaml"))

# Examples refused here, with the words of their one-line error (an optional package only when absent).
REFUSED = {
    "extras/mod/llama3_full_sft.yaml": "mixture_of_depths",
    **(
        {}
        if importlib.util.find_spec("deepspeed")
        else {"train_full/llama3_full_sft.yaml": "pip install deepspeed"}
    ),
    **(
        {}
        if importlib.util.find_spec("adam_mini")
        else {"extras/adam_mini/qwen2_full_sft.yaml": "pip install adam-mini"}
    ),
}


@pytest.fixture(autouse=True)
def _in_fixture_folder(tmp_path, monkeypatch):
    """Run where LLaMA-Factory users run: the folder holding data/ (its default dataset_dir)."""
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "1x80")
    monkeypatch.chdir(LF)


def test_dataset_info_is_read_whole():
    raw = json.loads((LF / "data" / "dataset_info.json").read_text(encoding="utf-8"))
    info = read_dataset_info(LF / "data")
    assert set(info) == set(raw) and len(info) > 100
    assert info["alpaca_en"].source == "hf_hub_url"  # hf wins over ms and om, as in LLaMA-Factory
    assert info["deepctrl"].source == "ms_hub_url"
    assert info["glaive_toolcall_en_demo"].column("tools") == "tools"
    assert info["dpo_mix_en"].subset == "en" and info["dpo_mix_en"].ranking
    assert info["adgen_eval"].split == "validation"
    assert info["starcoder_python"].folder == "python"
    assert info["kto_en_demo"].kto_tag == "label"
    assert info["wiki_demo"].path == LF / "data" / "wiki_demo.txt"


def test_every_example_is_covered():
    assert len(EXAMPLES) >= 12
    assert set(REFUSED) <= set(EXAMPLES) and "extras/mod/llama3_full_sft.yaml" in REFUSED


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_validates_unchanged_or_is_refused_in_one_line(name, capsys):
    code = main(["validate", f"examples/{name}"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if name in REFUSED:
        assert code == 2
        errors = out.split("Errors:", 1)[1].splitlines()
        problems = [line for line in errors if line.startswith("  - ")]
        assert len(problems) == 1 and REFUSED[name] in problems[0], out
    else:
        assert code == 0, out
        assert "kept but not used" not in out + err, out


def test_submit_takes_an_lf_file_with_its_output_dir(capsys):
    code = main(["submit", "examples/train_lora/llama3_lora_sft.yaml"])
    out, err = capsys.readouterr()
    assert code == 0, err
    job = jobs.list_jobs(open_db())[0]
    task = yaml.safe_load(job.task_yaml)
    assert task["task_name"] == "sft"  # from output_dir saves/llama3-8b/lora/sft, as `import` names it
    assert task["output_dir"] == str(LF / "saves/llama3-8b/lora/sft")  # where the user ran submit
    assert task["dataset_dir"] == str(LF / "data")
    assert task["extra"]["trust_remote_code"] is True
    assert job.run_dir and Path(job.run_dir).name.endswith("-sft")
