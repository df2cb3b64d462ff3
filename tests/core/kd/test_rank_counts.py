"""Student ranks counted without sorting (common.count_above, student_ranks, dcd.student_ranks_all)
against slow references written from the definition: rank = the number of (unseen) items
scoring strictly higher. Scores are small integers (exact in float32 whatever the chunking,
ties everywhere); history items and padding are -inf; lists hold history items, padding and
repeats."""

from __future__ import annotations

import pytest
import torch

from rcekd_core.kd.common import count_above, student_ranks
from rcekd_core.kd.contexts import KDContexts
from rcekd_core.kd.dcd import student_ranks_all

from .integer_model import IntegerLastItem

CPU = torch.device("cpu")
N_USERS, N_ITEMS, S_LEN, K = 9, 30, 6, 7


def reference_rows(model, contexts: KDContexts) -> tuple[list[list[float]], list[set[int]]]:
    """Each context's score row (float64, column 0 -inf) and history, from its prefix."""
    d = contexts.data
    users, ends = contexts.prefix()
    rows, hists = [], []
    for u, e in zip(users.tolist(), ends.tolist()):
        seq = d.items[d.offsets[u]: d.offsets[u] + e].tolist()
        row = (model.inp[seq[-1]].double() @ model.out.double().T).tolist()
        row[0] = float("-inf")
        rows.append(row)
        hists.append(set(seq))
    return rows, hists


def some_lists(n: int, seed: int) -> torch.Tensor:
    """[n, K] item ids, padding and repeats included."""
    return torch.randint(0, N_ITEMS + 1, (n, K), generator=torch.Generator().manual_seed(seed))


def test_count_above_is_the_strict_comparison_count():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(-3, 4, (50, 40), generator=g).float()
    scores[torch.rand(scores.shape, generator=g) < 0.2] = float("-inf")
    scores[:3, :] = float("-inf")  # rows with nothing finite
    values = scores.gather(1, torch.randint(0, 40, (50, 9), generator=g))
    values[:, 0] = float("-inf")
    values[:, 1] = 10.0  # above every score
    want = (scores.unsqueeze(1) > values.unsqueeze(2)).sum(2)
    assert torch.equal(count_above(scores, values), want)


@pytest.mark.parametrize("mode", ["all", "last"])
@pytest.mark.parametrize("budget,chunk", [(1, 10**6), (3000, 10**6), (1 << 30, 4), (1 << 30, 10**6)])
def test_student_ranks_match_the_slow_reference(sequences, mode, budget, chunk):
    data = sequences(n_users=N_USERS, n_items=N_ITEMS, length=12, seed=2)
    contexts = KDContexts(data, mode, S_LEN)
    model = IntegerLastItem(N_ITEMS, S_LEN)
    items = some_lists(contexts.n, 1)
    rows, hists = reference_rows(model, contexts)
    unseen = student_ranks(model, contexts, items, chunk, CPU, budget)
    every = student_ranks_all(model, contexts, items, chunk, CPU, budget)
    for n, (row, hist) in enumerate(zip(rows, hists)):
        masked = [float("-inf") if i in hist else s for i, s in enumerate(row)]
        for j, item in enumerate(items[n].tolist()):
            assert int(unseen[n, j]) == sum(1 for s in masked if s > masked[item]), (n, j)
            assert int(every[n, j]) == sum(1 for s in row if s > row[item]), (n, j)
