"""The model protocol the trainer, evaluator and every Distiller rely on."""

from __future__ import annotations

import torch
from torch import nn


class SequentialRecommender(nn.Module):
    """Encodes left-padded item windows into states; scores are dot products with the item table.

    Item 0 is padding: it is never scored as a candidate (its column is -inf).
    """

    n_items: int
    max_len: int
    loss_type: str

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        """[B, L] item ids -> [B, L, d] states (state i has seen items 0..i)."""
        raise NotImplementedError

    def item_table(self) -> torch.Tensor:
        """[n_items + 1, d] output embeddings (row 0 is padding)."""
        raise NotImplementedError

    def encode_last(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.encode(seqs)[:, -1]

    def score_all(self, states: torch.Tensor) -> torch.Tensor:
        """[N, d] -> [N, n_items + 1] scores against every item."""
        scores = states @ self.item_table().T
        scores[:, 0] = float("-inf")
        return scores

    def score_items(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """[N, d], [N, k] item ids -> [N, k] scores (a gather and a dot product)."""
        return torch.einsum("nd,nkd->nk", states, self.item_table()[items])

    def base_loss(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean recommendation loss over positions whose target is not 0."""
        keep = targets > 0
        h = states[keep]
        y = targets[keep]
        table = self.item_table()
        if self.loss_type == "ce":
            return self.ce_from_scores(h @ table.T, y)  # full softmax over all items
        neg = torch.randint(1, self.n_items + 1, y.shape, device=y.device)
        pos_s = (h * table[y]).sum(-1)
        neg_s = (h * table[neg]).sum(-1)
        return -(nn.functional.logsigmoid(pos_s) + nn.functional.logsigmoid(-neg_s)).mean()

    @staticmethod
    def ce_from_scores(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Full-softmax CE from [N, n_items + 1] scores (column 0, padding, is left out)."""
        return nn.functional.cross_entropy(scores[:, 1:], targets - 1)
