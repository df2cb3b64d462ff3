"""SequenceData (leave-one-out split, windows, batches) and KDContexts (dense context ids)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rcekd_core.data.interactions import Interactions
from rcekd_core.data.sequences import SequenceData
from rcekd_core.kd.contexts import KDContexts, context_states
from rcekd_core.models.base import SequentialRecommender

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


# ----------------------------------------------------------------------------- KD contexts


def test_kdcontexts_last_ids_are_users():
    d = data()
    c = KDContexts(d, "last", 4)
    assert c.n == d.n_users
    users = torch.tensor([2, 0])
    _, targets = d.train_batch(users, 4)
    ids, mask = c.select(users, targets)
    assert ids.tolist() == [2, 0]
    assert mask.tolist() == [[False, False, False, True]] * 2
    got = torch.cat([ids for _, ids, _ in c.chunks(2)])
    assert got.tolist() == [0, 1, 2]


def _id_map(c: KDContexts, d: SequenceData, users, max_len):
    """id -> (user, column, input item, target item) of a batch selection."""
    inputs, targets = d.train_batch(users, max_len)
    ids, mask = c.select(users, targets)
    rows, cols = mask.nonzero(as_tuple=True)
    return {int(i): (int(users[r]), int(col), int(inputs[r, col]), int(targets[r, col]))
            for i, r, col in zip(ids, rows, cols)}, ids, mask, targets


@pytest.mark.parametrize("max_len", [2, 4, 10])
def test_kdcontexts_all_ids_dense_unique_and_consistent(max_len):
    d = data()
    c = KDContexts(d, "all", max_len)
    # one context per training prefix inside the window whose next item is a training item
    expected_n = sum(min(t - 1, max_len - 1) for t in d.train_lengths.tolist())
    assert c.n == expected_n
    # chunks: every id once, in order 0..n-1, mask = positions with a target
    seen = []
    for chunk in (1, 3, 100):
        seen = []
        for users, ids, mask in c.chunks(chunk * max_len):
            _, targets = d.train_batch(users, max_len)
            assert torch.equal(mask, targets > 0)
            seen += ids.tolist()
        assert seen == list(range(c.n))
    full, *_ = _id_map(c, d, all_users(d), max_len)
    # a shuffled batch maps every id to the same (user, position)
    for users in (torch.tensor([2, 0]), torch.tensor([1, 2]), torch.tensor([2, 1, 0])):
        part, ids, mask, targets = _id_map(c, d, users, max_len)
        assert len(ids) == int(mask.sum()) == len(set(ids.tolist()))
        assert mask.tolist() == (targets > 0).tolist()
        for i, v in part.items():
            assert full[i] == v
    # every training (input, next item) pair inside the window appears exactly once
    pairs = sorted((u, inp, tgt) for u, _, inp, tgt in full.values())
    want = []
    for u in range(d.n_users):
        seq = d.items[d.offsets[u]: d.offsets[u + 1]].tolist()[:-2][-max_len:]
        want += [(u, a, b) for a, b in zip(seq[:-1], seq[1:])]
    assert pairs == sorted(want)


def test_kdcontexts_all_hand_ids():
    d = data()
    c = KDContexts(d, "all", 4)
    # user 0: window [0,5,6,7], targets at cols 1,2; user 1: none; user 2: cols 0,1,2
    assert c.n == 5
    users = torch.tensor([2, 0])
    _, targets = d.train_batch(users, 4)
    ids, mask = c.select(users, targets)
    assert ids.tolist() == [2, 3, 4, 0, 1]
    assert mask.tolist() == [[True, True, True, False], [False, True, True, False]]


class SumModel(SequentialRecommender):
    """State at position i = sum of the item ids up to i (a 1-d 'embedding')."""

    def __init__(self, max_len):
        super().__init__()
        self.max_len, self.n_items, self.loss_type = max_len, N_ITEMS, "ce"
        self.w = nn.Parameter(torch.ones(1))

    def encode(self, seqs):
        return (seqs.float().cumsum(1) * self.w).unsqueeze(-1)

    def item_table(self):
        return torch.zeros(N_ITEMS + 1, 1)


# model_len 2 < the student's 3 only with `last`: the experiment rejects it for `all`
@pytest.mark.parametrize("mode,model_len", [("last", 2), ("last", 3), ("last", 8), ("all", 3), ("all", 8)])
def test_context_states_align_with_ids(mode, model_len):
    """States in id order; a model with a longer window sees more history at the same spot."""
    d = data()
    student_len = 3
    c = KDContexts(d, mode, student_len)
    model = SumModel(model_len)
    got = {}
    for ids, states in context_states(model, c, 2, torch.device("cpu")):
        for i, s in zip(ids.tolist(), states[:, 0].tolist()):
            got[i] = s
    assert sorted(got) == list(range(c.n))
    # reference: context id -> sum of the last `model_len` items up to that prefix
    users = all_users(d)
    inputs, targets = d.train_batch(users, student_len)
    ids, mask = c.select(users, targets)
    rows, cols = mask.nonzero(as_tuple=True)
    for i, r, col in zip(ids.tolist(), rows.tolist(), cols.tolist()):
        seq = d.items[d.offsets[r]: d.offsets[r + 1]].tolist()[:-2]
        # column col of the student window ends at training item index end
        end = len(seq) - (student_len - 1 - col)
        # the model's input is its last `model_len` training items; the state at a prefix
        # covers that input up to the prefix's end (causal)
        start = max(0, len(seq) - model_len)
        assert got[i] == pytest.approx(sum(seq[start:end])), (i, r, col)
