"""Evaluate and predict jobs: run a model (+ adapter) over a dataset without training.

Data: ``eval_dataset`` when set, else ``dataset`` (names in dataset_info.json), templated like sft.

- eval (``do_train: false``, ``do_eval: true``): mean next-token loss over the answers →
  ``eval_results.json`` ({"eval_loss", "eval_samples", "eval_perplexity"}).
- predict (``do_train: false``, ``do_predict: true``): with ``predict_with_generate`` every prompt is
  answered with ``generate`` (``max_new_tokens``, ``top_p``, ``temperature``, ``do_sample`` — on by
  default, as in LLaMA-Factory; older task files keep it in ``extra``, which is still read; temperature 0
  means greedy) and compared with the reference answer: ``generated_predictions.jsonl`` (one {"prompt",
  "predict", "label"} per line) and ``predict_results.json`` (``predict_bleu-4``, ``predict_rouge-1/2/l`` in
  percent; see
  `tunequeue.train.metrics_text`). Without it, the loss is reported as ``predict_loss``.

Both write progress lines to ``trainer_log.jsonl`` (current_steps = batches done) so the queue and
dashboard follow them like training, and stop at the next batch on SIGTERM (exit code 3).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.core import private_files
from tunequeue.train.callbacks import TRAINER_LOG, StopRequest, _clock
from tunequeue.train.runtime import Cancelled, TrainOutcome

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

PREDICTIONS_FILE = "generated_predictions.jsonl"


class ProgressLog:
    """Append LLaMA-Factory-style progress records for a job measured in batches."""

    def __init__(self, run_dir: Path, total: int) -> None:
        self.path = run_dir / TRAINER_LOG
        self.total = max(total, 1)
        self.start = time.time()
        self.path.unlink(missing_ok=True)

    def write(self, step: int, **metrics: float) -> None:
        """One flushed line after `step` batches, with any extra metrics."""
        elapsed = time.time() - self.start
        remaining = (self.total - step) * elapsed / step if step else 0.0
        record = {
            "current_steps": step,
            "total_steps": self.total,
            "percentage": round(100.0 * step / self.total, 2),
            "elapsed_time": _clock(elapsed),
            "remaining_time": _clock(remaining),
            "elapsed_seconds": round(elapsed, 3),
            "remaining_seconds": round(remaining, 3),
            "time": round(time.time(), 3),
            **{k: round(float(v), 6) for k, v in metrics.items()},
        }
        with private_files.open_file(self.path, "a") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        shown = "".join(f" | {k} {v:.4g}" for k, v in metrics.items())
        print(f"step {step}/{self.total} ({record['percentage']:.0f}%){shown}", flush=True)


def _data_names(spec: TaskSpec) -> str:
    return spec.eval_dataset or spec.dataset


def _load(spec: TaskSpec) -> tuple[Any, Any, Any, str]:
    """(model, tokenizer, template, device) for the task's model and adapters."""
    from tunequeue.train.assets import resolve_model_path
    from tunequeue.train.inference import (
        inference_device,
        load_inference_model,
        load_tokenizer_for,
        split_adapters,
    )
    from tunequeue.train.templates import template_for_spec

    adapters = split_adapters(spec.adapter_name_or_path)
    tokenizer = load_tokenizer_for(resolve_model_path(spec.model_name_or_path), adapters)
    template = template_for_spec(spec, tokenizer)
    device = inference_device("auto")
    model = load_inference_model(spec.model_name_or_path, spec.adapter_name_or_path, device=device)
    return model, tokenizer, template, device


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def mean_loss(
    spec: TaskSpec,
    run_dir: Path,
    stop: StopRequest,
    model: Any,
    tokenizer: Any,
    template: Any,
    device: str,
    key: str,
) -> dict[str, float]:
    """Token-weighted mean loss of the answers over the task's eval data, as {key: loss, …}."""
    import torch

    from tunequeue.train.data import load_examples, make_collator
    from tunequeue.train.data.processor import IGNORE_INDEX, add_attention, encode_supervised

    examples = load_examples(spec, _data_names(spec), "sft")
    rows = []
    for example in examples:
        row = encode_supervised(
            example,
            tokenizer,
            template,
            cutoff_len=spec.cutoff_len,
            train_on_prompt=False,
            mask_history=False,
        )
        if row is not None:
            rows.append(row)
    rows = add_attention(rows)
    collator = make_collator(tokenizer, packing=False)
    batches = _batches(rows, spec.per_device_eval_batch_size)
    progress = ProgressLog(run_dir, len(batches))
    total_loss, total_tokens = 0.0, 0
    for step, batch_rows in enumerate(batches, start=1):
        if stop.requested:
            raise Cancelled(step - 1, None)
        batch = {k: v.to(device) for k, v in collator(batch_rows).items()}
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"][:, 1:]
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().reshape(-1, logits.size(-1)),
            labels.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        total_loss += float(losses)
        total_tokens += int((labels != IGNORE_INDEX).sum())
        progress.write(step, **{key: total_loss / max(total_tokens, 1)})
    loss = total_loss / max(total_tokens, 1)
    prefix = key.split("_")[0]
    return {key: loss, f"{prefix}_samples": len(rows), f"{prefix}_perplexity": math.exp(min(loss, 50.0))}


def _write_results(run_dir: Path, name: str, results: dict[str, Any]) -> None:
    (run_dir / name).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    all_path = run_dir / "all_results.json"
    merged = json.loads(all_path.read_text(encoding="utf-8")) if all_path.is_file() else {}
    merged.update(results)
    all_path.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def run_eval(spec: TaskSpec, run_dir: Path, stop: StopRequest) -> TrainOutcome:
    """Evaluate the task's model on its eval data; writes eval_results.json."""
    model, tokenizer, template, device = _load(spec)
    results = mean_loss(spec, run_dir, stop, model, tokenizer, template, device, "eval_loss")
    _write_results(run_dir, "eval_results.json", results)
    print(f"eval_loss {results['eval_loss']:.4f} over {results['eval_samples']} examples", flush=True)
    return TrainOutcome(global_step=0, metrics=results, output_dir=run_dir)


def generation_settings(spec: TaskSpec, tokenizer: Any) -> dict[str, Any]:
    """Keyword arguments for `generate` from the task's generation settings."""
    do_sample = sampling_requested(spec) and spec.temperature > 0
    settings: dict[str, Any] = {
        "max_new_tokens": spec.max_new_tokens,
        "do_sample": do_sample,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": _stop_ids(tokenizer),
    }
    if do_sample:
        settings.update(top_p=spec.top_p, temperature=spec.temperature)
    else:
        settings.update(top_p=None, temperature=None, top_k=None)
    return settings


def sampling_requested(spec: TaskSpec) -> bool:
    """The task's ``do_sample``; a task file that does not set it may carry it in ``extra`` (older files)."""
    if "do_sample" not in getattr(spec, "model_fields_set", set()):
        legacy = (getattr(spec, "extra", None) or {}).get("do_sample")
        if legacy is not None:
            return bool(legacy)
    return bool(getattr(spec, "do_sample", False))


def _stop_ids(tokenizer: Any) -> list[int]:
    """EOS plus the end-of-turn tokens chat templates use, when the vocabulary has them."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id not in ids:
            ids.append(token_id)
    return ids


def generate_answers(
    model: Any, tokenizer: Any, prompts: list[list[int]], settings: dict[str, Any], device: str
) -> list[str]:
    """Answer a batch of prompt token lists (left-padded), returning the decoded new text of each."""
    import torch

    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    with torch.no_grad():
        output = model.generate(input_ids=input_ids, attention_mask=attention, **settings)
    return [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in output]


def run_predict(spec: TaskSpec, run_dir: Path, stop: StopRequest) -> TrainOutcome:
    """Answer every prompt of the eval data; writes generated_predictions.jsonl and predict_results.json."""
    from tunequeue.train.data import load_examples
    from tunequeue.train.metrics_text import similarity_scores

    model, tokenizer, template, device = _load(spec)
    if not spec.predict_with_generate:
        results = mean_loss(spec, run_dir, stop, model, tokenizer, template, device, "predict_loss")
        _write_results(run_dir, "predict_results.json", results)
        return TrainOutcome(global_step=0, metrics=results, output_dir=run_dir)
    import torch

    torch.manual_seed(spec.seed)
    items = []
    for example in load_examples(spec, _data_names(spec), "sft"):
        messages = example["messages"]
        turns = template.encode_conversation(tokenizer, messages, example.get("system"))
        prompt_ids = [t for prompt, response in turns[:-1] for t in prompt + response] + turns[-1][0]
        prompt_ids = prompt_ids[-spec.cutoff_len :]
        items.append((prompt_ids, messages[-1]["content"]))
    settings = generation_settings(spec, tokenizer)
    batches = _batches(items, spec.per_device_eval_batch_size)
    progress = ProgressLog(run_dir, len(batches))
    predictions, labels = [], []
    with (run_dir / PREDICTIONS_FILE).open("w", encoding="utf-8") as out:
        for step, batch in enumerate(batches, start=1):
            if stop.requested:
                raise Cancelled(step - 1, None)
            answers = generate_answers(model, tokenizer, [p for p, _ in batch], settings, device)
            for (prompt_ids, label), answer in zip(batch, answers, strict=True):
                prompt = tokenizer.decode(prompt_ids, skip_special_tokens=False)
                out.write(
                    json.dumps({"prompt": prompt, "predict": answer, "label": label}, ensure_ascii=False)
                    + "\n"
                )
                predictions.append(answer)
                labels.append(label)
            out.flush()
            progress.write(step)
    scores = similarity_scores(predictions, labels)
    results = {f"predict_{key}": value for key, value in scores.items()}
    results["predict_samples"] = len(predictions)
    _write_results(run_dir, "predict_results.json", results)
    print("  ".join(f"{k} {v}" for k, v in results.items()), flush=True)
    return TrainOutcome(global_step=0, metrics=results, output_dir=run_dir)
