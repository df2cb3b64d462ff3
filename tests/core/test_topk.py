"""Block-pruned top-k: the values of torch.topk on wide rows, ties and -inf included."""

from __future__ import annotations

import pytest
import torch

from rcekd_core import topk as topk_mod
from rcekd_core.topk import ordered_keys_, select, top_k


@pytest.fixture
def small_wide(monkeypatch):
    """Treat modest rows as wide so the pruned path runs on test-sized tensors."""
    monkeypatch.setattr(topk_mod, "WIDE", 64)
    monkeypatch.setattr(topk_mod, "BLOCK", 4)


@pytest.mark.parametrize("n", [200, 203, 401])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_values_equal_full_topk_on_random_rows(small_wide, n, k):
    g = torch.Generator().manual_seed(n * 31 + k)
    s = torch.randn(17, n, generator=g)
    got, want = top_k(s, k), s.topk(k, dim=1)
    assert torch.equal(got.values, want.values)
    assert torch.equal(s.gather(1, got.indices), got.values)  # indices point at those values
    assert all(len(set(r)) == k for r in got.indices.tolist())


def test_values_equal_under_heavy_ties_and_minus_inf(small_wide):
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 4, (23, 301), generator=g).float()  # only four distinct values
    s[:, ::3] = float("-inf")
    s[0, :] = float("-inf")  # a row with nothing finite
    s[1, :295] = float("-inf")  # finite values only in the short last block
    for k in (1, 7, 12):
        got, want = top_k(s, k), s.topk(k, dim=1)
        assert torch.equal(got.values, want.values)
        assert torch.equal(s.gather(1, got.indices), got.values)
        assert all(len(set(r)) == k for r in got.indices.tolist())


def test_all_candidates_in_one_block(small_wide):
    s = torch.zeros(2, 400)
    s[:, 8:12] = torch.tensor([4.0, 3.0, 2.0, 1.0])  # the whole top-4 in block 2
    got = top_k(s, 4)
    assert got.indices.tolist() == [[8, 9, 10, 11]] * 2


def test_narrow_rows_are_torch_topk_exactly():
    s = torch.randint(0, 3, (9, 1683)).float()  # ml-100k width: below WIDE, ties decided by torch
    got, want = top_k(s, 10), s.topk(10, dim=1)
    assert torch.equal(got.indices, want.indices) and torch.equal(got.values, want.values)


def test_ordered_keys_order_like_the_floats():
    x = torch.tensor([float("-inf"), -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, float("inf")])
    keys = ordered_keys_(x.clone())
    assert (keys[1:] >= keys[:-1]).all() and keys[3] == keys[4]  # -0.0 ties with +0.0
    assert (keys[1:3] > keys[:2]).all() and (keys[5:] > keys[4:-1]).all()


def test_select_is_torch_topk_with_ties():
    g = torch.Generator().manual_seed(3)
    s = torch.randint(-3, 4, (200, 601), generator=g).float()
    s[:, ::7] = float("-inf")
    s[:, 5] = -0.0
    for k in (1, 10, 100, 601):
        want = s.topk(k, dim=1)
        for inplace in (False, True):
            got = select(s.clone() if inplace else s, k, inplace)
            assert torch.equal(got.indices, want.indices) and torch.equal(got.values, want.values)
            assert got.values.dtype == torch.float32
