"""evaluate() under a memory budget: every budget gives the ranks, metrics and top-k lists of a
slow reference written from the definitions (full-row comparison per target, pessimistic
ties), on integer-valued scores (ties everywhere) with -inf entries, one target and several."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rcekd_core.data.interactions import Interactions
from rcekd_core.data.sequences import SequenceData
from rcekd_core.eval.metrics import metric_names
from rcekd_core.eval.ranking import eval_row_bytes, evaluate, rank_chunk
from rcekd_core.memory import rows_within
from rcekd_core.models.base import Recommender

N_USERS, N_ITEMS = 23, 40
KS = [1, 3, 5, 10]
CPU = torch.device("cpu")


class FixedScores(Recommender):
    """score_all of user u is the fixed row S[u] (column 0, padding, is -inf)."""

    def __init__(self, S: torch.Tensor):
        super().__init__()
        self.n_items, self.max_len, self.loss_type = S.size(1) - 1, 1, "none"
        self.register_buffer("S", S)

    def split_states(self, data, split, users, device):
        return users.to(device).unsqueeze(1).to(self.S.dtype)

    def score_all(self, states):
        return self.S[states[:, 0].long()].clone()


def sequences(protocol: str, seed: int = 0) -> tuple[list[list[int]], SequenceData]:
    """Random sequences of distinct items (lengths 4..29: ratio splits of 1..3 targets)."""
    rng = np.random.default_rng(seed)
    seqs = [list(rng.choice(np.arange(1, N_ITEMS + 1), size=int(rng.integers(4, 30)), replace=False))
            for _ in range(N_USERS)]
    users = np.repeat(np.arange(N_USERS), [len(s) for s in seqs])
    items = np.concatenate(seqs).astype(np.int64)
    inter = Interactions(users, items, np.arange(len(items), dtype=np.float64), N_USERS, N_ITEMS)
    return seqs, SequenceData.from_interactions(inter, protocol=protocol)


def tied_scores(seed: int, dtype=torch.float32) -> torch.Tensor:
    """Integer scores in 0..5 (ties galore), about 10 % of them -inf, column 0 -inf."""
    g = torch.Generator().manual_seed(seed)
    S = torch.randint(0, 6, (N_USERS, N_ITEMS + 1), generator=g).to(dtype)
    S[torch.rand(S.shape, generator=g) < 0.1] = float("-inf")
    S[:, 0] = float("-inf")
    return S


def split_of(seq: list[int], protocol: str, split: str) -> tuple[list[int], list[int]]:
    """(history, targets) of a split by its definition (loo: last two; ratio: 10 % rounded half up)."""
    n = len(seq)
    nv = 1 if protocol == "loo" else max(1, (n + 5) // 10)
    n_train = n - 2 * nv
    if split == "valid":
        return seq[:n_train], seq[n_train: n_train + nv]
    return seq[: n_train + nv], seq[n_train + nv:]


def reference_ranks(seqs, S, protocol: str, split: str, mask: bool) -> list[list[int]]:
    """Per user and target: #columns (padding included) scoring >= the target, minus itself."""
    out = []
    for u, seq in enumerate(seqs):
        hist, targets = split_of(seq, protocol, split)
        row = S[u].tolist()
        if mask:
            for i in hist:
                row[i] = float("-inf")
        out.append([sum(1 for s in row if s >= row[t]) - 1 for t in targets])
    return out


def reference_metrics(ranks: list[list[int]], ks: list[int]) -> dict[str, float]:
    sums = dict.fromkeys(metric_names(ks), 0.0)
    for r in ranks:
        for k in ks:
            hits = [x for x in r if x < k]
            sums[f"Recall@{k}"] += len(hits) / len(r)
            ideal = sum(1 / math.log2(j + 2) for j in range(min(k, len(r))))
            sums[f"NDCG@{k}"] += sum(1 / math.log2(x + 2) for x in hits) / ideal
            sums[f"MRR@{k}"] += 1 / (min(r) + 1) if min(r) < k else 0.0
    return {name: v / len(ranks) for name, v in sums.items()}


@pytest.mark.parametrize("protocol", ["loo", "ratio"])
@pytest.mark.parametrize("split", ["valid", "test"])
@pytest.mark.parametrize("mask", [True, False])
@pytest.mark.parametrize("rows", [1, 2, 5, N_USERS])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_budgeted_evaluation_matches_the_slow_reference(protocol, split, mask, rows, dtype):
    seqs, data = sequences(protocol)
    assert data.multi_target == (protocol == "ratio")
    model = FixedScores(tied_scores(3, dtype))
    # the budget that holds exactly `rows` users (the chunk cap is far above it)
    budget = rows * eval_row_bytes(model, data, split, max(KS), 5, mask)
    assert rows_within(budget, eval_row_bytes(model, data, split, max(KS), 5, mask), cap=10**6) == rows
    out = evaluate(model, data, split, KS, chunk=10**6, mask_history=mask, topk=5, device=CPU, budget=budget)
    want = reference_ranks(seqs, model.S, protocol, split, mask)
    for name, v in reference_metrics(want, KS).items():
        assert out.metrics[name] == pytest.approx(v, abs=1e-12), name
    # ranks per user: exact for one target; for several, exact below the cap max(KS), else the cap
    got = rank_chunk(model, data, split, torch.arange(N_USERS), max(KS), mask, 5, CPU)[0]
    for u, r in enumerate(want):
        if protocol == "loo":
            assert int(got[u]) == r[0]
        else:
            assert got[u, : len(r)].tolist() == [min(x, max(KS)) for x in r]
            assert (got[u, len(r):] == -1).all()
    # the top-5 lists: those of one chunk of every user, and the 5 best (masked) scores
    whole = evaluate(model, data, split, KS, chunk=10**6, mask_history=mask, topk=5, device=CPU, budget=1 << 30)
    assert torch.equal(out.topk, whole.topk)
    assert out.metrics == whole.metrics
    for u, seq in enumerate(seqs):
        row = model.S[u].clone()
        if mask:
            row[split_of(seq, protocol, split)[0]] = float("-inf")
        assert row[out.topk[u]].tolist() == sorted(row.tolist(), reverse=True)[:5]


def test_the_chunk_cap_still_bounds_a_large_budget():
    """eval.chunk stays the upper bound: a huge budget with chunk 4 scores 4 users at a time."""
    _, data = sequences("loo")
    model = FixedScores(tied_scores(0))
    seen = []
    score_all = model.score_all
    model.score_all = lambda states: seen.append(states.size(0)) or score_all(states)
    evaluate(model, data, "valid", KS, chunk=4, device=CPU, budget=1 << 40)
    assert seen == [4] * (N_USERS // 4) + [N_USERS % 4]
