"""`mf`: matrix factorisation (BPR-MF): score = user vector · item vector."""

from __future__ import annotations

import torch

from .general import GeneralRecommender


class MF(GeneralRecommender):
    settings = ("dim", "loss")

    def encode(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_emb(users)

    def item_table(self) -> torch.Tensor:
        return self.item_emb.weight
