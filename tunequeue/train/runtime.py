"""Shared machinery of the training process: task file, Trainer, resume, final save, exit codes.

`run_task_file(path)` is what ``python -m tunequeue.train RUN_DIR/task.yaml`` and ``tunequeue train``
execute. The run dir is the YAML's directory; everything the run produces goes there. Exit codes:
0 success, 2 a mistake in the task (one line on stderr, nothing written), 3 cancelled by SIGTERM/SIGINT
after a checkpoint was saved, 4 the disk (or quota) is full, 1 any other failure (a CUDA OOM prints a line
containing "out of memory"). Checkpoints are saved atomically (`tunequeue.train.checkpoints`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.core.disk_full import EXIT_DISK_FULL, is_disk_full
from tunequeue.core.errors import UserError

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

logger = logging.getLogger("tunequeue.train")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_CANCELLED = 3

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
OPTIMIZER_ALIASES = {"adamw_hf": "adamw_torch"}


class Cancelled(Exception):
    """Training stopped on request after saving a checkpoint."""

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"cancelled at step {step}")
        self.step = step
        self.checkpoint = checkpoint


@dataclass
class TrainOutcome:
    """What a finished workflow reports back: final step, metrics and where the weights went."""

    global_step: int
    metrics: dict[str, Any]
    output_dir: Path


def load_task(path: Path) -> tuple[Any, list[str]]:
    """Read a run dir's task YAML through the one preflight (the one `validate` and `submit` run).

    Returns (TaskSpec, warnings); the first error is a `UserError`. The hardware rules are left to the
    engine, which sees the GPUs it was given.
    """
    from tunequeue.core.task_files import read_stored_task
    from tunequeue.core.yaml_files import read_text

    return read_stored_task(read_text(path), path.name)


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint-N directory with the highest N that holds a trainer state, or None."""
    best: tuple[int, Path] | None = None
    if not run_dir.is_dir():
        return None
    for child in run_dir.iterdir():
        match = CHECKPOINT_PATTERN.match(child.name)
        if match and child.is_dir() and (child / "trainer_state.json").is_file():
            step = int(match.group(1))
            if best is None or step > best[0]:
                best = (step, child)
    return best[1] if best else None


def _extra(spec: TaskSpec, key: str, default: Any = None) -> Any:
    extra = getattr(spec, "extra", None) or {}
    return extra.get(key, default)


def build_training_arguments(spec: TaskSpec, run_dir: Path, precision: Any, *, has_eval: bool) -> Any:
    """Translate the task into `TrainingArguments` for transformers 5.

    warmup_ratio becomes a fractional warmup_steps; adamw_hf becomes adamw_torch; an eval set with
    eval_strategy "no" is evaluated every eval_steps (default: save_steps) steps; token counting is on
    for throughput; tqdm is off (train.log gets one line per log instead). TrainingArguments fields kept
    in the task's ``extra`` (an imported LLaMA-Factory file's ``save_strategy``, ``max_steps``,
    ``disable_tqdm`` …) are passed through and win; ``deepspeed`` names a DeepSpeed config file.
    """
    from transformers import TrainingArguments

    warmup: float | int = 0
    if spec.warmup_steps:
        warmup = int(spec.warmup_steps)
    elif spec.warmup_ratio:
        warmup = float(spec.warmup_ratio)
    optim = OPTIMIZER_ALIASES.get(spec.optim, spec.optim)
    report_to = _report_to(spec)
    eval_strategy = "no"
    eval_steps = None
    if has_eval:
        eval_strategy = spec.eval_strategy if spec.eval_strategy not in (None, "no") else "steps"
        eval_steps = spec.eval_steps or spec.save_steps
    kwargs: dict[str, Any] = {
        "output_dir": str(run_dir),
        "per_device_train_batch_size": spec.per_device_train_batch_size,
        "per_device_eval_batch_size": spec.per_device_eval_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "learning_rate": spec.learning_rate,
        "num_train_epochs": spec.num_train_epochs,
        "max_steps": -1,
        "lr_scheduler_type": spec.lr_scheduler_type,
        "warmup_steps": warmup,
        "weight_decay": spec.weight_decay,
        "max_grad_norm": spec.max_grad_norm,
        "optim": optim,
        "neftune_noise_alpha": spec.neftune_noise_alpha,
        "logging_steps": spec.logging_steps,
        "save_strategy": "steps",
        "save_steps": spec.save_steps,
        "save_total_limit": spec.save_total_limit,
        "seed": spec.seed,
        "data_seed": spec.seed,
        "report_to": report_to,
        "eval_strategy": eval_strategy,
        "eval_steps": eval_steps,
        "bf16": precision.bf16,
        "fp16": precision.fp16,
        "use_cpu": not precision.on_cuda,
        "include_num_input_tokens_seen": "non_padding",
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "label_names": ["labels"],
        "ddp_timeout": spec.ddp_timeout,
        "use_liger_kernel": _wants_liger(spec),
        "dataloader_num_workers": 0,
    }
    if report_to == ["tensorboard"]:
        kwargs["logging_dir"] = str(run_dir / "tensorboard")
    from tunequeue.core.extra_keys import passthrough_arguments
    from tunequeue.train.optimizers import optimizer_arguments

    # Trainer arguments an imported file sets (save_strategy, max_steps, adam_beta2 …) win over ours.
    kwargs.update(passthrough_arguments(getattr(spec, "extra", None)))
    deepspeed = _extra(spec, "deepspeed")
    if deepspeed:
        kwargs["deepspeed"] = deepspeed_config(deepspeed)
    kwargs.update(optimizer_arguments(spec))  # GaLore / APOLLO: optim, optim_target_modules, optim_args
    try:
        return TrainingArguments(**kwargs)
    except (ValueError, ImportError) as err:
        raise UserError(f"the training settings were refused: {err}") from err


def deepspeed_config(value: Any) -> Any:
    """The DeepSpeed config for TrainingArguments: a dict as given, or the absolute path of a file."""
    if isinstance(value, dict):
        return value
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise UserError(f"deepspeed config {value} does not exist; give the path of a DeepSpeed JSON file")
    return str(path.resolve())


def _wants_liger(spec: TaskSpec) -> bool:
    from tunequeue.train.model import wants_liger

    return wants_liger(spec)


def _report_to(spec: TaskSpec) -> list[str]:
    value = getattr(spec, "report_to", "none") or "none"
    targets = [v for v in (value if isinstance(value, list) else str(value).split(",")) if v and v != "none"]
    targets = [t.strip() for t in targets]
    if "tensorboard" in targets:
        import importlib.util

        if (
            importlib.util.find_spec("tensorboard") is None
            and importlib.util.find_spec("tensorboardX") is None
        ):
            raise UserError(
                "report_to tensorboard needs the 'tensorboard' package, which is not installed; "
                "pip install tensorboard or set report_to none"
            )
    return targets or ["none"]


def make_trainer_class() -> type:
    """The Trainer subclass: LoRA+ optimizer groups when `loraplus_lr_ratio` is set."""
    from transformers import Trainer

    class TunequeueTrainer(Trainer):
        """HF Trainer with LoRA+ (B matrices at ratio × lr) built through peft's helper."""

        def __init__(
            self,
            *args: Any,
            loraplus_lr_ratio: float | None = None,
            loraplus_lr_embedding: float = 1e-6,
            **kwargs: Any,
        ) -> None:
            self.loraplus_lr_ratio = loraplus_lr_ratio
            self.loraplus_lr_embedding = loraplus_lr_embedding
            super().__init__(*args, **kwargs)

        def create_optimizer(self, model: Any = None) -> Any:
            """Plain Trainer optimizer, or LoRA+ parameter groups when asked."""
            if self.loraplus_lr_ratio is None or self.optimizer is not None:
                return super().create_optimizer(model)
            from peft.optimizers import create_loraplus_optimizer

            optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
            optimizer_kwargs = {k: v for k, v in optimizer_kwargs.items() if k != "lr"}
            self.optimizer = create_loraplus_optimizer(
                model=self.model if model is None else model,
                optimizer_cls=optimizer_cls,
                lr=self.args.learning_rate,
                loraplus_lr_ratio=self.loraplus_lr_ratio,
                loraplus_lr_embedding=self.loraplus_lr_embedding,
                loraplus_weight_decay=self.args.weight_decay,
                **optimizer_kwargs,
            )
            return self.optimizer

    return TunequeueTrainer


def build_trainer(
    spec: TaskSpec,
    run_dir: Path,
    model: Any,
    tokenizer: Any,
    data: Any,
    collator: Any,
    precision: Any,
    stop: Any,
    *,
    resuming: bool,
) -> Any:
    """Assemble the Trainer with our callbacks (metrics file, stop-on-signal)."""
    from tunequeue.train.callbacks import StopCallback, TrainerLogCallback
    from tunequeue.train.optimizers import custom_optimizer

    args = build_training_arguments(spec, run_dir, precision, has_eval=data.eval is not None)
    trainer_cls = make_trainer_class()
    ratio = spec.loraplus_lr_ratio if spec.finetuning_type == "lora" else None
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[TrainerLogCallback(run_dir, resuming=resuming), StopCallback(stop)],
        optimizers=(custom_optimizer(model, spec, args), None),
        compute_loss_func=_loss_function(spec),
        loraplus_lr_ratio=ratio,
        loraplus_lr_embedding=spec.loraplus_lr_embedding if spec.loraplus_lr_embedding is not None else 1e-6,
    )
    # Our TrainerLogCallback prints one readable line per log instead of the raw dicts.
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def _loss_function(spec: TaskSpec) -> Any:
    """The Trainer's custom loss: the DFT loss when ``use_dft_loss`` is on, else None (the model's own)."""
    if not _extra(spec, "use_dft_loss"):
        return None
    from tunequeue.train.losses import dft_loss

    return dft_loss


def save_pissa_initial(model: Any, spec: TaskSpec, run_dir: Path) -> Path | None:
    """Before training, keep PiSSA's initial adapter so the final one can be converted to plain LoRA."""
    if not (spec.finetuning_type == "lora" and spec.pissa_init and spec.pissa_convert):
        return None
    init_dir = run_dir / "pissa_init"
    if (init_dir / "adapter_config.json").is_file():
        return init_dir
    config = model.peft_config["default"]
    original = config.init_lora_weights
    config.init_lora_weights = True
    model.save_pretrained(str(init_dir))
    config.init_lora_weights = original
    return init_dir


def requested_checkpoint(spec: TaskSpec) -> Path | None:
    """LLaMA-Factory's ``resume_from_checkpoint`` (kept in ``extra``): a checkpoint folder to resume."""
    value = _extra(spec, "resume_from_checkpoint")
    if not value:
        return None
    path = Path(str(value)).expanduser()
    if not (path / "trainer_state.json").is_file():
        raise UserError(
            f"resume_from_checkpoint {value} is not a checkpoint folder (no trainer_state.json); "
            "give a checkpoint-N folder or remove it"
        )
    return path


def train_and_save(
    trainer: Any,
    spec: TaskSpec,
    run_dir: Path,
    tokenizer: Any,
    stop: Any,
    *,
    resume_from: Path | None,
    pissa_init_dir: Path | None = None,
    num_train_tokens: int | None = None,
) -> TrainOutcome:
    """Train (resuming when a checkpoint is given), then save weights, tokenizer, results and the plot.

    A stop request ends with `Cancelled` after the Trainer saved the checkpoint of the current step.
    Without a checkpoint of its own, the run resumes from ``resume_from_checkpoint`` when the task names
    one.
    """
    if resume_from is None:
        resume_from = requested_checkpoint(spec)
    if stop.requested:  # asked to stop while data and model were loading: nothing new to save
        step = CHECKPOINT_PATTERN.match(resume_from.name) if resume_from else None
        raise Cancelled(int(step.group(1)) if step else 0, resume_from)
    if resume_from is not None:
        print(f"resuming from {resume_from.name}", flush=True)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    step = trainer.state.global_step
    if stop.requested:
        checkpoint = run_dir / f"checkpoint-{step}"
        raise Cancelled(step, checkpoint if checkpoint.is_dir() else None)
    metrics = dict(result.metrics)
    metrics["total_tokens"] = int(trainer.state.num_input_tokens_seen)
    if num_train_tokens is not None:
        metrics["num_train_tokens"] = int(num_train_tokens)
    if trainer.eval_dataset is not None:
        # The Trainer evaluates at the last step (eval_strategy steps); report that figure.
        evals = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
        if evals:
            metrics["eval_loss"] = evals[-1]["eval_loss"]
    if pissa_init_dir is not None:
        trainer.model.save_pretrained(
            str(run_dir), path_initial_model_for_weight_conversion=str(pissa_init_dir)
        )
        tokenizer.save_pretrained(str(run_dir))
    else:
        trainer.save_model(str(run_dir))
        tokenizer.save_pretrained(str(run_dir))
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    if getattr(spec, "plot_loss", True):
        plot_loss(run_dir)
    print(f"done: {step} steps; weights saved to {run_dir}", flush=True)
    return TrainOutcome(global_step=step, metrics=metrics, output_dir=run_dir)


# Files of a run dir that belong to the run, not to its result (the runner and the wrapper own them).
RUN_ONLY_FILES = frozenset({"task.yaml", "train.log", "process.json", "exit.json", "slurm.json"})


def publish_outputs(run_dir: Path, output_dir: str | None) -> Path | None:
    """Copy the final weights, tokenizer, results and plots of ``run_dir`` into ``output_dir``.

    The run keeps everything in its run dir (checkpoints stay there); ``output_dir`` (LLaMA-Factory's
    place for the result) receives the top-level files, overwriting earlier copies. Nothing happens when
    it is unset or is the run dir itself. Returns the folder written, or None.
    """
    import shutil

    if not output_dir:
        return None
    target = Path(output_dir).expanduser()
    if not target.is_absolute():
        target = run_dir / target
    if target.resolve() == run_dir.resolve():
        return None
    try:
        target.mkdir(parents=True, exist_ok=True)
        for item in sorted(run_dir.iterdir()):
            if item.is_file() and item.name not in RUN_ONLY_FILES and not item.name.startswith("."):
                shutil.copy2(item, target / item.name)
    except OSError as err:
        raise UserError(
            f"cannot write the results to output_dir {target}: {err.strerror}; choose a writable output_dir "
            f"(they are kept in {run_dir})"
        ) from err
    return target


def _ema(values: list[float], weight: float = 0.9) -> list[float]:
    smoothed, last = [], values[0] if values else 0.0
    for value in values:
        last = weight * last + (1 - weight) * value
        smoothed.append(last)
    return smoothed


def plot_loss(run_dir: Path) -> list[Path]:
    """Draw training_loss.png (raw + smoothed) and, when evaluated, training_eval_loss.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tunequeue.train.callbacks import TRAINER_LOG

    log_path = run_dir / TRAINER_LOG
    if not log_path.is_file():
        return []
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    written = []
    for key, filename in (("loss", "training_loss.png"), ("eval_loss", "training_eval_loss.png")):
        points = sorted({r["current_steps"]: r[key] for r in records if key in r}.items())
        if not points:
            continue
        steps = [p[0] for p in points]
        values = [p[1] for p in points]
        figure = plt.figure(figsize=(6, 4))
        plt.plot(steps, values, color="#1f77b4", alpha=0.4, label="original")
        if len(values) > 1:
            plt.plot(steps, _ema(values), color="#1f77b4", label="smoothed")
        plt.title(f"{key} of {run_dir.name}")
        plt.xlabel("step")
        plt.ylabel(key)
        plt.legend()
        path = run_dir / filename
        figure.savefig(path, format="png", dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("bitsandbytes", "httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _quiet_environment(*, allow_download: bool = False) -> None:
    # The hub is contacted only to download a model that preflight said is not cached.
    if not allow_download:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def run_task(spec: TaskSpec, run_dir: Path, warnings: list[str] = ()) -> TrainOutcome:
    """Run the workflow of `spec.stage` in `run_dir` with signal handling installed.

    Options the machine cannot honour are refused before anything is printed or written. When the task
    sets ``output_dir``, the finished run's results are copied there (`publish_outputs`).
    """
    from tunequeue.train.callbacks import StopRequest
    from tunequeue.train.checkpoints import install_atomic_checkpoints, remove_partial_checkpoints
    from tunequeue.train.model import check_model_options
    from tunequeue.train.workflows import get_task_workflow

    workflow = get_task_workflow(spec)
    check_model_options(spec)
    for warning in warnings:
        logger.warning("%s", warning)
    install_atomic_checkpoints()
    for leftover in remove_partial_checkpoints(run_dir):
        logger.info("removed %s, left by a checkpoint save that did not finish", leftover.name)
    # Seed before the model exists: adapter initialisation draws from the global RNG.
    from transformers import set_seed

    set_seed(spec.seed)
    stop = StopRequest().install()
    try:
        outcome = workflow(spec, run_dir, stop)
    finally:
        stop.uninstall()
    published = publish_outputs(run_dir, getattr(spec, "output_dir", None))
    if published is not None:
        print(f"final results copied to {published}", flush=True)
    return outcome


def run_task_file(path: str | Path) -> int:
    """Run the task in `path` (its directory is the run dir) and return the process exit code."""
    _configure_logging()
    task_path = Path(path).resolve()
    started = time.time()
    try:
        spec, warnings = load_task(task_path)
        from tunequeue.core.models import resolve_model

        _quiet_environment(allow_download=resolve_model(spec.model_name_or_path).needs_download)
        outcome = run_task(spec, task_path.parent, warnings)
    except UserError as err:
        print(f"error: {err.message}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except Cancelled as cancelled:
        where = f"; checkpoint saved in {cancelled.checkpoint.name}" if cancelled.checkpoint else ""
        print(f"cancelled at step {cancelled.step}{where}", file=sys.stderr, flush=True)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as err:
        if _is_out_of_memory(err):
            print(f"error: CUDA out of memory: {err}", file=sys.stderr, flush=True)
            return EXIT_FAILED
        if is_disk_full(err):
            # The message may not fit on the disk either; the exit code alone says "disk full".
            with contextlib.suppress(OSError):
                print(f"error: disk full: {err}", file=sys.stderr, flush=True)
            return EXIT_DISK_FULL
        raise
    logger.info("finished in %.1f s at step %d", time.time() - started, outcome.global_step)
    return EXIT_OK


def _is_out_of_memory(err: BaseException) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()
