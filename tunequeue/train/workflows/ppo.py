"""PPO: optimise the policy against a reward model, with a KL penalty towards the reference.

Why a loop of our own: TRL 1.16, the installed version, no longer ships a PPO trainer (its last home,
``trl.experimental.ppo``, ended with 1.12), and pinning an older TRL would hold back every other stage.
PPO for language models is short enough to write out plainly on torch, peft and transformers, in the
shape LLaMA-Factory's PPO (through TRL's former PPOTrainer) uses:

1. Rollout: a batch of ``per_device_train_batch_size × gradient_accumulation_steps × ppo_buffer_size``
   prompts (templated like sft) is answered with ``generate`` (``max_new_tokens``, ``top_p``,
   ``temperature``).
2. Scoring: the reward model (``reward_model``: an rm-stage LoRA adapter on the same base with
   ``reward_model_type lora``, or a full sequence-classification model dir with ``full``) scores each
   prompt + answer; with ``ppo_score_norm`` scores are normalised by their running mean and deviation.
3. Rewards per token: −β·(log π − log π_ref) for the KL to the reference (the adapter-disabled base with
   LoRA, else a frozen copy), plus the score on the answer's last token; β adapts so the KL tracks
   ``ppo_target`` (adaptive KL control). ``ppo_whiten_rewards`` whitens them.
4. Advantages: GAE (γ = 1, λ = 0.95) with a value head (a linear layer on the policy's last hidden
   state) trained alongside, then whitened.
5. Update: ``ppo_epochs`` passes over the buffer in mini-batches of ``per_device_train_batch_size``,
   clipped policy loss (ε = 0.2) + 0.1 × clipped value loss, gradients accumulated over
   ``gradient_accumulation_steps`` mini-batches, clipped at ``max_grad_norm``.

Each step writes a trainer_log.jsonl line (loss, reward, kl, kl_coef, policy and value loss, lr). The
policy (adapter or full weights) and ``value_head.safetensors`` are saved at the end; a stop request
saves them into ``checkpoint-N`` and exits 3. A PPO run does not resume: a rerun starts over.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError
from tunequeue.train.callbacks import StopRequest
from tunequeue.train.data import load_examples
from tunequeue.train.model import load_tokenizer, resolve_precision
from tunequeue.train.rlhf import load_policy, load_reference, load_reward_model
from tunequeue.train.runtime import Cancelled, TrainOutcome, plot_loss
from tunequeue.train.templates import template_for_spec

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

CLIP_RANGE = 0.2
VALUE_CLIP_RANGE = 0.2
VALUE_COEF = 0.1
GAMMA = 1.0
LAMBDA = 0.95
INIT_KL_COEF = 0.2
KL_HORIZON = 10000


class AdaptiveKL:
    """β that grows when the KL to the reference exceeds the target and shrinks when below."""

    def __init__(self, target: float, value: float = INIT_KL_COEF, horizon: int = KL_HORIZON) -> None:
        self.target = target
        self.value = value
        self.horizon = horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        """Move β by at most ±20 % × n_steps / horizon towards the target KL."""
        error = max(min(current_kl / self.target - 1, 0.2), -0.2)
        self.value *= 1 + error * n_steps / self.horizon


class RunningMoments:
    """Running mean and standard deviation of all scores seen (for ``ppo_score_norm``)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, values: list[float]) -> None:
        """Add values (Welford)."""
        for value in values:
            self.count += 1
            delta = value - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (value - self.mean)

    @property
    def std(self) -> float:
        """Sample deviation (1 until two values were seen)."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 1.0


def masked_mean(values: Any, mask: Any) -> Any:
    """Mean of `values` where `mask` is 1."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def whiten(values: Any, mask: Any, *, shift_mean: bool = True) -> Any:
    """Normalise `values` to unit variance over the mask (and zero mean unless `shift_mean` is False)."""
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    whitened = (values - mean) * (variance + 1e-8).rsqrt()
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def gae(rewards: Any, values: Any, mask: Any, gamma: float = GAMMA, lam: float = LAMBDA) -> tuple[Any, Any]:
    """Generalised advantage estimates and returns for per-token rewards and values (B × T)."""
    import torch

    values = values * mask
    rewards = rewards * mask
    steps = rewards.size(1)
    last = torch.zeros_like(rewards[:, 0])
    advantages = torch.zeros_like(rewards)
    for t in reversed(range(steps)):
        next_value = values[:, t + 1] if t + 1 < steps else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last
        advantages[:, t] = last
    advantages = advantages * mask
    return advantages, advantages + values


class PolicyWithValue:
    """The policy LM plus a linear value head on its last hidden state."""

    def __init__(self, policy: Any, device: Any) -> None:
        import torch

        self.policy = policy
        hidden = int(policy.config.hidden_size)
        self.value_head = torch.nn.Linear(hidden, 1).to(device)
        torch.nn.init.normal_(self.value_head.weight, std=1 / math.sqrt(hidden + 1))
        torch.nn.init.zeros_(self.value_head.bias)

    def parameters(self) -> list[Any]:
        """Trainable parameters of the policy and the value head."""
        return [p for p in self.policy.parameters() if p.requires_grad] + list(self.value_head.parameters())

    def forward(self, ids: Any, attention: Any, prompt_width: int) -> tuple[Any, Any]:
        """(log-probs of the response tokens, values at the positions predicting them), each B × R."""
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        out = self.policy(
            input_ids=ids, attention_mask=attention, position_ids=positions, output_hidden_states=True
        )
        logits = out.logits[:, prompt_width - 1 : -1].float()
        response = ids[:, prompt_width:]
        logprobs = logits.log_softmax(-1).gather(-1, response.unsqueeze(-1)).squeeze(-1)
        hidden = out.hidden_states[-1][:, prompt_width - 1 : -1].float()
        values = self.value_head(hidden).squeeze(-1)
        return logprobs, values


def reference_logprobs(reference: Any, policy: Any, ids: Any, attention: Any, prompt_width: int) -> Any:
    """Log-probs of the response tokens under the reference (the adapter-disabled policy when None)."""
    import torch

    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        if reference is None:
            with policy.disable_adapter():
                logits = policy(input_ids=ids, attention_mask=attention, position_ids=positions).logits
        else:
            logits = reference(input_ids=ids, attention_mask=attention, position_ids=positions).logits
    logits = logits[:, prompt_width - 1 : -1].float()
    return logits.log_softmax(-1).gather(-1, ids[:, prompt_width:].unsqueeze(-1)).squeeze(-1)


def _prompts(spec: TaskSpec, tokenizer: Any, template: Any) -> list[list[int]]:
    """Token ids of every prompt (conversation up to the last assistant cue), cut to cutoff_len."""
    prompts = []
    for example in load_examples(spec, spec.dataset, "ppo"):
        turns = template.encode_conversation(tokenizer, example["messages"], example.get("system"))
        ids = [t for prompt, response in turns[:-1] for t in prompt + response] + turns[-1][0]
        prompts.append(ids[-spec.cutoff_len :])
    if not prompts:
        raise UserError("stage ppo found no prompts in the dataset; check dataset and max_samples")
    return prompts


def _rollout(model: PolicyWithValue, tokenizer: Any, prompts: list[list[int]], settings: dict, device: Any):
    """Generate answers; returns (ids, attention, response mask, prompt width), ids left-padded prompts."""
    import torch

    from tunequeue.train.evaluate import _stop_ids

    pad = tokenizer.pad_token_id
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    with torch.no_grad():
        output = model.policy.generate(input_ids=ids, attention_mask=attention, **settings)
    response = output[:, width:]
    if response.size(1) == 0:
        raise UserError("generation produced no tokens; raise max_new_tokens")
    stops = torch.tensor(_stop_ids(tokenizer), device=device)
    is_stop = torch.isin(response, stops)
    # Keep tokens up to and including the first stop token; pad what follows.
    after_stop = (is_stop.cumsum(-1) - is_stop.long()) > 0
    response_mask = (~after_stop).long()
    response = torch.where(after_stop, torch.full_like(response, pad), response)
    full = torch.cat([ids, response], dim=1)
    full_attention = torch.cat([attention, response_mask], dim=1)
    return full, full_attention, response_mask, width


def _scores(reward_model: Any, ids: Any, attention: Any) -> Any:
    """One scalar per sequence from the reward model (its value at the last real token)."""
    import torch

    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = reward_model(input_ids=ids, attention_mask=attention, position_ids=positions).logits
    return logits[:, 0].float()


def _save(model: PolicyWithValue, tokenizer: Any, directory: Path) -> None:
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    model.policy.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    state = {k: v.detach().cpu().contiguous() for k, v in model.value_head.state_dict().items()}
    save_file(state, str(directory / "value_head.safetensors"))


def _total_steps(spec: TaskSpec, num_prompts: int, rollout_size: int) -> int:
    max_steps = int((spec.extra or {}).get("max_steps", -1) or -1)
    if max_steps > 0:
        return max_steps
    return max(1, math.ceil(spec.num_train_epochs * math.ceil(num_prompts / rollout_size)))


def run_ppo(spec: TaskSpec, run_dir: Path, stop: StopRequest) -> TrainOutcome:
    """Train `spec` with stage ppo in `run_dir` (see the module docstring for the algorithm)."""
    import torch
    from transformers import get_scheduler

    from tunequeue.train.evaluate import ProgressLog

    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    tokenizer = load_tokenizer(spec)
    template = template_for_spec(spec, tokenizer)
    prompts = _prompts(spec, tokenizer, template)
    precision = resolve_precision(spec)
    device = torch.device("cuda" if precision.on_cuda else "cpu")
    reward_model, _reward_tokenizer = load_reward_model(spec, precision)
    reward_model.to(device)
    policy = load_policy(spec, precision).to(device)
    reference = load_reference(spec, precision, policy)
    if reference is not None:
        reference.to(device)
    policy.eval()  # no dropout: rollout and update log-probs must agree
    model = PolicyWithValue(policy, device)
    mini_batch = spec.per_device_train_batch_size
    accumulation = spec.gradient_accumulation_steps
    rollout_size = mini_batch * accumulation * spec.ppo_buffer_size
    total_steps = _total_steps(spec, len(prompts), rollout_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay)
    updates_per_step = spec.ppo_epochs * math.ceil(rollout_size / (mini_batch * accumulation))
    warmup = spec.warmup_steps or int(spec.warmup_ratio * total_steps * updates_per_step)
    scheduler = get_scheduler(
        spec.lr_scheduler_type,
        optimizer,
        num_warmup_steps=warmup,
        num_training_steps=total_steps * updates_per_step,
    )
    settings = {
        "max_new_tokens": spec.max_new_tokens,
        "do_sample": True,
        "top_p": spec.top_p,
        "temperature": max(spec.temperature, 1e-3),
        "pad_token_id": tokenizer.pad_token_id,
    }
    kl_control = AdaptiveKL(spec.ppo_target)
    moments = RunningMoments()
    progress = ProgressLog(run_dir, total_steps)
    order: list[int] = []
    history: list[dict[str, float]] = []
    for step in range(1, total_steps + 1):
        if stop.requested:
            checkpoint = run_dir / f"checkpoint-{step - 1}"
            _save(model, tokenizer, checkpoint)
            raise Cancelled(step - 1, checkpoint)
        batch_prompts = []
        while len(batch_prompts) < rollout_size:
            if not order:
                order = list(range(len(prompts)))
                rng.shuffle(order)
            batch_prompts.append(prompts[order.pop()])
        ids, attention, mask, width = _rollout(model, tokenizer, batch_prompts, settings, device)
        maskf = mask.float()
        with torch.no_grad():
            old_logprobs, old_values = model.forward(ids, attention, width)
            ref_logprobs = reference_logprobs(reference, policy, ids, attention, width)
            scores = _scores(reward_model, ids, attention)
            raw_scores = scores.clone()
            if spec.ppo_score_norm:
                moments.update(scores.tolist())
                scores = (scores - moments.mean) / (moments.std + 1e-8)
            kl = (old_logprobs - ref_logprobs) * maskf
            rewards = -kl_control.value * kl
            last = (mask.sum(-1) - 1).clamp(min=0)
            rewards[torch.arange(rewards.size(0)), last] += scores
            if spec.ppo_whiten_rewards:
                rewards = whiten(rewards, maskf, shift_mean=False)
            advantages, returns = gae(rewards, old_values, maskf)
            advantages = whiten(advantages, maskf)
        stats = {"policy": 0.0, "value": 0.0, "updates": 0}
        for _epoch in range(spec.ppo_epochs):
            indices = list(range(ids.size(0)))
            rng.shuffle(indices)
            chunks = [indices[i : i + mini_batch] for i in range(0, len(indices), mini_batch)]
            for chunk_number, chunk in enumerate(chunks, start=1):
                sel = torch.tensor(chunk, device=device)
                logprobs, values = model.forward(ids[sel], attention[sel], width)
                m = maskf[sel]
                ratio = torch.exp(logprobs - old_logprobs[sel])
                adv = advantages[sel]
                policy_loss = masked_mean(
                    torch.max(-adv * ratio, -adv * ratio.clamp(1 - CLIP_RANGE, 1 + CLIP_RANGE)), m
                )
                clipped = old_values[sel] + (values - old_values[sel]).clamp(
                    -VALUE_CLIP_RANGE, VALUE_CLIP_RANGE
                )
                value_loss = 0.5 * masked_mean(
                    torch.max((values - returns[sel]) ** 2, (clipped - returns[sel]) ** 2), m
                )
                loss = policy_loss + VALUE_COEF * value_loss
                (loss / accumulation).backward()
                if chunk_number % accumulation == 0 or chunk_number == len(chunks):
                    torch.nn.utils.clip_grad_norm_(model.parameters(), spec.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                stats["policy"] += float(policy_loss.detach())
                stats["value"] += float(value_loss.detach())
                stats["updates"] += 1
        mean_kl = float(kl.sum(-1).mean())
        kl_control.update(mean_kl, rollout_size)
        updates = max(stats["updates"], 1)
        metrics = {
            "loss": (stats["policy"] + VALUE_COEF * stats["value"]) / updates,
            "reward": float(raw_scores.mean()),
            "kl": mean_kl,
            "kl_coef": kl_control.value,
            "ppo/loss/policy": stats["policy"] / updates,
            "ppo/loss/value": stats["value"] / updates,
            "response_length": float(mask.sum(-1).float().mean()),
            "lr": scheduler.get_last_lr()[0],
            "epoch": step * rollout_size / len(prompts),
        }
        if not all(math.isfinite(v) for v in metrics.values()):
            raise UserError(f"PPO diverged at step {step} (non-finite loss or reward); lower learning_rate")
        progress.write(step, **metrics)
        history.append(metrics)
    _save(model, tokenizer, run_dir)
    results = {
        "train_loss": sum(h["loss"] for h in history) / len(history),
        "reward": history[-1]["reward"],
        "kl": history[-1]["kl"],
        "global_step": total_steps,
    }
    (run_dir / "train_results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if spec.plot_loss:
        plot_loss(run_dir)
    print(f"done: {total_steps} steps; weights saved to {run_dir}", flush=True)
    return TrainOutcome(global_step=total_steps, metrics=results, output_dir=run_dir)
