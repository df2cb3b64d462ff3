"""Vanilla listwise KD (`kd`) against a per-context loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import rcekd_core.kd.ce as ce_mod
from rcekd_core.data.interactions import Interactions
from rcekd_core.data.sequences import SequenceData
from rcekd_core.kd.base import KDSetup
from rcekd_core.kd.ce import CEKD, KDSettings
from rcekd_core.kd.contexts import KDContexts
from rcekd_core.kd.registry import METHODS
from rcekd_core.models.base import SequentialRecommender

N_CTX, N_ITEMS, D = 7, 40, 8


def ref_softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [x / sum(e) for x in e]


def ref_ce(items, t_row, s_row, tau):
    pt = ref_softmax([t_row[i] / tau for i in items])
    ps = ref_softmax([s_row[i] / tau for i in items])
    return -sum(a * math.log(b) for a, b in zip(pt, ps))


def ref_topk(row, k):
    cand = sorted(((row[i], i) for i in range(1, len(row))), key=lambda x: -x[0])
    return [i for _, i in cand[:k]]


def make(seed):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(N_CTX, D, generator=g)
    table = torch.randn(N_ITEMS + 1, D, generator=g)
    s_scores = states @ table.T
    s_scores[:, 0] = float("-inf")
    t_scores = torch.randn(N_CTX, N_ITEMS + 1, generator=g) * 2
    t_scores[:, 0] = 100.0  # padding: must never enter the teacher's list
    return states, table, s_scores, t_scores


def settings_for(K, tau, lst):
    return KDSettings(K=K, tau=tau, list=lst, lam=2.5)


def setup_for(view, contexts=None, chunk=3):
    return KDSetup(teacher=view, contexts=contexts, device=torch.device("cpu"), seed=0, chunk=chunk,
                   epochs=1, student_dim=D)


def test_registry_name():
    assert METHODS["kd"].distiller is CEKD and METHODS["kd"].settings is KDSettings


@pytest.mark.parametrize("K", [1, 5, 12])
@pytest.mark.parametrize("tau", [1.0, 2.0, 0.5])
def test_teacher_list_matches_reference(K, tau, fake_teacher, fake_student):
    states, table, s_scores, t_scores = make(K * 10 + int(tau * 4))
    d = CEKD(settings_for(K, tau, "teacher"), setup_for(fake_teacher(t_scores)))
    assert d.lam == 2.5
    t_rows, s_rows = t_scores.double().tolist(), s_scores.double().tolist()
    for u in range(N_CTX):
        assert d.items[u].tolist() == ref_topk(t_rows[u], K)
    d.refresh(fake_student(table))  # teacher list: refresh changes nothing
    for u in range(N_CTX):
        assert d.items[u].tolist() == ref_topk(t_rows[u], K)
    ids = torch.tensor([5, 1, 1, 0, 6])
    per_ctx, _ = d.loss(ids, states[ids], fake_student(table))
    want = [ref_ce(ref_topk(t_rows[u], K), t_rows[u], s_rows[u], tau) for u in ids.tolist()]
    np.testing.assert_allclose(per_ctx.double().numpy(), want, atol=1e-5, rtol=1e-5)
    if K == 1:  # a one-item softmax is 1: nothing to distil
        assert torch.allclose(per_ctx, torch.zeros_like(per_ctx), atol=1e-6)


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_student_list_is_refreshed_and_matches_reference(monkeypatch, tau, fake_teacher, fake_student):
    K = 6
    states, table, s_scores, t_scores = make(3)
    pool = s_scores.topk(K, dim=1).indices
    monkeypatch.setattr(ce_mod, "student_top", lambda *a, **k: pool.clone())
    d = CEKD(settings_for(K, tau, "student"), setup_for(fake_teacher(t_scores)))
    d.refresh(fake_student(table))
    t_rows, s_rows = t_scores.double().tolist(), s_scores.double().tolist()
    for u in range(N_CTX):
        assert d.items[u].tolist() == ref_topk(s_rows[u], K)
    ids = torch.arange(N_CTX).flip(0)
    per_ctx, _ = d.loss(ids, states[ids], fake_student(table))
    want = [ref_ce(ref_topk(s_rows[u], K), t_rows[u], s_rows[u], tau) for u in ids.tolist()]
    np.testing.assert_allclose(per_ctx.double().numpy(), want, atol=1e-5, rtol=1e-5)
    # a new student list after the next refresh
    new_pool = pool.flip(1)
    monkeypatch.setattr(ce_mod, "student_top", lambda *a, **k: new_pool.clone())
    d.refresh(fake_student(table))
    per_ctx2, _ = d.loss(ids, states[ids], fake_student(table))
    # same set (order-free CE): same loss; the list itself follows the refresh
    assert torch.equal(d.items, new_pool)
    np.testing.assert_allclose(per_ctx2.double().numpy(), want, atol=1e-5, rtol=1e-5)


class SumModel(SequentialRecommender):
    """State at position i = sum of the input embeddings up to i (causal, padding = 0)."""

    def __init__(self, n_items, dim, max_len, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.n_items, self.max_len, self.loss_type = n_items, max_len, "ce"
        self.emb = nn.Parameter(torch.randn(n_items + 1, dim, generator=g))
        self.out = nn.Parameter(torch.randn(n_items + 1, dim, generator=g))

    def encode(self, seqs):
        x = self.emb[seqs] * (seqs > 0).unsqueeze(-1)
        return x.cumsum(1)

    def item_table(self):
        return self.out


def test_student_list_uses_real_student_top_at_the_validation_context(fake_teacher):
    rng = np.random.default_rng(0)
    users, items = [], []
    n_users, n_items = 6, 30
    for u in range(n_users):
        n = int(rng.integers(3, 12))
        users += [u] * n
        items += list(rng.choice(np.arange(1, n_items + 1), size=n, replace=False))
    data = SequenceData.from_interactions(Interactions(
        np.array(users), np.array(items), np.arange(len(users), dtype=float), n_users, n_items))
    student = SumModel(n_items, 5, max_len=4, seed=1)
    contexts = KDContexts(data, "last", student.max_len)
    t_scores = torch.randn(data.n_users, n_items + 1, generator=torch.Generator().manual_seed(2))
    d = CEKD(settings_for(5, 1.0, "student"), setup_for(fake_teacher(t_scores), contexts, chunk=4))
    d.refresh(student)
    with torch.no_grad():
        for u in range(data.n_users):
            seq = data.items[data.offsets[u]: data.offsets[u + 1]].tolist()
            window = seq[:-2][-student.max_len:]  # the last training items
            state = student.emb[window].sum(0)
            s_row = [float("-inf")] + (student.out[1:] @ state).tolist()
            assert d.items[u].tolist() == ref_topk(s_row, 5)
