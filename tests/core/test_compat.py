"""Import of LLaMA-Factory YAML and Firefly JSON, our YAML round trip, dataset_info.json reading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tunequeue.core.compat import (
    dataset_entries,
    dump_task_yaml,
    load_task,
    load_task_file,
    read_dataset_info,
    register_datasets,
    sanitize_name,
)
from tunequeue.core.errors import UserError
from tunequeue.core.rules import check_task
from tunequeue.core.spec import TaskSpec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LF = FIXTURES / "lf"
FIREFLY = FIXTURES / "firefly"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))


@pytest.mark.parametrize(
    ("name", "stage"),
    [
        ("llama3_lora_sft.yaml", "sft"),
        ("llama3_lora_dpo.yaml", "dpo"),
        ("llama3_lora_kto.yaml", "kto"),
        ("llama3_lora_reward.yaml", "rm"),
        ("llama3_lora_ppo.yaml", "ppo"),
        ("llama3_lora_pretrain.yaml", "pt"),
        ("llama3_lora_predict.yaml", "sft"),
        ("llama3_qlora_sft_bnb.yaml", "sft"),
    ],
)
def test_llamafactory_examples_import_without_errors(name, stage):
    values, warnings = load_task_file(LF / name)
    report = check_task(values)
    assert report.errors == [], [p.message() for p in report.errors]
    spec = report.spec
    assert spec.stage == stage
    assert spec.model_name_or_path.startswith("meta-llama/")
    # the task name comes from output_dir's last part
    assert spec.task_name == sanitize_name(Path(yaml.safe_load((LF / name).read_text())["output_dir"]).name)
    assert all(isinstance(w, str) and w for w in warnings)


def test_lf_mapping_details():
    values, warnings = load_task_file(LF / "llama3_lora_sft.yaml")
    spec = check_task(values).spec
    assert spec.compute_type == "bf16"
    assert spec.learning_rate == pytest.approx(1e-4)
    assert spec.lora_rank == 8
    assert spec.lora_alpha == 16  # LF default: 2 x lora_rank
    assert spec.lora_dropout == 0.0  # LF default, not ours (0.1)
    assert spec.optim == "adamw_torch_fused"  # Transformers 5 default
    assert spec.do_train is True
    # no task key of ours, but honoured from extra (Trainer arguments, trust_remote_code): no warning
    assert spec.extra == {
        "trust_remote_code": True,
        "dataloader_num_workers": 4,
        "save_only_model": False,
        "resume_from_checkpoint": None,
    }
    assert not [w for w in warnings if w.startswith("kept but not used")]
    # exported to LF YAML again: flags back, extra keys at top level, tq keys gone
    lf = yaml.safe_load(dump_task_yaml(spec, lf_only=True))
    assert lf["bf16"] is True and "compute_type" not in lf and "task_name" not in lf
    assert lf["trust_remote_code"] is True and lf["dataloader_num_workers"] == 4


def test_lf_aliases_and_boosters():
    values, warnings = load_task_file(LF / "llama3_qlora_sft_bnb.yaml")
    spec = check_task(values).spec
    assert spec.quantization_method == "bnb"
    assert spec.quantization_bit == 4
    assert spec.optim == "adamw_torch"
    assert any("adamw_hf" in w for w in warnings)
    assert spec.flash_attn == "fa2" and spec.booster == "flashattn2"
    assert spec.task_name == "qlora-sft"  # "QLoRA SFT" sanitised


def test_lf_deepspeed_is_refused_without_the_package():
    values, warnings = load_task_file(LF / "llama3_full_sft.yaml")
    # relative to the current directory, as LLaMA-Factory reads it
    assert values["extra"]["deepspeed"] == str(Path.cwd() / "examples/deepspeed/ds_z3_config.json")
    assert not [w for w in warnings if "deepspeed" in w]  # used, so not "kept but not used"
    report = check_task(values)
    assert [p.message() for p in report.errors] == [
        "deepspeed needs the optional package deepspeed, which is not installed; "
        "pip install deepspeed or remove deepspeed"
    ]


def test_lf_predict_without_dataset_uses_eval_dataset():
    values, warnings = load_task_file(LF / "llama3_lora_predict.yaml")
    spec = check_task(values).spec
    assert spec.do_predict and not spec.do_train
    assert spec.dataset == spec.eval_dataset == "identity,alpaca_en_demo"
    assert spec.compute_type == "fp32"
    assert any("eval_dataset" in w for w in warnings)


def test_unknown_key_names_the_closest(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("model_name_or_path: /m\ndataset: d\nlearnig_rate: 1.0e-4\n")
    with pytest.raises(UserError) as err:
        load_task_file(path)
    assert str(err.value) == f"unknown key 'learnig_rate' in {path}; did you mean 'learning_rate'?"
    path.write_text("model_name_or_path: /m\ndataset: d\ntrust_remote_cod: true\n")
    with pytest.raises(UserError, match="did you mean 'trust_remote_code'"):
        load_task_file(path)
    ours = tmp_path / "ours.yaml"
    ours.write_text("task_name: a\nmodel_name_or_path: /m\ndataset: d\nlora_rnak: 8\n")
    with pytest.raises(UserError, match="did you mean 'lora_rank'"):
        load_task_file(ours)


def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_task_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_task_file(bad)
    bad.write_text("- a list\n")
    with pytest.raises(UserError, match="mapping"):
        load_task_file(bad)
    both = tmp_path / "both.yaml"
    both.write_text("model_name_or_path: /m\ndataset: d\nbf16: true\nfp16: true\n")
    with pytest.raises(UserError, match="bf16 and fp16"):
        load_task_file(both)


def test_round_trip_our_yaml(tmp_path):
    values = {
        "task_name": "round-trip",
        "namespace": "team-a",
        "model_name_or_path": "/models/llama",
        "dataset": "demo_alpaca,demo_sharegpt",
        "finetuning_type": "lora",
        "learning_rate": 2e-4,
        "lora_rank": 16,
        "lora_alpha": 32,
        "quantization_bit": 4,
        "compute_type": "bf16",
        "lr_scheduler_type": "cosine",  # explicitly set to its default: kept
        "warmup_steps": 5,
        "extra": {"trust_remote_code": True},
    }
    text = dump_task_yaml(TaskSpec.from_mapping(values))
    path = tmp_path / "task.yaml"
    path.write_text(text)
    loaded, warnings = load_task_file(path)
    assert warnings == []
    again = dump_task_yaml(TaskSpec.from_mapping(loaded))
    assert again == text
    assert "lr_scheduler_type: cosine" in text
    # an imported LF file, written as our YAML, round-trips too
    imported, _ = load_task_file(LF / "llama3_lora_dpo.yaml")
    first = dump_task_yaml(imported)
    path.write_text(first)
    assert dump_task_yaml(load_task_file(path)[0]) == first


def test_firefly_qlora_config(tmp_path):
    result = load_task(FIREFLY / "qwen1.5-7b-sft-qlora.json")
    assert result.kind == "firefly"
    spec = check_task(result.values).spec
    assert spec.finetuning_type == "lora"
    assert spec.quantization_bit == 4
    assert spec.quantization_method == "bnb"
    assert spec.quantization_type == "nf4" and spec.double_quantization is True
    assert spec.lora_target == "all"
    assert spec.template == "qwen"
    assert spec.cutoff_len == 1024
    assert spec.disable_gradient_checkpointing is False
    assert spec.compute_type == "fp16"
    assert spec.optim == "paged_adamw_32bit"
    assert (spec.lora_rank, spec.lora_alpha, spec.lora_dropout) == (64, 16, 0.05)
    assert spec.learning_rate == pytest.approx(2e-4)
    assert spec.report_to == "tensorboard" and spec.save_total_limit == 1
    assert spec.task_name == "firefly-qwen1-5-7b-sft-qlora"
    assert spec.dataset == "dummy_data"
    assert "remove_unused_columns" not in spec.extra
    assert spec.extra["save_strategy"] == "steps"
    entry = result.datasets["dummy_data"]
    assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "conversation"}
    assert Path(entry["file_name"]).is_file()
    assert any("train_mode not set" in w for w in result.warnings)


def test_firefly_seed_csv_config_registers_dataset(tmp_path):
    result = load_task(FIREFLY / "seed-sft-lora.json")
    assert result.values["finetuning_type"] == "lora"
    assert "quantization_bit" not in result.values
    entry = result.datasets["aspcoder_train"]
    assert entry["columns"] == {"prompt": "human", "response": "assistant"}
    info_path = register_datasets(result.datasets, tmp_path)
    entries = read_dataset_info(tmp_path)
    assert entries["aspcoder_train"].path.is_file()
    # registering the same entry again is fine; a different one under the same name is refused
    register_datasets(result.datasets, tmp_path)
    with pytest.raises(UserError, match="already exists"):
        register_datasets({"aspcoder_train": {"file_name": "other.csv"}}, tmp_path)
    assert json.loads(info_path.read_text())["aspcoder_train"] == entry


def test_read_dataset_info(tmp_path):
    (tmp_path / "dataset_info.json").write_text(
        json.dumps(
            {
                "my_chat": {
                    "file_name": "my_chat.json",
                    "formatting": "sharegpt",
                    "columns": {"messages": "conversations"},
                    "tags": {"role_tag": "from", "content_tag": "value"},
                },
                "pairs": {"file_name": "pairs.json", "ranking": True,
                          "columns": {"chosen": "chosen", "rejected": "rejected"}},
                "hub": {"hf_hub_url": "org/data", "subset": "en", "split": "test", "num_samples": 10},
                "kto": {"file_name": "k.json", "formatting": "sharegpt",
                        "columns": {"messages": "conversations", "kto_tag": "label"}},
            }
        )
    )
    info = read_dataset_info(tmp_path)
    assert info["my_chat"].formatting == "sharegpt" and info["my_chat"].tags["role_tag"] == "from"
    assert info["pairs"].ranking is True and info["my_chat"].ranking is False
    assert info["hub"].source == "hf_hub_url" and info["hub"].split == "test"
    assert info["hub"].num_samples == 10
    assert info["hub"].path is None
    assert info["kto"].kto_tag == "label"
    assert info["my_chat"].to_json()["columns"] == {"messages": "conversations"}
    assert set(dataset_entries("my_chat, pairs", tmp_path)) == {"my_chat", "pairs"}
    with pytest.raises(UserError, match="did you mean 'my_chat'"):
        dataset_entries("my_chta", tmp_path)


def test_dataset_info_errors(tmp_path):
    with pytest.raises(UserError, match="no dataset_info.json"):
        read_dataset_info(tmp_path)
    path = tmp_path / "dataset_info.json"
    path.write_text('{"a": {"file_name": "x.json",}}')
    with pytest.raises(UserError, match="not valid JSON"):
        read_dataset_info(tmp_path)
    path.write_text('{"a": {"file_name": "x.json", "formating": "sharegpt"}}')
    with pytest.raises(UserError, match="did you mean 'formatting'"):
        read_dataset_info(tmp_path)
    path.write_text('{"a": {"file_name": "x.json", "formatting": "openai"}}')
    with pytest.raises(UserError, match="alpaca or sharegpt"):
        read_dataset_info(tmp_path)
    path.write_text('{"a": {"formatting": "alpaca"}}')
    with pytest.raises(UserError, match="file_name"):
        read_dataset_info(tmp_path)
    path.write_text('{"a": {"file_name": "x.json", "columns": {"promt": "q"}}}')
    with pytest.raises(UserError, match="did you mean 'prompt'"):
        read_dataset_info(tmp_path)


def test_bundled_dataset_info_reads():
    info = read_dataset_info(None)
    assert "demo_alpaca" in info


def test_import_and_use_without_heavy_libraries(tmp_path):
    import subprocess
    import sys

    model = str(FIXTURES / "models" / "llama-3-8b")
    code = (
        "import sys\n"
        "from tunequeue.core import compat, estimate, presets\n"
        f"compat.load_task({str(LF / 'llama3_lora_sft.yaml')!r})\n"
        "presets.list_presets()\n"
        f"estimate.estimate_vram({{}}, estimate.read_model_config({model!r}))\n"
        "print(sorted(m for m in ('torch', 'transformers', 'textual', 'peft') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env={"TUNEQUEUE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
