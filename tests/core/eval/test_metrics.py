"""Ranking metrics on hand-computed ranks, full-ranking evaluate() on a fixed score table,
and top-K overlap on hand cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rcekd_core.data.interactions import Interactions
from rcekd_core.data.sequences import SequenceData
from rcekd_core.eval.metrics import metric_names, metrics_from_ranks
from rcekd_core.eval.overlap import topk_overlap
from rcekd_core.eval.ranking import evaluate
from rcekd_core.models.base import SequentialRecommender

# ----------------------------------------------------------------------------- metrics


def test_metrics_hand_numbers():
    m = metrics_from_ranks(torch.tensor([0, 3, 12]), [10])
    assert m["Recall@10"] == pytest.approx(2 / 3)
    assert m["NDCG@10"] == pytest.approx((1 + 1 / math.log2(5) + 0) / 3)
    assert m["MRR@10"] == pytest.approx((1 + 1 / 4 + 0) / 3)


def test_metrics_cutoff_is_strict():
    # 0-based rank K-1 is inside the top K, rank K is not
    m = metrics_from_ranks(torch.tensor([4, 5]), [5])
    assert m["Recall@5"] == pytest.approx(0.5)
    assert m["NDCG@5"] == pytest.approx(1 / math.log2(6) / 2)
    assert m["MRR@5"] == pytest.approx(1 / 5 / 2)


def test_metrics_several_ks_and_names():
    ranks = torch.tensor([0, 1, 2, 9, 10, 19, 20, 100])
    m = metrics_from_ranks(ranks, [1, 10, 20])
    assert set(m) == set(metric_names([1, 10, 20]))
    assert m["Recall@1"] == pytest.approx(1 / 8)
    assert m["NDCG@1"] == pytest.approx(1 / 8)
    assert m["MRR@1"] == pytest.approx(1 / 8)
    assert m["Recall@10"] == pytest.approx(4 / 8)
    assert m["NDCG@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(11)) / 8)
    assert m["MRR@10"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 10) / 8)
    assert m["Recall@20"] == pytest.approx(6 / 8)
    assert m["NDCG@20"] == pytest.approx(
        (1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(11) + 1 / math.log2(12) + 1 / math.log2(21)) / 8)
    assert m["MRR@20"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 10 + 1 / 11 + 1 / 20) / 8)
    assert all(0.0 <= v <= 1.0 for v in m.values())


# ----------------------------------------------------------------------------- evaluate

N_ITEMS = 8
# score rows indexed by the LAST item of the context
S = torch.zeros(N_ITEMS + 1, N_ITEMS + 1)
S[2, 1:] = torch.tensor([10, 9, 8, 7, 6, 5, 4, 3.0])
S[6, 1:] = torch.tensor([5, 0, 9, 0, 100, 100, 5, 5.0])
S[3, 1:] = torch.tensor([40, 2, 50, 1, 0.5, 0.2, 0.1, 0.3])
S[7, 1:] = torch.tensor([0, 0, 0, 0, 5, 5, 5, -1.0])
S[5, 1:] = torch.tensor([3, 7, 3, 0, 9, 0, 0, 0.0])

SEQS = [
    [1, 2, 3, 4],  # valid: ctx ..2, target 3 (history 1, 2); test: ctx ..3, target 4
    [5, 6, 7, 8],  # valid: ctx ..6, target 7, ties with 1 and 8; test: ctx ..7, target 8
    [2, 5, 1],  # valid: ctx ..2, target 5; test: ctx ..5, target 1 (tie with 3)
    [1, 4, 6, 2, 8],  # history longer than the window of 2: item 1 is outside it
]
# hand-computed 0-based pessimistic ranks (see the score rows above)
VALID_MASKED, VALID_RAW = [0, 3, 3, 4], [2, 5, 4, 7]
TEST_MASKED, TEST_RAW = [0, 4, 1, 3], [3, 7, 3, 7]


class LastItemModel(SequentialRecommender):
    """Scores depend only on the context's last item: score(i) = S[last, i]."""

    def __init__(self, max_len=2):
        super().__init__()
        self.n_items, self.max_len, self.loss_type = N_ITEMS, max_len, "ce"
        self.table = nn.Parameter(S.T.clone())

    def encode(self, seqs):
        return nn.functional.one_hot(seqs, N_ITEMS + 1).float()

    def item_table(self):
        return self.table


def data() -> SequenceData:
    users = [u for u, s in enumerate(SEQS) for _ in s]
    items = [i for s in SEQS for i in s]
    return SequenceData.from_interactions(Interactions(
        np.array(users), np.array(items), np.arange(len(items), dtype=float), len(SEQS), N_ITEMS))


KS = list(range(1, N_ITEMS + 1))


@pytest.mark.parametrize("split,mask,ranks", [
    ("valid", True, VALID_MASKED), ("valid", False, VALID_RAW),
    ("test", True, TEST_MASKED), ("test", False, TEST_RAW),
])
def test_evaluate_ranks_with_history_masking_and_pessimistic_ties(split, mask, ranks):
    out = evaluate(LastItemModel(), data(), split, KS, chunk=3, mask_history=mask, topk=3)
    # Recall@k for every k identifies the ranks exactly
    for k in KS:
        assert out.metrics[f"Recall@{k}"] == pytest.approx(np.mean([r < k for r in ranks])), k
    want = metrics_from_ranks(torch.tensor(ranks), KS)
    for name, v in want.items():
        assert out.metrics[name] == pytest.approx(v), name


def test_evaluate_hand_metrics_valid():
    out = evaluate(LastItemModel(), data(), "valid", [1, 4, 5], chunk=2, topk=3)
    # masked ranks [0, 3, 3, 4]
    assert out.metrics["Recall@1"] == pytest.approx(1 / 4)
    assert out.metrics["Recall@4"] == pytest.approx(3 / 4)
    assert out.metrics["Recall@5"] == pytest.approx(1.0)
    assert out.metrics["NDCG@5"] == pytest.approx((1 + 2 / math.log2(5) + 1 / math.log2(6)) / 4)
    assert out.metrics["MRR@5"] == pytest.approx((1 + 1 / 4 + 1 / 4 + 1 / 5) / 4)


def test_seen_item_scoring_highest_does_not_count():
    out = evaluate(LastItemModel(), data(), "valid", [1], chunk=4, topk=2)
    # user 0: items 1, 2 (seen) outscore the target 3; masked, it is ranked first
    assert out.topk[0].tolist() == [3, 4]
    assert out.topk.shape == (4, 2)
    # user 3: item 1 is seen but outside the model's window of 2: still masked
    assert 1 not in out.topk[3].tolist()
    seen = {u: set(s[:-2]) for u, s in enumerate(SEQS)}
    full = evaluate(LastItemModel(), data(), "valid", [1], chunk=4, topk=4)
    for u in range(4):
        assert not (set(full.topk[u].tolist()) & seen[u]), u


def test_chunk_size_does_not_change_results():
    outs = [evaluate(LastItemModel(), data(), split, KS, chunk=c, topk=3)
            for split in ("valid", "test") for c in (1, 2, 3, 4, 100)]
    for group in (outs[:5], outs[5:]):
        for o in group[1:]:
            assert o.metrics == group[0].metrics
            assert torch.equal(o.topk, group[0].topk)


def test_evaluate_restores_training_mode():
    m = LastItemModel()
    m.train()
    evaluate(m, data(), "valid", [1], topk=3)
    assert m.training
    m.eval()
    evaluate(m, data(), "valid", [1], topk=3)
    assert not m.training


# ----------------------------------------------------------------------------- overlap


def test_topk_overlap_hand_cases():
    a = torch.tensor([[1, 2, 3], [4, 5, 6]])
    b = torch.tensor([[3, 2, 9], [7, 8, 9]])
    assert topk_overlap(a, b) == pytest.approx((2 / 3 + 0) / 2)
    assert topk_overlap(a, a) == pytest.approx(1.0)
    assert topk_overlap(a, a.flip(1)) == pytest.approx(1.0)  # order does not matter
    assert topk_overlap(a, b) == pytest.approx(topk_overlap(b, a))
    assert topk_overlap(torch.tensor([[1, 2]]), torch.tensor([[3, 4]])) == 0.0


def test_topk_overlap_shape_mismatch():
    with pytest.raises(ValueError):
        topk_overlap(torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2]]))
