"""Keys kept in ``extra``: Trainer arguments pass through, engine switches are honoured, the rest refused
or named as unused; the static TrainingArguments list matches the installed transformers."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest

from tunequeue.cli import main
from tunequeue.core.extra_keys import (
    ENGINE_SET_ARGUMENTS,
    extra_problems,
    passthrough_arguments,
    unused_keys,
)
from tunequeue.core.known_keys import KNOWN_ELSEWHERE, TRAINING_ARGUMENTS_FIELDS
from tunequeue.core.rules import check_task

BASE = {"task_name": "t", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))


def test_static_list_is_the_installed_training_arguments():
    from transformers import TrainingArguments

    installed = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    assert installed == TRAINING_ARGUMENTS_FIELDS
    assert TRAINING_ARGUMENTS_FIELDS <= KNOWN_ELSEWHERE
    assert ENGINE_SET_ARGUMENTS <= TRAINING_ARGUMENTS_FIELDS


def test_passthrough_keeps_trainer_fields_and_drops_engine_ones():
    extra = {
        "save_strategy": "epoch",
        "save_only_model": True,
        "max_steps": 5,
        "dataloader_num_workers": 2,
        "disable_tqdm": False,
        "eval_on_start": True,
        "use_cpu": True,
        "remove_unused_columns": True,
        "trust_remote_code": True,
        "swanlab_project": "x",
    }
    assert passthrough_arguments(extra) == {
        "save_strategy": "epoch",
        "save_only_model": True,
        "max_steps": 5,
        "dataloader_num_workers": 2,
        "disable_tqdm": False,
        "eval_on_start": True,
    }
    assert unused_keys(extra) == ["remove_unused_columns", "swanlab_project", "use_cpu"]


@pytest.mark.parametrize(
    ("extra", "finetuning_type", "stage", "key", "words"),
    [
        ({"mixture_of_depths": "convert"}, "lora", "sft", "mixture_of_depths", "not supported"),
        ({"fp8": True}, "full", "sft", "fp8", "remove fp8"),
        ({"use_asft_loss": True}, "lora", "sft", "use_asft_loss", "not implemented"),
        ({"use_eaft_loss": True}, "lora", "sft", "use_eaft_loss", "not implemented"),
        ({"use_mca": True}, "full", "sft", "use_mca", "not supported"),
        ({"shift_attn": True}, "lora", "sft", "shift_attn", "not supported"),
        ({"push_to_hub": True}, "lora", "sft", "push_to_hub", "uploaded"),
        ({"deepspeed": "ds_z3.json"}, "full", "sft", "deepspeed", "pip install deepspeed"),
        ({"use_adam_mini": True}, "full", "sft", "use_adam_mini", "pip install adam-mini"),
        ({"use_apollo": True}, "full", "sft", "use_apollo", "pip install apollo-torch"),
        ({"use_apollo": True}, "lora", "sft", "use_apollo", "finetuning_type full"),
        ({"use_llama_pro": True}, "full", "sft", "use_llama_pro", "freeze or lora"),
        ({"use_dft_loss": True}, "lora", "rm", "use_dft_loss", "sft and pt"),
        ({"use_muon": True}, "lora", "dpo", "use_muon", "pt, sft and rm"),
        ({}, "oft", "dpo", "finetuning_type", "use lora for dpo"),
        ({"use_dft_loss": "yes"}, "lora", "sft", "use_dft_loss", "true or false"),
        ({"oft_block_size": -4}, "oft", "sft", "oft_block_size", "whole number"),
        ({"use_apollo": True, "apollo_scale_front": True}, "full", "sft", "apollo_scale_front", "remove it"),
        ({"save_strategy": "sometimes"}, "lora", "sft", "save_strategy", "one of no, steps, epoch, best"),
        ({"max_steps": 0}, "lora", "sft", "max_steps", "or -1 for epochs"),
        ({"dataloader_num_workers": -1}, "lora", "sft", "dataloader_num_workers", "≥ 0"),
        ({"save_only_model": "yes"}, "lora", "sft", "save_only_model", "true or false"),
        ({"adam_beta2": 1.5}, "lora", "sft", "adam_beta2", "below 1"),
    ],
)
def test_refusals_are_one_line_naming_the_key(extra, finetuning_type, stage, key, words):
    problems = extra_problems(extra, finetuning_type=finetuning_type, stage=stage)
    package = words.removeprefix("pip install ") if words.startswith("pip install") else None
    if package and importlib.util.find_spec(package.replace("-torch", "_torch").replace("-", "_")):
        assert not [p for p in problems if words in p[1]]  # installed: nothing to refuse
        return
    matching = [p for p in problems if p[0] == key and words in p[1]]
    assert len(matching) == 1, problems
    _key, english, chinese = matching[0]
    assert key in english
    assert all("\n" not in text for problem in problems for text in problem)


@pytest.mark.parametrize("key", ["mixture_of_depths", "fp8", "use_asft_loss", "use_eaft_loss"])
def test_switched_off_refused_keys_are_fine(key):
    assert extra_problems({key: False}, finetuning_type="lora", stage="sft") == []


def test_check_task_reports_refusals_and_accepts_implemented_switches():
    report = check_task({**BASE, "extra": {"fp8": True}})
    assert [p.key for p in report.errors] == ["fp8"] and report.spec is None
    report = check_task(
        {**BASE, "finetuning_type": "oft", "extra": {"use_dft_loss": True, "oft_block_size": 16}}
    )
    assert report.errors == [] and report.spec.finetuning_type == "oft"


def test_validate_refuses_an_lf_file_with_one_line(tmp_path, capsys):
    path = tmp_path / "mod.yaml"
    path.write_text(
        "model_name_or_path: tunequeue/tiny-llama\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
        "dataset: demo_alpaca\ndataset_dir: \noutput_dir: saves/mod\nmixture_of_depths: convert\n",
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "mixture_of_depths" in line]
    assert lines == [
        "  - mixture_of_depths: mixture-of-depths conversion is not supported; remove mixture_of_depths"
    ]
