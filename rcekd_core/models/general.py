"""General (non-sequential) top-N models: a state is a user, trained on (user, item) pairs.

Used with the data protocol `ratio`: a batch is a set of users with all their training
items; every (user, item) pair is a positive of the base loss (BPR with one uniform
negative by default, as the paper's MF and LightGCN).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Recommender

INIT_STD = 0.1  # normal init of the embedding tables (LightGCN's)


class GeneralRecommender(Recommender):
    general = True
    losses = ("bpr", "ce")

    def __init__(self, n_items: int, cfg, data):
        super().__init__()
        n_users = data.n_users
        self.n_items = n_items
        self.n_users = n_users
        self.max_len = 1  # no window: a state is the user itself
        self.loss_type = cfg.loss
        self.user_emb = nn.Embedding(n_users, cfg.dim)
        self.item_emb = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        nn.init.normal_(self.user_emb.weight, std=INIT_STD)
        nn.init.normal_(self.item_emb.weight, std=INIT_STD)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def batch(self, data, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return users, data.train_items(users)

    def split_states(self, data, split: str, users: torch.Tensor, device: torch.device) -> torch.Tensor:
        return self.encode(users.to(device))

    def base_loss(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """states [B, d] per user, targets [B, T] its training items (0 pads): one term per pair."""
        keep = targets > 0
        h = states.unsqueeze(1).expand(-1, targets.size(1), -1)[keep]
        return self.pair_loss(h, targets[keep])
