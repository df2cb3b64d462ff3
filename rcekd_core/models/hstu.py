"""HSTU (Zhai et al. 2024), the sequential backbone: pointwise SiLU attention, gated by U.

Per block, from LayerNorm(x): U, V, Q, K = split(SiLU(Linear(.)));
A = SiLU(Q K^T + rab) / n, causal, padding keys masked; x <- x + Linear(dropout(LayerNorm(A V) * U)).
  - rab: a learned relative position bias per head and distance i - j (as in the paper), on top
    of learned absolute positions added to the input (right-aligned, as in SASRec).
  - n = max_len, a constant (the authors' code divides by the padded length). Not the count of
    real keys: that would turn A into a mean and lose the "intensity" that pointwise attention
    keeps by not normalising; and a constant keeps states independent of the amount of padding.
  - no sqrt(d) scaling of Q K^T, as in the authors' code.
Outputs are L2-normalised. Two score scales, as in the authors' code (their HSTU
`get_ratings` / `forward_multi_items` return raw cosines, only the training loss divides by
the temperature):
  - the base loss always trains on cosine / temperature;
  - `item_table()`, hence score_all, score_items, TeacherView and every KD method, serves
    `kd_scores`: cosine (default, the authors' KD scale, in [-1, 1]) or tempered (cosine /
    temperature, 1 / temperature times larger). Ranking (evaluation, top lists) is the same
    either way. An HSTU teacher or student mixes with any other backbone.
Base loss `ssm`: sampled softmax, the positive against `negatives` uniform items shared by the
batch (an accidental hit of the positive is masked); `ce` (full softmax) and `bce` also work,
also on cosine / temperature whatever `kd_scores` is (`ce_from_scores` and `pair_loss` below).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..settings import ModelConfig
from .base import Recommender, SequentialRecommender


def pointwise_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
    allowed: torch.Tensor, n: int,
) -> torch.Tensor:
    """[B, H, L, dh] q, k, v; [H, L, L] bias; [B, 1, L, L] allowed -> [B, H, L, dh]."""
    a = F.silu(q @ k.transpose(-1, -2) + bias) / n
    return (a * allowed) @ v


class HSTUBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, max_len: int):
        super().__init__()
        self.heads = heads
        self.n = max_len
        self.ln_in = nn.LayerNorm(dim)
        self.uvqk = nn.Linear(dim, 4 * dim)
        self.ln_att = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.rel = nn.Parameter(torch.zeros(heads, max_len))  # bias by distance i - j

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        u, v, q, k = F.silu(self.uvqk(self.ln_in(x))).split(d, dim=-1)
        v, q, k = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (v, q, k))
        y = pointwise_attention(q, k, v, self.rel[:, dist], allowed, self.n)
        y = y.transpose(1, 2).reshape(b, n, d)
        return x + self.out(self.drop(self.ln_att(y) * u))


class HSTU(SequentialRecommender):
    settings = ("dim", "blocks", "heads", "max_len", "dropout", "loss", "negatives", "temperature", "kd_scores")
    losses = ("ce", "bce", "ssm")

    def __init__(self, n_items: int, cfg: ModelConfig):
        super().__init__()
        self.n_items = n_items
        self.max_len = cfg.max_len
        self.loss_type = cfg.loss
        self.negatives = cfg.negatives
        self.temperature = cfg.temperature
        self.kd_scores = cfg.kd_scores
        self.items = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.positions = nn.Embedding(cfg.max_len, cfg.dim)
        self.blocks = nn.ModuleList(
            HSTUBlock(cfg.dim, cfg.heads, cfg.dropout, cfg.max_len) for _ in range(cfg.blocks)
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.scale = cfg.dim**0.5
        nn.init.normal_(self.items.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def loss_table(self) -> torch.Tensor:
        """The table the base loss trains on: L2-normalised embeddings / temperature (row 0 stays 0)."""
        return F.normalize(self.items.weight, dim=-1) / self.temperature

    def item_table(self) -> torch.Tensor:
        """The table every other consumer scores with (KD, evaluation): see `kd_scores` above."""
        if self.kd_scores == "tempered":
            return self.loss_table()
        return F.normalize(self.items.weight, dim=-1)  # cosine; row 0 stays 0

    def ce_from_scores(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Full-softmax CE from score_all's scores (the loop's shared scores), on cosine / temperature."""
        if self.kd_scores == "cosine":
            scores = scores / self.temperature
        return Recommender.ce_from_scores(scores, targets)

    def pair_loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The `ce` / `bce` base loss on cosine / temperature, whatever `kd_scores` serves."""
        if self.kd_scores == "tempered":
            return super().pair_loss(h, y)
        if self.loss_type == "ce":
            return Recommender.ce_from_scores(h @ self.loss_table().T, y)
        return super().pair_loss(h / self.temperature, y)  # bce: (h / t) . cosine table

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        n = seqs.size(1)
        dev = seqs.device
        real = seqs > 0
        pos = torch.arange(self.max_len - n, self.max_len, device=dev)
        x = self.drop(self.items(seqs) * self.scale + self.positions(pos)) * real.unsqueeze(-1)
        idx = torch.arange(n, device=dev)
        dist = (idx[:, None] - idx[None, :]).clamp(min=0)
        causal = dist.new_ones(n, n, dtype=torch.bool).tril()
        allowed = (causal & real[:, None, :]).unsqueeze(1).to(x.dtype)  # keys: real, not future
        for block in self.blocks:
            x = block(x, allowed, dist)
        return F.normalize(x, dim=-1) * real.unsqueeze(-1)

    def base_loss(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.loss_type != "ssm":
            return super().base_loss(states, targets)
        keep = targets > 0
        h, y = states[keep], targets[keep]
        table = self.loss_table()
        pos = (h * table[y]).sum(-1, keepdim=True)
        neg_ids = torch.randint(1, self.n_items + 1, (self.negatives,), device=y.device)
        neg = (h @ table[neg_ids].T).masked_fill(neg_ids[None, :] == y[:, None], float("-inf"))
        logits = torch.cat([pos, neg], dim=1)
        return F.cross_entropy(logits, torch.zeros_like(y))
