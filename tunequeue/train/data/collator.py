"""Batch collation: pad to the longest row of each batch, labels padded with -100.

On a GPU the engine rounds that length up to a multiple of 8 (`pad_to_multiple_of`), which keeps
matmul shapes tensor-core friendly; on CPU it pads to the longest row exactly, as any rounding there is
pure waste.

Unpacked rows carry an attention mask, padded with zeros. Packed rows carry ``position_ids`` instead
and no attention mask; padding continues as one more "sample" whose positions restart at 0, so
transformers keeps every packed sample (and the padding) in its own attention block.
"""

from __future__ import annotations

from typing import Any

from tunequeue.train.data.processor import IGNORE_INDEX


class PaddingCollator:
    """Pads a list of row dicts into tensors; see the module docstring for the packed layout."""

    def __init__(self, pad_token_id: int, *, packing: bool, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.packing = packing
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Tensors input_ids, labels and attention_mask (unpacked) or position_ids (packed)."""
        import torch

        # Rows prepared packed always carry position_ids; honour them even if the flag disagrees.
        packing = self.packing or "position_ids" in features[0]
        longest = max(len(feature["input_ids"]) for feature in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids, labels, extra = [], [], []
        for feature in features:
            ids = list(feature["input_ids"])
            pad = longest - len(ids)
            input_ids.append(ids + [self.pad_token_id] * pad)
            labels.append(list(feature.get("labels", ids)) + [IGNORE_INDEX] * pad)
            if packing:
                positions = feature.get("position_ids") or list(range(len(ids)))
                extra.append(list(positions) + list(range(pad)))
            else:
                mask = feature.get("attention_mask") or [1] * len(ids)
                extra.append(list(mask) + [0] * pad)
        batch = {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
        }
        batch["position_ids" if packing else "attention_mask"] = torch.tensor(extra, dtype=torch.long)
        return batch


def make_collator(tokenizer: Any, *, packing: bool, pad_to_multiple_of: int | None = None) -> PaddingCollator:
    """The collator for rows from `prepare_datasets`; rows with position_ids are always collated packed.

    `pad_to_multiple_of` rounds each batch's length up (the engine passes 8 when training on a GPU).
    """
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return PaddingCollator(pad_id, packing=packing, pad_to_multiple_of=pad_to_multiple_of)
