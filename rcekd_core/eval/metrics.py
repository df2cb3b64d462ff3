"""Ranking metrics from the 0-based ranks of held-out targets, averaged over users.

One target per user (leave-one-out): Recall@K is the hit rate. Several (ratio split):
Recall@K = hits / |targets|, NDCG@K = DCG / ideal DCG of min(K, |targets|) hits, MRR@K from
the best-ranked target.
"""

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


def metrics_from_target_ranks(ranks: torch.Tensor, ks: list[int]) -> dict[str, float]:
    """ranks [users, T]: 0-based rank of each target, -1 where a row has fewer targets."""
    real = ranks >= 0
    n_targets = real.sum(1).double()
    r = ranks.double()
    gain = torch.where(real, 1.0 / torch.log2(r + 2.0), 0.0)
    discounts = 1.0 / torch.log2(torch.arange(ranks.size(1), dtype=torch.float64) + 2.0)
    best = torch.where(real, r, float("inf")).min(1).values
    out: dict[str, float] = {}
    for k in ks:
        hit = real & (r < k)
        ideal = torch.where(torch.arange(ranks.size(1)) < n_targets.clamp(max=k).unsqueeze(1), discounts, 0.0).sum(1)
        out[f"Recall@{k}"] = (hit.sum(1) / n_targets).mean().item()
        out[f"NDCG@{k}"] = (torch.where(hit, gain, 0.0).sum(1) / ideal).mean().item()
        out[f"MRR@{k}"] = torch.where(best < k, 1.0 / (best + 1.0), 0.0).mean().item()
    return out
