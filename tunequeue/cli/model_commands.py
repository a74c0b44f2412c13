"""CLI commands that use a model: `chat`, `export`, `expand-blocks`, `eval`, `predict` (foreground, no queue).

``chat`` streams replies in the terminal (or to a pipe). ``export`` merges an adapter into its base and
writes a model directory. ``expand-blocks`` adds LLaMA Pro blocks to a model. ``eval FILE`` /
``predict FILE`` run a task file's model over its data the way a queued eval/predict job does (they
set ``do_train: false`` and ``do_eval`` / ``do_predict`` with ``predict_with_generate``), in a new run
dir, printing the results. To queue these instead, `submit` a task with ``do_train: false`` — the job
kind follows from the task (`tunequeue.core.job_kinds`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from tunequeue.core.errors import UserError


def _run_task_variant(file: Path, overrides: dict) -> int:
    """Validate `file` with `overrides`, run it in a new run dir in the foreground; return its exit code."""
    import yaml

    from tunequeue.cli.task_commands import load_task_mapping
    from tunequeue.cli.train_commands import prepare_manual_run, run_training_process

    data, warnings = load_task_mapping(file)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    data = {**data, **overrides}
    with tempfile.TemporaryDirectory() as scratch:
        variant = Path(scratch) / file.name
        variant.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        task_yaml = prepare_manual_run(variant)
    typer.echo(f"run dir: {task_yaml.parent}")
    return run_training_process(task_yaml)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command()
    def chat(
        model: str = typer.Option(..., "--model", help="Local model dir (or tunequeue/tiny-llama)."),
        adapter: str = typer.Option(None, "--adapter", help="LoRA adapter dir(s), comma separated."),
        template: str = typer.Option(None, "--template", help="Chat template; default: the tokenizer's own."),
        system: str = typer.Option(None, "--system", help="System prompt."),
        max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="Longest reply in tokens."),
        temperature: float = typer.Option(0.95, "--temperature", help="Sampling temperature; 0 = greedy."),
        top_p: float = typer.Option(0.7, "--top-p", help="Nucleus sampling probability mass."),
        greedy: bool = typer.Option(False, "--greedy", help="No sampling: always the likeliest token."),
        device: str = typer.Option("auto", "--device", help="auto (GPU when there is one) or cpu."),
    ) -> None:
        """Chat with a model in the terminal: /clear forgets the history, /exit quits."""
        from tunequeue.train.chat import ChatSession, chat_loop, check_chat_options

        check_chat_options(max_new_tokens, temperature, top_p)
        if device not in ("auto", "cpu"):
            raise UserError(f"--device {device} is unknown; use auto or cpu")
        session = ChatSession(
            model,
            adapter,
            template=template,
            system=system,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            do_sample=not greedy,
            device=device,
        )
        raise typer.Exit(chat_loop(session))

    @app.command()
    def export(
        model: str = typer.Option(..., "--model", help="Base model dir (or tunequeue/tiny-llama)."),
        adapter: str = typer.Option(None, "--adapter", help="LoRA adapter dir(s) to merge, comma separated."),
        export_dir: Path = typer.Option(..., "--export-dir", help="Folder the merged model is written to."),
        export_size: int = typer.Option(5, "--export-size", help="Largest shard, GB."),
        export_device: str = typer.Option("cpu", "--export-device", help="cpu or auto (GPU when present)."),
        legacy: bool = typer.Option(False, "--legacy-format", help="Write .bin instead of .safetensors."),
        hub_model_id: str = typer.Option(None, "--hub-model-id", help="Record a hub repo id (no upload)."),
    ) -> None:
        """Merge an adapter into its base model and write a standalone model directory."""
        from tunequeue.train.export import export_model, hub_upload_command

        if export_size < 1:
            raise UserError("--export-size must be at least 1 (GB)")
        if export_device not in ("cpu", "auto"):
            raise UserError(f"--export-device {export_device} is unknown; use cpu or auto")
        target = export_model(
            model,
            adapter,
            export_dir.expanduser().resolve(),
            max_shard_size=f"{export_size}GB",
            device=export_device,
            legacy_format=legacy,
        )
        typer.echo(f"exported to {target}")
        if hub_model_id:
            typer.echo(f"to publish it, run: {hub_upload_command(hub_model_id, target)}")

    @app.command("expand-blocks")
    def expand_blocks_command(
        model: str = typer.Option(..., "--model", help="Base model dir (or tunequeue/tiny-llama)."),
        num_expand: int = typer.Option(..., "--num-expand", help="Blocks to add; must divide the layers."),
        output_dir: Path = typer.Option(..., "--output-dir", help="New folder for the expanded model."),
    ) -> None:
        """LLaMA Pro: add zero-output copies of decoder blocks; then train with use_llama_pro."""
        from tunequeue.train.llama_pro import expand_blocks

        target = expand_blocks(model, output_dir.expanduser().resolve(), num_expand)
        typer.echo(
            f"expanded model written to {target}; train it with finetuning_type freeze, use_llama_pro true "
            f"and freeze_trainable_layers {num_expand}"
        )

    @app.command("eval")
    def eval_command(
        file: Path = typer.Argument(
            ..., help="Task YAML: model, adapter_name_or_path, eval_dataset or dataset."
        ),
    ) -> None:
        """Evaluate a task's model (+ adapter) on its data: eval loss, in the foreground."""
        with_data = _eval_data(file)
        raise typer.Exit(_run_task_variant(file, {"do_train": False, "do_eval": True, **with_data}))

    @app.command("predict")
    def predict_command(
        file: Path = typer.Argument(
            ..., help="Task YAML: model, adapter_name_or_path, eval_dataset or dataset."
        ),
    ) -> None:
        """Generate answers for a task's data and score them (BLEU-4, ROUGE), in the foreground."""
        raise typer.Exit(
            _run_task_variant(
                file,
                {"do_train": False, "do_predict": True, "predict_with_generate": True, "export_dir": None},
            )
        )


def _eval_data(file: Path) -> dict:
    """do_eval needs eval data: use the task's eval_dataset, else its dataset, and drop val_size."""
    from tunequeue.cli.task_commands import load_task_mapping

    data, _warnings = load_task_mapping(file)
    return {
        "eval_dataset": data.get("eval_dataset") or data.get("dataset"),
        "val_size": 0,
        "export_dir": None,
    }
