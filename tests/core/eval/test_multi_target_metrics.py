"""Multi-target ranking metrics (protocol `ratio`): hand-computed numbers, pessimistic target
ranks, and a full evaluate() against a slow per-user loop written from the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rcekd_core.data.interactions import Interactions
from rcekd_core.data.sequences import SequenceData
from rcekd_core.eval.metrics import (
    metric_names,
    metrics_from_ranks,
    metrics_from_target_ranks,
)
from rcekd_core.eval.popularity import evaluate_popularity
from rcekd_core.eval.ranking import evaluate, target_ranks
from rcekd_core.models.base import Recommender


def lg(x: float) -> float:
    return math.log2(x)


# ----------------------------------------------------------------------------- hand numbers

# three users with 2, 1 and 3 targets; -1 pads the rows
RANKS = torch.tensor([
    [0, 3, -1],  # user a: targets at ranks 0 and 3
    [5, -1, -1],  # user b: one target at rank 5
    [2, 1, 12],  # user c: targets at ranks 2, 1 and 12
])


def test_multi_target_metrics_hand_numbers():
    m = metrics_from_target_ranks(RANKS, [1, 5, 10, 13])
    assert set(m) == set(metric_names([1, 5, 10, 13]))
    # K = 1: only rank 0 counts. a: 1 hit of 2; ideal DCG of min(1, |T|) = 1 hit is 1
    assert m["Recall@1"] == pytest.approx((1 / 2 + 0 + 0) / 3)
    assert m["NDCG@1"] == pytest.approx((1 / 1 + 0 + 0) / 3)
    assert m["MRR@1"] == pytest.approx((1 + 0 + 0) / 3)
    # K = 5: a hits 0 and 3 (2/2); b's rank 5 is outside; c hits 2 and 1 (2/3)
    assert m["Recall@5"] == pytest.approx((2 / 2 + 0 / 1 + 2 / 3) / 3)
    ndcg_a = (1 / lg(2) + 1 / lg(5)) / (1 / lg(2) + 1 / lg(3))  # ideal: 2 targets at ranks 0, 1
    ndcg_c = (1 / lg(4) + 1 / lg(3)) / (1 / lg(2) + 1 / lg(3) + 1 / lg(4))  # ideal: 3 at 0, 1, 2
    assert m["NDCG@5"] == pytest.approx((ndcg_a + 0 + ndcg_c) / 3)
    assert m["MRR@5"] == pytest.approx((1 / 1 + 0 + 1 / 2) / 3)  # best target: a 0, c 1
    # K = 10: b's rank 5 now counts (ideal for one target is 1); c's rank 12 still outside
    assert m["Recall@10"] == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert m["NDCG@10"] == pytest.approx((ndcg_a + 1 / lg(7) + ndcg_c) / 3)
    assert m["MRR@10"] == pytest.approx((1 + 1 / 6 + 1 / 2) / 3)
    # K = 13: every target is in
    ndcg_c13 = (1 / lg(4) + 1 / lg(3) + 1 / lg(14)) / (1 / lg(2) + 1 / lg(3) + 1 / lg(4))
    assert m["Recall@13"] == pytest.approx(1.0)
    assert m["NDCG@13"] == pytest.approx((ndcg_a + 1 / lg(7) + ndcg_c13) / 3)
    assert m["MRR@13"] == pytest.approx((1 + 1 / 6 + 1 / 2) / 3)


def test_ideal_dcg_is_capped_at_k_targets():
    # 3 targets, K = 2: ranks 0 and 1 are a perfect top-2 (NDCG 1) though only 2 of 3 are hit
    m = metrics_from_target_ranks(torch.tensor([[1, 0, 7]]), [2, 3, 8])
    assert m["NDCG@2"] == pytest.approx(1.0)
    assert m["Recall@2"] == pytest.approx(2 / 3)
    assert m["NDCG@3"] == pytest.approx((1 + 1 / lg(3)) / (1 + 1 / lg(3) + 1 / lg(4)))
    assert m["NDCG@8"] == pytest.approx((1 + 1 / lg(3) + 1 / lg(9)) / (1 + 1 / lg(3) + 1 / lg(4)))
    assert m["Recall@8"] == pytest.approx(1.0)


def test_perfect_ranking_is_one_and_nothing_exceeds_one():
    perfect = torch.tensor([[2, 0, 1], [0, -1, -1], [1, 0, -1]])
    for k in (1, 2, 3, 10):
        m = metrics_from_target_ranks(perfect, [k])
        assert m[f"NDCG@{k}"] == pytest.approx(1.0) and m[f"MRR@{k}"] == pytest.approx(1.0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        ranks = torch.stack([torch.randperm(50, generator=gen)[:4] for _ in range(7)])
        pad = torch.rand(ranks.shape, generator=gen) < 0.4
        pad[:, 0] = False  # at least one target per row
        ranks[pad] = -1
        m = metrics_from_target_ranks(ranks, [1, 5, 20, 50])
        assert all(0.0 <= v <= 1.0 + 1e-12 for v in m.values()), m


def test_one_target_per_user_equals_the_leave_one_out_metrics():
    ranks = torch.tensor([0, 3, 12, 4, 5, 1, 99])
    ks = [1, 5, 10, 20]
    single = metrics_from_target_ranks(ranks.unsqueeze(1), ks)
    loo = metrics_from_ranks(ranks, ks)
    for name in loo:
        assert single[name] == pytest.approx(loo[name]), name
    # extra padding columns and the order of users change nothing
    padded = torch.cat([ranks.unsqueeze(1), torch.full((7, 3), -1)], 1)[torch.randperm(7)]
    for name, v in metrics_from_target_ranks(padded, ks).items():
        assert v == pytest.approx(loo[name]), name


def test_target_order_within_a_row_does_not_matter():
    a = metrics_from_target_ranks(RANKS, [1, 5, 10])
    shuffled = torch.tensor([[3, 0, -1], [5, -1, -1], [12, 2, 1]])
    b = metrics_from_target_ranks(shuffled, [1, 5, 10])
    for name in a:
        assert a[name] == pytest.approx(b[name]), name


# ----------------------------------------------------------------------------- target ranks

NEG = float("-inf")


def test_target_ranks_pessimistic_ties_and_masked_items():
    #                    0    1   2   3   4   5   6    7
    scores = torch.tensor([[NEG, 3., 5., 5., 1., 5., NEG, 2.],
                           [NEG, 0., 0., 0., 0., 0., 0., 0.]])
    targets = torch.tensor([[2, 7, 3, 6], [4, 1, 0, 0]])
    r = target_ranks(scores, targets, cap=8)  # cap >= n - 1: exact
    # row 0: item 2 scores 5, tied with 3 and 5: 3 items >= 5 -> rank 2 (not 0)
    #        item 7 scores 2: items 1, 2, 3, 5, 7 are >= 2 -> rank 4
    #        item 3: same score as item 2 -> the same pessimistic rank 2
    #        item 6 is masked (-inf): all 8 columns are >= -inf -> rank 7 (last)
    # row 1: items 1..7 all tie at 0 -> rank 6 each; padding (0, -inf) -> rank 7
    assert r.tolist() == [[2, 4, 2, 7], [6, 6, 7, 7]]


def test_target_ranks_match_a_brute_force_count():
    gen = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 6, (9, 21), generator=gen).double()  # many ties
    scores[:, 0] = NEG
    scores[torch.rand(scores.shape, generator=gen) < 0.2] = NEG  # some masked items
    targets = torch.randint(0, 21, (9, 5), generator=gen)
    got = target_ranks(scores, targets, cap=21)
    for b in range(9):
        for j in range(5):
            t = scores[b, targets[b, j]].item()
            want = sum(1 for i in range(21) if scores[b, i].item() >= t) - 1
            assert got[b, j].item() == want, (b, j)


# ----------------------------------------------------------------------------- evaluate


N_USERS, N_ITEMS = 11, 30


def ratio_sequences(seed: int = 0) -> list[list[int]]:
    """Distinct items per user; lengths chosen to hit 1, 2 and 3 validation/test items."""
    rng = np.random.default_rng(seed)
    lengths = [3, 4, 5, 9, 10, 14, 15, 16, 20, 25, 26]
    return [[int(i) for i in rng.choice(np.arange(1, N_ITEMS + 1), size=n, replace=False)] for n in lengths]


def ratio_data(seqs) -> SequenceData:
    users = [u for u, s in enumerate(seqs) for _ in s]
    items = [i for s in seqs for i in s]
    inter = Interactions(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
                         np.arange(len(items), dtype=np.float64), len(seqs), N_ITEMS)
    return SequenceData.from_interactions(inter, "ratio")


class FixedUserScores(Recommender):
    """A general model whose score of item i for user u is S[u, i] (one-hot user states)."""

    general = True

    def __init__(self, S: torch.Tensor):
        super().__init__()
        self.n_items, self.max_len, self.loss_type = S.size(1) - 1, 1, "bpr"
        self.n_users = S.size(0)
        self.table = nn.Parameter(S.T.clone())

    def split_states(self, data, split, users, device):
        return nn.functional.one_hot(users, self.n_users).double().to(device)

    def item_table(self):
        return self.table


def fixed_scores(seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 7, (N_USERS, N_ITEMS + 1), generator=gen).double()  # ties galore


def reference_metrics(seqs, S, split: str, ks: list[int], mask: bool) -> dict[str, float]:
    """Per user, from the definitions: 80/10/10 split by integer rounding, history -inf,
    rank = #items (1..n) scoring >= the target - 1, metrics averaged over users."""
    sums = {name: 0.0 for name in metric_names(ks)}
    for u, seq in enumerate(seqs):
        n = len(seq)
        nv = max(1, (n + 5) // 10)
        nt = nv
        n_train = n - nv - nt
        if split == "valid":
            hist, targets = seq[:n_train], seq[n_train: n_train + nv]
        else:
            hist, targets = seq[: n_train + nv], seq[n_train + nv:]
        s = {i: float(S[u, i]) for i in range(1, N_ITEMS + 1)}
        if mask:
            for i in hist:
                s[i] = float("-inf")
        ranks = [sum(1 for i in s if s[i] >= s[t]) - 1 for t in targets]
        for k in ks:
            hits = [r for r in ranks if r < k]
            sums[f"Recall@{k}"] += len(hits) / len(targets)
            dcg = sum(1 / math.log2(r + 2) for r in hits)
            idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(targets))))
            sums[f"NDCG@{k}"] += dcg / idcg
            best = min(ranks)
            sums[f"MRR@{k}"] += 1 / (best + 1) if best < k else 0.0
    return {name: v / len(seqs) for name, v in sums.items()}


KS = [1, 3, 5, 10, 20]


@pytest.mark.parametrize("split", ["valid", "test"])
@pytest.mark.parametrize("mask", [True, False])
@pytest.mark.parametrize("chunk", [1, 4, 100])
def test_evaluate_ratio_matches_per_user_reference(split, mask, chunk):
    seqs = ratio_sequences()
    d = ratio_data(seqs)
    assert d.n_users == N_USERS and d.multi_target
    assert sorted(set(d.n_valid.tolist())) == [1, 2, 3]  # rows of different widths
    S = fixed_scores()
    out = evaluate(FixedUserScores(S), d, split, KS, chunk=chunk, mask_history=mask, topk=5)
    want = reference_metrics(seqs, S, split, KS, mask)
    assert set(out.metrics) == set(want)
    for name, v in want.items():
        assert out.metrics[name] == pytest.approx(v, abs=1e-12), name
    # top-5: valid item ids whose scores are the 5 best of the (masked) row
    assert out.topk.shape == (N_USERS, 5)
    for u in range(N_USERS):
        row = S[u].clone()
        row[0] = NEG
        if mask:
            row[d.history(split, torch.tensor([u]))[0]] = NEG
            row[0] = NEG
        best = sorted(row.tolist(), reverse=True)[:5]
        assert sorted(row[out.topk[u]].tolist(), reverse=True) == best


def test_evaluate_ratio_does_not_mask_the_splits_own_targets():
    """Validation masks only training items, so validation targets the model scores highest
    rank first; test masks training + validation items."""
    seqs = ratio_sequences()
    d = ratio_data(seqs)
    S = torch.zeros(N_USERS, N_ITEMS + 1, dtype=torch.float64)
    for u, seq in enumerate(seqs):
        n = len(seq)
        nv = max(1, (n + 5) // 10)
        S[u, seq[: n - 2 * nv]] = 100.0  # training items: high, but masked
        S[u, seq[n - 2 * nv: n - nv]] = 200.0 + torch.arange(nv, dtype=torch.float64)  # validation: highest
        S[u, seq[n - nv:]] = 100.0 + torch.arange(nv, dtype=torch.float64)  # test: tie the training items
    out = evaluate(FixedUserScores(S), d, "valid", [1, 3], mask_history=True)
    assert out.metrics["NDCG@3"] == pytest.approx(1.0) and out.metrics["Recall@3"] == pytest.approx(1.0)
    out = evaluate(FixedUserScores(S), d, "test", [3], mask_history=True)
    # training and validation items are masked for test: the test items lead the zeros
    assert out.metrics["NDCG@3"] == pytest.approx(1.0) and out.metrics["MRR@3"] == pytest.approx(1.0)
    out = evaluate(FixedUserScores(S), d, "test", [1, 3], mask_history=False)
    # unmasked: validation items outrank every test item, training items tie with them
    assert out.metrics["MRR@1"] == 0.0 and out.metrics["Recall@3"] < 1.0


def test_capped_target_ranks_are_exact_below_the_cap_and_cap_beyond():
    """The top-(cap + 1) count gives the exact pessimistic rank below `cap`, and `cap` for
    every target ranked at `cap` or worse (ties at the boundary included)."""
    gen = torch.Generator().manual_seed(5)
    scores = torch.randint(0, 8, (40, 30), generator=gen).double()  # ties everywhere
    scores[:, 0] = NEG
    scores[torch.rand(scores.shape, generator=gen) < 0.1] = NEG
    targets = torch.randint(0, 30, (40, 6), generator=gen)
    exact = target_ranks(scores, targets, cap=30)
    for cap in (1, 3, 5, 10):
        assert torch.equal(target_ranks(scores, targets, cap), exact.clamp(max=cap)), cap


def test_tied_targets_are_pessimistic_towards_each_other():
    """Two targets sharing the top score both get rank 1: the tie rule counts every other item
    scoring >= a target, the other target included (so NDCG@K < 1 for a tied top)."""
    scores = torch.tensor([[NEG, 9., 9., 1., 0.]])
    r = target_ranks(scores, torch.tensor([[1, 2]]), cap=2)
    assert r.tolist() == [[1, 1]]
    m = metrics_from_target_ranks(r, [2])
    assert m["Recall@2"] == pytest.approx(1.0) and m["MRR@2"] == pytest.approx(1 / 2)
    assert m["NDCG@2"] == pytest.approx((2 / lg(3)) / (1 + 1 / lg(3)))


def test_popularity_under_ratio_matches_reference():
    seqs = ratio_sequences()
    d = ratio_data(seqs)
    counts = torch.zeros(N_ITEMS + 1, dtype=torch.float64)
    for seq in seqs:
        n = len(seq)
        nv = max(1, (n + 5) // 10)
        for i in seq[: n - 2 * nv]:
            counts[i] += 1
    S = counts.expand(N_USERS, -1).clone()
    for split in ("valid", "test"):
        got = evaluate_popularity(d, split, KS)
        want = reference_metrics(seqs, S, split, KS, True)
        for name, v in want.items():
            assert got[name] == pytest.approx(v, abs=1e-12), (split, name)
