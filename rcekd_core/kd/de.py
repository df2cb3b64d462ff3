"""`de`: distillation experts (Kang et al., CIKM 2020, the DE half of DE-RRD).

Follows the authors' `DE` class (woriazzc/RCEKD, modeling/KD/baseline.py: `__init__`,
`do_something_in_each_epoch`, `get_DE_loss`, `get_loss`; the `Expert` MLP of
modeling/KD/utils.py); docs/methods.md (de) has the formulas, the sources of the defaults and the
deviations.

For a sequential model the "user embedding" is the context state and the item embedding is a
row of the item table; the items distilled per context are its next item (the positive) and,
with negatives on (the authors' batch_neg_item), one item drawn uniformly per refresh among
those outside the context's history and next item (the authors' BPR sampler redraws a
non-training item per interaction every epoch). Each expert is an MLP
d_s -> hidden -> d_t, ReLU between (hidden 0: (d_s + d_t) // 2, the authors' Expert dims);
separate expert sets and selectors for states and items. A selector maps the teacher vector t
to softmax(W t + b) over the experts; one expert is picked by Gumbel-softmax
softmax((log(p + 1e-10) + g) / τ), τ = tau_start · (tau_end / tau_start)^(e / anneal_epochs)
at refresh e = 0, 1, ... (at least tau_end; anneal_epochs 0: student_train.epochs).
Loss: D(x) = Σ_dims (t - Σ_e sel_e · expert_e(s))²; per context D(state) + item_weight ·
(D(positive) + D(negative)). unique_items: like the authors' `.unique()`, each distinct positive
(and, separately, each distinct negative) of a batch is one term with one draw of the selector
noise, shared equally by the contexts that hold it, so the batch sums to the authors' sum.
The experts and selectors are trained with the student (Distiller.parameters()); the teacher's
vectors are frozen tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..settings import BIG, MethodSettings, setting
from .base import Distiller
from .common import uniform_outside


class Experts(nn.Module):
    """E two-layer MLPs as batched weights: one einsum per layer, no loop over experts."""

    def __init__(self, n: int, d_in: int, d_hidden: int, d_out: int):
        super().__init__()
        b1, b2 = 1 / math.sqrt(d_in), 1 / math.sqrt(d_hidden)  # nn.Linear's default init range
        self.w1 = nn.Parameter(torch.empty(n, d_in, d_hidden).uniform_(-b1, b1))
        self.b1 = nn.Parameter(torch.empty(n, d_hidden).uniform_(-b1, b1))
        self.w2 = nn.Parameter(torch.empty(n, d_hidden, d_out).uniform_(-b2, b2))
        self.b2 = nn.Parameter(torch.empty(n, d_out).uniform_(-b2, b2))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """[N, d_in] -> [N, E, d_out]: every expert's map of every row."""
        h = F.relu(torch.einsum("nd,edh->neh", s, self.w1) + self.b1)
        return torch.einsum("neh,eho->neo", h, self.w2) + self.b2


@dataclass
class DESettings(MethodSettings):
    """DE (Kang et al. 2020): experts map student states/items to the teacher's space.

    Defaults: the authors' configs/citeulike/bpr/de.yaml (λ and experts differ per dataset and
    backbone in their configs: 0.005 / 5 experts for gowalla/bpr and yelp/bpr, for example).
    """

    lam: float = setting(0.05, "weight λ of the KD term (authors: lmbda 0.05, configs/citeulike/bpr/de.yaml)", ge=0)
    experts: int = setting(30, "experts per side, states and items (authors: de_num_experts 30)", gt=0)
    tau_start: float = setting(1.0, "Gumbel-softmax temperature at the first epoch (authors: de_end_T · "
                                    "de_anneal_size = 1e-10 · 1e10)", gt=0)
    tau_end: float = setting(1e-10, "... annealed exponentially down to this (authors: de_end_T 1e-10)", gt=0)
    anneal_epochs: int = setting(1000, "epochs over which τ goes from tau_start to tau_end (authors: their "
                                       "epochs 1000); 0: student_train.epochs (former behaviour)", ge=0, le=BIG)
    negatives: bool = setting(True, "distil a uniform negative item per context too (authors: batch_neg_item); "
                                    "false: the next item only (former behaviour)")
    item_weight: float = setting(0.5, "weight of the item terms next to the state term (authors: 0.5; former: 1)",
                                 ge=0)
    unique_items: bool = setting(True, "each distinct item of a batch is one term shared by its contexts "
                                       "(authors: .unique()); false: one term per context (former)")
    hidden: int = setting(0, "experts' hidden width; 0: (d_s + d_t) // 2 (the authors' Expert dims)",
                          ge=0, le=BIG)

    def check(self, prefix: str) -> None:
        if self.tau_end > self.tau_start:
            raise ConfigError(f"{prefix}tau_end ({self.tau_end}) must be ≤ {prefix}tau_start ({self.tau_start}): "
                              "τ is annealed down")


class DE(Distiller):
    name = "de"
    Settings = DESettings

    def __init__(self, settings: DESettings, setup):
        super().__init__(settings, setup)
        c = settings
        self.epochs = c.anneal_epochs or setup.epochs
        d_s, d_t = setup.student_dim, self.teacher.states.size(1)
        hidden = c.hidden or (d_s + d_t) // 2
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.gen.initial_seed())
            self.nets = nn.ModuleDict({
                "state_experts": Experts(c.experts, d_s, hidden, d_t),
                "item_experts": Experts(c.experts, d_s, hidden, d_t),
                "state_selector": nn.Linear(d_t, c.experts),
                "item_selector": nn.Linear(d_t, c.experts),
            }).to(self.device)
        self.next_items = self.contexts.next_items().to(self.device)
        self.epoch = 0
        self.tau = c.tau_start

    def parameters(self) -> list[nn.Parameter]:
        return list(self.nets.parameters())

    def state_dict(self) -> dict:
        return {**super().state_dict(), "nets": self.nets.state_dict(), "epoch": self.epoch, "tau": self.tau}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.nets.load_state_dict(state["nets"])
        self.epoch, self.tau = state["epoch"], state["tau"]

    def refresh(self, student) -> None:
        c = self.c
        frac = self.epoch / max(1, self.epochs)
        self.tau = max(c.tau_end, c.tau_start * (c.tau_end / c.tau_start) ** frac)
        self.epoch += 1
        if c.negatives:
            excluded = self.next_items.unsqueeze(1)
            neg, ok = uniform_outside(self.contexts, excluded, self.contexts.data.n_items, 1, self.gen,
                                      self.device, self.chunk, self.budget)
            self.negs, self.neg_valid = neg[:, 0], ok[:, 0]

    def _gumbel(self, shape) -> torch.Tensor:
        u = torch.rand(shape, generator=self.gen, device=self.device).clamp_(1e-12, 1 - 1e-7)
        return -torch.log(-torch.log(u))

    def term(self, s: torch.Tensor, t: torch.Tensor, kind: str) -> torch.Tensor:
        """Σ_dims (t - selected expert(s))² per row."""
        p = torch.softmax(self.nets[f"{kind}_selector"](t), dim=1)
        if self.c.experts > 1:
            sel = torch.softmax((torch.log(p + 1e-10) + self._gumbel(p.shape)) / self.tau, dim=1)
        else:
            sel = torch.ones_like(p)
        out = (self.nets[f"{kind}_experts"](s) * sel.unsqueeze(2)).sum(1)
        return ((t - out) ** 2).sum(1)

    def item_terms(self, items: torch.Tensor, student) -> torch.Tensor:
        """[N] the item term of each context's item; unique_items: one term per distinct item, shared."""
        table = student.item_table()
        if not self.c.unique_items:
            return self.term(table[items], self.teacher.table[items], "item")
        uniq, inv, counts = torch.unique(items, return_inverse=True, return_counts=True)
        per = self.term(table[uniq], self.teacher.table[uniq], "item")
        return (per / counts)[inv]

    def loss(self, ids, states, student):
        c = self.c
        l_state = self.term(states, self.teacher.states[ids], "state")
        l_item = self.item_terms(self.next_items[ids], student)
        if c.negatives:
            ok = self.neg_valid[ids]
            l_neg = torch.zeros_like(l_item)
            if ok.any():
                l_neg[ok] = self.item_terms(self.negs[ids][ok], student)
            l_item = l_item + l_neg
        return l_state + c.item_weight * l_item, {"de_tau": self.tau}
