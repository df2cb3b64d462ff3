"""DE against slow loop references written from the authors' code (woriazzc/RCEKD,
modeling/KD/baseline.py, class DE: `__init__`, `do_something_in_each_epoch`, `get_DE_loss`,
`get_loss`; the `Expert` MLP of modeling/KD/utils.py).

The selector noise is recorded as the distiller draws it (its own generator, untouched) and
fed to the reference, which recomputes each term expert by expert, the authors' batch sum
Σ_users D + ½ (Σ_unique positives D + Σ_unique negatives D), the per-context split of it, and
the gradient, with Python loops over contexts, items and experts.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rcekd_core.kd.de import DE, DESettings

N_USERS, N_ITEMS, WINDOW, D_S, D_T = 8, 12, 6, 4, 6


class Problem:
    """The conftest's problem without models, few items (4 to 8 per user of 12), so next items
    and negatives repeat inside a batch (the unique rule matters); each context's history and
    next item, random teacher states and table (d_t) and student states and table (d_s)."""

    def __init__(self, base, seed: int):
        self.base, self.contexts, self.n = base, base.contexts, base.n
        self.hist = [c["history"] for c in base.ctx]
        self.next = [c["next"] for c in base.ctx]
        g = torch.Generator().manual_seed(seed + 1)
        self.teacher = SimpleNamespace(states=torch.randn(self.n, D_T, generator=g),
                                       table=torch.randn(N_ITEMS + 1, D_T, generator=g))
        self.states = torch.randn(self.n, D_S, generator=g)
        self.table = torch.randn(N_ITEMS + 1, D_S, generator=g)

    def distiller(self, seed: int = 0, epochs: int = 10, student_dim: int = D_S, **values) -> DE:
        setup = self.base.setup(seed, teacher=self.teacher, epochs=epochs, chunk=4, student_dim=student_dim)
        return DE(DESettings(**values), setup)


@pytest.fixture(scope="module")
def make_prob(kd_problem):
    """make_prob(mode, seed=0): this file's Problem (`prob`: per mode)."""
    return lambda mode, seed=0: Problem(kd_problem(mode, seed, n_users=N_USERS, n_items=N_ITEMS, s_len=WINDOW,
                                                   lengths=(4, 9), teacher_dim=None, student_dim=None), seed)


# ----------------------------------------------------------------------------- reference


def ref_expert(ex, e: int, x: torch.Tensor) -> torch.Tensor:
    """The authors' Expert([d_s, hidden, d_t]): Linear, ReLU, Linear, for expert e."""
    h = torch.relu(x @ ex.w1[e].double() + ex.b1[e].double())
    return h @ ex.w2[e].double() + ex.b2[e].double()


def ref_D(d: DE, kind: str, s: torch.Tensor, t: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
    """The authors' get_DE_loss for one entity: selector softmax, + 1e-10, log, + Gumbel, / τ,
    softmax; Σ_dims (t - Σ_e sel_e · expert_e(s))²."""
    sel_net, ex = d.nets[f"{kind}_selector"], d.nets[f"{kind}_experts"]
    E = d.c.experts
    logits = [float(sel_net.weight[e].detach().double() @ t.double() + sel_net.bias[e].detach().double())
              for e in range(E)]
    if E == 1:
        sel = [1.0]
    else:
        m = max(logits)
        p = [math.exp(x - m) for x in logits]
        p = [x / sum(p) for x in p]
        z = [(math.log(p[e] + 1e-10) + float(g[e])) / d.tau for e in range(E)]
        m = max(z)
        sel = [math.exp(x - m) for x in z]
        sel = [x / sum(sel) for x in sel]
    out = sum(sel[e] * ref_expert(ex, e, s) for e in range(E))
    return ((t.double() - out) ** 2).sum()


def record_noise(d: DE, monkeypatch) -> list[torch.Tensor]:
    """The selector noise as the distiller draws it (its own generator, unchanged)."""
    seen: list[torch.Tensor] = []
    real = d._gumbel

    def recording(shape):
        g = real(shape)
        seen.append(g.clone())
        return g

    monkeypatch.setattr(d, "_gumbel", recording)
    return seen


VARIANTS = {
    "authors": {},
    "no negatives": {"negatives": False},
    "item weight 1": {"item_weight": 1.0},
    "per-context items": {"unique_items": False},
    "hidden 3": {"hidden": 3},
    "one expert": {"experts": 1},
    "former": {"negatives": False, "item_weight": 1.0, "unique_items": False, "anneal_epochs": 0},
}


def test_defaults_are_the_authors_config():
    c = DESettings()  # the authors' configs/citeulike/bpr/de.yaml, their epochs 1000
    assert (c.lam, c.experts, c.tau_start, c.tau_end, c.anneal_epochs) == (0.05, 30, 1.0, 1e-10, 1000)
    assert (c.negatives, c.item_weight, c.unique_items, c.hidden) == (True, 0.5, True, 0)


@pytest.mark.parametrize("anneal, horizon", [(1000, 1000), (0, 7), (5, 5)])
def test_tau_schedule_is_the_authors(prob, anneal, horizon):
    end_T, anneal_size = 1e-3, 1e3  # the authors' de_end_T, de_anneal_size (start: their product, 1)
    d = prob.distiller(epochs=7, anneal_epochs=anneal, tau_end=end_T)
    for epoch in range(12):  # refresh e: do_something_in_each_epoch(e), e from 0, max_epoch = horizon
        d.refresh(None)
        want = max(end_T, end_T * anneal_size * ((1.0 / anneal_size) ** (epoch / horizon)))
        assert d.tau == pytest.approx(want, rel=1e-9)


def test_expert_width_is_the_authors(prob):
    for d_s in (D_S, D_T):
        d = prob.distiller(student_dim=d_s)
        assert d.nets["state_experts"].w1.shape == (30, d_s, (d_s + D_T) // 2)  # equal dims too
        assert d.nets["item_experts"].w2.shape == (30, (d_s + D_T) // 2, D_T)
    assert prob.distiller(hidden=3).nets["item_experts"].w1.shape == (30, D_S, 3)


def test_negatives_are_uniform_outside_history_and_next_item(make_prob, monkeypatch):
    prob = make_prob("last", seed=1)
    d = prob.distiller(seed=2)
    counts = np.zeros((prob.n, N_ITEMS + 1))
    old = None
    for _ in range(600):
        d.refresh(None)
        assert d.neg_valid.all()
        if old is not None:
            assert not torch.equal(old, d.negs)  # redrawn every epoch
        old = d.negs.clone()
        counts[np.arange(prob.n), d.negs.numpy()] += 1
    for n in range(prob.n):
        allowed = [i for i in range(1, N_ITEMS + 1) if i not in prob.hist[n] and i != prob.next[n]]
        assert counts[n].sum() == counts[n, allowed].sum()
        np.testing.assert_allclose(counts[n, allowed] / 600, 1 / len(allowed), atol=0.06)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_de_loss_and_gradient_match_reference(prob, fake_student, monkeypatch, variant):
    d = prob.distiller(seed=3, **{"experts": 3, **VARIANTS[variant]})
    c = d.c
    for _ in range(3):
        d.refresh(None)
    noise = record_noise(d, monkeypatch)
    ids = torch.randperm(prob.n, generator=torch.Generator().manual_seed(1))[: max(4, prob.n - 3)]
    states = prob.states.clone().requires_grad_()
    table = prob.table.clone().requires_grad_()
    per, extras = d.loss(ids, states[ids], fake_student(table))
    assert extras["de_tau"] == d.tau
    weights = torch.linspace(0.5, 1.5, len(ids))
    (per * weights).sum().backward()

    r_states = prob.states.double().clone().requires_grad_()
    r_table = prob.table.double().clone().requires_grad_()
    T = prob.teacher
    batch = ids.tolist()
    pos = [prob.next[n] for n in batch]
    neg = d.negs[ids].tolist() if c.negatives else []
    for n, j in zip(batch, neg):  # the drawn negatives are legal
        assert j != prob.next[n] and j not in prob.hist[n] and j > 0
    draws = iter(noise)
    g_state = next(draws) if c.experts > 1 else None
    want = []
    for row, n in enumerate(batch):
        want.append(ref_D(d, "state", r_states[n], T.states[n], None if g_state is None else g_state[row]))
    sides = [pos] + ([neg] if c.negatives else [])
    for items in sides:
        if c.unique_items:  # the authors' .unique(): one term (one noise row) per distinct item, sorted
            uniq = sorted(set(items))
            g = next(draws) if c.experts > 1 else None
            term = {i: ref_D(d, "item", r_table[i], T.table[i], None if g is None else g[r]) for r, i in enumerate(uniq)}
            share = {i: items.count(i) for i in uniq}
            for row, i in enumerate(items):
                want[row] = want[row] + c.item_weight * term[i] / share[i]
        else:
            g = next(draws) if c.experts > 1 else None
            for row, i in enumerate(items):
                want[row] = want[row] + c.item_weight * ref_D(d, "item", r_table[i], T.table[i],
                                                              None if g is None else g[row])
    assert next(draws, None) is None  # every draw is accounted for
    want = torch.stack(want)
    (want * weights.double()).sum().backward()
    np.testing.assert_allclose(per.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states.grad.numpy(), r_states.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(table.grad.numpy(), r_table.grad.numpy(), rtol=1e-4, atol=1e-6)

    if c.unique_items and c.item_weight == 0.5 and c.negatives and c.experts > 1:
        # the batch sums to the authors' get_loss: Σ_users D + (Σ_unique pos D + Σ_unique neg D) · 0.5
        users = sum(ref_D(d, "state", prob.states[n].double(), T.states[n], g_state[row]).item()
                    for row, n in enumerate(batch))
        items_sum = 0.0
        for items, g in zip((pos, neg), noise[1:]):
            items_sum += sum(ref_D(d, "item", prob.table[i].double(), T.table[i], g[r]).item()
                             for r, i in enumerate(sorted(set(items))))
        assert per.sum().item() == pytest.approx(users + 0.5 * items_sum, rel=1e-5)
        assert len(set(pos)) < len(pos) or len(set(neg)) < len(neg)  # repeats: the unique rule was exercised


def test_the_reference_notices_the_former_item_weight(prob, fake_student, monkeypatch):
    """The check can fail: with the authors' ½ the loss is not the one with weight 1."""
    d = prob.distiller(seed=3, experts=3)
    d.refresh(None)
    noise = record_noise(d, monkeypatch)
    ids = torch.arange(prob.n)
    per, _ = d.loss(ids, prob.states, fake_student(prob.table))
    d.c.item_weight = 1.0
    replay = iter(noise)
    monkeypatch.setattr(d, "_gumbel", lambda shape: next(replay))  # the same draws again
    again, _ = d.loss(ids, prob.states, fake_student(prob.table))
    assert not np.allclose(per.detach().numpy(), again.detach().numpy(), rtol=1e-3)
