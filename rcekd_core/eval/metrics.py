"""Ranking metrics from the 0-based rank of each context's single held-out target."""

from __future__ import annotations

import torch

METRICS = ("Recall", "NDCG", "MRR")


def metrics_from_ranks(ranks: torch.Tensor, ks: list[int]) -> dict[str, float]:
    """Recall@K (= hit rate with one target), NDCG@K and MRR@K averaged over contexts."""
    ranks = ranks.double()
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"Recall@{k}"] = hit.double().mean().item()
        out[f"NDCG@{k}"] = torch.where(hit, 1.0 / torch.log2(ranks + 2.0), 0.0).mean().item()
        out[f"MRR@{k}"] = torch.where(hit, 1.0 / (ranks + 1.0), 0.0).mean().item()
    return out


def metric_names(ks: list[int]) -> list[str]:
    return [f"{m}@{k}" for k in ks for m in METRICS]
