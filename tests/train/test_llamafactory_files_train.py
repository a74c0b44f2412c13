"""LLaMA-Factory's example YAMLs train unchanged on the tiny model (results land in their output_dir),
and its dataset_info.json sources load: tool-call data, local script_url folders, txt files, num_samples."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tq_train_helpers import read_log, run_in_process, write_task

from tunequeue.core.errors import UserError
from tunequeue.train.data import load_examples, prepare_datasets
from tunequeue.train.templates import get_template

LF = Path(__file__).resolve().parents[1] / "fixtures" / "llamafactory"
DATA = LF / "data"


@pytest.fixture
def lf_folder(tmp_path, monkeypatch):
    """A copy of the fixture folder to run in (LLaMA-Factory writes saves/ next to data/)."""
    folder = tmp_path / "LLaMA-Factory"
    shutil.copytree(LF, folder)
    monkeypatch.chdir(folder)
    return folder


def test_lora_sft_example_trains_through_the_cli(lf_folder):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "tunequeue", "train", "-q", "examples/train_lora/llama3_lora_sft.yaml"],
        cwd=lf_folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = Path(done.stdout.split("run dir: ", 1)[1].splitlines()[0])
    output_dir = lf_folder / "saves/llama3-8b/lora/sft"
    for folder in (run_dir, output_dir):
        assert (folder / "adapter_model.safetensors").is_file()
        assert read_log(folder)[-1]["current_steps"] == 21  # 54 rows, batch 1 x 8, 3 epochs
    assert not (output_dir / "task.yaml").exists() and (run_dir / "task.yaml").is_file()
    assert (output_dir / "adapter_model.safetensors").read_bytes() == (
        run_dir / "adapter_model.safetensors"
    ).read_bytes()


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("extras/dft/qwen2_full_sft.yaml", "model.safetensors"),
        ("extras/oft/llama3_oft_sft.yaml", "adapter_model.safetensors"),
    ],
)
def test_method_examples_train_unchanged(lf_folder, name, weights):
    from tunequeue.cli.train_commands import prepare_manual_run

    task_yaml = prepare_manual_run(Path("examples") / name)
    assert run_in_process(task_yaml) == 0
    import yaml

    output_dir = Path(yaml.safe_load(task_yaml.read_text())["output_dir"])
    assert output_dir.is_relative_to(lf_folder)
    assert (output_dir / weights).is_file()
    assert read_log(output_dir)[-1]["current_steps"] == 21


def test_tool_call_data_trains_with_tool_slots(tmp_path, tiny_tokenizer):
    spec = {"dataset": "glaive_toolcall_en_demo", "dataset_dir": str(DATA), "cutoff_len": 512}
    examples = load_examples(spec, spec["dataset"], "sft")
    roles = [message["role"] for message in examples[0]["messages"]]
    assert roles == ["user", "function", "observation", "assistant"]
    assert json.loads(examples[0]["tools"])[0]["name"] == "get_weather"

    data = prepare_datasets(spec, tiny_tokenizer, get_template("qwen", tiny_tokenizer), stage="sft")
    row = data.train[0]
    text = tiny_tokenizer.decode(row["input_ids"])
    pairs = zip(row["input_ids"], row["labels"], strict=True)
    trained = tiny_tokenizer.decode([token for token, label in pairs if label != -100])
    assert '"name": "get_weather"' in text.split("<|im_start|>user")[0]  # tools in the system prompt
    assert "<tool_call>" in trained and "<tool_response>" not in trained  # call trained, result not

    run_dir = tmp_path / "tools"
    task = write_task(
        run_dir,
        dataset="glaive_toolcall_en_demo",
        dataset_dir=str(DATA),
        template="qwen",
        num_train_epochs=1,
        max_samples=None,
        cutoff_len=512,
    )
    assert run_in_process(task) == 0
    assert read_log(run_dir)[-1]["current_steps"] == 6  # 12 rows, batch 2


def _info(folder: Path, entries: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset_info.json").write_text(json.dumps(entries), encoding="utf-8")


def test_script_url_folder_txt_files_and_num_samples(tmp_path):
    data = tmp_path / "data"
    (data / "local_set" / "sub").mkdir(parents=True)
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(10)]
    (data / "local_set" / "sub" / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    shutil.copy(DATA / "wiki_demo.txt", data / "wiki_demo.txt")
    _info(
        data,
        {
            "scripted": {"script_url": "local_set", "folder": "sub"},
            "wiki": {"file_name": "wiki_demo.txt", "columns": {"prompt": "text"}},
            "fewer": {"script_url": "local_set", "folder": "sub", "num_samples": 4},
            "more": {"script_url": "local_set", "folder": "sub", "num_samples": 15},
            "missing": {"script_url": "not_here"},
        },
    )
    spec = {"dataset_dir": str(data), "seed": 3}
    scripted = load_examples(spec, "scripted", "sft")
    assert [e["messages"][0]["content"] for e in scripted] == [f"q{i}" for i in range(10)]
    wiki = load_examples(spec, "wiki", "pt")
    assert len(wiki) == 30 and wiki[0]["messages"][0]["content"].startswith("Entry 1.")
    fewer = load_examples(spec, "fewer", "sft")
    assert len(fewer) == 4 and len({e["messages"][0]["content"] for e in fewer}) == 4
    more = load_examples(spec, "more", "sft")
    assert len(more) == 15 and {e["messages"][0]["content"] for e in more} == {f"q{i}" for i in range(10)}
    with pytest.raises(UserError, match="script_url not_here, which is not a folder"):
        load_examples(spec, "missing", "sft")
