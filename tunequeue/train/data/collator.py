"""Batch collation: pad to the longest row of each batch, labels padded with -100.

On a GPU the engine rounds that length up to a multiple of 8 (`pad_to_multiple_of`), which keeps
matmul shapes tensor-core friendly; on CPU it pads to the longest row exactly, as any rounding there is
pure waste.

Unpacked rows (``input_ids``, ``labels``, ``attention_mask``) go through transformers'
`DataCollatorForSeq2Seq`. benchmarks/train_throughput.py trains the engine against a plain Trainer with
that collator at 1.00-1.02x, so a hand-written one bought nothing measurable.

Packed rows carry ``position_ids`` instead and no attention mask: every row holds several samples whose
positions restart at 0, and padding continues as one more "sample" whose positions restart at 0, so
transformers keeps every packed sample (and the padding) in its own attention block. transformers'
`DataCollatorWithFlattening` cannot collate them: it renumbers positions per row, which would let the
samples inside a packed row attend to each other, so packed rows keep `PackedCollator`.
"""

from __future__ import annotations

from typing import Any

from tunequeue.train.data.processor import IGNORE_INDEX


class PackedCollator:
    """Pads packed rows (``input_ids``, ``labels``, ``position_ids``) into tensors."""

    def __init__(self, pad_token_id: int, *, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Tensors input_ids, labels and position_ids; padding restarts its positions at 0."""
        import torch

        longest = max(len(feature["input_ids"]) for feature in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids, labels, positions = [], [], []
        for feature in features:
            ids = list(feature["input_ids"])
            pad = longest - len(ids)
            input_ids.append(ids + [self.pad_token_id] * pad)
            labels.append(list(feature.get("labels", ids)) + [IGNORE_INDEX] * pad)
            own = feature.get("position_ids") or list(range(len(ids)))
            positions.append(list(own) + list(range(pad)))
        return {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "position_ids": torch.tensor(positions, dtype=torch.long),
        }


class PaddingCollator:
    """Collates a batch: packed rows with `PackedCollator`, unpacked ones with `DataCollatorForSeq2Seq`.

    Rows prepared packed always carry ``position_ids``; they are collated packed even if the flag says
    otherwise.
    """

    def __init__(
        self, tokenizer: Any, pad_token_id: int, *, packing: bool, pad_to_multiple_of: int | None = None
    ) -> None:
        import copy

        from transformers import DataCollatorForSeq2Seq

        # Training pads on the right whatever side the tokenizer generates with (left padding would
        # shift the positions of every padded row).
        tokenizer = copy.copy(tokenizer)
        tokenizer.padding_side = "right"
        self.packing = packing
        self.packed = PackedCollator(pad_token_id, pad_to_multiple_of=pad_to_multiple_of)
        self.unpacked = DataCollatorForSeq2Seq(
            tokenizer,
            padding=True,
            pad_to_multiple_of=pad_to_multiple_of,
            label_pad_token_id=IGNORE_INDEX,
            return_tensors="pt",
        )

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Tensors input_ids, labels and attention_mask (unpacked) or position_ids (packed)."""
        if self.packing or "position_ids" in features[0]:
            return self.packed(features)
        rows = [
            {
                "input_ids": feature["input_ids"],
                "labels": feature.get("labels", feature["input_ids"]),
                "attention_mask": feature.get("attention_mask") or [1] * len(feature["input_ids"]),
            }
            for feature in features
        ]
        return dict(self.unpacked(rows))


def make_collator(tokenizer: Any, *, packing: bool, pad_to_multiple_of: int | None = None) -> PaddingCollator:
    """The collator for rows from `prepare_datasets`; rows with position_ids are always collated packed.

    `pad_to_multiple_of` rounds each batch's length up (the engine passes 8 when training on a GPU).
    """
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return PaddingCollator(tokenizer, pad_id, packing=packing, pad_to_multiple_of=pad_to_multiple_of)
