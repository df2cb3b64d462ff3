"""SequenceData: leave-one-out split, windows, batches. (KD contexts on it: tests/core/kd/test_contexts.py.)"""

from __future__ import annotations

import numpy as np
import torch

from rcekd_core.data.interactions import Interactions
from rcekd_core.data.sequences import SequenceData

RAW = [
    [5, 6, 7, 8, 9],  # user 0 -> 0
    [1, 2],  # user 1: < 3 interactions, dropped
    [3, 4, 10],  # user 2 -> 1
    [2, 4, 6, 8, 1, 3, 5],  # user 3 -> 2
    [7],  # user 4: dropped
]
N_ITEMS = 10


def data(raw=RAW) -> SequenceData:
    users = [u for u, s in enumerate(raw) for _ in s]
    items = [i for s in raw for i in s]
    return SequenceData.from_interactions(Interactions(
        np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
        np.arange(len(items), dtype=np.float64), len(raw), N_ITEMS))


def all_users(d):
    return torch.arange(d.n_users)


def test_short_users_dropped_and_reindexed():
    d = data()
    assert d.n_users == 3 and d.dropped_users == 2 and d.n_items == N_ITEMS
    kept = [RAW[0], RAW[2], RAW[3]]
    for u, seq in enumerate(kept):
        assert d.items[d.offsets[u]: d.offsets[u + 1]].tolist() == seq
    assert d.lengths.tolist() == [5, 3, 7]
    assert d.train_lengths.tolist() == [3, 1, 5]


def test_train_batch_windows_left_padding_and_targets():
    d = data()
    inputs, targets = d.train_batch(all_users(d), 4)
    assert inputs.tolist() == [[0, 5, 6, 7], [0, 0, 0, 3], [4, 6, 8, 1]]
    # next training item; 0 on padding and on the last position (the validation context)
    assert targets.tolist() == [[0, 6, 7, 0], [0, 0, 0, 0], [6, 8, 1, 0]]
    # no training target is the validation or test item (they follow the training window)
    for u, seq in enumerate([RAW[0], RAW[2], RAW[3]]):
        assert set(targets[u].tolist()) - {0} <= set(seq[:-2])


def test_train_batch_subset_and_order():
    d = data()
    inputs, targets = d.train_batch(torch.tensor([2, 0]), 3)
    assert inputs.tolist() == [[6, 8, 1], [5, 6, 7]]
    assert targets.tolist() == [[8, 1, 0], [6, 7, 0]]
    inputs, _ = d.train_batch(torch.tensor([1]), 6)
    assert inputs.tolist() == [[0, 0, 0, 0, 0, 3]]


def test_valid_and_test_contexts_and_targets():
    d = data()
    u = all_users(d)
    assert d.targets("valid").tolist() == [8, 4, 3]
    assert d.targets("test").tolist() == [9, 10, 5]
    assert d.targets("test", torch.tensor([2, 0])).tolist() == [5, 9]
    assert d.contexts("valid", u, 4).tolist() == [[0, 5, 6, 7], [0, 0, 0, 3], [4, 6, 8, 1]]
    assert d.contexts("test", u, 4).tolist() == [[5, 6, 7, 8], [0, 0, 3, 4], [6, 8, 1, 3]]
    # the validation context is the last state of the training window
    inputs, _ = d.train_batch(u, 4)
    assert torch.equal(d.contexts("valid", u, 4), inputs)


def test_history_is_everything_before_the_target():
    d = data()
    u = all_users(d)
    h = d.history("valid", u)
    assert h.tolist() == [[0, 0, 5, 6, 7], [0, 0, 0, 0, 3], [2, 4, 6, 8, 1]]
    h = d.history("test", u)
    assert h.tolist() == [[0, 0, 5, 6, 7, 8], [0, 0, 0, 0, 3, 4], [2, 4, 6, 8, 1, 3]]
    for split in ("valid", "test"):
        t = d.targets(split)
        hist = d.history(split, u)
        for r in range(d.n_users):
            seq = d.items[d.offsets[r]: d.offsets[r + 1]].tolist()
            pos = seq.index(t[r].item())
            assert set(hist[r].tolist()) - {0} == set(seq[:pos])
