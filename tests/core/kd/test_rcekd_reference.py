"""RCE-KD against a slow per-context reference written from docs/rcekd-method.md.

The reference below loops over contexts and positions with plain Python floats; it never
looks at how rcekd.py vectorises things. Every piece of the distiller (positions, counts,
weights, sampling, J, overlap, gamma, the renormalised softmaxes, L1, L2, the final KD loss
and the ablation switches) is compared with it on small random inputs.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch

import rcekd_core.kd.rcekd as rcekd_mod
from rcekd_core.kd.base import KDSetup, rowwise_isin
from rcekd_core.kd.contexts import KDContexts
from rcekd_core.kd.rcekd import RCEKD, RCEKDSettings, holds_teacher, pool_positions, reverse_cumsum, sampling_weights
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.models.sasrec import SASRec
from rcekd_core.settings import ModelConfig

N_CTX, N_ITEMS, K, M, L, D = 7, 40, 5, 12, 6, 8
CLAMP = 50


# ----------------------------------------------------------------------------- reference


def ref_positions(pool: list[int], qt: list[int]) -> list[int]:
    """0/1 row: position j of the student list holds a teacher item."""
    return [1 if item in qt else 0 for item in pool]


def ref_counts(pool: list[int], qt: list[int]) -> list[int]:
    """c(j) = number of teacher items whose position in the pool is >= j (outside: nowhere)."""
    pos = {item: j for j, item in enumerate(pool)}
    return [sum(1 for i in qt if i in pos and pos[i] >= j) for j in range(len(pool))]


def ref_log_weights(pool: list[int], qt: list[int], T: float, mode: str) -> list[float]:
    if mode == "rank":
        return [-(j + 1) / T for j in range(len(pool))]
    return [(min(c, CLAMP) + 1) / T for c in ref_counts(pool, qt)]


def ref_probs(logw: list[float]) -> list[float]:
    m = max(logw)
    e = [math.exp(x - m) for x in logw]
    s = sum(e)
    return [x / s for x in e]


def ref_softmax(scores: list[float], tau: float) -> list[float]:
    return ref_probs([s / tau for s in scores])


def ref_ce(items: list[int], t_row: list[float], s_row: list[float], tau: float) -> float:
    """-Σ p^T log p^S, both softmaxes taken over `items` only."""
    pt = ref_softmax([t_row[i] for i in items], tau)
    ps = ref_softmax([s_row[i] for i in items], tau)
    return -sum(a * math.log(b) for a, b in zip(pt, ps))


def ref_topk(row: list[float], k: int) -> list[int]:
    cand = [(row[i], i) for i in range(1, len(row))]  # column 0 is padding
    cand.sort(key=lambda x: -x[0])
    return [i for _, i in cand[:k]]


def ref_context(pool, qt, sampled, t_row, s_row, c) -> dict:
    """Everything RCE-KD computes for one context, given the sampled set A."""
    qs = pool[: c.K]
    a = list(sampled)
    j_set = a + [i for i in qt if i not in a and i not in qs]
    o = len(set(qt) & set(a)) / c.K
    gamma = c.gamma if c.gamma is not None else math.exp(-c.beta * o)
    l1 = ref_ce(qs, t_row, s_row, c.tau)
    l2 = ref_ce(j_set, t_row, s_row, c.tau)
    union = qs + [i for i in a if i not in qs] + [i for i in qt if i not in qs and i not in a]
    if c.all_items:
        loss = ref_ce(list(range(1, len(t_row))), t_row, s_row, c.tau)
    elif c.union_ce:
        loss = ref_ce(union, t_row, s_row, c.tau)
    elif not c.student_term:
        loss = l2
    else:
        loss = (1 - gamma) * l1 + gamma * l2
    return {
        "qs": qs, "J": j_set, "union": union, "o": o, "gamma": gamma, "l1": l1, "l2": l2,
        "loss": loss,
        "p_qs": ref_softmax([t_row[i] for i in qs], c.tau),
        "p_J": dict(zip(j_set, ref_softmax([t_row[i] for i in j_set], c.tau))),
        "p_union": dict(zip(union, ref_softmax([t_row[i] for i in union], c.tau))),
    }


def make_settings(**rc) -> RCEKDSettings:
    r = RCEKDSettings()
    r.K, r.M, r.L, r.beta = K, M, L, 3.0
    for k, v in rc.items():
        setattr(r, k, v)
    return r


def make_setup(view, contexts=None, seed: int = 0, chunk: int = 3) -> KDSetup:
    """chunk 3 by default: several chunks over 7 contexts."""
    return KDSetup(teacher=view, contexts=contexts, device=torch.device("cpu"), seed=seed, chunk=chunk,
                   epochs=1, student_dim=D)


def make_problem(seed: int, n_ctx: int = N_CTX):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(n_ctx, D, generator=g)
    table = torch.randn(N_ITEMS + 1, D, generator=g)
    s_scores = states @ table.T
    s_scores[:, 0] = float("-inf")
    # teacher correlated with the student so Q^T partly falls inside the pool
    t_scores = s_scores + 1.5 * torch.randn(n_ctx, N_ITEMS + 1, generator=g)
    t_scores[:, 0] = 0.0  # padding column: a finite junk value the view must hide
    pool = s_scores.topk(M, dim=1).indices
    return states, table, s_scores, t_scores, pool


@pytest.fixture
def build(monkeypatch, fake_teacher):
    """build(settings, t_scores, pool, seed=0, chunk=3): an RCEKD whose student top-M is `pool`."""

    def make(c: RCEKDSettings, t_scores, pool, seed=0, chunk=3) -> RCEKD:
        monkeypatch.setattr(rcekd_mod, "student_top", lambda *a, **k: pool.clone())
        return RCEKD(c, make_setup(fake_teacher(t_scores), seed=seed, chunk=chunk))

    return make


# ----------------------------------------------------------------------------- pieces


def _random_pools(seed: int, n: int = 9, m: int = M, k: int = K, n_items: int = N_ITEMS):
    g = torch.Generator().manual_seed(seed)
    pool = torch.stack([torch.randperm(n_items, generator=g)[:m] + 1 for _ in range(n)])
    qt = []
    for r in range(n):
        # a mix of teacher items inside and outside the pool
        inside = pool[r][torch.randperm(m, generator=g)[: k // 2 + r % 3]]
        outside = [i for i in range(1, n_items + 1) if i not in pool[r].tolist()]
        need = k - len(inside)
        qt.append(torch.cat([inside, torch.tensor(outside)[torch.randperm(len(outside), generator=g)[:need]]]))
    qt = torch.stack(qt)
    return pool, qt[:, torch.randperm(k, generator=g)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_positions_and_reverse_cumsum_counts(seed):
    pool, qt = _random_pools(seed)
    holds = rowwise_isin(pool, qt)
    assert holds.dtype == torch.bool and holds.shape == pool.shape
    counts = reverse_cumsum(holds.float())
    for r in range(pool.size(0)):
        p, q = pool[r].tolist(), qt[r].tolist()
        assert holds[r].long().tolist() == ref_positions(p, q)
        assert counts[r].tolist() == ref_counts(p, q)
    # and the other direction: which teacher items are in the pool
    back = rowwise_isin(qt, pool)
    for r in range(pool.size(0)):
        assert back[r].tolist() == [i in pool[r].tolist() for i in qt[r].tolist()]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pool_positions_match_reference(seed):
    pool, qt = _random_pools(seed)
    at = pool_positions(pool, qt)
    for r in range(pool.size(0)):
        p = pool[r].tolist()
        assert at[r].tolist() == [p.index(i) if i in p else -1 for i in qt[r].tolist()]
        assert holds_teacher(at[r : r + 1], pool.size(1))[0].long().tolist() == ref_positions(p, qt[r].tolist())


def test_counts_hand_case():
    pool = torch.tensor([[10, 11, 12, 13, 14, 15]])
    qt = torch.tensor([[13, 99, 11]])  # 11 at position 1, 13 at 3, 99 outside the pool
    counts = reverse_cumsum(rowwise_isin(pool, qt).float())
    assert counts[0].tolist() == [2, 2, 1, 1, 0, 0]


@pytest.mark.parametrize("T", [0.5, 10.0])
@pytest.mark.parametrize("mode", ["teacher", "rank"])
@pytest.mark.parametrize("seed", [0, 1])
def test_sampling_weights_match_reference(T, mode, seed):
    pool, qt = _random_pools(seed)
    w = sampling_weights(pool, qt, T, mode).double()
    assert torch.isfinite(w).all() and (w > 0).all()
    w = w / w.sum(1, keepdim=True)
    for r in range(pool.size(0)):
        ref = ref_probs(ref_log_weights(pool[r].tolist(), qt[r].tolist(), T, mode))
        np.testing.assert_allclose(w[r].numpy(), ref, rtol=1e-5, atol=1e-9)


def test_weights_clamp_at_50_and_never_overflow():
    # 60 teacher items at the top of an 80-long pool: c(j) = 60..1 then 0; clamped at 50
    pool = torch.arange(1, 81).unsqueeze(0)
    qt = torch.arange(1, 61).unsqueeze(0)
    for T in (10.0, 0.1):  # exp(51 / 0.1) overflows unless shifted in log space
        w = sampling_weights(pool, qt, T, "teacher").double()
        assert torch.isfinite(w).all()
        ref = ref_probs(ref_log_weights(pool[0].tolist(), qt[0].tolist(), T, "teacher"))
        np.testing.assert_allclose((w / w.sum())[0].numpy(), ref, rtol=1e-5, atol=1e-30)
    w = sampling_weights(pool, qt, 10.0, "teacher")[0]
    assert torch.allclose(w[:11], w[0].expand(11))  # c = 60..50 all clamp to 50
    assert not torch.isclose(w[11], w[10])  # c = 49 < 50


# ----------------------------------------------------------------------------- sampling


def _identical_rows(n: int, t_items_at: list[int], seed=0):
    """n identical contexts: pool = items 1..M, teacher items at the given pool positions."""
    pool = torch.arange(1, M + 1).expand(n, M).clone()
    extra = [N_ITEMS - i for i in range(K - len(t_items_at))]  # teacher items outside the pool
    qt = torch.tensor([j + 1 for j in t_items_at] + extra).expand(n, K).clone()
    g = torch.Generator().manual_seed(seed)
    t_scores = torch.randn(1, N_ITEMS + 1, generator=g).expand(n, -1).clone()
    t_scores[:, qt[0]] += 10.0  # make qt the teacher's top-K
    return pool, qt, t_scores


@pytest.mark.parametrize("mode,T", [("teacher", 10.0), ("teacher", 2.0), ("rank", 10.0), ("rank", 2.0)])
def test_first_draws_follow_weights(build, mode, T):
    n = 6000
    pool, qt, t_scores = _identical_rows(n, [1, 4, 7, 10])
    d = build(make_settings(T=T, sampling=mode), t_scores, pool, seed=123, chunk=4096)
    assert torch.equal(d.teacher_top.sort(1).values, qt.sort(1).values)
    d.refresh(student=None)
    sampled = d.j_items[:, :L]
    # L distinct pool items in every row
    for r in range(0, n, 97):
        row = sampled[r].tolist()
        assert len(set(row)) == L and set(row) <= set(pool[r].tolist())
    # A is drawn as a set (its order is not the draws'): the law of one draw, with L = 1
    one = build(make_settings(T=T, sampling=mode, L=1), t_scores, pool, seed=123, chunk=4096)
    one.refresh(student=None)
    first_pos = one.j_items[:, 0] - 1  # pool = 1..M so position = item - 1
    observed = torch.bincount(first_pos, minlength=M).double().numpy()
    expected = n * np.array(ref_probs(ref_log_weights(pool[0].tolist(), qt[0].tolist(), T, mode)))
    keep = expected >= 5
    rest_o, rest_e = observed[~keep].sum(), expected[~keep].sum()
    chi2 = (((observed[keep] - expected[keep]) ** 2) / expected[keep]).sum()
    if rest_e > 0:
        chi2 += (rest_o - rest_e) ** 2 / rest_e
    assert chi2 < 45, (observed, expected.round(1))  # 11 dof: p < 1e-5 under the null


def test_tiny_weight_position_rarely_drawn(build):
    n = 4000
    # teacher items at positions 7..11: c = 5 for j <= 7, then 4, 3, 2, 1
    pool, qt, t_scores = _identical_rows(n, [7, 8, 9, 10, 11])
    d = build(make_settings(T=0.5), t_scores, pool, seed=7, chunk=4096)
    d.refresh(student=None)
    sampled_pos = d.j_items[:, :L] - 1
    w11 = (sampled_pos == 11).any(1).double().mean().item()
    assert w11 < 0.01  # weight e^4 against eight positions of e^12
    # each of the 8 heavy positions is drawn in most rows
    rate = torch.stack([(sampled_pos == j).any(1).double().mean() for j in range(8)])
    assert (rate > 0.5).all(), rate


def test_sampling_survives_underflowing_weights(build):
    """Spec: L distinct positions sampled with probability ∝ w (all w > 0).

    With the rank-only weights exp(-(j+1)/T), T = 0.5 and M = 150, float32 weights of the deep
    positions underflow to 0; a sampler that needs L non-zero weights then fails.
    """
    n_items, m, l = 200, 150, 100
    g = torch.Generator().manual_seed(0)
    pool = torch.stack([torch.randperm(n_items, generator=g)[:m] + 1 for _ in range(3)])
    t_scores = torch.randn(3, n_items + 1, generator=g)
    d = build(make_settings(K=5, M=m, L=l, T=0.5, sampling="rank"), t_scores, pool)
    d.refresh(student=None)
    sampled = d.j_items[:, :l]
    for r in range(3):
        assert len(set(sampled[r].tolist())) == l
        assert set(sampled[r].tolist()) <= set(pool[r].tolist())


# ----------------------------------------------------------------------------- refresh + loss


VARIANTS = {
    "full": {},
    "no_student_term": {"student_term": False},
    "union": {"union_ce": True},
    "const_gamma": {"gamma": 0.3},
    "rank": {"sampling": "rank"},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("T", [0.5, 10.0])
@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_refresh_and_loss_match_reference(build, fake_student, variant, T, tau):
    seed = zlib.crc32(f"{variant}-{T}-{tau}".encode()) % 1000
    states, table, s_scores, t_scores, pool = make_problem(seed)
    c = make_settings(T=T, tau=tau, **VARIANTS[variant])
    d = build(c, t_scores, pool, seed=seed)
    student = fake_student(table)
    d.refresh(student)

    t_rows = t_scores.double().tolist()
    s_rows = s_scores.double().tolist()
    off = K if c.union_ce else 0
    sampled = d.j_items[:, off: off + L]
    assert torch.equal(d.qs, pool[:, :K])
    refs = []
    for u in range(N_CTX):
        p, qt = pool[u].tolist(), ref_topk(t_rows[u], K)
        assert sorted(d.teacher_top[u].tolist()) == sorted(qt)
        a = sampled[u].tolist()
        assert len(set(a)) == L and set(a) <= set(p)
        ref = ref_context(p, qt, a, t_rows[u], s_rows[u], c)
        refs.append(ref)
        items, mask = d.j_items[u].tolist(), d.j_mask[u].tolist()
        members = [i for i, keep in zip(items, mask) if keep]
        want = ref["union"] if c.union_ce else ref["J"]
        assert len(members) == len(set(members)), "an item counted twice in the CE set"
        assert set(members) == set(want)
        pj = ref["p_union"] if c.union_ce else ref["p_J"]
        for i, keep, got in zip(items, mask, d.p_j[u].tolist()):
            assert got == pytest.approx(pj[i] if keep else 0.0, abs=1e-6)
        np.testing.assert_allclose(d.p_qs[u].numpy(), ref["p_qs"], atol=1e-6)
        assert d.gamma[u].item() == pytest.approx(ref["gamma"], abs=1e-6)

    ids = torch.tensor([3, 0, 6, 1, 5, 2, 4])  # a shuffled batch
    per_ctx, extras = d.loss(ids, states[ids], student)
    assert per_ctx.shape == (N_CTX,)
    want = [refs[u]["loss"] for u in ids.tolist()]
    np.testing.assert_allclose(per_ctx.detach().double().numpy(), want, atol=1e-5, rtol=1e-5)
    if "gamma" in extras:
        assert extras["gamma"] == pytest.approx(np.mean([refs[u]["gamma"] for u in ids.tolist()]), abs=1e-5)


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_all_items_loss_is_ce_over_every_item(build, fake_student, tau):
    states, table, s_scores, t_scores, pool = make_problem(11)
    d = build(make_settings(all_items=True, tau=tau), t_scores, pool)
    d.refresh(fake_student(table))
    ids = torch.tensor([2, 6, 0])
    per_ctx, _ = d.loss(ids, states[ids], fake_student(table))
    t_rows, s_rows = t_scores.double().tolist(), s_scores.double().tolist()
    want = [ref_ce(list(range(1, N_ITEMS + 1)), t_rows[u], s_rows[u], tau) for u in ids.tolist()]
    np.testing.assert_allclose(per_ctx.double().numpy(), want, atol=1e-5, rtol=1e-5)


def test_overlap_is_with_sampled_set_not_student_top(build):
    """o = |Q^T ∩ A| / K: a teacher item in Q^S but not sampled does not count."""
    n = 1
    pool = torch.arange(1, M + 1).unsqueeze(0)
    t_scores = torch.zeros(n, N_ITEMS + 1)
    t_scores[0, [1, 2, 3, 4, 5]] = 10.0  # Q^T = Q^S = pool[:5]
    d = build(make_settings(K=5, M=M, L=1, T=0.5, beta=3.0), t_scores, pool)
    d.refresh(None)
    a = d.j_items[0, :1].tolist()
    o = len(set(a) & {1, 2, 3, 4, 5}) / 5
    assert d.gamma[0].item() == pytest.approx(math.exp(-3.0 * o), abs=1e-6)
    # J = A ∪ (Q^T \ A \ Q^S) = A, since every teacher item is in Q^S
    members = [i for i, k in zip(d.j_items[0].tolist(), d.j_mask[0].tolist()) if k]
    assert members == a


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("mode", ["last", "all"])
@pytest.mark.parametrize("variant", ["full", "union", "all_items"])
def test_gradients_reach_the_student_only(tiny_data, mode, variant):
    torch.manual_seed(0)
    data = tiny_data(9, N_ITEMS, seed=0, lengths=(4, 14))
    teacher = SASRec(data.n_items, ModelConfig(dim=16, blocks=1, max_len=10, dropout=0.0))
    student = SASRec(data.n_items, ModelConfig(dim=8, blocks=1, max_len=6, dropout=0.1))
    contexts = KDContexts(data, mode, student.max_len)
    c = make_settings(**({"union": {"union_ce": True}, "all_items": {"all_items": True}}.get(variant, {})))
    chunk = 3
    view = TeacherView(teacher, contexts, chunk, torch.device("cpu"))
    assert not view.states.requires_grad and not view.table.requires_grad
    assert view.states.size(0) == contexts.n
    d = RCEKD(c, make_setup(view, contexts, seed=0, chunk=chunk))
    student.train()
    d.timed_refresh(student)
    assert student.training  # refresh restores the mode
    for name in ("p_qs", "p_j", "gamma"):
        if hasattr(d, name):
            assert not getattr(d, name).requires_grad
    users = torch.tensor([4, 0, 7, 2])
    inputs, targets = data.train_batch(users, student.max_len)
    states = student.encode(inputs)
    ids, mask = contexts.select(users, targets)
    per_ctx, _ = d.loss(ids, states[mask], student)
    assert per_ctx.shape == ids.shape and torch.isfinite(per_ctx).all()
    (per_ctx.sum()).backward()
    grads = [p.grad for p in student.parameters()]
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert student.items.weight.grad is not None and student.items.weight.grad.abs().sum() > 0
    assert any(g is not None and g.abs().sum() > 0 for n, g in
               ((n, p.grad) for n, p in student.named_parameters()) if n.startswith("blocks"))
    assert all(p.grad is None for p in teacher.parameters())
