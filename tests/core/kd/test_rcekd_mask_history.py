"""RCE-KD's `mask_history` switch against a slow loop reference (the default, history kept as
in the authors' playground.py, is tests/core/kd/test_rcekd_reference.py, unchanged).

With the switch on, Q^T is the teacher's top-K and P the student's top-M among each context's
unseen items, so no history item is in Q^T, Q^S or A; the rest is the authors' RCE-KD:
c(j) = teacher items at positions ≥ j of P, w(j) = exp((min(c, 50) + 1) / T), L positions drawn
without replacement (the distiller's uniforms, one draw at a time, largest Gumbel key first),
J = A ∪ (Q^T \\ A \\ Q^S), γ = exp(-β |Q^T ∩ A| / K), KD = (1 - γ) CE(Q^S) + γ CE(J).
Loss and gradient (w.r.t. the student's states and item table) are compared per context.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rcekd_core.errors import ConfigError
from rcekd_core.kd.rcekd import RCEKD, RCEKDSettings, unseen_counts

N_USERS, N_ITEMS, S_LEN = 8, 40, 6
K, L, M, T, BETA = 4, 5, 10, 2.0, 3.0


@pytest.fixture(scope="module")
def make_prob(kd_problem):
    """The conftest's KDProblem at this file's sizes: teacher dim 12, student dim 4 (`prob`: per mode)."""
    return lambda mode, seed=0: kd_problem(mode, seed, n_users=N_USERS, n_items=N_ITEMS, s_len=S_LEN)


def settings(**kw) -> RCEKDSettings:
    return RCEKDSettings(K=K, L=L, M=M, T=T, beta=BETA, **kw)


def ref_sampled(prob, seed: int) -> list[dict]:
    """Q^T, P, A per context with history masked; A by the distiller's uniforms, one draw at a time."""
    u = torch.rand(prob.n, M, generator=torch.Generator().manual_seed(seed)).clamp(1e-12, 1 - 1e-7).tolist()
    out = []
    for n, c in enumerate(prob.ctx):
        qt = prob.top_unseen(prob.t_rows[n], c["history"], K)
        pool = prob.top_unseen(prob.s_rows[n], c["history"], M)
        logw = [(min(sum(1 for i in qt if i in pool[j:]), 50) + 1) / T for j in range(M)]
        keys = [w - math.log(-math.log(x)) for w, x in zip(logw, u[n])]
        left, picked = set(range(M)), []
        for _ in range(L):
            best = max(left, key=lambda j: keys[j])
            picked.append(best)
            left.remove(best)
        out.append({"qt": qt, "pool": pool, "A": [pool[j] for j in picked]})
    return out


def ref_ce(items, t_row, s) -> torch.Tensor:
    """-Σ p^T log p^S with both softmaxes over `items` (τ = 1); s: item -> student score tensor."""
    zt = sum(math.exp(t_row[i]) for i in items)
    zs = torch.log(sum(torch.exp(s[i]) for i in items))
    return -sum(math.exp(t_row[i]) / zt * (s[i] - zs) for i in items)


def ref_loss(state, table, t_row, qt, pool, a) -> torch.Tensor:
    qs = pool[:K]
    j_set = a + [i for i in qt if i not in a and i not in qs]
    s = {i: torch.dot(state, table[i]) for i in set(qs) | set(j_set)}
    gamma = math.exp(-BETA * len(set(qt) & set(a)) / K)
    return (1 - gamma) * ref_ce(qs, t_row, s) + gamma * ref_ce(j_set, t_row, s)


def check_loss_and_gradient(prob, d, ref_of):
    ids = torch.randperm(prob.n, generator=torch.Generator().manual_seed(1))
    states = prob.s_states[ids].clone().requires_grad_(True)
    prob.student.zero_grad(set_to_none=True)
    per, _ = d.loss(ids, states, prob.student)
    weights = torch.rand(len(ids), generator=torch.Generator().manual_seed(2))
    (per * weights).sum().backward()
    r_states = prob.s_states[ids].double().clone().requires_grad_(True)
    r_table = prob.student.items.weight.detach().double().clone().requires_grad_(True)
    ref = [ref_of(n, r_states[row], r_table) for row, n in enumerate(ids.tolist())]
    np.testing.assert_allclose(per.detach().double().numpy(), [x.item() for x in ref], rtol=1e-5, atol=1e-5)
    sum(x * w for x, w in zip(ref, weights.double())).backward()
    np.testing.assert_allclose(states.grad.numpy(), r_states.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(prob.student.items.weight.grad.numpy(), r_table.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_mask_history_default_is_off():
    assert RCEKDSettings().mask_history is False


def test_mask_history_lists_draws_loss_and_gradient_match_reference(prob):
    seed = 4
    d = RCEKD(settings(mask_history=True), prob.setup(seed))
    d.refresh(prob.student)
    want = ref_sampled(prob, seed)
    for n, (w, c) in enumerate(zip(want, prob.ctx)):
        qt, qs, a = d.teacher_top[n].tolist(), d.qs[n].tolist(), d.j_items[n, :L].tolist()
        assert qt == w["qt"] and qs == w["pool"][:K] and sorted(a) == sorted(w["A"])  # A: a set
        assert not set(c["history"]) & (set(qt) | set(qs) | set(a))  # no history item in Q^T, Q^S, A
    check_loss_and_gradient(prob, d, lambda n, st, tb: ref_loss(st, tb, prob.t_rows[n], want[n]["qt"],
                                                                  want[n]["pool"], want[n]["A"]))


def test_without_the_switch_history_items_do_appear(prob):
    d = RCEKD(settings(), prob.setup(4))
    d.refresh(prob.student)
    hits = [bool(set(c["history"]) & (set(d.teacher_top[n].tolist()) | set(d.qs[n].tolist())
                                      | set(d.j_items[n, :L].tolist()))) for n, c in enumerate(prob.ctx)]
    assert any(hits)  # the authors' default keeps them: the switch changes something here


def test_mask_history_all_items_ce_is_over_unseen_items(prob):
    d = RCEKD(settings(mask_history=True, all_items=True), prob.setup(0))

    def ref(n, state, table):
        unseen = [i for i in range(1, N_ITEMS + 1) if i not in prob.ctx[n]["history"]]
        return ref_ce(unseen, prob.t_rows[n], {i: torch.dot(state, table[i]) for i in unseen})

    check_loss_and_gradient(prob, d, ref)


def test_mask_history_needs_m_unseen_items(prob):
    fewest = min(N_ITEMS - len(set(c["history"])) for c in prob.ctx)
    assert int(unseen_counts(prob.contexts, N_ITEMS, 3).min()) == fewest
    assert unseen_counts(prob.contexts, N_ITEMS, 3).tolist() == [N_ITEMS - len(set(c["history"])) for c in prob.ctx]
    RCEKD(RCEKDSettings(K=K, L=L, M=fewest, mask_history=True), prob.setup())
    with pytest.raises(ConfigError, match="rcekd.M"):
        RCEKD(RCEKDSettings(K=K, L=L, M=fewest + 1, mask_history=True), prob.setup())
    RCEKD(RCEKDSettings(K=K, L=L, M=fewest + 1), prob.setup())  # history kept: no such limit
