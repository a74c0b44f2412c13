"""Validation: the task-name rule, field errors, recommended-range warnings and every cross-field rule."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tunequeue.core.errors import UserError
from tunequeue.core.rules import (
    Problem,
    ValidationReport,
    check_chat_template,
    check_dataset_fits_stage,
    check_task,
    effective_batch,
    estimate_total_steps,
    local_model_dir,
    suggested_learning_rate,
)
from tunequeue.core.spec import TaskSpec

BASE = {"task_name": "demo", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}


def _check(**overrides):
    return check_task({**BASE, **overrides})


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("", False),
        ("a", True),
        ("0", True),
        ("a-b", True),
        ("a1-b2-c3", True),
        ("-a", False),
        ("a-", False),
        ("A", False),
        ("a_b", False),
        ("a.b", False),
        ("a b", False),
        ("中文", False),
        ("a" * 63, True),
        ("a" * 64, False),
        ("a--b", True),
    ],
)
@pytest.mark.parametrize("key", ["task_name", "namespace"])
def test_name_rule(key, name, valid):
    report = _check(**{key: name})
    assert bool(report.errors_for(key)) is not valid
    if not valid:
        message = report.errors_for(key)[0].message("en")
        assert "lowercase letters, digits or '-'" in message and "1–63" in message
        assert report.errors_for(key)[0].message("zh").startswith(key)


def test_required_keys_and_partial_mode():
    report = check_task({})
    assert {p.key for p in report.errors} == {"task_name", "model_name_or_path", "dataset"}
    assert all("required" in p.message("en") for p in report.errors)
    assert report.spec is None
    partial = check_task({"lora_rank": 16, "learning_rate": 2e-4}, partial=True)
    assert partial.ok and partial.spec is None
    bad = check_task({"lora_rank": 0}, partial=True)
    assert bad.errors_for("lora_rank")


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("learning_rate", 0.5, "learning_rate must be a number > 0 and ≤ 0.01; got 0.5"),
        ("learning_rate", 0, "> 0"),
        ("lora_rank", 0, "lora_rank must be a whole number ≥ 1 and ≤ 1024; got 0"),
        ("lora_rank", "x", "got 'x'"),
        ("lora_dropout", 1.0, "< 1"),
        ("stage", "qlora", "stage must be one of pt, sft, rm, ppo, dpo, kto; got 'qlora'"),
        ("finetuning_type", "qlora", "one of lora, oft, freeze, full"),
        ("cutoff_len", 2, "≥ 4"),
        ("optim", "adam", "one of adamw_torch"),
        ("warmup_ratio", 1.0, "< 1"),
        ("quantization_bit", 16, "bnb: 4 or 8"),
        ("freeze_trainable_layers", 0, "must not be 0"),
        ("pissa_iter", 0, "-1 (full SVD) or ≥ 1"),
        ("badam_switch_interval", 0, "-1 (never switch)"),
        ("dpo_label_smoothing", 0.5, "< 0.5"),
        ("export_quantization_bit", 5, "one of 2, 3, 4, 8"),
        ("max_samples", 0, "(or empty)"),
    ],
)
def test_field_errors_say_what_to_change(key, value, fragment):
    report = _check(**{key: value})
    assert not report.ok and report.spec is None
    messages = [p.message("en") for p in report.errors_for(key)]
    assert messages and fragment in messages[0], messages
    assert report.errors_for(key)[0].message("zh")


def test_unknown_key_names_the_closest():
    report = _check(learnig_rate=1e-4)
    assert report.errors[0].message("en") == "unknown key 'learnig_rate'; did you mean 'learning_rate'?"
    assert "learning_rate" in report.errors[0].message("zh")
    far = _check(zzzzzz=1)
    assert "tunequeue params" in far.errors[0].message("en")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("learning_rate", 5e-3),
        ("lora_rank", 64),
        ("lora_alpha", 64),
        ("lora_dropout", 0.3),
        ("num_train_epochs", 20.0),
        ("max_grad_norm", 2.0),
        ("gradient_accumulation_steps", 16),
        ("weight_decay", 0.5),
        ("neftune_noise_alpha", 1.0),
        ("loraplus_lr_ratio", 1.5),
        ("lr_scheduler_type", "polynomial"),
    ],
)
def test_outside_recommended_range_only_warns(key, value):
    report = _check(**{key: value})
    assert report.ok, report.errors
    warnings = report.warnings_for(key)
    assert warnings and "recommended" in warnings[0].message("en") and "allowed" in warnings[0].message("en")
    assert "推荐" in warnings[0].message("zh")


def test_inside_recommended_range_is_silent():
    report = _check(learning_rate=2e-4, lora_rank=16, lora_dropout=0.05, gradient_accumulation_steps=4)
    assert report.ok and report.warnings == []


def test_effective_batch_warning():
    assert _check(per_device_train_batch_size=1, gradient_accumulation_steps=1).warnings_for(
        "per_device_train_batch_size"
    )
    assert not _check(per_device_train_batch_size=4, gradient_accumulation_steps=4).warnings
    assert effective_batch(TaskSpec(**BASE, per_device_train_batch_size=4, gpu_count=2)) == 64


@dataclass
class Case:
    overrides: dict
    key: str
    level: str  # "error", "warning" or "ok"
    kwargs: dict | None = None


CROSS_FIELD_CASES = {
    # rule 4: LoRA-only options
    "quant_needs_lora": Case({"finetuning_type": "full", "quantization_bit": 4}, "quantization_bit", "error"),
    "quant_with_lora_ok": Case({"quantization_bit": 4}, "quantization_bit", "ok"),
    "loraplus_needs_lora": Case(
        {"finetuning_type": "freeze", "loraplus_lr_ratio": 16.0}, "loraplus_lr_ratio", "error"
    ),
    "rslora_needs_lora": Case({"finetuning_type": "full", "use_rslora": True}, "use_rslora", "error"),
    "dora_needs_lora": Case({"finetuning_type": "full", "use_dora": True}, "use_dora", "error"),
    "pissa_needs_lora": Case({"finetuning_type": "freeze", "pissa_init": True}, "pissa_init", "error"),
    "unsloth_needs_lora": Case({"finetuning_type": "full", "use_unsloth": True}, "use_unsloth", "error"),
    "booster_unsloth_needs_lora": Case({"finetuning_type": "full", "booster": "unsloth"}, "booster", "error"),
    "bnb_bits": Case({"quantization_bit": 3}, "quantization_bit", "error"),
    "hqq_bits_ok": Case({"quantization_bit": 3, "quantization_method": "hqq"}, "quantization_bit", "ok"),
    "hqq_bits_7": Case({"quantization_bit": 7, "quantization_method": "hqq"}, "quantization_bit", "error"),
    "eetq_bits": Case({"quantization_bit": 4, "quantization_method": "eetq"}, "quantization_bit", "error"),
    "eetq_8_ok": Case({"quantization_bit": 8, "quantization_method": "eetq"}, "quantization_bit", "ok"),
    # rule 5: PiSSA
    "pissa_quant": Case({"pissa_init": True, "quantization_bit": 4}, "pissa_init", "error"),
    "pissa_ppo": Case({"pissa_init": True, "stage": "ppo", "reward_model": "/rm"}, "pissa_init", "error"),
    "pissa_kto": Case({"pissa_init": True, "stage": "kto"}, "pissa_init", "error"),
    "pissa_dpo_sigmoid": Case({"pissa_init": True, "stage": "dpo"}, "pissa_init", "error"),
    "pissa_dpo_orpo_ok": Case({"pissa_init": True, "stage": "dpo", "pref_loss": "orpo"}, "pissa_init", "ok"),
    "pissa_dpo_simpo_ok": Case(
        {"pissa_init": True, "stage": "dpo", "pref_loss": "simpo"}, "pissa_init", "ok"
    ),
    "pissa_sft_ok": Case({"pissa_init": True}, "pissa_init", "ok"),
    # rule 6: GaLore / BAdam
    "galore_needs_full": Case({"use_galore": True}, "use_galore", "error"),
    "galore_full_ok": Case({"use_galore": True, "finetuning_type": "full"}, "use_galore", "ok"),
    "badam_needs_full": Case({"use_badam": True, "finetuning_type": "freeze"}, "use_badam", "error"),
    "galore_badam_exclusive": Case(
        {"use_galore": True, "use_badam": True, "finetuning_type": "full"}, "use_badam", "error"
    ),
    "badam_single_gpu": Case(
        {"use_badam": True, "finetuning_type": "full", "gpu_count": 2}, "use_badam", "error"
    ),
    "badam_one_gpu_ok": Case({"use_badam": True, "finetuning_type": "full"}, "use_badam", "ok"),
    "galore_layerwise_single_gpu": Case(
        {"use_galore": True, "galore_layerwise": True, "finetuning_type": "full", "gpu_count": 2},
        "galore_layerwise",
        "error",
    ),
    "galore_multi_gpu_ok": Case(
        {"use_galore": True, "finetuning_type": "full", "gpu_count": 2}, "use_galore", "ok"
    ),
    # rule 7: PPO
    "ppo_needs_reward_model": Case({"stage": "ppo"}, "reward_model", "error"),
    "ppo_with_reward_model_ok": Case({"stage": "ppo", "reward_model": "/rm"}, "reward_model", "ok"),
    "reward_lora_needs_lora": Case(
        {"stage": "ppo", "reward_model": "/rm", "finetuning_type": "full"}, "reward_model_type", "error"
    ),
    "reward_full_ok": Case(
        {"stage": "ppo", "reward_model": "/rm", "finetuning_type": "full", "reward_model_type": "full"},
        "reward_model_type",
        "ok",
    ),
    # rule 8: label smoothing, validation data
    "smoothing_needs_sigmoid": Case(
        {"stage": "dpo", "pref_loss": "ipo", "dpo_label_smoothing": 0.1}, "dpo_label_smoothing", "error"
    ),
    "smoothing_sigmoid_ok": Case({"stage": "dpo", "dpo_label_smoothing": 0.1}, "dpo_label_smoothing", "ok"),
    "val_size_xor_eval_dataset": Case(
        {"val_size": 0.1, "eval_dataset": "demo_sharegpt"}, "val_size", "error"
    ),
    "do_eval_needs_data": Case({"do_eval": True}, "do_eval", "error"),
    "do_eval_val_size_ok": Case({"do_eval": True, "val_size": 0.1}, "do_eval", "ok"),
    "do_eval_eval_dataset_ok": Case({"do_eval": True, "eval_dataset": "demo_sharegpt"}, "do_eval", "ok"),
    "eval_strategy_needs_data": Case({"eval_strategy": "steps"}, "eval_strategy", "error"),
    "predict_sft_needs_generate": Case(
        {"do_predict": True, "val_size": 10}, "predict_with_generate", "warning"
    ),
    # rule 9: precision, GPU count, nodes
    "nnodes_v1": Case({"nnodes": 2}, "nnodes", "error"),
    "bf16_old_gpu": Case(
        {"compute_type": "bf16"}, "compute_type", "error", {"host_gpus": [{"compute_capability": (7, 5)}]}
    ),
    "pure_bf16_old_gpu": Case(
        {"compute_type": "pure_bf16"},
        "compute_type",
        "error",
        {"host_gpus": [{"compute_capability": (8, 0)}, {"compute_capability": (7, 0)}]},
    ),
    "bf16_ampere_ok": Case(
        {"compute_type": "bf16"}, "compute_type", "ok", {"host_gpus": [{"compute_capability": (8, 6)}]}
    ),
    "bf16_unknown_host_ok": Case({"compute_type": "bf16"}, "compute_type", "ok"),
    "fp16_old_gpu_ok": Case(
        {"compute_type": "fp16"}, "compute_type", "ok", {"host_gpus": [{"compute_capability": (7, 0)}]}
    ),
    "gpu_count_vs_host": Case(
        {"gpu_count": 4}, "gpu_count", "error", {"host_gpus": [{"compute_capability": (9, 0)}] * 2}
    ),
    "gpu_count_fits_ok": Case(
        {"gpu_count": 2}, "gpu_count", "ok", {"host_gpus": [{"compute_capability": (9, 0)}] * 2}
    ),
    "no_gpu_no_cpu": Case({"allow_cpu": False}, "allow_cpu", "error", {"host_gpus": []}),
    "no_gpu_cpu_ok": Case({}, "allow_cpu", "ok", {"host_gpus": []}),
    "flashattn2_needs_half": Case({"booster": "flashattn2", "compute_type": "fp32"}, "booster", "error"),
    # rule 10: context length, NEFTune
    "cutoff_over_context": Case(
        {"cutoff_len": 4096}, "cutoff_len", "warning", {"model_config": {"max_position_embeddings": 2048}}
    ),
    "cutoff_with_rope_ok": Case(
        {"cutoff_len": 4096, "rope_scaling": "linear"},
        "cutoff_len",
        "ok",
        {"model_config": {"max_position_embeddings": 2048}},
    ),
    "cutoff_within_ok": Case(
        {"cutoff_len": 2048}, "cutoff_len", "ok", {"model_config": {"max_position_embeddings": 2048}}
    ),
    "neftune_outside_sft": Case(
        {"neftune_noise_alpha": 5.0, "stage": "pt"}, "neftune_noise_alpha", "warning"
    ),
    "neftune_sft_ok": Case({"neftune_noise_alpha": 5.0}, "neftune_noise_alpha", "ok"),
    # rule 11: export quantization
    "export_bits_need_dataset": Case({"export_quantization_bit": 4}, "export_quantization_dataset", "error"),
    "export_bits_with_dataset_ok": Case(
        {"export_quantization_bit": 4, "export_quantization_dataset": "calib.json"},
        "export_quantization_dataset",
        "ok",
    ),
}


@pytest.mark.parametrize("case", CROSS_FIELD_CASES.values(), ids=CROSS_FIELD_CASES.keys())
def test_cross_field_rules(case):
    report = check_task({**BASE, **case.overrides}, **(case.kwargs or {}))
    errors, warnings = report.errors_for(case.key), report.warnings_for(case.key)
    if case.level == "error":
        assert errors, report.errors
        assert report.spec is None
        assert (
            errors[0].message("en")
            and errors[0].message("zh")
            and errors[0].message("zh") != errors[0].message("en")
        )
    elif case.level == "warning":
        assert warnings and not errors, (report.errors, report.warnings)
        assert report.ok
    else:
        assert not errors and not warnings, (report.errors, report.warnings)


NO_DATASET = {"task_name": "demo", "model_name_or_path": "tunequeue/tiny-llama"}
DATASET_CASES = {
    "train_needs_dataset": ({}, "error"),
    "train_with_dataset_ok": ({"dataset": "demo_alpaca"}, "ok"),
    "export_only_needs_none": ({"do_train": False, "export_dir": "/tmp/out"}, "ok"),
    "export_with_dataset_ok": ({"do_train": False, "export_dir": "/tmp/out", "dataset": "demo_alpaca"}, "ok"),
    "train_and_export_needs_dataset": ({"export_dir": "/tmp/out"}, "error"),
    "eval_needs_dataset": ({"do_train": False, "do_eval": True, "val_size": 0.1}, "error"),
    "eval_with_dataset_ok": (
        {"do_train": False, "do_eval": True, "val_size": 0.1, "dataset": "demo_alpaca"},
        "ok",
    ),
    "predict_needs_dataset": (
        {"do_train": False, "do_predict": True, "predict_with_generate": True},
        "error",
    ),
    "explicit_none_needs_dataset": ({"dataset": None}, "error"),
    "empty_string_is_a_field_error": ({"dataset": ""}, "error"),
}


@pytest.mark.parametrize(("overrides", "level"), DATASET_CASES.values(), ids=DATASET_CASES.keys())
def test_dataset_is_required_unless_the_task_only_exports(overrides, level):
    report = check_task({**NO_DATASET, **overrides})
    errors = report.errors_for("dataset")
    if level == "ok":
        assert report.ok, report.errors
        assert report.spec is not None and report.spec.dataset == overrides.get("dataset")
    else:
        assert len(errors) == 1 and report.spec is None, report.errors
        assert errors[0].message("en") != errors[0].message("zh")


def test_missing_dataset_is_no_error_in_partial_mode():
    assert check_task({"do_train": True, "lora_rank": 8}, partial=True).ok


def test_nnodes_over_one_needs_the_slurm_backend():
    refused = _check(nnodes=2).errors_for("nnodes")
    assert refused and "Slurm runner backend" in refused[0].message("en")
    assert "Slurm" in refused[0].message("zh")
    assert _check(nnodes=2).spec is None
    assert check_task({**BASE, "nnodes": 2}, multi_node=True).ok


def test_cross_field_rules_still_run_when_a_field_is_bad():
    report = _check(learning_rate=1.0, finetuning_type="full", quantization_bit=4)
    assert report.errors_for("learning_rate") and report.errors_for("quantization_bit")


def test_adamw_hf_warns_and_normalises():
    report = _check(optim="adamw_hf")
    assert report.ok and report.spec.optim == "adamw_torch"
    assert "adamw_torch" in report.warnings_for("optim")[0].message("en")


def test_learning_rate_suggestion():
    assert suggested_learning_rate("lora", "sft") == 1e-4
    assert suggested_learning_rate("freeze", "pt") == 1e-4
    assert suggested_learning_rate("full", "sft") == 1e-5
    assert suggested_learning_rate("lora", "dpo") == 5e-6
    assert suggested_learning_rate("full", "kto") == 5e-6
    assert _check(finetuning_type="full").spec.learning_rate == 1e-5
    assert _check(stage="dpo").spec.learning_rate == 5e-6
    assert _check(finetuning_type="full", learning_rate=3e-5).spec.learning_rate == 3e-5


def test_total_steps_and_step_warnings():
    task = TaskSpec(**BASE)  # batch 2 × accumulation 8 = 16, 3 epochs
    assert estimate_total_steps(1000, task) == 3 * (500 // 8)
    assert estimate_total_steps(1000, TaskSpec(**BASE, val_size=0.1)) == 3 * (450 // 8)
    assert estimate_total_steps(1000, TaskSpec(**BASE, val_size=200)) == 3 * (400 // 8)
    assert estimate_total_steps(1000, TaskSpec(**BASE, max_samples=100)) == 3 * (50 // 8)
    assert estimate_total_steps(4, task) == 3  # at least one update per epoch
    assert estimate_total_steps(0, task) == 0
    report = check_task({**BASE, "warmup_steps": 500}, num_examples=1000)
    assert report.ok
    assert {p.key for p in report.warnings} >= {"save_steps", "warmup_steps"}
    assert "186 total steps" in report.warnings_for("save_steps")[0].message("en")
    assert not check_task({**BASE}, num_examples=100000).warnings


def test_dataset_fits_stage():
    pairs = {"name": "pairs", "ranking": True, "columns": {"chosen": "chosen", "rejected": "rejected"}}
    plain = {"name": "plain", "formatting": "alpaca"}
    kto = {"name": "kto", "formatting": "sharegpt", "columns": {"kto_tag": "label"}}
    assert check_dataset_fits_stage("dpo", {"pairs": pairs}) == []
    assert check_dataset_fits_stage("rm", [pairs]) == []
    assert check_dataset_fits_stage("sft", [plain]) == []
    assert check_dataset_fits_stage("kto", {"kto": kto}) == []
    assert check_dataset_fits_stage("dpo", {"plain": plain})[0].key == "dataset"
    assert "ranking" in check_dataset_fits_stage("rm", [plain])[0].message("en")
    assert "rm or dpo" in check_dataset_fits_stage("sft", {"pairs": pairs})[0].message("en")
    assert "kto_tag" in check_dataset_fits_stage("kto", {"plain": plain})[0].message("en")

    class Entry:
        ranking = False
        columns = None

    assert check_dataset_fits_stage("dpo", {"obj": Entry()})


def test_report_helpers():
    report = _check(learning_rate=1.0, lora_rank=0)
    with pytest.raises(UserError, match=r"learning_rate must be .* \(and 1 more error\)"):
        report.raise_if_errors()
    data = report.to_dict("zh")
    assert data["ok"] is False and data["task"] is None and len(data["errors"]) == 2
    good = _check()
    assert good.raise_if_errors() is good.spec
    assert good.to_dict()["task"]["task_name"] == "demo"
    assert Problem("k", "en text", "中文").message("zh") == "中文"
    assert isinstance(good, ValidationReport)


def test_chat_template_rule_reads_the_model_dir(tmp_path):
    from tunequeue.core.paths import DATA_DIR

    model = tmp_path / "model"
    model.mkdir()
    assert local_model_dir(str(model)) is None  # a folder without config.json is no model
    assert local_model_dir(str(model / "config.json")) is None
    (model / "config.json").write_text("{}", encoding="utf-8")
    assert local_model_dir(str(model)) == model
    assert local_model_dir(str(model / "config.json")) == model
    assert local_model_dir("tunequeue/tiny-llama") == DATA_DIR / "tiny-llama"
    assert local_model_dir("org/hub-model") is None

    [warning] = check_chat_template(None, model)  # no tokenizer files at all
    assert warning.key == "template" and "set template" in warning.message("en")
    assert "对话模板" in warning.message("zh")
    (model / "tokenizer_config.json").write_text('{"chat_template": ""}', encoding="utf-8")
    assert check_chat_template("auto", model) == [warning]
    assert check_chat_template("llama3", model) == []
    assert check_chat_template(None, None) == []
    (model / "tokenizer_config.json").write_text('{"chat_template": "{{ x }}"}', encoding="utf-8")
    assert check_chat_template(None, model) == []
    (model / "tokenizer_config.json").unlink()
    (model / "chat_template.jinja").write_text("{{ x }}", encoding="utf-8")
    assert check_chat_template(None, model) == []
