"""Export jobs: merge LoRA adapters into their base model and write a standalone model directory.

A task with ``do_train: false`` and ``export_dir`` set runs here. The base (``model_name_or_path``) and
the adapters (``adapter_name_or_path``) are loaded on ``export_device`` (cpu, or auto = the GPU when
there is one; the weights come out the same), merged, and saved to ``export_dir`` (a relative path is
taken inside the job's run dir) in shards of at most ``export_size`` GB: ``model*.safetensors``, or
``pytorch_model*.bin`` with ``export_legacy_format``. The tokenizer and generation config go with it.

``export_quantization_bit`` quantizes with GPTQ through transformers' GPTQConfig, which needs a GPTQ
backend (gptqmodel + optimum) — without one the task is refused before anything is loaded.
``export_hub_model_id`` is only recorded: nothing is uploaded at run time; the upload command is
printed and written to ``export_info.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError
from tunequeue.train.callbacks import StopRequest
from tunequeue.train.runtime import TrainOutcome

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

EXPORT_INFO = "export_info.json"


def export_path(spec: TaskSpec, run_dir: Path) -> Path:
    """Where the exported model goes: ``export_dir``, relative paths inside the run dir."""
    if not spec.export_dir:
        raise UserError("export needs export_dir; set it to the folder the merged model should go to")
    path = Path(spec.export_dir).expanduser()
    return path if path.is_absolute() else run_dir / path


def check_quantization_backend(bits: int | None) -> None:
    """Refuse GPTQ export when no GPTQ library is installed."""
    if bits is None:
        return
    if importlib.util.find_spec("optimum") is None or (
        importlib.util.find_spec("gptqmodel") is None and importlib.util.find_spec("auto_gptq") is None
    ):
        raise UserError(
            f"export_quantization_bit {bits} needs a GPTQ library (pip install optimum gptqmodel), "
            "which is not installed; install it or clear export_quantization_bit"
        )


def save_legacy(model: Any, directory: Path, max_shard_size: str) -> list[Path]:
    """Write the weights as pytorch_model*.bin shards (+ index when sharded) and the config."""
    import torch
    from huggingface_hub import split_torch_state_dict_into_shards

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    split = split_torch_state_dict_into_shards(
        state, filename_pattern="pytorch_model{suffix}.bin", max_shard_size=max_shard_size
    )
    written = []
    for filename, names in split.filename_to_tensors.items():
        torch.save({name: state[name] for name in names}, directory / filename)
        written.append(directory / filename)
    if split.is_sharded:
        index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
        (directory / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2) + "\n")
    model.config.save_pretrained(str(directory))
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(str(directory))
    return written


def export_model(
    model_name_or_path: str,
    adapter_name_or_path: str | None,
    export_dir: Path,
    *,
    max_shard_size: str = "5GB",
    device: str = "cpu",
    legacy_format: bool = False,
    template: str | None = None,
) -> Path:
    """Merge the adapters into the base and save model + tokenizer to `export_dir`; returns it."""
    from tunequeue.train.assets import resolve_model_path
    from tunequeue.train.inference import (
        inference_device,
        load_inference_model,
        load_tokenizer_for,
        split_adapters,
    )

    base = resolve_model_path(model_name_or_path)
    adapters = split_adapters(adapter_name_or_path)
    tokenizer = load_tokenizer_for(base, adapters)
    model = load_inference_model(
        model_name_or_path, adapter_name_or_path, device=inference_device(device), dtype="auto"
    )
    export_dir.mkdir(parents=True, exist_ok=True)
    model.to("cpu")
    if legacy_format:
        save_legacy(model, export_dir, max_shard_size)
    else:
        model.save_pretrained(str(export_dir), max_shard_size=max_shard_size)
    tokenizer.save_pretrained(str(export_dir))
    return export_dir


def _quantize(spec: TaskSpec, export_dir: Path) -> None:
    """GPTQ-quantize the merged model in `export_dir` in place with the calibration texts."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPTQConfig

    source = Path(spec.export_quantization_dataset or "")
    if not source.is_file():
        raise UserError(f"export_quantization_dataset {source} is not a file; give a JSON/JSONL/text file")
    texts = _calibration_texts(source, spec.export_quantization_nsamples)
    tokenizer = AutoTokenizer.from_pretrained(str(export_dir))
    config = GPTQConfig(
        bits=spec.export_quantization_bit,
        dataset=texts,
        tokenizer=tokenizer,
        model_seqlen=spec.export_quantization_maxlen,
    )
    model = AutoModelForCausalLM.from_pretrained(
        str(export_dir), quantization_config=config, device_map="auto"
    )
    model.save_pretrained(str(export_dir), max_shard_size=f"{spec.export_size}GB")


def _calibration_texts(path: Path, limit: int) -> list[str]:
    """Plain texts from a .txt (one per line), .json (list) or .jsonl file: the string values of each row."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".txt":
        rows: list[Any] = [line for line in raw.splitlines() if line.strip()]
    elif path.suffix == ".jsonl":
        rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
    else:
        rows = json.loads(raw)
    texts = []
    for row in rows:
        text = row if isinstance(row, str) else " ".join(str(v) for v in row.values() if isinstance(v, str))
        if text.strip():
            texts.append(text)
        if len(texts) >= limit:
            break
    if not texts:
        raise UserError(f"export_quantization_dataset {path} holds no text; give calibration texts")
    return texts


def hub_upload_command(model_id: str, export_dir: Path) -> str:
    """The command that uploads the exported directory (run by the user; nothing uploads at run time)."""
    return f"hf upload {model_id} {export_dir} ."


def run_export(spec: TaskSpec, run_dir: Path, stop: StopRequest) -> TrainOutcome:
    """Merge and save the task's model to export_dir; writes export_info.json there."""
    from tunequeue.train.evaluate import ProgressLog

    check_quantization_backend(spec.export_quantization_bit)
    target = export_path(spec, run_dir)
    progress = ProgressLog(run_dir, 1)
    export_model(
        spec.model_name_or_path,
        spec.adapter_name_or_path,
        target,
        max_shard_size=f"{spec.export_size}GB",
        device=spec.export_device,
        legacy_format=spec.export_legacy_format,
    )
    if spec.export_quantization_bit is not None:
        _quantize(spec, target)
    info: dict[str, Any] = {
        "export_dir": str(target),
        "base_model": spec.model_name_or_path,
        "adapters": spec.adapter_name_or_path,
        "export_size_gb": spec.export_size,
        "legacy_format": spec.export_legacy_format,
        "quantization_bit": spec.export_quantization_bit,
        "files": sorted(os.listdir(target)),
    }
    if spec.export_hub_model_id:
        info["hub_model_id"] = spec.export_hub_model_id
        info["upload_command"] = hub_upload_command(spec.export_hub_model_id, target)
        print(f"to publish it, run: {info['upload_command']}", flush=True)
    (target / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (run_dir / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    progress.write(1)
    print(f"exported to {target}", flush=True)
    return TrainOutcome(global_step=0, metrics=info, output_dir=target)
