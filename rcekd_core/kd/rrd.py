"""`rrd`: relaxed ranking distillation (Kang et al., CIKM 2020, the RRD half of DE-RRD).

Follows the authors' `RRD` (woriazzc/RCEKD, modeling/KD/baseline.py); defaults from their
HSTU configs; docs/methods.md (rrd).

Once: the teacher's top-M with each context's history masked (TeacherView.topk_masked).
Per refresh (once per epoch), for every context at once:
  K "interesting" positions of that list drawn ∝ exp(-(j+1)/T) without replacement
  (Gumbel top-k), kept in rank order; L "uninteresting" items drawn uniformly without
  replacement from the items outside the top-M and outside the context's history (as the
  authors' code, which also masks training items there).
Per batch: relaxed Plackett–Luce loss
  -Σ_k [s_k - log(Σ_{j ≥ k, interesting} e^{s_j} + Σ_{uninteresting} e^{s_l})], summed per context.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..settings import MethodSettings, setting
from .base import Distiller
from .common import SCORE_CAP, gumbel_topk, masked_lse, relaxed_ranking_loss, uniform_outside


@dataclass
class RRDSettings(MethodSettings):
    """RRD (Kang et al. 2020): relaxed Plackett–Luce on sampled teacher top-M positions."""

    lam: float = setting(1e-4, "weight λ of the KD term (authors: lmbda 0.0001, configs/{citeulike,gowalla,yelp}/"
                               "hstu/rrd.yaml)", ge=0)
    K: int = setting(100, "interesting items sampled from the teacher's top-M (authors: rrd_K, "
                          "configs/citeulike/hstu/rrd.yaml)", gt=0)
    L: int = setting(200, "uninteresting items sampled uniformly outside it (authors: rrd_L, "
                          "configs/citeulike/hstu/rrd.yaml)", gt=0, items=True)
    T: float = setting(10.0, "position weight exp(-rank / T) (authors: rrd_T, configs/citeulike/hstu/rrd.yaml)", gt=0)
    M: int = setting(500, "teacher list length, history masked (authors: rrd_mxK, configs/citeulike/hstu/rrd.yaml)",
                     gt=0, items=True)

    def check(self, prefix: str) -> None:
        if self.K > self.M:
            raise ConfigError(f"{prefix}K ({self.K}) must be ≤ {prefix}M ({self.M}): interesting items come from the top-M")

    def check_catalogue(self, prefix: str, n_items: int) -> None:
        if self.M + self.L > n_items:
            raise ConfigError(f"{prefix}M + {prefix}L ({self.M} + {self.L}) exceeds the {n_items} items of this "
                              "dataset: uninteresting items come from outside the top-M; lower them")


class RRD(Distiller):
    name = "rrd"
    Settings = RRDSettings

    def __init__(self, settings: RRDSettings, setup):
        super().__init__(settings, setup)
        c = settings
        self.top, self.top_valid = self.teacher.topk_masked(c.M)
        j = torch.arange(c.M, device=self.top.device, dtype=torch.float32)
        self.logw = torch.where(self.top_valid, -(j + 1) / c.T, float("-inf"))

    def refresh(self, student) -> None:
        c = self.c
        pos = gumbel_topk(self.logw, c.K, self.gen).sort(dim=1).values  # rank order
        self.interesting = self.top.gather(1, pos)
        self.int_valid = self.top_valid.gather(1, pos)
        self.uninteresting, self.unint_valid = uniform_outside(
            self.contexts, self.top, self.contexts.data.n_items, c.L, self.gen, self.device,
            self.chunk, self.budget)

    def loss(self, ids, states, student):
        # capped as the authors' relaxed_ranking_loss does (their exp() would overflow above it)
        s_int = student.score_items(states, self.interesting[ids]).clamp(max=SCORE_CAP)
        s_un = student.score_items(states, self.uninteresting[ids]).clamp(max=SCORE_CAP)
        den = masked_lse(s_un, self.unint_valid[ids])
        return relaxed_ranking_loss(s_int, self.int_valid[ids], den), {}
