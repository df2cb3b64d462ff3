"""SASRec (Kang & McAuley 2018): causal self-attention, learned positions, shared item table."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..settings import ModelConfig
from .base import SequentialRecommender


class Block(nn.Module):
    """Pre-norm transformer block; attention may not look at padding or the future."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, last: bool = False) -> torch.Tensor:
        """[B, n, d] -> [B, n, d]; `last`: only the last position's output [B, 1, d] (its query
        attends to every position's keys; the other queries and their FFN are never computed).
        `allowed` is [B, 1, n, n], or [B, 1, 1, n] (the last query's row) with `last`."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        if last:
            q, x = q[:, -1:], x[:, -1:]
        att = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
            attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, q.size(1), d)))
        return x + self.drop(self.ffn(self.ln2(x)))


class SASRec(SequentialRecommender):
    def __init__(self, n_items: int, cfg: ModelConfig):
        super().__init__()
        self.n_items = n_items
        self.max_len = cfg.max_len
        self.loss_type = cfg.loss
        self.items = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.positions = nn.Embedding(cfg.max_len, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.dropout) for _ in range(cfg.blocks))
        self.ln = nn.LayerNorm(cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.scale = cfg.dim**0.5
        nn.init.normal_(self.items.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def item_table(self) -> torch.Tensor:
        return self.items.weight

    def embed(self, seqs: torch.Tensor) -> torch.Tensor:
        n = seqs.size(1)
        pos = torch.arange(self.max_len - n, self.max_len, device=seqs.device)
        return self.drop(self.items(seqs) * self.scale + self.positions(pos))

    @staticmethod
    def allowed(seqs: torch.Tensor, queries: int) -> torch.Tensor:
        """[B, 1, queries, n]: what the last `queries` positions may attend to. Keys must be real
        items in the past; the diagonal stays open so padding rows are finite."""
        n = seqs.size(1)
        causal = torch.ones(n, n, dtype=torch.bool, device=seqs.device).tril()
        own = torch.eye(n, dtype=torch.bool, device=seqs.device)
        return ((causal[-queries:] & (seqs > 0)[:, None, :]) | own[-queries:]).unsqueeze(1)

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        x, allowed = self.embed(seqs), self.allowed(seqs, seqs.size(1))
        for block in self.blocks:
            x = block(x, allowed)
        return self.ln(x) * (seqs > 0).unsqueeze(-1)

    def encode_last(self, seqs: torch.Tensor) -> torch.Tensor:
        """encode(seqs)[:, -1] (to float rounding) at a fraction of the cost: the last block
        computes the last position only (evaluation and `last` KD contexts need no other)."""
        x = self.embed(seqs)
        if len(self.blocks) > 1:
            allowed = self.allowed(seqs, seqs.size(1))
            for block in self.blocks[:-1]:
                x = block(x, allowed)
        x = self.blocks[-1](x, self.allowed(seqs, 1), last=True)[:, 0]
        return self.ln(x) * (seqs[:, -1:] > 0)
