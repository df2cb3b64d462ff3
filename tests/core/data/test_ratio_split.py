"""SequenceData under protocol `ratio` (per-user chronological 80/10/10): split sizes, targets,
histories, training items and counts on a hand-made log; `loo` unchanged. (KD contexts `user`
on it: tests/core/kd/test_contexts.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rcekd_core.data.interactions import Interactions
from rcekd_core.data.sequences import SequenceData, split_sizes

N_ITEMS = 30
RAW = [
    [5, 6, 7],  # -> user 0, length 3: train [5], valid [6], test [7]
    [3, 9],  # < 3 interactions: dropped
    list(range(1, 16)),  # -> user 1, length 15: 0.1 * 15 = 1.5 rounds up to 2: train 1..11, valid 12 13, test 14 15
    list(range(20, 30)),  # -> user 2, length 10: 1 / 1: train 20..27, valid 28, test 29
    [8, 4, 2, 30],  # -> user 3, length 4: 0.4 rounds to 0, at least 1: train 8 4, valid 2, test 30
    list(range(30, 5, -1)),  # -> user 4, length 25: 2.5 rounds up to 3: train 30..12, valid 11 10 9, test 8 7 6
]
KEPT = [RAW[0], RAW[2], RAW[3], RAW[4], RAW[5]]
# (train, valid, test) of each kept user, written out by hand from the comments above
SPLITS = [
    ([5], [6], [7]),
    (list(range(1, 12)), [12, 13], [14, 15]),
    (list(range(20, 28)), [28], [29]),
    ([8, 4], [2], [30]),
    (list(range(30, 11, -1)), [11, 10, 9], [8, 7, 6]),
]


def make(protocol: str = "ratio", raw=RAW) -> SequenceData:
    users = [u for u, s in enumerate(raw) for _ in s]
    items = [i for s in raw for i in s]
    inter = Interactions(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
                         np.arange(len(items), dtype=np.float64), len(raw), N_ITEMS)
    return SequenceData.from_interactions(inter, protocol)


def left_pad(rows: list[list[int]], width: int | None = None) -> list[list[int]]:
    width = max(len(r) for r in rows) if width is None else width
    return [[0] * (width - len(r)) + r for r in rows]


def right_pad(rows: list[list[int]]) -> list[list[int]]:
    width = max(len(r) for r in rows)
    return [r + [0] * (width - len(r)) for r in rows]


# ----------------------------------------------------------------------------- split sizes


@pytest.mark.parametrize("length, train, valid, test", [
    (3, 1, 1, 1),  # 0.3 -> 0 -> at least 1 each
    (4, 2, 1, 1),
    (5, 3, 1, 1),  # 0.5 rounds half up to 1
    (9, 7, 1, 1),
    (10, 8, 1, 1),
    (14, 12, 1, 1),  # 1.4 -> 1
    (15, 11, 2, 2),  # 1.5 -> 2 (half up, not banker's rounding)
    (16, 12, 2, 2),
    (20, 16, 2, 2),
    (24, 20, 2, 2),
    (25, 19, 3, 3),  # 2.5 -> 3
    (30, 24, 3, 3),
    (35, 27, 4, 4),  # 3.5 -> 4
    (100, 80, 10, 10),
    (105, 83, 11, 11),  # 10.5 -> 11
])
def test_ratio_split_sizes_by_hand(length, train, valid, test):
    v, t = split_sizes(torch.tensor([length]), "ratio")
    assert (v.item(), t.item()) == (valid, test)
    assert length - v.item() - t.item() == train


def test_ratio_split_sizes_match_integer_rounding_over_a_range():
    lengths = torch.arange(3, 20001)
    v, t = split_sizes(lengths, "ratio")
    # floor(0.1 n + 1/2) = floor((n + 5) / 10) in exact integer arithmetic, at least 1
    want = torch.clamp((lengths + 5) // 10, min=1)
    assert torch.equal(v, want) and torch.equal(t, want)
    assert v.dtype == torch.long and t.dtype == torch.long
    assert (lengths - v - t >= 1).all()  # every user keeps at least one training item


def test_loo_split_sizes_are_one_and_one():
    lengths = torch.tensor([3, 4, 15, 100])
    v, t = split_sizes(lengths, "loo")
    assert v.tolist() == [1, 1, 1, 1] and t.tolist() == [1, 1, 1, 1]


# ----------------------------------------------------------------------------- ratio data


def test_ratio_users_lengths_and_split_counts():
    d = make()
    assert d.protocol == "ratio" and d.multi_target
    assert d.n_users == 5 and d.dropped_users == 1 and d.n_items == N_ITEMS
    assert d.lengths.tolist() == [3, 15, 10, 4, 25]
    assert d.train_lengths.tolist() == [len(s[0]) for s in SPLITS]
    assert d.n_valid.tolist() == [len(s[1]) for s in SPLITS]
    assert d.n_test.tolist() == [len(s[2]) for s in SPLITS]
    for u, seq in enumerate(KEPT):
        assert d.items[d.offsets[u]: d.offsets[u + 1]].tolist() == seq


def test_ratio_targets_are_right_padded_item_runs():
    d = make()
    valid, test = d.targets("valid"), d.targets("test")
    assert valid.shape == (5, 3) and test.shape == (5, 3)  # widest split: user 4's three items
    assert valid.tolist() == right_pad([s[1] for s in SPLITS]) == [
        [6, 0, 0], [12, 13, 0], [28, 0, 0], [2, 0, 0], [11, 10, 9]]
    assert test.tolist() == right_pad([s[2] for s in SPLITS]) == [
        [7, 0, 0], [14, 15, 0], [29, 0, 0], [30, 0, 0], [8, 7, 6]]
    # a subset of users, in its own order: the width is that of the subset
    assert d.targets("valid", torch.tensor([3, 1])).tolist() == [[2, 0], [12, 13]]
    assert d.targets("test", torch.tensor([2])).tolist() == [[29]]
    assert d.targets("test", torch.tensor([4, 0])).tolist() == [[8, 7, 6], [7, 0, 0]]


def test_ratio_history_valid_is_training_items_test_adds_validation_items():
    d = make()
    u = torch.arange(d.n_users)
    assert d.history("valid", u).tolist() == left_pad([s[0] for s in SPLITS])
    assert d.history("test", u).tolist() == left_pad([s[0] + s[1] for s in SPLITS])
    assert d.history("valid", torch.tensor([3, 0])).tolist() == [[8, 4], [0, 5]]
    assert d.history("test", torch.tensor([3, 0])).tolist() == [[8, 4, 2], [0, 5, 6]]


def test_ratio_train_items_and_contexts():
    d = make()
    u = torch.arange(d.n_users)
    train = d.train_items(u)
    assert train.shape == (5, 19)
    assert train.tolist() == left_pad([s[0] for s in SPLITS])
    assert d.train_items(torch.tensor([3, 1])).tolist() == left_pad([SPLITS[3][0], SPLITS[1][0]])
    assert d.train_items(torch.tensor([0])).tolist() == [[5]]
    # sequential-style windows still work: the last max_len items before the split
    assert d.contexts("valid", u, 3).tolist() == left_pad([s[0][-3:] for s in SPLITS], 3)
    assert d.contexts("test", u, 3).tolist() == left_pad([(s[0] + s[1])[-3:] for s in SPLITS], 3)


def test_ratio_splits_partition_every_sequence_in_time_order():
    d = make()
    u = torch.arange(d.n_users)
    train, valid, test = d.train_items(u), d.targets("valid"), d.targets("test")
    for r, seq in enumerate(KEPT):
        parts = [x[x > 0].tolist() for x in (train[r], valid[r], test[r])]
        assert parts[0] + parts[1] + parts[2] == seq


def test_train_item_counts_count_training_items_only():
    d = make()
    want = [0] * (N_ITEMS + 1)
    for tr, _, _ in SPLITS:
        for i in tr:
            want[i] += 1
    got = d.train_item_counts()
    assert got.tolist() == want
    assert got[0] == 0 and got.sum() == sum(len(s[0]) for s in SPLITS)
    assert got[13] == 1  # user 4 trains on 13; user 1's validation 13 does not count
    assert got[8] == 2  # users 1 and 3 train on 8; user 4's test 8 does not count
    assert got[30] == 1  # user 4 trains on 30; user 3's test 30 does not count


def test_loo_on_the_same_log_is_unchanged():
    d = make("loo")
    assert d.protocol == "loo" and not d.multi_target
    default = SequenceData.from_interactions(
        Interactions(np.array([0, 0, 0]), np.array([1, 2, 3]), np.arange(3.0), 1, 3))
    assert default.protocol == "loo" and not default.multi_target
    assert d.train_lengths.tolist() == [len(s) - 2 for s in KEPT]
    valid, test = d.targets("valid"), d.targets("test")
    assert valid.dim() == 1 and test.dim() == 1
    assert valid.tolist() == [s[-2] for s in KEPT]
    assert test.tolist() == [s[-1] for s in KEPT]
    assert d.targets("test", torch.tensor([3, 0])).tolist() == [30, 7]
    u = torch.arange(d.n_users)
    assert d.history("valid", u).tolist() == left_pad([s[:-2] for s in KEPT])
    assert d.history("test", u).tolist() == left_pad([s[:-1] for s in KEPT])
    assert d.train_items(u).tolist() == left_pad([s[:-2] for s in KEPT])
    inputs, targets = d.train_batch(torch.tensor([3]), 4)
    assert inputs.tolist() == [[0, 0, 8, 4]] and targets.tolist() == [[0, 0, 4, 0]]
