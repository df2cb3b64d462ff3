"""SequenceData: per-user chronological sequences as flat tensors, with the leave-one-out split.

Split: the last item of each user is the test target, the second-to-last the validation
target, the rest is training. Validation context = the training sequence; test context =
the training sequence plus the validation item. Windows are the last `max_len` items,
left-padded with 0, gathered by index arithmetic (no loop over users).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .interactions import Interactions

SPLITS = ("valid", "test")


@dataclass
class SequenceData:
    n_users: int
    n_items: int
    items: torch.Tensor  # [n_interactions] int64, grouped by user, chronological
    offsets: torch.Tensor  # [n_users + 1] int64
    dropped_users: int = 0  # users with < 3 interactions (cannot be split)

    @classmethod
    def from_interactions(cls, inter: Interactions) -> "SequenceData":
        lengths = inter.lengths()
        keep_user = lengths >= 3
        dropped = int((~keep_user).sum())
        mask = keep_user[inter.user]
        new_id = np.cumsum(keep_user) - 1
        users = new_id[inter.user[mask]]
        n_users = int(keep_user.sum())
        lengths = np.bincount(users, minlength=n_users)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return cls(
            n_users=n_users,
            n_items=inter.n_items,
            items=torch.as_tensor(inter.item[mask], dtype=torch.long),
            offsets=torch.as_tensor(offsets, dtype=torch.long),
            dropped_users=dropped,
        )

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def train_lengths(self) -> torch.Tensor:
        return self.lengths - 2

    def context_end(self, split: str, users: torch.Tensor) -> torch.Tensor:
        """Number of leading items of each user's sequence that form the context of `split`."""
        extra = {"train": 0, "valid": 0, "test": 1}[split]
        return self.train_lengths[users] + extra

    def window(self, users: torch.Tensor, end: torch.Tensor, length: int) -> torch.Tensor:
        """Last `length` items before position `end` of each user's sequence, left-padded with 0."""
        start = self.offsets[users]
        idx = (start + end).unsqueeze(1) - length + torch.arange(length)
        valid = idx >= start.unsqueeze(1)
        return torch.where(valid, self.items[idx.clamp(min=0)], torch.zeros((), dtype=torch.long))

    def train_batch(self, users: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs = the last `max_len` training items; targets = the next item, 0 where none.

        The window ends at the last training item, so its final state is the validation
        context: its target is the validation item and is therefore masked (0) here.
        """
        inputs = self.window(users, self.context_end("train", users), max_len)
        targets = torch.zeros_like(inputs)
        targets[:, :-1] = inputs[:, 1:]
        targets[inputs == 0] = 0
        return inputs, targets

    def contexts(self, split: str, users: torch.Tensor, max_len: int) -> torch.Tensor:
        return self.window(users, self.context_end(split, users), max_len)

    def history(self, split: str, users: torch.Tensor) -> torch.Tensor:
        """All items a user saw before the target of `split` (for masking), padded with 0."""
        end = self.context_end(split, users)
        return self.window(users, end, int(end.max()))

    def targets(self, split: str, users: torch.Tensor | None = None) -> torch.Tensor:
        if users is None:
            users = torch.arange(self.n_users)
        pos = self.offsets[users] + self.context_end(split, users)
        return self.items[pos]
