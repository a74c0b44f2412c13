"""LLaMA Pro block expansion: add identity-initialised copies of decoder layers to a model.

`expand_blocks` splits the L decoder layers into N equal groups and, after the last layer of each group,
inserts a copy of it whose output projections (attention ``o_proj`` and MLP ``down_proj``) are zero. A
copy then adds nothing to the residual stream, so the expanded model computes exactly what the original
did; training with ``use_llama_pro: true``, ``finetuning_type: freeze`` and
``freeze_trainable_layers: N`` afterwards updates only the copies (`tunequeue.train.model`), leaving the
original blocks' knowledge untouched. ``tunequeue expand-blocks`` runs it from the command line.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from tunequeue.core.errors import UserError

logger = logging.getLogger(__name__)

# Names of the linear layers that write a block's result into the residual stream.
OUTPUT_PROJECTIONS = ("o_proj", "down_proj", "out_proj", "dense_4h_to_h", "c_proj", "wo", "w2")


def _decoder_layers(model: Any) -> Any:
    """The ModuleList of decoder layers of a causal LM (``model.model.layers`` for Llama-like models)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise UserError(
            "this model has no model.layers list of decoder blocks, so its blocks cannot be expanded"
        )
    return layers


def _zero_output_projections(block: Any) -> int:
    """Zero the weights (and biases) of the block's output projections; return how many were zeroed."""
    import torch

    zeroed = 0
    for name, module in block.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in OUTPUT_PROJECTIONS:
            with torch.no_grad():
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
            zeroed += 1
    return zeroed


def expand_model(model: Any, num_expand: int) -> Any:
    """Insert ``num_expand`` zero-output copies of decoder layers into ``model`` in place; return it."""
    import torch

    layers = _decoder_layers(model)
    count = len(layers)
    if num_expand <= 0 or count % num_expand != 0:
        raise UserError(
            f"num_expand must be a positive divisor of the model's {count} layers; got {num_expand}"
        )
    group = count // num_expand
    expanded = []
    for index, layer in enumerate(layers):
        expanded.append(layer)
        if (index + 1) % group == 0:
            block = copy.deepcopy(layer)
            if _zero_output_projections(block) == 0:
                raise UserError(
                    "found no output projection (o_proj / down_proj) in the decoder blocks; "
                    "this model family cannot be expanded"
                )
            expanded.append(block)
    for new_index, layer in enumerate(expanded):
        attention = getattr(layer, "self_attn", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = new_index  # the KV cache is indexed by it
    model.model.layers = torch.nn.ModuleList(expanded)
    config = model.config
    config.num_hidden_layers = len(expanded)
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) == count:
        new_types = []
        for index, kind in enumerate(layer_types):
            new_types.append(kind)
            if (index + 1) % group == 0:
                new_types.append(kind)
        config.layer_types = new_types
    return model


def expand_blocks(model_dir: str | Path, output_dir: str | Path, num_expand: int) -> Path:
    """Load the model in ``model_dir``, expand it by ``num_expand`` blocks, save it and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunequeue.train.assets import resolve_model_path

    source = resolve_model_path(str(model_dir))
    target = Path(output_dir).expanduser()
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} is not empty; give a new folder for the expanded model")
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype="auto")
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot load a model from {source} ({err}); give a local HF model directory"
        ) from err
    before = model.config.num_hidden_layers
    expand_model(model, num_expand)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    logger.info("expanded %d layers to %d in %s", before, model.config.num_hidden_layers, target)
    return target
