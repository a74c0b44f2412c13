"""Preference stages from a task YAML on the tiny model: rm, dpo (3 losses), kto, ppo; GaLore, BAdam."""

from __future__ import annotations

import json
import math

import pytest
from tq_train_helpers import read_log, run_in_process, write_task

FEW_STEPS = {"num_train_epochs": 1, "max_samples": 4, "learning_rate": 1e-3, "per_device_train_batch_size": 2}


def _finite(records: list[dict], key: str) -> list[float]:
    values = [r[key] for r in records if key in r]
    assert values, f"no {key} in trainer_log.jsonl: {records}"
    assert all(math.isfinite(v) for v in values), values
    return values


@pytest.mark.slow
def test_rm_then_ppo_with_the_rm_adapter_as_reward_model(tmp_path):
    rm_dir = tmp_path / "rm"
    assert run_in_process(write_task(rm_dir, stage="rm", dataset="demo_pairwise", **FEW_STEPS)) == 0
    records = read_log(rm_dir)
    assert [r["current_steps"] for r in records] == [1, 2]
    _finite(records, "loss")
    for key in ("accuracy", "rewards/chosen", "rewards/rejected", "margin"):
        _finite(records, key)
    config = json.loads((rm_dir / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_CLS" and "score" in config["modules_to_save"]
    assert (rm_dir / "train_results.json").is_file()

    ppo_dir = tmp_path / "ppo"
    task = write_task(
        ppo_dir,
        stage="ppo",
        dataset="demo_alpaca",
        reward_model=str(rm_dir),
        reward_model_type="lora",
        max_new_tokens=6,
        ppo_epochs=2,
        ppo_score_norm=True,
        ppo_whiten_rewards=True,
        **FEW_STEPS,
    )
    assert run_in_process(task) == 0
    records = read_log(ppo_dir)
    assert [r["current_steps"] for r in records] == [1, 2]
    for key in ("loss", "reward", "kl", "ppo/loss/policy", "ppo/loss/value"):
        _finite(records, key)
    assert records[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # the untouched adapter equals the reference
    assert (ppo_dir / "adapter_model.safetensors").is_file()
    assert (ppo_dir / "value_head.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["sigmoid", "hinge", "ipo", "orpo", "simpo"])
def test_dpo_losses_train_and_log_rewards(tmp_path, loss):
    run_dir = tmp_path / loss
    extra = {"pref_ftx": 0.5} if loss in ("sigmoid", "simpo") else {}
    task = write_task(run_dir, stage="dpo", dataset="demo_pairwise", pref_loss=loss, **extra, **FEW_STEPS)
    assert run_in_process(task) == 0
    records = read_log(run_dir)
    _finite(records, "loss")
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"):
        _finite(records, key)
    if loss == "orpo":
        _finite(records, "log_odds_ratio")
    assert (run_dir / "adapter_model.safetensors").is_file()
    assert (run_dir / "train_results.json").is_file()


@pytest.mark.slow
def test_dpo_keeps_every_row_whose_prompt_exceeds_the_cutoff(tmp_path, caplog):
    """TRL would drop pairs whose prompt alone fills max_length; they are cut like LLaMA-Factory instead."""
    run_dir = tmp_path / "long-prompts"
    steps = {**FEW_STEPS, "max_samples": 6}
    task = write_task(
        run_dir, stage="dpo", dataset="demo_pairwise", pref_loss="sigmoid", cutoff_len=8, **steps
    )
    with caplog.at_level("WARNING", logger="tunequeue.train.data"):
        assert run_in_process(task) == 0
    assert (
        "6 of 6 dpo examples were longer than cutoff_len 8 and were truncated (none dropped)" in caplog.text
    )
    records = read_log(run_dir)
    # 6 rows at batch 2: three steps, none lost to TRL's filter.
    assert [r["current_steps"] for r in records] == [1, 2, 3]
    _finite(records, "accuracy")
    assert all(r["throughput"] > 0 for r in records)
    # Each step sees 2 pairs of (prompt + answer) <= 8 tokens, chosen and rejected.
    assert 0 < records[-1]["total_tokens"] <= 3 * 2 * 2 * 8


@pytest.mark.slow
def test_kto_keeps_every_row_whose_prompt_exceeds_the_cutoff(tmp_path, caplog):
    run_dir = tmp_path / "kto-long-prompts"
    task = write_task(
        run_dir, stage="kto", dataset="demo_kto", cutoff_len=8, **{**FEW_STEPS, "max_samples": 6}
    )
    with caplog.at_level("WARNING", logger="tunequeue.train.data"):
        assert run_in_process(task) == 0
    assert (
        "6 of 6 kto examples were longer than cutoff_len 8 and were truncated (none dropped)" in caplog.text
    )
    records = read_log(run_dir)
    assert [r["current_steps"] for r in records] == [1, 2, 3]
    _finite(records, "loss")
    assert records[-1]["total_tokens"] > 0


@pytest.mark.slow
def test_kto_trains_with_class_weights(tmp_path):
    run_dir = tmp_path / "kto"
    task = write_task(
        run_dir, stage="kto", dataset="demo_kto", kto_chosen_weight=1.0, kto_rejected_weight=1.5, **FEW_STEPS
    )
    assert run_in_process(task) == 0
    records = read_log(run_dir)
    _finite(records, "loss")
    _finite(records, "kl")
    assert any("rewards/chosen" in r or "rewards/rejected" in r for r in records)
    assert (run_dir / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_galore_and_badam_train_full_weights(tmp_path):
    galore = write_task(
        tmp_path / "galore",
        finetuning_type="full",
        use_galore=True,
        galore_rank=4,
        galore_update_interval=1,
        galore_scale=0.25,
        **FEW_STEPS,
    )
    assert run_in_process(galore) == 0
    _finite(read_log(tmp_path / "galore"), "loss")
    badam = write_task(
        tmp_path / "badam", finetuning_type="full", use_badam=True, badam_switch_interval=1, **FEW_STEPS
    )
    assert run_in_process(badam) == 0
    _finite(read_log(tmp_path / "badam"), "loss")
    assert (tmp_path / "badam" / "model.safetensors").is_file()


def test_galore_arguments_reach_transformers():
    from tunequeue.core.spec import TaskSpec
    from tunequeue.train.optimizers import optimizer_arguments

    spec = TaskSpec.from_mapping(
        {
            "task_name": "g",
            "model_name_or_path": "tunequeue/tiny-llama",
            "dataset": "demo_alpaca",
            "finetuning_type": "full",
            "use_galore": True,
            "galore_rank": 8,
            "galore_layerwise": True,
            "galore_target": "q_proj,v_proj",
        }
    )
    args = optimizer_arguments(spec)
    assert args["optim"] == "galore_adamw_layerwise"
    assert args["optim_target_modules"] == ["q_proj", "v_proj"]
    assert "rank=8" in args["optim_args"] and "proj_type=std" in args["optim_args"]


@pytest.mark.parametrize(
    ("key", "module", "extra"), [("use_galore", "galore_torch", "galore"), ("use_badam", "badam", "badam")]
)
def test_missing_optimizer_package_is_refused_at_validation(monkeypatch, key, module, extra):
    import importlib.util

    from tunequeue.core.rules import check_task

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a)
    )
    report = check_task(
        {
            "task_name": "opt",
            "model_name_or_path": "tunequeue/tiny-llama",
            "dataset": "demo_alpaca",
            "finetuning_type": "full",
            key: True,
        }
    )
    messages = [problem.message("en") for problem in report.errors]
    assert any(f"tunequeue[{extra}]" in message for message in messages), messages


def test_badam_ratio_mode_is_refused_with_one_sentence(tmp_path):
    task = write_task(
        tmp_path / "ratio", finetuning_type="full", use_badam=True, badam_mode="ratio", max_samples=2
    )
    assert run_in_process(task) == 2
