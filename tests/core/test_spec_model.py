"""The task model: every documented key exists with its default, bounds, help and recommended range."""

from __future__ import annotations

import math

import pytest

from tunequeue.core import spec
from tunequeue.core.errors import UserError
from tunequeue.core.rules import check_task
from tunequeue.core.spec import TaskSpec, all_params, param_info

REQUIRED = {"task_name": "demo", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}

# Every key of PARAMETERS.md §2.1–2.5 and §3 with its documented default ("REQ" = required, no default).
EXPECTED_DEFAULTS = {
    # §2.1 basic info
    "task_name": "REQ",
    "namespace": "default",
    "model_name_or_path": "REQ",
    "template": None,
    "finetuning_type": "lora",
    "stage": "sft",
    "dataset": None,  # required by rules.check_task except for export-only tasks
    "dataset_dir": None,  # tq: None = the bundled demo datasets
    # §2.2 task config
    "accelerator": "nvidia",
    "gpu_count": 1,
    "nnodes": 1,
    "allow_cpu": True,
    "allow_share": False,
    # §2.3 hyperparameters
    "learning_rate": 1e-4,
    "num_train_epochs": 3.0,
    "max_grad_norm": 1.0,
    "max_samples": None,
    "compute_type": "auto",
    "cutoff_len": 2048,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 8,
    "val_size": 0.0,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.1,
    "weight_decay": 0.0,
    "preset_ref": None,
    "trainer_type": "standard",
    # §2.4 LoRA settings + advanced block
    "lora_rank": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.1,
    "loraplus_lr_ratio": None,
    "quantization_bit": None,
    "quantization_method": "bnb",
    "quantization_type": "nf4",
    "double_quantization": True,
    "rope_scaling": None,
    "booster": "auto",
    "flash_attn": "auto",
    "use_unsloth": False,
    "enable_liger_kernel": False,
    # §2.5 other settings
    "logging_steps": 10,
    "save_steps": 500,
    "warmup_steps": 0,
    "neftune_noise_alpha": None,
    "optim": "adamw_torch",
    # §3 freeze
    "freeze_trainable_layers": 2,
    "freeze_trainable_modules": "all",
    "freeze_extra_modules": None,
    # §3 LoRA extras
    "lora_target": "all",
    "additional_target": None,
    "loraplus_lr_embedding": 1e-6,
    "use_rslora": False,
    "use_dora": False,
    "pissa_init": False,
    "pissa_iter": 16,
    "pissa_convert": False,
    "create_new_adapter": False,
    "adapter_name_or_path": None,
    # §3 RLHF / preference
    "pref_beta": 0.1,
    "pref_ftx": 0.0,
    "pref_loss": "sigmoid",
    "dpo_label_smoothing": 0.0,
    "simpo_gamma": 0.5,
    "kto_chosen_weight": 1.0,
    "kto_rejected_weight": 1.0,
    "ref_model": None,
    "reward_model": None,
    "reward_model_type": "lora",
    "ppo_epochs": 4,
    "ppo_buffer_size": 1,
    "ppo_target": 6.0,
    "ppo_score_norm": False,
    "ppo_whiten_rewards": False,
    # §3 GaLore
    "use_galore": False,
    "galore_target": "all",
    "galore_rank": 16,
    "galore_update_interval": 200,
    "galore_scale": 2.0,
    "galore_proj_type": "std",
    "galore_layerwise": False,
    # §3 BAdam
    "use_badam": False,
    "badam_mode": "layer",
    "badam_start_block": None,
    "badam_switch_mode": "ascending",
    "badam_switch_interval": 50,
    "badam_update_ratio": 0.05,
    "badam_mask_mode": "adjacent",
    "badam_verbose": 0,
    # §3 dataset
    "eval_dataset": None,
    "overwrite_cache": False,
    "preprocessing_num_workers": None,
    "packing": None,
    "neat_packing": False,
    "train_on_prompt": False,
    "mask_history": False,
    "mix_strategy": "concat",
    # §3 output & logging
    "output_dir": None,
    "overwrite_output_dir": False,
    "save_total_limit": 2,
    "plot_loss": True,
    "report_to": "none",
    "seed": 42,
    "disable_gradient_checkpointing": False,
    "ddp_timeout": 180000000,
    # §3 evaluate & predict
    "do_train": True,
    "do_eval": False,
    "do_predict": False,
    "predict_with_generate": False,
    "do_sample": True,
    "eval_strategy": "no",
    "eval_steps": None,
    "per_device_eval_batch_size": 1,
    "max_new_tokens": 1024,
    "temperature": 0.95,
    "top_p": 0.7,
    # §3 export
    "export_dir": None,
    "export_size": 5,
    "export_quantization_bit": None,
    "export_quantization_dataset": None,
    "export_quantization_nsamples": 128,
    "export_quantization_maxlen": 1024,
    "export_device": "cpu",
    "export_legacy_format": False,
    "export_hub_model_id": None,
}

EXPECTED_CHOICES = {
    "finetuning_type": {"lora", "oft", "freeze", "full"},
    "stage": {"pt", "sft", "rm", "ppo", "dpo", "kto"},
    "compute_type": {"auto", "bf16", "fp16", "fp32", "pure_bf16"},
    "lr_scheduler_type": {
        "linear",
        "cosine",
        "constant",
        "constant_with_warmup",
        "polynomial",
        "cosine_with_restarts",
    },
    "optim": {
        "adamw_torch",
        "adamw_torch_fused",
        "adamw_8bit",
        "paged_adamw_32bit",
        "paged_adamw_8bit",
        "adafactor",
        "sgd",
        "adagrad",
    },
    "quantization_method": {"bnb", "hqq", "eetq"},
    "rope_scaling": {"linear", "dynamic", "yarn", "llama3"},
    "booster": {"auto", "flashattn2", "unsloth", "liger_kernel"},
    "flash_attn": {"auto", "disabled", "sdpa", "fa2"},
    "pref_loss": {"sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"},
    "reward_model_type": {"lora", "full", "api"},
    "galore_proj_type": {"std", "reverse_std", "right", "left", "full"},
    "export_quantization_bit": {2, 3, 4, 8},
    "export_device": {"cpu", "auto"},
}


def test_every_documented_key_exists_with_its_default():
    for key, expected in EXPECTED_DEFAULTS.items():
        info = param_info(key)
        if expected == "REQ":
            assert info.required, key
        else:
            assert not info.required, key
            assert info.default == expected, (key, info.default, expected)
            assert type(info.default) is type(expected), key
    assert set(EXPECTED_DEFAULTS) == spec.KEYS


def test_enum_values_and_their_help():
    for key, values in EXPECTED_CHOICES.items():
        info = param_info(key)
        assert set(info.choices) == values, key
    for info in all_params():
        for choice in info.choices_help:
            assert choice in {str(c) for c in info.choices}, (info.key, choice)
        if info.choices_help:
            for choice in info.choices:
                en, zh = info.choices_help[str(choice)]
                assert en and zh, (info.key, choice)


def _inside(info, value) -> bool:
    if info.choices:
        return value in info.choices
    checks = [
        (info.ge, lambda b: value >= b),
        (info.gt, lambda b: value > b),
        (info.le, lambda b: value <= b),
        (info.lt, lambda b: value < b),
    ]
    return all(check(bound) for bound, check in checks if bound is not None)


# Keys without a default of their own that the rules require except in the context given here.
CONDITIONALLY_REQUIRED = {"dataset": {"do_train": False, "export_dir": "/tmp/exported"}}


@pytest.mark.parametrize("info", all_params(), ids=lambda i: i.key)
def test_field_metadata(info):
    assert info.help_en.strip() and info.help_zh.strip(), "help in en and zh"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in info.help_zh), "zh help has Chinese text"
    assert info.group in {g for g, *_ in spec.GROUPS}
    if info.required:
        assert info.default is None
        return
    if info.default is None:
        assert info.nullable, "a None default needs an Optional field"
    else:
        assert _inside(info, info.default), "default inside the hard bounds"
    # The default passes full validation (including field validators) on its own, given the
    # context where it is allowed (no dataset is fine only for an export-only task).
    context = CONDITIONALLY_REQUIRED.get(info.key, {})
    report = check_task({**REQUIRED, **context, info.key: info.default})
    assert not report.errors_for(info.key), report.errors
    if info.rec is not None and info.rec_is_range:
        low, high = info.rec
        assert low <= high
        assert _inside(info, low) and _inside(info, high), "recommended range inside the bounds"
    elif info.rec is not None:
        assert all(_inside(info, v) for v in info.rec)
    if info.default is not None and info.rec is not None:
        assert info.in_recommended(info.default), "default inside the recommended range"


def test_groups_order_and_wizard_steps():
    ids = [g for g, *_ in spec.GROUPS]
    assert ids[:5] == ["basic", "task", "hyper", "lora", "other"]
    assert len(ids) == len(set(ids))
    for gid, model in spec.GROUPS:
        assert spec.group_title(gid, "en") and spec.group_title(gid, "zh") and model.model_fields
    assert spec.group_of("lora_rank") == "lora"
    assert spec.group_of("learning_rate") == "hyper"
    assert spec.group_of("use_galore") == "galore"
    with pytest.raises(UserError, match="did you mean 'lora_rank'"):
        spec.group_of("lora_rnak")


def test_taskspec_merges_every_group():
    grouped = set().union(*(model.model_fields for _g, model, *_ in spec.GROUPS))
    assert set(TaskSpec.model_fields) == grouped | {"extra"}
    assert len(all_params()) == len(grouped)
    assert all_params() is all_params()  # cached


def test_learning_rate_recommendation_reads_as_documented():
    info = param_info("learning_rate")
    assert info.rec == [1e-5, 1e-3]
    assert info.gt == 0 and info.le == 1e-2
    assert param_info("lora_rank").rec == [4, 16]
    assert param_info("lora_dropout").rec == [0.0, 0.1]
    assert param_info("lora_dropout").lt == 1


def test_help_avoids_documented_seed_errors():
    texts = " ".join(f"{i.help_en} {' '.join(v[0] for v in i.choices_help.values())}" for i in all_params())
    lowered = texts.lower()
    for wrong in (
        "high quality quantization",
        "extreme tiny",
        "etqq",
        "unslosh",
        "soft parameter sharing",
        "decoupled policy",
        "knowledge transfer",
        "online reward",
        "similarity preference",
        "checkout",
        "stable lora",
        'qlora"',
    ):
        assert wrong not in lowered, wrong
    assert "ratio > 1" in param_info("loraplus_lr_ratio").help_en
    assert "half-quadratic" in param_info("quantization_method").choice_help("hqq").lower()


def test_val_size_fraction_or_count():
    ok = [(0, 0.0), (0.1, 0.1), (0.0, 0.0), (100, 100), (100.0, 100), (1, 1)]
    for given, expected in ok:
        task = TaskSpec(**REQUIRED, val_size=given)
        assert task.val_size == expected and type(task.val_size) is type(expected), given
    for bad in (-1, 1.5, -0.1, "x", True):
        assert check_task({**REQUIRED, "val_size": bad}).errors_for("val_size"), bad


def test_optim_adamw_hf_is_normalised():
    assert TaskSpec(**REQUIRED, optim="adamw_hf").optim == "adamw_torch"


def test_from_mapping_refuses_unknown_keys_with_closest():
    with pytest.raises(UserError, match="did you mean 'learning_rate'"):
        TaskSpec.from_mapping({**REQUIRED, "learnig_rate": 1e-4})
    task = TaskSpec.from_mapping({**REQUIRED, "extra": {"deepspeed": "ds.json"}})
    assert task.extra == {"deepspeed": "ds.json"}


def test_to_yaml_dict_minimal_full_and_ordered():
    task = TaskSpec.from_mapping({**REQUIRED, "lora_rank": 16, "learning_rate": 1e-4, "stage": "sft"})
    minimal = task.to_yaml_dict()
    # required + explicitly set keys (even when equal to the default), in group order
    assert list(minimal) == [
        "task_name",
        "model_name_or_path",
        "stage",
        "dataset",
        "learning_rate",
        "lora_rank",
    ]
    full = task.to_yaml_dict(include_defaults=True)
    assert set(full) == spec.KEYS
    assert list(full) == [i.key for i in all_params()]
    again = TaskSpec.from_mapping(minimal)
    assert again == task
    assert again.to_yaml_dict() == minimal


def test_to_yaml_dict_lf_only_maps_tq_keys():
    task = TaskSpec.from_mapping(
        {
            **REQUIRED,
            "compute_type": "fp16",
            "booster": "flashattn2",
            "gpu_count": 2,
            "extra": {"deepspeed": "z"},
        }
    )
    lf = task.to_yaml_dict(lf_only=True)
    for tq_key in ("task_name", "namespace", "gpu_count", "compute_type", "booster", "allow_cpu"):
        assert tq_key not in lf
    assert lf["fp16"] is True and "bf16" not in lf
    assert lf["flash_attn"] == "fa2"
    assert lf["deepspeed"] == "z"
    assert lf["model_name_or_path"] == "tunequeue/tiny-llama"
    ours = task.to_yaml_dict()
    assert ours["extra"] == {"deepspeed": "z"} and "deepspeed" not in ours

    assert TaskSpec(**REQUIRED, booster="unsloth").to_yaml_dict(lf_only=True)["use_unsloth"] is True
    assert (
        TaskSpec(**REQUIRED, booster="liger_kernel").to_yaml_dict(lf_only=True)["enable_liger_kernel"] is True
    )
    pure = TaskSpec(**REQUIRED, compute_type="pure_bf16").to_yaml_dict(lf_only=True)
    assert pure["pure_bf16"] is True
    fp32 = TaskSpec(**REQUIRED, compute_type="fp32").to_yaml_dict(lf_only=True)
    assert not {"bf16", "fp16", "pure_bf16"} & set(fp32)
    auto = TaskSpec(**REQUIRED)
    assert auto.to_yaml_dict(lf_only=True)["bf16"] is True
    assert auto.to_yaml_dict(lf_only=True, compute_capability=(7, 5))["fp16"] is True


def test_resolve_compute_type():
    assert spec.resolve_compute_type("auto", (8, 0)) == "bf16"
    assert spec.resolve_compute_type("auto", (7, 0)) == "fp16"
    assert spec.resolve_compute_type("auto", None, cpu=True) == "fp32"
    assert spec.resolve_compute_type("fp16", (9, 0)) == "fp16"


def test_param_info_reference_strings():
    info = param_info("learning_rate")
    assert info.bounds_text() == "> 0, ≤ 0.01"
    assert info.recommendation().startswith("1e-05–0.001")
    assert not info.in_recommended(5e-3) and info.in_recommended(2e-4)
    assert param_info("val_size").bounds_text() == "fraction in [0, 1) or whole count ≥ 1"
    assert param_info("template").type_name == "str?"
    assert param_info("val_size").kind == "number"
    assert param_info("preset_ref").editable is False
    assert param_info("task_name").tq and not param_info("learning_rate").tq
    assert math.isclose(spec.defaults()["learning_rate"], 1e-4)
    with pytest.raises(UserError, match="did you mean"):
        param_info("learnig_rate")
