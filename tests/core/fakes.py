"""Stand-ins for a frozen teacher view and a student: fixed score tables, nothing learned."""

from __future__ import annotations

import torch


class FakeTeacherView:
    """A frozen teacher as a fixed [n_ctx, n_items + 1] score matrix (column 0 = padding)."""

    def __init__(self, scores: torch.Tensor):
        self.S = scores

    def scores(self, ids, items):
        return self.S[ids.unsqueeze(1), items]

    def score_all(self, ids):
        s = self.S[ids].clone()
        s[:, 0] = float("-inf")
        return s

    def topk(self, k):
        return self.score_all(torch.arange(self.S.size(0))).topk(k, dim=1).indices

    def scores_of_lists(self, lists):
        ids = torch.arange(self.S.size(0))
        return [self.scores(ids, x) for x in lists]


class FakeStudent:
    """Dot-product scorer with an item table; the loss only needs these two methods."""

    def __init__(self, table: torch.Tensor):
        self.table = table

    def item_table(self):
        return self.table

    def score_items(self, states, items):
        return torch.einsum("nd,nkd->nk", states, self.table[items])

    def score_all(self, states):
        s = states @ self.table.T
        s[:, 0] = float("-inf")
        return s
