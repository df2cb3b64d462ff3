"""`unkd`: unbiased KD by popularity groups (Chen et al., WSDM 2023).

Once: item popularity = occurrences among the training positions of the sequences (validation
and test items excluded); items sorted by popularity (most popular first, ties by id) are cut
into `groups` groups holding (about) equal interaction mass: item i goes to group
floor(groups · mass before i / total mass).
Per refresh (once per epoch), chunked over contexts: the teacher's scores with the context's
history masked; inside each group its unseen items ranked by the teacher; 2·pairs distinct
positions drawn ∝ exp(-(i+1)/T) (T = 20, the authors') without replacement, draws 2k and 2k+1
paired, each pair ordered by the teacher (better position = "hi"). A context with fewer unseen
items in a group than 2·pairs gets floor(unseen / 2) pairs there (the rest are masked).
Only the teacher's top (2·pairs + 20·T) of a group can be drawn: any deeper position weighs
< e^-20 of the positions the draws need, so the truncation is invisible in practice.
Per batch: BPR-style -Σ log σ(s_hi - s_lo) over every group's pairs, summed per context.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..settings import MethodSettings, setting
from .base import Distiller
from .common import gumbel_topk
from .contexts import mask_history_


def popularity_groups(pop: torch.Tensor, groups: int) -> torch.Tensor:
    """[n_items + 1] group id per item (0 = most popular); item 0 (padding) gets -1."""
    n = pop.numel() - 1
    counts = pop[1:].double()
    order = torch.argsort(-counts, stable=True)  # popularity desc, ties by id
    total = counts.sum()
    before = counts[order].cumsum(0) - counts[order]
    g = torch.zeros(n, dtype=torch.long)
    if total > 0:
        g[order] = (before * groups / total).floor().long().clamp(max=groups - 1)
    return torch.cat([torch.tensor([-1]), g])


@dataclass
class UnKDSettings(MethodSettings):
    """UnKD (Chen et al. 2023): BPR pairs inside popularity groups of equal interaction mass."""

    lam: float = setting(0.5, "weight λ of the KD term", ge=0)
    groups: int = setting(4, "popularity groups", gt=0, items=True)
    pairs: int = setting(10, "pairs per group (the authors used 2–30)", gt=0)
    T: float = setting(20.0, "position weight exp(-(i + 1) / T) inside a group's teacher ranking", gt=0)


class UnKD(Distiller):
    name = "unkd"
    Settings = UnKDSettings

    def __init__(self, settings: "UnKDSettings", setup):
        super().__init__(settings, setup)
        c = settings
        data = self.contexts.data
        self.group = popularity_groups(data.train_item_counts(), c.groups).to(self.device)
        self.members = [torch.nonzero(self.group == g).flatten() for g in range(c.groups)]

    def refresh(self, student) -> None:
        n = self.teacher.states.size(0)
        his, los, oks = [], [], []
        for ids in torch.arange(n, device=self.device).split(self.chunk):
            scores = mask_history_(self.teacher.score_all(ids), self.contexts, ids)
            hi_g, lo_g, ok_g = [], [], []
            for members in self.members:  # a handful of groups, vectorised over contexts
                h, l, ok = self._pairs(scores[:, members], members)
                hi_g.append(h), lo_g.append(l), ok_g.append(ok)
            his.append(torch.cat(hi_g, 1)), los.append(torch.cat(lo_g, 1)), oks.append(torch.cat(ok_g, 1))
        self.hi, self.lo, self.pair_valid = torch.cat(his), torch.cat(los), torch.cat(oks)

    def _pairs(self, scores: torch.Tensor, members: torch.Tensor):
        """(hi, lo, valid) [rows, pairs] for one group; scores [rows, group size] of its members."""
        c = self.c
        rows = scores.size(0)
        depth = min(members.numel(), 2 * c.pairs + int(20 * c.T))
        out = torch.zeros(rows, c.pairs, dtype=torch.long, device=scores.device)
        if depth < 2:
            return out, out.clone(), torch.zeros_like(out, dtype=torch.bool)
        top = scores.topk(depth, dim=1)
        valid = torch.isfinite(top.values)
        i = torch.arange(depth, device=scores.device, dtype=torch.float32)
        logw = torch.where(valid, -(i + 1) / c.T, float("-inf"))
        k = min(c.pairs, depth // 2)
        pos = gumbel_topk(logw, 2 * k, self.gen)
        a, b = pos[:, 0::2], pos[:, 1::2]  # consecutive draws pair up; blocked ones come last
        hi_pos, lo_pos = torch.minimum(a, b), torch.maximum(a, b)
        ok = valid.gather(1, hi_pos) & valid.gather(1, lo_pos)
        items = members[top.indices]
        hi = torch.cat([items.gather(1, hi_pos), out[:, k:]], 1)
        lo = torch.cat([items.gather(1, lo_pos), out[:, k:]], 1)
        ok = torch.cat([ok, torch.zeros(rows, c.pairs - k, dtype=torch.bool, device=ok.device)], 1)
        return hi, lo, ok

    def loss(self, ids, states, student):
        diff = student.score_items(states, self.hi[ids]) - student.score_items(states, self.lo[ids])
        terms = -F.logsigmoid(diff)
        return torch.where(self.pair_valid[ids], terms, torch.zeros_like(terms)).sum(1), {}
