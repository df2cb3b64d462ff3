"""CD against slow loop references written from the authors' code (woriazzc/RCEKD,
modeling/KD/baseline.py, class CD: `get_rank_sample`, `get_loss`).

The draws are read back from the distiller after a refresh and fed to the reference, which
recomputes each context's pool, labels, loss and gradient with Python loops over contexts and
items. The sampler's law is checked against the authors' loop (two positions drawn with
replacement, the better kept, until n distinct items), written out position by position.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
import torch

from rcekd_core.kd.cd import CD, CDSettings

N_USERS, N_ITEMS, WINDOW = 8, 40, 6


# ----------------------------------------------------------------------------- problem


class Problem:
    """The conftest's problem without a teacher model: the student SASRec's states and item
    table, and a random teacher score table."""

    def __init__(self, base, seed: int):
        self.base, self.contexts, self.ctx, self.n = base, base.contexts, base.ctx, base.n
        self.student, self.states = base.student, base.s_states
        self.table = self.student.item_table().detach().clone()
        g = torch.Generator().manual_seed(seed + 100)
        self.t_scores = 3 * torch.randn(self.n, N_ITEMS + 1, generator=g)

    def s_row(self, n: int) -> list[float]:
        return [float(self.states[n].double() @ self.table[i].double()) for i in range(N_ITEMS + 1)]

    def pool(self, n: int, size: int) -> list[int]:
        """The student's top-`size` items of context n, its history left out, in rank order."""
        return self.base.top_unseen(self.s_row(n), self.ctx[n]["history"], size)

    def distiller(self, fake_teacher, seed: int = 0, **values) -> CD:
        return CD(CDSettings(**values), self.base.setup(seed, teacher=fake_teacher(self.t_scores)))


@pytest.fixture(scope="module")
def make_prob(kd_problem):
    """make_prob(mode, seed=0): this file's Problem; the student seeded with `seed` (`prob`: per mode)."""
    return lambda mode, seed=0: Problem(kd_problem(mode, seed, n_users=N_USERS, n_items=N_ITEMS, s_len=WINDOW,
                                                   teacher_dim=None), seed)


# ----------------------------------------------------------------------------- reference


def ref_loss(states, table, items_per_ctx, t_scores, t1, t2) -> list[torch.Tensor]:
    """The authors' get_loss per context, one item at a time:
    y = sigmoid((s_T + t2) / t1), p = sigmoid(s_S), -Σ [y log(p + 1e-10) + (1 - y) log(1 - p + 1e-10)]."""
    out = []
    for n, items in enumerate(items_per_ctx):
        total = torch.zeros((), dtype=torch.float64)
        for i in items:
            y = 1 / (1 + math.exp(-(float(t_scores[n, i]) + t2) / t1))
            s = (states[n] * table[i]).sum().double()
            p = 1 / (1 + torch.exp(-s))
            total = total - (y * torch.log(p + 1e-10) + (1 - y) * torch.log(1 - p + 1e-10))
        out.append(total)
    return out


def authors_set_law(N: int, T: float) -> dict[frozenset, float]:
    """P(kept set) for n = 2 under the authors' loop: positions a, b drawn with replacement
    ∝ exp(-(j+1)/N/T), the better-ranked min(a, b) kept, repeated until two distinct are kept."""
    w = [math.exp(-(j + 1) / N / T) for j in range(N)]
    W = sum(w)
    q = [0.0] * N
    for a in range(N):
        for b in range(N):
            q[min(a, b)] += w[a] * w[b] / W ** 2
    law = {}
    for x, y in combinations(range(N), 2):  # x first then (after repeats of x) y, or the other way
        law[frozenset((x, y))] = q[x] * q[y] / (1 - q[x]) + q[y] * q[x] / (1 - q[y])
    return law


def distinct_set_law(N: int, T: float) -> dict[frozenset, float]:
    """P(kept set) for n = 2 under the former sampler: 4 distinct positions drawn in turn
    ∝ exp(-(j+1)/N/T) without replacement; draws 0 and 2 paired, 1 and 3; the min of each kept."""
    w = [math.exp(-(j + 1) / N / T) for j in range(N)]
    law: dict[frozenset, float] = {}

    def walk(drawn, p):
        if len(drawn) == 4:
            key = frozenset((min(drawn[0], drawn[2]), min(drawn[1], drawn[3])))
            law[key] = law.get(key, 0.0) + p
            return
        left = [j for j in range(N) if j not in drawn]
        tot = sum(w[j] for j in left)
        for j in left:
            walk(drawn + [j], p * w[j] / tot)

    walk([], 1.0)
    return law


# ----------------------------------------------------------------------------- tests


VARIANTS = {
    "authors": {},
    "sigmoid label": {"t1": 1.0, "t2": 0.0},
    "shifted label": {"t1": 0.5, "t2": 0.7},
    "distinct draws": {"draws": "distinct"},
}


def test_defaults_are_the_authors_config():
    c = CDSettings()  # configs/<dataset>/<backbone>/cd.yaml of the authors
    assert (c.lam, c.N, c.T, c.n, c.t1, c.t2, c.draws) == (0.5, 3000, 20.0, 2, 2.0, 0.0, "authors")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cd_loss_and_gradient_match_reference(prob, fake_teacher, fake_student, variant):
    values = {"N": 10, "n": 3, "T": 0.5, **VARIANTS[variant]}
    d = prob.distiller(fake_teacher, seed=7, **values)
    c = d.c
    d.refresh(prob.student)
    items = d.items.tolist()
    for n in range(prob.n):  # the draws: n distinct items of the student's history-masked top-N
        assert d.valid[n].all()
        assert len(set(items[n])) == c.n and set(items[n]) <= set(prob.pool(n, c.N))
        want_y = [1 / (1 + math.exp(-(float(prob.t_scores[n, i]) + c.t2) / c.t1)) for i in items[n]]
        np.testing.assert_allclose(d.labels[n].numpy(), want_y, rtol=1e-5)

    ids = torch.randperm(prob.n, generator=torch.Generator().manual_seed(1))
    states = prob.states.clone().requires_grad_()
    table = prob.table.clone().requires_grad_()
    per, _ = d.loss(ids, states[ids], fake_student(table))
    (per * torch.linspace(0.5, 1.5, len(ids))).sum().backward()

    r_states = prob.states.double().clone().requires_grad_()
    r_table = prob.table.double().clone().requires_grad_()
    want = ref_loss(r_states, r_table, items, prob.t_scores, c.t1, c.t2)
    want = torch.stack([want[n] for n in ids.tolist()])
    (want * torch.linspace(0.5, 1.5, len(ids)).double()).sum().backward()
    np.testing.assert_allclose(per.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states.grad.numpy(), r_states.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(table.grad.numpy(), r_table.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_the_reference_notices_a_wrong_label(prob, fake_teacher, fake_student):
    """The loss check can fail: the former label sigmoid(s_T) is not the authors' default."""
    d = prob.distiller(fake_teacher, seed=7, N=10, n=3, T=0.5)
    d.refresh(prob.student)
    per, _ = d.loss(torch.arange(prob.n), prob.states, fake_student(prob.table))
    wrong = torch.stack(ref_loss(prob.states.double(), prob.table.double(), d.items.tolist(), prob.t_scores, 1.0, 0.0))
    assert not np.allclose(per.numpy(), wrong.numpy(), rtol=1e-3, atol=1e-4)


def kept_set_frequencies(prob, fake_teacher, N, T, draws, refreshes) -> dict[frozenset, float]:
    pools = [prob.pool(n, N) for n in range(prob.n)]
    counts: dict[frozenset, int] = {}
    d = prob.distiller(fake_teacher, seed=3, N=N, n=2, T=T, draws=draws)
    for _ in range(refreshes):
        d.refresh(prob.student)
        for n, row in enumerate(d.items.tolist()):
            key = frozenset(pools[n].index(i) for i in row)
            counts[key] = counts.get(key, 0) + 1
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


@pytest.mark.parametrize("draws, law", [("authors", authors_set_law), ("distinct", distinct_set_law)])
def test_kept_sets_follow_the_samplers_law(make_prob, fake_teacher, draws, law):
    prob = make_prob("all", seed=2)
    N, T = 5, 0.3  # w_j = exp(-(j+1)/1.5): a clear slope over the five positions
    freq = kept_set_frequencies(prob, fake_teacher, N, T, draws, refreshes=150)
    want = law(N, T)
    keys = set(want) | set(freq)
    assert max(abs(freq.get(k, 0.0) - want.get(k, 0.0)) for k in keys) < 0.02
    # the two samplers are told apart at this tolerance: the check can fail
    other = (distinct_set_law if law is authors_set_law else authors_set_law)(N, T)
    assert max(abs(freq.get(k, 0.0) - other.get(k, 0.0)) for k in keys) > 0.04


def test_authors_law_matches_a_simulation_of_their_loop():
    """The closed form above against the authors' loop itself (multinomial pairs until 2 distinct)."""
    N, T = 5, 0.3
    rng = np.random.default_rng(0)
    w = np.exp(-np.arange(1, N + 1) / N / T)
    # their loop, 20000 times at once: pairs drawn with replacement, the better (smaller) position
    # of each kept, until two distinct positions are kept (60 pairs: never too few in practice)
    kept = rng.choice(N, size=(20000, 60, 2), replace=True, p=w / w.sum()).min(-1)
    other = kept != kept[:, :1]
    assert other.any(1).all()
    second = kept[np.arange(len(kept)), other.argmax(1)]
    counts: dict[frozenset, int] = {}
    for a, b in zip(kept[:, 0].tolist(), second.tolist()):
        counts[frozenset((a, b))] = counts.get(frozenset((a, b)), 0) + 1
    want = authors_set_law(N, T)
    for k, p in want.items():
        assert abs(counts.get(k, 0) / 20000 - p) < 0.015
