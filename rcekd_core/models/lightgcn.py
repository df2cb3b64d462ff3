"""`lightgcn` (He et al., SIGIR 2020): embeddings averaged over `blocks` rounds of propagation.

E^(k+1) = Â E^(k) over the user–item graph of the training pairs, Â = D^-1/2 A D^-1/2 kept
sparse (never dense); final = mean(E^(0..K)). Training recomputes the propagation once per
batch (encode) and item_table() reuses it, so base loss and KD share one graph pass; in eval
mode the propagated tables are computed once and kept until the model trains again.
"""

from __future__ import annotations

import torch

from .general import GeneralRecommender


def normalized_adjacency(users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int) -> torch.Tensor:
    """Sparse symmetric Â over n_users + n_items nodes (item i is node n_users + i - 1)."""
    n = n_users + n_items
    u, i = users.long(), items.long() + n_users - 1
    rows, cols = torch.cat([u, i]), torch.cat([i, u])
    deg = torch.bincount(rows, minlength=n).float()
    inv = deg.clamp(min=1).rsqrt()
    vals = inv[rows] * inv[cols]
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n), check_invariants=True).coalesce()


class LightGCN(GeneralRecommender):
    settings = ("dim", "blocks", "loss")  # blocks: propagation layers

    def __init__(self, n_items: int, cfg, data):
        super().__init__(n_items, cfg, data)
        n_users = data.n_users
        self.layers = cfg.blocks
        users = torch.repeat_interleave(torch.arange(n_users), data.train_lengths)
        items = data.train_items(torch.arange(n_users))
        items = items[items > 0]  # left padding removed: row-major order matches `users`
        self.register_buffer("adj", normalized_adjacency(users, items, n_users, n_items), persistent=False)
        self._tables: tuple[torch.Tensor, torch.Tensor] | None = None

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        e = torch.cat([self.user_emb.weight, self.item_emb.weight[1:]])
        total = e
        for _ in range(self.layers):
            e = self.adj @ e
            total = total + e
        out = total / (self.layers + 1)
        pad = torch.zeros_like(out[:1])
        return out[: self.n_users], torch.cat([pad, out[self.n_users:]])

    def encode(self, users: torch.Tensor) -> torch.Tensor:
        if (self.training and torch.is_grad_enabled()) or self._tables is None:
            # training: the weights changed since the last batch; item_table() reuses this pass
            self._tables = self.propagate()
        return self._tables[0][users]

    def item_table(self) -> torch.Tensor:
        if self._tables is None:
            self._tables = self.propagate()
        return self._tables[1]

    def train(self, mode: bool = True):
        self._tables = None  # weights may change (or have changed): propagate again when asked
        return super().train(mode)

    def _apply(self, fn, *args, **kw):
        self._tables = None
        return super()._apply(fn, *args, **kw)

    def __getstate__(self):
        # the cached tables may carry a training batch's autograd graph: copies and pickles drop them
        state = super().__getstate__()
        state["_tables"] = None
        return state

    def load_state_dict(self, *args, **kw):
        self._tables = None
        return super().load_state_dict(*args, **kw)
