"""`dcd`: dual correction distillation, user side (Lee & Kim, CIKM 2021).

Once: the teacher's top-M with each context's history masked; rank_T = position 0..M-1.
Per refresh (once per epoch): rank_S = the student's 0-based rank of each of those items among
the context's unseen items (history masked too, so both ranks count the same candidates;
one sort + searchsorted per context chunk). With d = (rank_S - rank_T) / T:
  under-ranked: K positions drawn ∝ max(tanh(max(d, 0)), 1e-5) without replacement, kept in
  teacher-rank order, placed "above"; over-ranked: K positions drawn ∝ max(tanh(max(-d, 0)), 1e-5),
  the denominator-only set. The two draws are independent, as in the authors' code.
Per batch: the relaxed ranking loss of RRD with those two sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..settings import MethodSettings, setting
from .base import Distiller
from .common import gumbel_topk, masked_lse, relaxed_ranking_loss, student_ranks

FLOOR = 1e-5


@dataclass
class DCDSettings(MethodSettings):
    """DCD (Lee & Kim 2021), user side: under-/over-ranked teacher items by rank discrepancy."""

    lam: float = setting(0.01, "weight λ of the KD term", ge=0)
    K: int = setting(100, "items sampled on each side", gt=0)
    T: float = setting(10.0, "rank-difference scale in tanh", gt=0)
    M: int = setting(500, "teacher list length (history masked)", gt=0, items=True)

    def check(self, prefix: str) -> None:
        if self.K > self.M:
            raise ConfigError(f"{prefix}K ({self.K}) must be ≤ {prefix}M ({self.M}): samples come from the top-M")


class DCD(Distiller):
    name = "dcd"
    Settings = DCDSettings

    def __init__(self, settings: DCDSettings, setup):
        super().__init__(settings, setup)
        c = settings
        self.top, self.top_valid = self.teacher.topk_masked(c.M)

    def refresh(self, student) -> None:
        c = self.c
        rank_s = student_ranks(student, self.contexts, self.top, self.chunk, self.device)
        rank_s = rank_s.to(self.top.device).float()
        rank_t = torch.arange(c.M, device=rank_s.device, dtype=torch.float32)
        d = (rank_s - rank_t) / c.T
        self.rank_s = rank_s
        for side, diff in (("up", d), ("down", -d)):
            w = torch.tanh(diff.clamp(min=0)).clamp(min=FLOOR)
            logw = torch.where(self.top_valid, torch.log(w), float("-inf"))
            pos = gumbel_topk(logw, c.K, self.gen).sort(dim=1).values
            setattr(self, side, self.top.gather(1, pos))
            setattr(self, f"{side}_valid", self.top_valid.gather(1, pos))

    def loss(self, ids, states, student):
        s_up = student.score_items(states, self.up[ids])
        s_down = student.score_items(states, self.down[ids])
        den = masked_lse(s_down, self.down_valid[ids])
        return relaxed_ranking_loss(s_up, self.up_valid[ids], den), {}
