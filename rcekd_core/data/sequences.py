"""SequenceData: per-user chronological sequences as flat tensors, split per user in time order.

Protocol `loo` (sequential models): the last item of each user is the test target, the
second-to-last the validation target, the rest is training. Protocol `ratio` (general
models, the paper's): the first 80 % of each user's items train, the next 10 % validate,
the last 10 % test (each split ≥ 1 item: round half up, at least one).
Every split is a contiguous run of the sequence, so one rule serves both: the context of a
split is everything before it (validation: the training items; test: training + validation).
Windows are the last `max_len` items, left-padded with 0, gathered by index arithmetic.

Training windows (`train_windows`, `train_batch_at`; TrainConfig.windows = sliding): besides
each user's last window (`train_batch`'s), windows ending max_len, max_len + stride, ...
items before it, while they end at position ≥ 1, so every training target (a training item
with at least one item before it) trains exactly once per epoch: the last window trains its
own targets as `train_batch` does; an earlier window (end e) trains the targets at positions
e - stride + 1 .. e (its last `stride` states, whose next item is a training item; all of its
states when stride ≥ max_len). stride = max_len: disjoint windows; below it, earlier windows
overlap and each of their targets has ≥ max_len - stride + 1 items of context (1: every
target before the last window with a full window, as RecBole); above it, targets are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .interactions import Interactions

SPLITS = ("valid", "test")
PROTOCOLS = ("loo", "ratio")
RATIO = (0.8, 0.1, 0.1)  # train / valid / test shares of the protocol `ratio`


def split_sizes(lengths: torch.Tensor, protocol: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-user (validation, test) item counts; the rest of each sequence trains."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    if protocol == "loo":
        one = torch.ones_like(lengths)
        return one, one
    n_valid = torch.floor(lengths * RATIO[1] + 0.5).long().clamp(min=1)
    n_test = torch.floor(lengths * RATIO[2] + 0.5).long().clamp(min=1)
    return n_valid, n_test


@dataclass
class SequenceData:
    n_users: int
    n_items: int
    items: torch.Tensor  # [n_interactions] int64, grouped by user, chronological
    offsets: torch.Tensor  # [n_users + 1] int64
    dropped_users: int = 0  # users with < 3 interactions (cannot be split)
    protocol: str = "loo"

    def __post_init__(self) -> None:
        self.n_valid, self.n_test = split_sizes(self.lengths, self.protocol)
        self._windows: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_interactions(cls, inter: Interactions, protocol: str = "loo") -> "SequenceData":
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
            protocol=protocol,
        )

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def train_lengths(self) -> torch.Tensor:
        return self.lengths - self.n_valid - self.n_test

    @property
    def multi_target(self) -> bool:
        return self.protocol != "loo"

    def context_end(self, split: str, users: torch.Tensor) -> torch.Tensor:
        """Number of leading items of each user's sequence that form the context of `split`."""
        end = self.train_lengths[users]
        return end + self.n_valid[users] if split == "test" else end

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

    def train_windows(self, max_len: int, stride: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [W], ends [W]) of every training window (module doc), built once per (max_len, stride).

        Per user in order: its last window (end = its training length, the window of
        `train_batch`), then ends T - max_len, T - max_len - stride, ... while ≥ 1. stride 0: max_len.
        """
        step = stride or max_len
        key = (max_len, step)
        if key not in self._windows:
            t = self.train_lengths
            earlier = torch.where(t > max_len, torch.div(t - max_len - 1, step, rounding_mode="floor") + 1,
                                  torch.zeros_like(t))
            counts = earlier + 1
            users = torch.repeat_interleave(torch.arange(self.n_users), counts)
            k = torch.arange(int(counts.sum())) - (torch.cumsum(counts, 0) - counts)[users]
            tu = t[users]
            ends = torch.where(k == 0, tu, tu - max_len - (k - 1) * step)
            self._windows[key] = (users, ends)
        return self._windows[key]

    def train_batch_at(self, users: torch.Tensor, ends: torch.Tensor, max_len: int,
                       stride: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of training windows (rows of `train_windows`): inputs = the `max_len` items
        before `ends`; targets = the next item where that window trains it (module doc), else 0.

        A row whose end is the user's training length is exactly `train_batch`'s row.
        """
        step = stride or max_len
        t = self.train_lengths[users]
        seq = self.window(users, ends + 1, max_len + 1)  # one more item: the last state's next
        inputs, targets = seq[:, :-1], seq[:, 1:].clone()
        col = torch.arange(max_len)
        pos = (ends - max_len + 1).unsqueeze(1) + col  # each target's position in the sequence
        first = (ends != t).long() * max(0, max_len - step)  # earlier windows: their last `stride` states
        keep = (inputs > 0) & (pos < t.unsqueeze(1)) & (col >= first.unsqueeze(1))
        targets[~keep] = 0
        return inputs, targets

    def contexts(self, split: str, users: torch.Tensor, max_len: int) -> torch.Tensor:
        return self.window(users, self.context_end(split, users), max_len)

    def history(self, split: str, users: torch.Tensor) -> torch.Tensor:
        """All items a user saw before the target of `split` (for masking), padded with 0."""
        end = self.context_end(split, users)
        return self.window(users, end, int(end.max()))

    def train_items(self, users: torch.Tensor) -> torch.Tensor:
        """[B, longest] every training item of each user (left-padded with 0): a general model's batch."""
        end = self.train_lengths[users]
        return self.window(users, end, int(end.max()) if len(end) else 0)

    def train_item_counts(self) -> torch.Tensor:
        """[n_items + 1] training interactions per item (validation and test items never count)."""
        users = torch.repeat_interleave(torch.arange(self.n_users), self.lengths)
        pos = torch.arange(self.items.numel()) - self.offsets[users]
        return torch.bincount(self.items[pos < self.train_lengths[users]], minlength=self.n_items + 1)

    def targets(self, split: str, users: torch.Tensor | None = None) -> torch.Tensor:
        """`loo`: [B] the one target; `ratio`: [B, longest] the split's items, right-padded with 0."""
        if users is None:
            users = torch.arange(self.n_users)
        start = self.offsets[users] + self.context_end(split, users)
        if not self.multi_target:
            return self.items[start]
        count = (self.n_valid if split == "valid" else self.n_test)[users]
        col = torch.arange(int(count.max()) if len(count) else 0)
        inside = col < count.unsqueeze(1)
        idx = torch.where(inside, start.unsqueeze(1) + col, torch.zeros((), dtype=torch.long))
        return torch.where(inside, self.items[idx], torch.zeros((), dtype=torch.long))
