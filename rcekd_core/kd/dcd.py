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

import torch

from .base import Distiller
from .common import gumbel_topk, masked_lse, relaxed_ranking_loss, student_ranks

FLOOR = 1e-5


class DCD(Distiller):
    name = "dcd"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        c = self.c = self.cfg.dcd
        self.lam = c.lam
        self.top, self.top_valid = self.teacher.topk_masked(c.M)

    def refresh(self, student) -> None:
        c = self.c
        rank_s = student_ranks(student, self.contexts, self.top, self.cfg.eval.chunk, self.device)
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
