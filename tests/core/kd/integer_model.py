"""A tiny sequential model with integer-valued embeddings: its scores are small integers, so
ties abound and every score is exact in float32 whatever the chunking."""

from __future__ import annotations

import torch
from torch import nn

from rcekd_core.models.base import SequentialRecommender


class IntegerLastItem(SequentialRecommender):
    """The state at a position is an integer-valued vector of the item there: scores are small
    integers, exact in float32 for any chunk of contexts."""

    def __init__(self, n_items: int, max_len: int, dim: int = 2, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.n_items, self.max_len, self.loss_type = n_items, max_len, "ce"
        self.inp = nn.Parameter(torch.randint(-2, 3, (n_items + 1, dim), generator=g).float())
        self.out = nn.Parameter(torch.randint(-2, 3, (n_items + 1, dim), generator=g).float())

    def encode(self, seqs):
        return self.inp[seqs]

    def item_table(self):
        return self.out
