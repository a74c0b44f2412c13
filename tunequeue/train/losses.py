"""Loss functions the Trainer can be given instead of the model's own cross-entropy.

`dft_loss` is the Dynamic Fine-Tuning loss (``use_dft_loss``): each answer token's cross-entropy is
scaled by the model's probability of that token, detached from the graph, so tokens the model already
finds likely weigh more and improbable ones less. Masked tokens (label -100) count for nothing; the sum
is divided by the number of answer tokens in the whole accumulated batch when the Trainer provides it
(``num_items_in_batch``), else by those of this micro-batch.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100


def _logits(outputs: Any) -> Any:
    if isinstance(outputs, dict):
        return outputs["logits"]
    return getattr(outputs, "logits", None) if hasattr(outputs, "logits") else outputs[0]


def dft_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Mean over answer tokens of cross-entropy × detached token probability (causal shift applied)."""
    import torch
    import torch.nn.functional as F

    logits = _logits(outputs)[..., :-1, :].float()
    targets = labels[..., 1:].to(logits.device)
    token_ce = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    )
    weighted = token_ce * torch.exp(-token_ce).detach()
    if num_items_in_batch is None:
        count = (targets != IGNORE_INDEX).sum().clamp(min=1)
    else:
        count = num_items_in_batch
    if isinstance(count, torch.Tensor):
        count = count.to(weighted.device)
    return weighted.sum() / count
