"""`de`: distillation experts (Kang et al., CIKM 2020, the DE half of DE-RRD).

For a sequential model the "user embedding" is the context state and the item embedding is a
row of the item table; the items distilled per context are its next item (the batch's
positives, as DE-RRD distils the batch's items). Student and teacher dims differ: each expert
is an MLP d_s -> (d_s + d_t) // 2 -> d_t (d_s // 2 hidden when the dims are equal), ReLU
between, separate expert sets and selectors for states and items. A selector maps the
teacher vector t to softmax(W t + b) over the experts; one expert is picked by Gumbel-softmax
softmax((log(p + 1e-10) + g) / τ), τ annealed exponentially from tau_start to tau_end over the
student's epochs (one step per refresh). Loss per context: Σ_dims (t - Σ_e sel_e · expert_e(s))²
for the state plus the same for the next item. The experts and selectors are trained with the
student (Distiller.parameters()); the teacher's vectors are frozen tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..settings import MethodSettings, setting
from .base import Distiller


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
    """DE (Kang et al. 2020): experts map student states/items to the teacher's space."""

    lam: float = setting(0.05, "weight λ of the KD term", ge=0)
    experts: int = setting(30, "experts per side (states, items)", gt=0)
    tau_start: float = setting(1.0, "Gumbel-softmax temperature, annealed exponentially ...", gt=0)
    tau_end: float = setting(1e-10, "... to this over student_train.epochs", gt=0)

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
        self.epochs = setup.epochs
        d_s, d_t = setup.student_dim, self.teacher.states.size(1)
        hidden = d_s // 2 if d_s == d_t else (d_s + d_t) // 2
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

    def loss(self, ids, states, student):
        items = self.next_items[ids]
        l_state = self.term(states, self.teacher.states[ids], "state")
        l_item = self.term(student.item_table()[items], self.teacher.table[items], "item")
        return l_state + l_item, {"de_tau": self.tau}
