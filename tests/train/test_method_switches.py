"""Method switches of LLaMA-Factory files train for real: OFT, the DFT loss, LLaMA Pro blocks, Muon,
and Trainer arguments passed through from ``extra`` (max_steps, save_strategy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tq_train_helpers import read_log, run_in_process, write_task

# 8 examples, batch 2: 4 optimizer steps.
SHORT = {"num_train_epochs": 1, "max_samples": 8}


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_oft_trains_an_orthogonal_adapter(tmp_path):
    run_dir = tmp_path / "oft"
    task = write_task(run_dir, finetuning_type="oft", extra={"oft_block_size": 32}, **SHORT)
    assert run_in_process(task) == 0
    config = json.loads((run_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "OFT" and config["oft_block_size"] == 32
    weights = _tensors(run_dir / "adapter_model.safetensors")
    rotations = [name for name in weights if "oft_R" in name]
    assert len(rotations) == 14  # q k v o gate up down in both layers
    # OFT starts at the identity rotation (all zeros); training moved every block.
    assert all(weights[name].abs().max() > 0 for name in rotations)
    assert read_log(run_dir)[-1]["current_steps"] == 4


def test_dft_loss_scales_token_loss_by_its_probability(tmp_path):
    import torch

    from tunequeue.train.losses import dft_loss

    logits = torch.randn(2, 5, 11)
    labels = torch.tensor([[-100, 3, 4, -100, 1], [-100, -100, 2, 7, 9]])
    ce = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="none"
    )
    expected = (ce * torch.exp(-ce)).sum() / (labels[:, 1:] != -100).sum()
    assert torch.allclose(dft_loss({"logits": logits}, labels), expected)
    assert torch.allclose(dft_loss({"logits": logits}, labels, num_items_in_batch=10), expected * 6 / 10)

    run_dir = tmp_path / "dft"
    task = write_task(run_dir, extra={"use_dft_loss": True}, **SHORT)
    assert run_in_process(task) == 0
    first = read_log(run_dir)[0]["loss"]
    # The untrained tiny model gives each answer token ~1/2000: cross-entropy ~7.6, DFT loss ~0.004.
    assert 0 < first < 0.05
    weights = _tensors(run_dir / "adapter_model.safetensors")
    assert any(name.endswith("lora_B.weight") and tensor.abs().max() > 0 for name, tensor in weights.items())


def test_llama_pro_expands_blocks_and_trains_only_them(tmp_path, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from tunequeue.train.llama_pro import expand_blocks

    expanded_dir = expand_blocks(str(tiny_model_dir), tmp_path / "pro", 2)
    original = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    expanded = AutoModelForCausalLM.from_pretrained(str(expanded_dir))
    assert expanded.config.num_hidden_layers == 4
    ids = torch.tensor([[1, 5, 9, 42, 7, 300]])
    with torch.no_grad():
        # Zero output projections make every copy an identity block: same logits as before.
        assert torch.allclose(original(ids).logits, expanded(ids).logits, atol=1e-5)

    run_dir = tmp_path / "run"
    task = write_task(
        run_dir,
        model_name_or_path=str(expanded_dir),
        finetuning_type="freeze",
        freeze_trainable_layers=2,
        learning_rate=1e-3,
        extra={"use_llama_pro": True},
        **SHORT,
    )
    assert run_in_process(task) == 0
    before = _tensors(expanded_dir / "model.safetensors")
    after = _tensors(run_dir / "model.safetensors")
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed, "training changed nothing"
    assert {name.split(".")[2] for name in changed} == {"1", "3"}  # only the expanded blocks
    assert all(name.startswith("model.layers.") for name in changed)


def test_muon_trains_full_weights(tmp_path):
    import torch

    from tunequeue.train.assets import bundled_model_dir

    run_dir = tmp_path / "muon"
    task = write_task(run_dir, finetuning_type="full", learning_rate=1e-3, extra={"use_muon": True}, **SHORT)
    assert run_in_process(task) == 0
    before = _tensors(bundled_model_dir() / "model.safetensors")
    after = _tensors(run_dir / "model.safetensors")
    assert not torch.equal(
        before["model.layers.0.self_attn.q_proj.weight"], after["model.layers.0.self_attn.q_proj.weight"]
    )
    assert not torch.equal(before["model.norm.weight"], after["model.norm.weight"])  # the AdamW part
    losses = [record["loss"] for record in read_log(run_dir) if "loss" in record]
    assert all(loss == loss for loss in losses)  # no NaN


def test_muon_with_adamw_steps_both_kinds_of_parameter():
    import torch

    from tunequeue.train.optimizers import make_muon_with_adamw

    torch.manual_seed(0)
    matrix = torch.nn.Parameter(torch.randn(8, 6))
    bias = torch.nn.Parameter(torch.randn(6))
    optimizer = make_muon_with_adamw(
        [{"params": [matrix], "use_muon": True}, {"params": [bias], "use_muon": False}], lr=0.05
    )
    target = torch.randn(4, 6)
    inputs = torch.randn(4, 8)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = ((inputs @ matrix + bias - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7
    assert "momentum_buffer" in optimizer.state[matrix] and "exp_avg" in optimizer.state[bias]


def test_trainer_arguments_from_extra_are_honoured(tmp_path):
    run_dir = tmp_path / "pass"
    task = write_task(
        run_dir,
        save_steps=1,
        extra={"max_steps": 3, "save_strategy": "no", "adam_beta2": 0.95, "disable_tqdm": True},
        **SHORT,
    )
    assert run_in_process(task) == 0
    state = json.loads((run_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and state["max_steps"] == 3
    assert not list(run_dir.glob("checkpoint-*"))  # save_strategy no beats save_steps 1
    import torch

    args = torch.load(run_dir / "training_args.bin", weights_only=False)
    assert args.adam_beta2 == 0.95


@pytest.mark.parametrize("stage", ["dpo", "kto"])
def test_dft_and_muon_are_refused_where_they_cannot_apply(stage):
    from tunequeue.core.extra_keys import extra_problems

    problems = extra_problems({"use_dft_loss": True, "use_muon": True}, finetuning_type="lora", stage=stage)
    assert {key for key, _en, _zh in problems} == {"use_dft_loss", "use_muon"}


@pytest.mark.parametrize(
    ("switch", "optimizer_class"),
    [("use_adam_mini", "adam_mini.adam_mini.Adam_mini"), ("use_apollo", "apollo_torch.apollo.AdamW")],
)
def test_optional_optimizers_train_full_weights(tmp_path, switch, optimizer_class):
    import torch

    from tunequeue.core.spec import TaskSpec
    from tunequeue.train.assets import bundled_model_dir
    from tunequeue.train.model import load_model, resolve_precision
    from tunequeue.train.optimizers import custom_optimizer
    from tunequeue.train.runtime import build_training_arguments, make_trainer_class

    extra = {switch: True, "apollo_rank": 4}
    spec = TaskSpec.from_mapping(
        {
            "task_name": "o",
            "model_name_or_path": "tunequeue/tiny-llama",
            "dataset": "demo_alpaca",
            "finetuning_type": "full",
            "extra": extra,
        }
    )
    precision = resolve_precision(spec)
    model = load_model(spec, precision)
    args = build_training_arguments(spec, tmp_path / "args", precision, has_eval=False)
    optimizer = custom_optimizer(model, spec, args)
    if optimizer is None:  # APOLLO goes through the Trainer's own optim names
        trainer = make_trainer_class()(model=model, args=args)
        optimizer = trainer.create_optimizer()
    assert f"{type(optimizer).__module__}.{type(optimizer).__name__}" == optimizer_class

    run_dir = tmp_path / switch
    task = write_task(run_dir, finetuning_type="full", learning_rate=1e-3, extra=extra, **SHORT)
    assert run_in_process(task) == 0
    before = _tensors(bundled_model_dir() / "model.safetensors")
    after = _tensors(run_dir / "model.safetensors")
    name = "model.layers.1.mlp.down_proj.weight"
    assert not torch.equal(before[name], after[name])


def test_llama_pro_with_lora_puts_adapters_on_the_expanded_blocks_only(tmp_path, tiny_model_dir):
    from tunequeue.train.llama_pro import expand_blocks

    expanded_dir = expand_blocks(str(tiny_model_dir), tmp_path / "pro", 2)
    run_dir = tmp_path / "run"
    task = write_task(
        run_dir,
        model_name_or_path=str(expanded_dir),
        freeze_trainable_layers=2,
        extra={"use_llama_pro": True},
        **SHORT,
    )
    assert run_in_process(task) == 0
    weights = _tensors(run_dir / "adapter_model.safetensors")
    layers = {name.split("layers.")[1].split(".")[0] for name in weights}
    assert layers == {"1", "3"}
    assert len(weights) == 2 * 7 * 2  # A and B of 7 linear layers in 2 blocks
