"""Top-K overlap of two models: mean |topK_A ∩ topK_B| / K over contexts."""

from __future__ import annotations

import torch


def topk_overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """a, b: [N, K] item ids (each row without repeats) -> mean fraction shared."""
    if a.shape != b.shape:
        raise ValueError(f"top-K lists differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    shared = (a.unsqueeze(2) == b.unsqueeze(1)).any(2).sum(1)
    return (shared.double() / a.size(1)).mean().item()
