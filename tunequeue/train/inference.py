"""Load a model for inference (evaluate, predict, chat, export): a local base plus optional LoRA adapters.

Adapters are given as a comma list (``adapter_name_or_path``); each is loaded onto the base in order.
`load_inference_model` merges them all (merged weights compute exactly base + adapter); with
``merge=False`` the last one stays a live adapter, which export compares against in its tests.
"""

from __future__ import annotations

import os
from typing import Any

from tunequeue.core.errors import UserError


def split_adapters(value: str | None) -> list[str]:
    """The adapter directories of a comma list; each must hold adapter_config.json."""
    adapters = [part.strip() for part in (value or "").split(",") if part.strip()]
    for adapter in adapters:
        if not os.path.isfile(os.path.join(adapter, "adapter_config.json")):
            raise UserError(f"adapter {adapter!r} has no adapter_config.json; give the run dir of a LoRA job")
    return adapters


def inference_device(prefer: str = "auto") -> str:
    """ "cuda" when asked for auto and a GPU is visible, else "cpu"."""
    import torch

    return "cuda" if prefer == "auto" and torch.cuda.is_available() else "cpu"


def load_tokenizer_for(model_path: str, adapters: list[str]) -> Any:
    """The tokenizer saved with the last adapter (training saves it there), else the base model's."""
    from tunequeue.train.model import load_tokenizer_from

    source = model_path
    if adapters and os.path.isfile(os.path.join(adapters[-1], "tokenizer_config.json")):
        source = adapters[-1]
    return load_tokenizer_from(source)


def load_inference_model(
    model_name_or_path: str,
    adapter_name_or_path: str | None = None,
    *,
    device: str = "cpu",
    dtype: Any = None,
    merge: bool = True,
) -> Any:
    """The causal LM in eval mode on `device`, with the adapters applied (merged unless `merge` is False)."""
    from transformers import AutoModelForCausalLM

    from tunequeue.train.assets import resolve_model_path

    path = resolve_model_path(model_name_or_path)
    adapters = split_adapters(adapter_name_or_path)
    if dtype is None:
        import torch

        dtype = torch.float32 if device == "cpu" else "auto"
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load a model from {path} ({err}); give a local HF model directory") from err
    model.to(device)
    if adapters:
        from peft import PeftModel

        for index, adapter in enumerate(adapters):
            model = PeftModel.from_pretrained(model, adapter)
            if merge or index < len(adapters) - 1:
                model = model.merge_and_unload()
    model.eval()
    return model
