"""The model protocol the trainer, evaluator and every Distiller rely on."""

from __future__ import annotations

import torch
from torch import nn


class Recommender(nn.Module):
    """Scores are dot products of a state with the item table; item 0 (padding) is never a candidate."""

    n_items: int
    max_len: int
    loss_type: str
    general: bool = False  # True: states are users (protocol `ratio`); False: sequence prefixes
    # the ModelConfig settings this backbone reads; the others are ignored (the TUI greys them out)
    settings: tuple[str, ...] = ("dim", "blocks", "heads", "max_len", "dropout", "loss")
    losses: tuple[str, ...] = ("ce", "bce")  # the base losses it trains with (model.loss)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def batch(self, data, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs for encode, targets for base_loss) of a training batch of users."""
        raise NotImplementedError

    def split_states(self, data, split: str, users: torch.Tensor, device: torch.device) -> torch.Tensor:
        """[B, d] the states that rank the items of `split` for these users."""
        raise NotImplementedError

    def item_table(self) -> torch.Tensor:
        """[n_items + 1, d] output embeddings (row 0 is padding)."""
        raise NotImplementedError

    def score_all(self, states: torch.Tensor) -> torch.Tensor:
        """[N, d] -> [N, n_items + 1] scores against every item."""
        scores = states @ self.item_table().T
        scores[:, 0] = float("-inf")
        return scores

    def score_items(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """[N, d], [N, k] item ids -> [N, k] scores (a gather and a dot product)."""
        return torch.einsum("nd,nkd->nk", states, self.item_table()[items])

    @staticmethod
    def ce_from_scores(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Full-softmax CE from [N, n_items + 1] scores (column 0, padding, is left out)."""
        return nn.functional.cross_entropy(scores[:, 1:], targets - 1)

    def pair_loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss of states h [N, d] for their positives y [N]: full-softmax CE, or BPR/BCE
        against one uniform negative per positive."""
        table = self.item_table()
        if self.loss_type == "ce":
            return self.ce_from_scores(h @ table.T, y)
        neg = torch.randint(1, self.n_items + 1, y.shape, device=y.device)
        pos_s = (h * table[y]).sum(-1)
        neg_s = (h * table[neg]).sum(-1)
        if self.loss_type == "bpr":
            return -nn.functional.logsigmoid(pos_s - neg_s).mean()
        return -(nn.functional.logsigmoid(pos_s) + nn.functional.logsigmoid(-neg_s)).mean()


class SequentialRecommender(Recommender):
    """Encodes left-padded item windows into states (state i has seen items 0..i of the window)."""

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        """[B, L] item ids -> [B, L, d] states (state i has seen items 0..i)."""
        raise NotImplementedError

    def encode_last(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.encode(seqs)[:, -1]

    def batch(self, data, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return data.train_batch(users, self.max_len)

    def split_states(self, data, split: str, users: torch.Tensor, device: torch.device) -> torch.Tensor:
        return self.encode_last(data.contexts(split, users, self.max_len).to(device))

    def base_loss(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean recommendation loss over positions whose target is not 0."""
        keep = targets > 0
        return self.pair_loss(states[keep], targets[keep])
