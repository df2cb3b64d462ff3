"""UnKD against slow loop references written from the authors' code (woriazzc/RCEKD,
modeling/KD/baseline.py, class UnKD: `splitGroup`, `get_rank_negItems`,
`do_something_in_each_epoch`, `get_loss`).

The groups are recomputed item by item as the authors' splitGroup walks them; the pairs per
group as their rounding does; the pairs are read back from the distiller after a refresh and
checked (same group, unseen, ordered by the teacher, how many), then the loss and its gradient
are recomputed pair by pair. The pair law is checked against the authors' draw (two positions
with replacement, redrawn while they tie).
"""

from __future__ import annotations

import math
import random
from itertools import combinations

import numpy as np
import pytest
import torch

from rcekd_core.kd.unkd import UnKD, UnKDSettings, greedy_groups, pairs_per_group

N_USERS, N_ITEMS, WINDOW = 10, 40, 6


# ----------------------------------------------------------------------------- reference


def ref_split(counts: dict[int, int], groups: int) -> list[list[int]]:
    """The authors' splitGroup: items most popular first, a group closes when adding an item
    pushes its mass over total / groups (a lone item over it is a group by itself); a last group
    lighter than half the target joins the previous one. Ties: by item id here."""
    ranked = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    aver = sum(counts.values()) / groups
    out, temp, mass = [], [], 0
    for i, c in ranked:
        temp.append(i)
        mass += c
        if mass > aver:
            if len(temp) == 1:
                out.append(temp)
                temp, mass = [], 0
                continue
            temp.remove(i)
            out.append(temp)
            temp, mass = [i], c
    if temp:
        if mass > aver / 2 or not out:
            out.append(temp)
        else:
            out[-1].extend(temp)
    return out


def ref_pair_counts(n_distill: int, n_groups: int) -> list[int]:
    """The authors' pairs per group with unkd_lamda = 0 (every group ratio ** 0 = 1)."""
    ratio = [math.pow(1.0, 0.0) for _ in range(n_groups)]
    ratio = [r / sum(ratio) for r in ratio]
    all_n = sum(round(r * n_distill) for r in ratio)
    out = []
    for g in range(n_groups):
        k = round(ratio[g] * n_distill)
        if all_n < n_distill and g < n_distill - all_n:
            k += 1
        out.append(k)
    return out


def ref_equal_mass(counts: dict[int, int], groups: int) -> dict[int, int]:
    """The former rule: item i in group floor(groups · mass before i / total), capped."""
    ranked = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    total, before, out = sum(counts.values()), 0, {}
    for i, c in ranked:
        out[i] = min(groups - 1, math.floor(groups * before / total))
        before += c
    return out


class Problem:
    """The conftest's problem without models (skewed popularity, some items never seen in
    training), each context's history, the items' training counts and random teacher scores,
    student states and item table."""

    def __init__(self, base, seed: int):
        self.base, self.data, self.contexts, self.n = base, base.data, base.contexts, base.n
        self.hist = [c["history"] for c in base.ctx]
        self.pop = {i: 0 for i in range(1, N_ITEMS + 1)}
        for u in range(self.data.n_users):
            seq = self.data.items[self.data.offsets[u]: self.data.offsets[u + 1]].tolist()
            for i in seq[:len(seq) - 2]:
                self.pop[i] += 1
        g = torch.Generator().manual_seed(seed + 1)
        self.t_scores = 3 * torch.randn(self.n, N_ITEMS + 1, generator=g)
        self.states = torch.randn(self.n, 4, generator=g)
        self.table = torch.randn(N_ITEMS + 1, 4, generator=g)

    def distiller(self, fake_teacher, seed: int = 0, **values) -> UnKD:
        setup = self.base.setup(seed, teacher=fake_teacher(self.t_scores), chunk=4, student_dim=4)
        return UnKD(UnKDSettings(**values), setup)

    def ref_groups(self, c: UnKDSettings) -> dict[int, int]:
        """item -> group for the settings (absent: in no group)."""
        seen = {i: k for i, k in self.pop.items() if k > 0}
        if c.grouping == "authors":
            group = {i: g for g, members in enumerate(ref_split(seen, c.groups)) for i in members}
        else:
            group = ref_equal_mass(seen, c.groups)
        last = max(group.values())
        if c.unseen_items == "last_group":
            group.update({i: last for i, k in self.pop.items() if k == 0})
        return group


@pytest.fixture(scope="module")
def make_prob(kd_problem):
    """make_prob(mode, seed=0): this file's Problem (`prob`: per mode)."""
    return lambda mode, seed=0: Problem(kd_problem(mode, seed, n_users=N_USERS, n_items=N_ITEMS, s_len=WINDOW,
                                                   lengths=(5, 13), skew=1.1, teacher_dim=None, student_dim=None),
                                        seed)


# ----------------------------------------------------------------------------- groups


def test_defaults_are_the_authors_config():
    c = UnKDSettings()  # the authors' configs/yelp/bpr/unkd.yaml
    assert (c.lam, c.groups, c.pairs, c.T) == (0.5, 4, 30, 20.0)
    assert (c.grouping, c.unseen_items, c.draws, c.reduce) == ("authors", "none", "authors", "mean")
    assert pairs_per_group(30, 4) == [8, 8, 8, 8]  # round(7.5): 8 each, 32 pairs in all


def test_greedy_groups_match_the_authors_split_on_random_popularity():
    rng = random.Random(0)
    sizes = set()
    for _ in range(400):
        n, groups = rng.randint(1, 25), rng.randint(1, 7)
        counts = [0] + [max(0, int(rng.paretovariate(1.2)) - rng.randint(0, 2)) for _ in range(n)]
        got = greedy_groups(torch.tensor(counts), groups).tolist()
        split = ref_split({i: k for i, k in enumerate(counts) if i and k}, groups)
        want = [-1] * len(counts)
        for g, members in enumerate(split):
            for i in members:
                want[i] = g
        assert got == want, (counts, groups)
        sizes.add((groups, len(split)))
    assert any(g != k for g, k in sizes)  # the authors' split does not always give `groups` groups


@pytest.mark.parametrize("n_distill, n_groups", [(30, 4), (2, 4), (2, 2), (30, 3), (30, 5), (7, 3), (5, 8)])
def test_pairs_per_group_match_the_authors_rounding(n_distill, n_groups):
    assert pairs_per_group(n_distill, n_groups) == ref_pair_counts(n_distill, n_groups)


@pytest.mark.parametrize("grouping", ["authors", "equal_mass"])
@pytest.mark.parametrize("unseen", ["none", "last_group"])
def test_groups_of_the_data_match_reference(prob, fake_teacher, grouping, unseen):
    for groups in (2, 3, 4):
        d = prob.distiller(fake_teacher, groups=groups, grouping=grouping, unseen_items=unseen)
        want = prob.ref_groups(d.c)
        assert d.group[0] == -1
        assert d.group[1:].tolist() == [want.get(i, -1) for i in range(1, N_ITEMS + 1)]
        assert d.counts == ref_pair_counts(d.c.pairs, len(set(want.values())))
    assert any(k == 0 for k in prob.pop.values())  # the data has items never seen in training


# ----------------------------------------------------------------------------- pairs, loss, gradient


VARIANTS = {
    "authors": {},
    "sum": {"reduce": "sum"},
    "unseen in last group": {"unseen_items": "last_group"},
    "equal mass": {"grouping": "equal_mass"},
    "distinct draws": {"draws": "distinct"},
    "former": {"grouping": "equal_mass", "unseen_items": "last_group", "draws": "distinct", "reduce": "sum"},
}


def ref_loss(states, table, pairs, reduce) -> list[torch.Tensor]:
    """The authors' get_loss per context: -log(σ(s_hi - s_lo) + 1e-10), averaged over its pairs."""
    out = []
    for n, ctx_pairs in enumerate(pairs):
        total = torch.zeros((), dtype=torch.float64)
        for hi, lo in ctx_pairs:
            diff = (states[n] * table[hi]).sum() - (states[n] * table[lo]).sum()
            total = total - torch.log(1 / (1 + torch.exp(-diff)) + 1e-10)
        out.append(total / max(1, len(ctx_pairs)) if reduce == "mean" else total)
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_unkd_pairs_loss_and_gradient_match_reference(prob, fake_teacher, fake_student, variant):
    d = prob.distiller(fake_teacher, seed=5, groups=3, pairs=7, T=2.0, **VARIANTS[variant])
    c = d.c
    group = prob.ref_groups(c)
    n_groups = len(set(group.values()))
    counts = ref_pair_counts(c.pairs, n_groups)
    d.refresh(None)  # the teacher guides: the student is not used
    pairs = []
    for n, hist in enumerate(prob.hist):
        t = prob.t_scores[n]
        by_group: dict[int, list[tuple[int, int]]] = {}
        for hi, lo, ok in zip(d.hi[n].tolist(), d.lo[n].tolist(), d.pair_valid[n].tolist()):
            if ok:
                assert hi != lo and hi not in hist and lo not in hist
                assert hi in group and lo in group and group[hi] == group[lo]
                assert t[hi] > t[lo]  # ordered by the teacher
                by_group.setdefault(group[hi], []).append((hi, lo))
        for g in range(n_groups):
            avail = sum(1 for i, k in group.items() if k == g and i not in hist)
            got = by_group.get(g, [])
            if c.draws == "authors":  # every pair of a group with two unseen items, repeats allowed
                assert len(got) == (counts[g] if avail >= 2 else 0)
            else:  # distinct items inside a group
                assert len(got) == min(counts[g], avail // 2)
                assert len({i for p in got for i in p}) == 2 * len(got)
        pairs.append([p for g in sorted(by_group) for p in by_group[g]])

    ids = torch.randperm(prob.n, generator=torch.Generator().manual_seed(1))
    states = prob.states.clone().requires_grad_()
    table = prob.table.clone().requires_grad_()
    per, _ = d.loss(ids, states[ids], fake_student(table))
    weights = torch.linspace(0.5, 1.5, len(ids))
    (per * weights).sum().backward()
    r_states = prob.states.double().clone().requires_grad_()
    r_table = prob.table.double().clone().requires_grad_()
    want = ref_loss(r_states, r_table, pairs, c.reduce)
    want = torch.stack([want[n] for n in ids.tolist()])
    (want * weights.double()).sum().backward()
    np.testing.assert_allclose(per.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states.grad.numpy(), r_states.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(table.grad.numpy(), r_table.grad.numpy(), rtol=1e-4, atol=1e-6)
    # the reference can fail: the other reduction differs on these contexts
    other = ref_loss(prob.states.double(), prob.table.double(), pairs, "sum" if c.reduce == "mean" else "mean")
    assert not np.allclose(per.detach().numpy(), torch.stack([other[n] for n in ids.tolist()]).numpy())


# ----------------------------------------------------------------------------- the pair law


def authors_pair_law(depth: int, T: float) -> dict[tuple[int, int], float]:
    """(better, worse) positions of one pair: two draws with replacement ∝ exp(-(i+1)/T),
    redrawn while equal (the authors' `while True` over samples1/samples2), then ordered."""
    w = [math.exp(-(i + 1) / T) for i in range(depth)]
    law: dict[tuple[int, int], float] = {}
    for a in range(depth):
        for b in range(depth):
            if a != b:
                key = (min(a, b), max(a, b))
                law[key] = law.get(key, 0.0) + w[a] * w[b]
    z = sum(law.values())
    return {k: v / z for k, v in law.items()}


def test_pairs_follow_the_authors_law_and_may_repeat(make_prob, fake_teacher):
    prob = make_prob("all", seed=3)
    d = prob.distiller(fake_teacher, seed=11, T=2.0)
    depth, rows, k = 5, 3000, 3
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(rows, depth, generator=g)
    members = torch.arange(10, 10 + depth)
    hi, lo, ok = d._pairs(scores, members, k)
    assert ok.all()
    rank = scores.argsort(dim=1, descending=True).argsort(dim=1)  # position of each member in the ranking
    hi_pos, lo_pos = rank.gather(1, hi - 10), rank.gather(1, lo - 10)
    assert (hi_pos < lo_pos).all()
    want = authors_pair_law(depth, 2.0)
    freq = {key: 0 for key in want}
    for a, b in zip(hi_pos.flatten().tolist(), lo_pos.flatten().tolist()):
        freq[(a, b)] += 1
    assert max(abs(freq[key] / (rows * k) - p) for key, p in want.items()) < 0.015
    # pairs are independent: two pairs of a context coincide at the rate Σ p²
    same = ((hi[:, 0] == hi[:, 1]) & (lo[:, 0] == lo[:, 1])).float().mean().item()
    assert abs(same - sum(p * p for p in want.values())) < 0.02
    # the former sampler is told apart: its pairs never share an item
    d2 = prob.distiller(fake_teacher, seed=11, T=2.0, draws="distinct")
    hi2, lo2, _ = d2._pairs(scores, members, 2)
    assert ((hi2[:, 0] != hi2[:, 1]) & (hi2[:, 0] != lo2[:, 1]) & (lo2[:, 0] != hi2[:, 1])
            & (lo2[:, 0] != lo2[:, 1])).all()


def test_pair_law_reference_matches_a_simulation_of_their_loop():
    depth, T = 5, 2.0
    rng = np.random.default_rng(0)
    w = np.exp(-np.arange(1, depth + 1) / T)
    counts: dict[tuple[int, int], int] = {}
    for _ in range(20000):
        while True:
            a, b = rng.choice(depth, size=2, replace=True, p=w / w.sum())
            if a != b:
                break
        key = (int(min(a, b)), int(max(a, b)))
        counts[key] = counts.get(key, 0) + 1
    for key, p in authors_pair_law(depth, T).items():
        assert abs(counts.get(key, 0) / 20000 - p) < 0.015
    assert set(authors_pair_law(depth, T)) == set(combinations(range(depth), 2))
