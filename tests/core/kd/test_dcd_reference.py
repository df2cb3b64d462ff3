"""DCD against a slow loop reference written from the authors' DCD (woriazzc/RCEKD,
modeling/KD/baseline.py), for the default and each switch (rank_over, order).

The authors, per user: T_topk = the teacher's top-mxK with training items masked; S_rank =
the student's 0-based rank of each of those among ALL items (argsort of every score, training
items included); diff = S_rank - T_rank; weights max(tanh(max(diff / T, 0)), 1e-5) and the
reverse; K positions drawn by torch.multinomial without replacement for each side, used in
draw order; relaxed ranking loss on scores capped at 80:
  -Σ_k [s_k - log(Σ_{j ≥ k} e^{s_j} + Σ_{over} e^{s_o})], summed over users.
The draws here are identical to the distiller's: the same generator seed, the same uniforms,
and successive draws without replacement taken one at a time (largest Gumbel key first).
Loss and gradient (w.r.t. the student's states and item table) are compared per context.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rcekd_core.kd.dcd import DCD, SCORE_CAP, DCDSettings

N_USERS, N_ITEMS, S_LEN = 8, 40, 6
K, M, T = 4, 12, 2.0


# ----------------------------------------------------------------------------- problem


@pytest.fixture(scope="module")
def make_prob(kd_problem):
    """The conftest's KDProblem at this file's sizes: teacher dim 12, student dim 4 (`prob`: per mode)."""
    return lambda mode, seed=0: kd_problem(mode, seed, n_users=N_USERS, n_items=N_ITEMS, s_len=S_LEN)


# ----------------------------------------------------------------------------- reference


def ref_ranks(s_row, top, history, rank_over) -> list[int]:
    """The authors' argsort rank: items scored strictly higher, over all items (or unseen only)."""
    pool = [j for j in range(1, N_ITEMS + 1) if rank_over == "all" or j not in history]
    return [sum(1 for j in pool if s_row[j] > s_row[i]) for i in top]


def ref_draws(weights: list[float], u: list[float], k: int) -> list[int]:
    """k successive draws without replacement ∝ weights; draw t = the largest remaining Gumbel key."""
    keys = [math.log(w) - math.log(-math.log(x)) for w, x in zip(weights, u)]
    left, out = set(range(len(weights))), []
    for _ in range(k):
        best = max(left, key=lambda j: keys[j])
        out.append(best)
        left.remove(best)
    return out


def ref_samples(prob, seed: int, rank_over: str, order: str) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    u_up = torch.rand(prob.n, M, generator=gen).clamp(1e-12, 1 - 1e-7).tolist()  # the distiller's uniforms
    u_down = torch.rand(prob.n, M, generator=gen).clamp(1e-12, 1 - 1e-7).tolist()
    s_rows = prob.rows_of(prob.s_states, prob.student.item_table())
    out = []
    for n, c in enumerate(prob.ctx):
        top = prob.top_unseen(prob.t_rows[n], c["history"], M)
        rank_s = ref_ranks(s_rows[n], top, c["history"], rank_over)
        w_up = [max(math.tanh(max((rank_s[r] - r) / T, 0.0)), 1e-5) for r in range(M)]
        w_down = [max(math.tanh(max((r - rank_s[r]) / T, 0.0)), 1e-5) for r in range(M)]
        up, down = ref_draws(w_up, u_up[n], K), ref_draws(w_down, u_down[n], K)
        if order == "teacher":
            up, down = sorted(up), sorted(down)
        out.append({"rank_s": rank_s, "up": [top[r] for r in up], "down": [top[r] for r in down]})
    return out


def ref_loss(state: torch.Tensor, table: torch.Tensor, up: list[int], down: list[int]) -> torch.Tensor:
    """The authors' relaxed ranking loss of one context, one score at a time (float64 autograd)."""
    s = {i: torch.minimum(torch.dot(state, table[i]), torch.tensor(SCORE_CAP, dtype=torch.float64))
         for i in up + down}
    below2 = sum(torch.exp(s[o]) for o in down)
    total = torch.zeros((), dtype=torch.float64)
    for k in range(len(up)):
        total = total - (s[up[k]] - torch.log(sum(torch.exp(s[j]) for j in up[k:]) + below2))
    return total


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("rank_over,order", [("all", "draw"), ("unseen", "draw"), ("all", "teacher"),
                                             ("unseen", "teacher")])
def test_dcd_samples_loss_and_gradient_match_reference(prob, rank_over, order):
    seed = 7
    d = DCD(DCDSettings(K=K, M=M, T=T, rank_over=rank_over, order=order), prob.setup(seed))
    d.refresh(prob.student)
    want = ref_samples(prob, seed, rank_over, order)
    for n, w in enumerate(want):
        assert d.rank_s[n].tolist() == w["rank_s"]
        assert d.up[n].tolist() == w["up"] and d.down[n].tolist() == w["down"]
        assert d.up_valid[n].all() and d.down_valid[n].all()

    ids = torch.randperm(prob.n, generator=torch.Generator().manual_seed(1))
    states = prob.s_states[ids].clone().requires_grad_(True)
    prob.student.zero_grad(set_to_none=True)
    per, extras = d.loss(ids, states, prob.student)
    assert per.shape == ids.shape and extras == {}
    weights = torch.rand(len(ids), generator=torch.Generator().manual_seed(2))  # per-context gradients
    (per * weights).sum().backward()
    got_state, got_table = states.grad.clone(), prob.student.items.weight.grad.clone()

    r_states = prob.s_states[ids].double().clone().requires_grad_(True)
    r_table = prob.student.items.weight.detach().double().clone().requires_grad_(True)
    ref = [ref_loss(r_states[row], r_table, want[n]["up"], want[n]["down"]) for row, n in enumerate(ids.tolist())]
    np.testing.assert_allclose(per.detach().double().numpy(), [x.item() for x in ref], rtol=1e-5, atol=1e-5)
    sum(x * w for x, w in zip(ref, weights.double())).backward()
    np.testing.assert_allclose(got_state.numpy(), r_states.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_table.numpy(), r_table.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_dcd_defaults_are_the_authors(prob):
    c = DCDSettings()
    assert (c.lam, c.K, c.T, c.M) == (0.01, 100, 10.0, 500)  # configs/citeulike/hstu/dcd.yaml
    assert (c.rank_over, c.order) == ("all", "draw")


def test_dcd_all_item_ranks_count_the_history(prob):
    """The authors' rank counts the history items the student scores above a teacher item."""
    d = DCD(DCDSettings(K=K, M=M, T=T), prob.setup(0))
    d.refresh(prob.student)
    all_ranks = d.rank_s.clone()
    d_unseen = DCD(DCDSettings(K=K, M=M, T=T, rank_over="unseen"), prob.setup(0))
    d_unseen.refresh(prob.student)
    s_rows = prob.rows_of(prob.s_states, prob.student.item_table())
    for n, c in enumerate(prob.ctx):
        top = d.top[n].tolist()
        above = [sum(1 for h in set(c["history"]) if s_rows[n][h] > s_rows[n][i]) for i in top]
        assert (all_ranks[n] - d_unseen.rank_s[n]).tolist() == above
    assert (all_ranks > d_unseen.rank_s).any()  # the two ranks do differ here


def test_dcd_draw_order_is_kept_and_first_draw_follows_weights(make_prob):
    """order: draw keeps the multinomial order (not sorted); the first draw is ∝ the weights."""
    prob = make_prob("all", seed=3)
    d = DCD(DCDSettings(K=K, M=M, T=T), prob.setup(0))
    d.refresh(prob.student)
    pos = (d.up.unsqueeze(2) == d.top.unsqueeze(1)).float().argmax(2)  # teacher positions, in loss order
    assert (pos[:, 1:] < pos[:, :-1]).any()  # not sorted for some context
    # the first draw's law, on one context's weights, over many seeds
    n = 0
    rank_s, r = d.rank_s[n].double(), torch.arange(M, dtype=torch.float64)
    w = torch.tanh(((rank_s - r) / T).clamp(min=0)).clamp(min=1e-5)
    counts = np.zeros(M)
    for seed in range(400):
        d.gen.manual_seed(seed)
        d.refresh(prob.student)
        counts[int(pos_of(d.up[n, 0], d.top[n]))] += 1
    np.testing.assert_allclose(counts / counts.sum(), (w / w.sum()).numpy(), atol=0.07)


def pos_of(item, row) -> int:
    return int((row == item).nonzero()[0, 0])


class BigScorer:
    """A dot-product student with large scores, to reach the authors' cap at 80."""

    def __init__(self, table):
        self.table = table

    def score_items(self, states, items):
        return torch.einsum("nd,nkd->nk", states, self.table[items])


def test_dcd_scores_are_capped_at_80(prob):
    d = DCD(DCDSettings(K=K, M=M, T=T), prob.setup(0))
    d.refresh(prob.student)
    g = torch.Generator().manual_seed(0)
    table = (torch.randn(N_ITEMS + 1, 4, generator=g) * 10).double().requires_grad_(True)
    ids = torch.arange(prob.n)
    states = (torch.randn(prob.n, 4, generator=g) * 3).double().requires_grad_(True)
    per, _ = d.loss(ids, states, BigScorer(table))
    raw = torch.einsum("nd,nkd->nk", states, table[d.up]).detach()
    assert (raw > SCORE_CAP).any() and (raw < SCORE_CAP).any()
    r_states = states.detach().clone().requires_grad_(True)
    r_table = table.detach().clone().requires_grad_(True)
    ref = [ref_loss(r_states[n], r_table, d.up[n].tolist(), d.down[n].tolist()) for n in range(prob.n)]
    np.testing.assert_allclose(per.detach().numpy(), [x.item() for x in ref], rtol=1e-9, atol=1e-9)
    per.sum().backward()
    sum(ref).backward()
    np.testing.assert_allclose(table.grad.numpy(), r_table.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(states.grad.numpy(), r_states.grad.numpy(), rtol=1e-9, atol=1e-9)
