"""KDContexts: dense context ids (`last`, `all`, `user`), their prefixes, histories and next items,
and the model states at every context, on hand-made logs (leave-one-out and ratio)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rcekd_core.data.interactions import Interactions
from rcekd_core.data.sequences import SequenceData
from rcekd_core.kd.contexts import KDContexts, context_states, mask_history_
from rcekd_core.models.base import SequentialRecommender
from rcekd_core.models.registry import build_model
from rcekd_core.settings import ModelConfig

# ----------------------------------------------------------------------------- a leave-one-out log

LOO_RAW = [
    [5, 6, 7, 8, 9],  # user 0 -> 0
    [1, 2],  # user 1: < 3 interactions, dropped
    [3, 4, 10],  # user 2 -> 1
    [2, 4, 6, 8, 1, 3, 5],  # user 3 -> 2
    [7],  # user 4: dropped
]
LOO_ITEMS = 10


def loo_data(raw=LOO_RAW) -> SequenceData:
    users = [u for u, s in enumerate(raw) for _ in s]
    items = [i for s in raw for i in s]
    return SequenceData.from_interactions(Interactions(
        np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
        np.arange(len(items), dtype=np.float64), len(raw), LOO_ITEMS))


def all_users(d):
    return torch.arange(d.n_users)


# ----------------------------------------------------------------------------- a ratio log

RATIO_ITEMS = 30
RATIO_RAW = [
    [5, 6, 7],  # -> user 0, length 3: train [5], valid [6], test [7]
    [3, 9],  # < 3 interactions: dropped
    list(range(1, 16)),  # -> user 1, length 15: 0.1 * 15 = 1.5 rounds up to 2: train 1..11, valid 12 13, test 14 15
    list(range(20, 30)),  # -> user 2, length 10: 1 / 1: train 20..27, valid 28, test 29
    [8, 4, 2, 30],  # -> user 3, length 4: 0.4 rounds to 0, at least 1: train 8 4, valid 2, test 30
    list(range(30, 5, -1)),  # -> user 4, length 25: 2.5 rounds up to 3: train 30..12, valid 11 10 9, test 8 7 6
]
# (train, valid, test) of each kept user, written out by hand from the comments above
SPLITS = [
    ([5], [6], [7]),
    (list(range(1, 12)), [12, 13], [14, 15]),
    (list(range(20, 28)), [28], [29]),
    ([8, 4], [2], [30]),
    (list(range(30, 11, -1)), [11, 10, 9], [8, 7, 6]),
]


def ratio_data(protocol: str = "ratio", raw=RATIO_RAW) -> SequenceData:
    users = [u for u, s in enumerate(raw) for _ in s]
    items = [i for s in raw for i in s]
    inter = Interactions(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
                         np.arange(len(items), dtype=np.float64), len(raw), RATIO_ITEMS)
    return SequenceData.from_interactions(inter, protocol)


def left_pad(rows: list[list[int]], width: int | None = None) -> list[list[int]]:
    width = max(len(r) for r in rows) if width is None else width
    return [[0] * (width - len(r)) + r for r in rows]


# ----------------------------------------------------------------------------- `last` and `all`


def test_kdcontexts_last_ids_are_users():
    d = loo_data()
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
    d = loo_data()
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
    d = loo_data()
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
        self.max_len, self.n_items, self.loss_type = max_len, LOO_ITEMS, "ce"
        self.w = nn.Parameter(torch.ones(1))

    def encode(self, seqs):
        return (seqs.float().cumsum(1) * self.w).unsqueeze(-1)

    def item_table(self):
        return torch.zeros(LOO_ITEMS + 1, 1)


# model_len 2 < the student's 3 only with `last`: the experiment rejects it for `all`
@pytest.mark.parametrize("mode,model_len", [("last", 2), ("last", 3), ("last", 8), ("all", 3), ("all", 8)])
def test_context_states_align_with_ids(mode, model_len):
    """States in id order; a model with a longer window sees more history at the same spot."""
    d = loo_data()
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


# ----------------------------------------------------------------------------- `user` (general models)


def test_kdcontexts_user_mode_one_context_per_user():
    d = ratio_data()
    c = KDContexts(d, "user", 1)
    assert c.n == d.n_users
    users = torch.tensor([4, 1, 3])
    ids, mask = c.select(users, d.train_items(users))
    assert ids.tolist() == [4, 1, 3] and mask is None
    chunks = list(c.chunks(2))
    assert [u.tolist() for u, _, _ in chunks] == [[0, 1], [2, 3], [4]]
    assert all(torch.equal(u, i) and m is None for u, i, m in chunks)
    # history: every training item; next item: the most recent training item
    assert c.history(torch.arange(d.n_users)).tolist() == left_pad([s[0] for s in SPLITS])
    assert c.history(torch.tensor([3])).tolist() == [[8, 4]]
    assert c.next_items().tolist() == [s[0][-1] for s in SPLITS] == [5, 11, 27, 4, 12]
    users_, ends = c.prefix()
    assert users_.tolist() == list(range(5)) and ends.tolist() == d.train_lengths.tolist()


def test_context_states_user_mode_are_the_models_user_states():
    d = ratio_data()
    c = KDContexts(d, "user", 1)
    torch.manual_seed(0)
    mf = build_model(ModelConfig(arch="mf", dim=4, loss="bpr"), d.n_items, d)
    mf.train()
    got = list(context_states(mf, c, chunk=2, device=torch.device("cpu")))
    assert mf.training  # restored
    ids = torch.cat([i for i, _ in got])
    states = torch.cat([s for _, s in got])
    assert ids.tolist() == list(range(5))
    torch.testing.assert_close(states, mf.user_emb.weight.detach())
    # masking each context's own history removes exactly its training items (and padding)
    scores = mask_history_(mf.score_all(states), c, ids)
    for u, (tr, va, te) in enumerate(SPLITS):
        inf = set(torch.nonzero(torch.isneginf(scores[u])).flatten().tolist())
        assert inf == {0, *tr}
