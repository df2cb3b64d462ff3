"""GRU4Rec (Hidasi et al. 2016): item embedding -> dropout -> GRU; states score by dot product.

Left padding: a GRU's biases move the hidden state even on zero inputs, so padding in front of
a sequence would leak into every later state. Each row is therefore rotated so its real items
come first (right padding), run through the GRU from a zero state, and rotated back. With right
padding the padding only follows the real items, so no real state ever sees it: the state at
the first real item is exactly GRU(first item | h0 = 0), whatever the window length, and the
last state does not depend on how much left padding there is. Padding rows come out as zeros.
Losses are the base class's (ce: full softmax; bce: one sampled negative), as for SASRec.
"""

from __future__ import annotations

import torch
from torch import nn

from ..settings import ModelConfig
from .base import SequentialRecommender


def rotation(seqs: torch.Tensor, sign: int = 1) -> torch.Tensor:
    """[B, L] gather index rolling each left-padded row by its padding (sign -1: the inverse)."""
    n = seqs.size(1)
    pad = (seqs == 0).sum(1, keepdim=True)  # windows are left-padded: zeros only in front
    return (torch.arange(n, device=seqs.device) + sign * pad) % n


class GRU4Rec(SequentialRecommender):
    settings = ("dim", "blocks", "max_len", "dropout", "loss")

    def __init__(self, n_items: int, cfg: ModelConfig):
        super().__init__()
        self.n_items = n_items
        self.max_len = cfg.max_len
        self.loss_type = cfg.loss
        self.items = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.drop = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(
            cfg.dim, cfg.dim, num_layers=cfg.blocks, batch_first=True,
            dropout=cfg.dropout if cfg.blocks > 1 else 0.0,
        )
        nn.init.xavier_normal_(self.items.weight)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def item_table(self) -> torch.Tensor:
        return self.items.weight

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        right = seqs.gather(1, rotation(seqs))  # real items first, padding after
        out, _ = self.gru(self.drop(self.items(right)))
        back = rotation(seqs, -1).unsqueeze(-1).expand_as(out)
        return out.gather(1, back) * (seqs > 0).unsqueeze(-1)
