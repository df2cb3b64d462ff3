"""`unkd`: unbiased KD by popularity groups (Chen et al., WSDM 2023).

Follows the authors' `UnKD` class (woriazzc/RCEKD, modeling/KD/baseline.py: `splitGroup`,
`get_rank_negItems`, `do_something_in_each_epoch`, `get_loss`); docs/methods.md (unkd)
has the formulas, the sources of the defaults and the deviations.

Once: item popularity = occurrences among the training positions of the sequences.
grouping="authors": the items seen in training, most popular first (ties by id), are cut
greedily: a group grows while its interaction mass stays ≤ total / groups; the item that would
push it over opens the next group (an item heavier than that alone is a group of its own); a
last group lighter than half the target joins the one before. So the number of groups can
differ from `groups`. grouping="equal_mass" (former rule): item i goes to group
floor(groups · mass before i / total mass). Items never seen in training are in no group
(unseen_items="none", the authors) or in the last group ("last_group", former behaviour).
Pairs per group: round(pairs / number of groups) each (Python rounding, half to even), and one
more for each of the first groups while the rounded total is short of `pairs` (the authors'
unkd_lamda = 0 share).
Per refresh (once per epoch), chunked over contexts: the teacher's scores with the context's
history masked; inside each group its unseen items ranked by the teacher, the top 1000 kept;
position i weighs exp(-(i+1)/T). draws="authors": each pair = two positions drawn with
replacement ∝ weight, redrawn until they differ, i.e. P(a, b) ∝ w_a w_b for a ≠ b
(pair_positions draws that law in one shot by inverse CDF; items may repeat across pairs);
draws="distinct" (former sampler): 2k distinct positions among the group's top 2k + 20·T,
draws 2m and 2m+1 paired. Each pair ordered by the teacher (better position = "hi"). A pair is
invalid (masked) where a group has fewer than two unseen items for the context.
Per batch: -log(σ(s_hi - s_lo) + 1e-10) per pair, averaged over the context's valid pairs
(reduce="mean", the authors) or summed (reduce="sum", former behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..memory import FLOAT, INDEX
from ..settings import MethodSettings, setting
from .base import Distiller
from .common import gumbel_topk, masked_rows
from .contexts import mask_history_

EPS = 1e-10  # the authors' 1e-10 inside the log
DEPTH = 1000  # the authors keep a group's top 1000 unseen items (negItems[:1000], a 1000-long ranking_list)


def pair_positions(valid: torch.Tensor, T: float, k: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """k independent pairs (a, b) [rows, k] of distinct positions with P(a, b) ∝ w_a w_b, a ≠ b.

    w_i = exp(-(i+1)/T) over each row's valid positions (a prefix: a ranking with -inf last).
    That is the law of two draws with replacement ∝ w redrawn while they tie, drawn in one shot
    by inverse CDF: a from its marginal ∝ w_a (W - w_a), then b ∝ w_b among the positions ≠ a
    (a uniform in [0, W - w_a) mapped past a's slot). O(rows · (depth + k log depth)); rows
    with fewer than two valid positions give junk (callers mask them).
    """
    rows, depth = valid.shape
    i = torch.arange(depth, device=valid.device, dtype=torch.float64)
    w = torch.where(valid, torch.exp(-(i + 1) / T), torch.zeros((), dtype=torch.float64, device=valid.device))
    total = w.sum(1, keepdim=True)
    first_cdf = (w * (total - w)).cumsum(1)
    u = torch.rand(rows, k, generator=gen, device=valid.device, dtype=torch.float64) * first_cdf[:, -1:]
    a = torch.searchsorted(first_cdf, u, right=True).clamp_(max=depth - 1)
    cdf = w.cumsum(1)
    w_a = w.gather(1, a)
    before = cdf.gather(1, a) - w_a
    u = torch.rand(rows, k, generator=gen, device=valid.device, dtype=torch.float64) * (total - w_a)
    b = torch.searchsorted(cdf, torch.where(u < before, u, u + w_a), right=True).clamp_(max=depth - 1)
    n_valid = valid.sum(1, keepdim=True)
    step = torch.where(a + 1 < n_valid, a + 1, (a - 1).clamp(min=0))
    b = torch.where(b == a, step, b)  # only a float tie at a slot's edge can land on a
    return a, b


def popularity_groups(pop: torch.Tensor, groups: int) -> torch.Tensor:
    """Equal-mass rule: [n_items + 1] group id per item (0 = most popular); item 0 (padding) gets -1.

    Items never seen in training have mass before them = total: the last group.
    """
    n = pop.numel() - 1
    counts = pop[1:].double()
    order = torch.argsort(-counts, stable=True)  # popularity desc, ties by id
    total = counts.sum()
    before = counts[order].cumsum(0) - counts[order]
    g = torch.zeros(n, dtype=torch.long)
    if total > 0:
        g[order] = (before * groups / total).floor().long().clamp(max=groups - 1)
    return torch.cat([torch.tensor([-1]), g])


def greedy_groups(pop: torch.Tensor, groups: int) -> torch.Tensor:
    """The authors' greedy split: [n_items + 1] group id per item; -1 for padding and unseen items.

    One searchsorted per group (no loop over items): a group starting at s ends before the
    first k with mass(s..k) > total / groups, compared exactly as mass · groups > total.
    """
    counts = pop[1:].long()
    out = torch.full((pop.numel(),), -1, dtype=torch.long)
    order = torch.argsort(-counts, stable=True)  # popularity desc, ties by id
    n = int((counts > 0).sum())
    if n == 0:
        return out
    order = order[:n]
    cum = counts[order].cumsum(0)  # inclusive
    total = int(cum[-1])
    scaled = cum * groups
    bounds: list[tuple[int, int]] = []
    s = 0
    while s < n:
        before = int(cum[s - 1]) if s else 0
        k = int(torch.searchsorted(scaled, torch.tensor(before * groups + total), right=True))
        if k >= n:  # the rest never exceeds the target: the trailing group
            if (total - before) * 2 * groups > total or not bounds:
                bounds.append((s, n))
            else:
                bounds[-1] = (bounds[-1][0], n)
            break
        if k == s:  # one item heavier than the target: a group of its own
            bounds.append((s, s + 1))
            s += 1
        else:
            bounds.append((s, k))
            s = k
    for g, (a, b) in enumerate(bounds):
        out[order[a:b] + 1] = g
    return out


def pairs_per_group(pairs: int, n_groups: int) -> list[int]:
    """The authors' split of unkd_n_distill with unkd_lamda = 0: equal shares, Python's round."""
    share = 1.0 / n_groups  # the authors' normalised ratio (every group ratio ** 0 = 1)
    counts = [round(share * pairs) for _ in range(n_groups)]
    short = pairs - sum(counts)
    return [k + (1 if g < short else 0) for g, k in enumerate(counts)]


@dataclass
class UnKDSettings(MethodSettings):
    """UnKD (Chen et al. 2023): BPR pairs inside popularity groups.

    Defaults: the authors' configs/yelp/bpr/unkd.yaml (the same in their citeulike/lightgcn,
    gowalla/lightgcn and yelp/lightgcn configs; citeulike/bpr uses 2 groups and 2 pairs).
    """

    lam: float = setting(0.5, "weight λ of the KD term (authors: lmbda 0.5, configs/yelp/bpr/unkd.yaml)", ge=0)
    groups: int = setting(4, "popularity groups aimed at (authors: unkd_group_num 4)", gt=0, items=True)
    pairs: int = setting(30, "pairs per context, split equally over the groups (authors: unkd_n_distill 30)", gt=0)
    T: float = setting(20.0, "position weight exp(-(i + 1) / T) in a group's teacher ranking (authors' 20)", gt=0)
    grouping: Literal["authors", "equal_mass"] = setting(
        "authors", "authors: greedy groups of mass ≤ total / groups; equal_mass: item i in group "
                   "floor(groups · mass before i / total) (former rule)")
    unseen_items: Literal["none", "last_group"] = setting(
        "none", "items never seen in training: none: in no group (authors); last_group: in the last group (former)")
    draws: Literal["authors", "distinct"] = setting(
        "authors", "authors: each pair two draws with replacement until they differ; "
                   "distinct: all positions of a group distinct (former sampler)")
    reduce: Literal["mean", "sum"] = setting(
        "mean", "per-context loss over its pairs: mean (authors) or sum (former behaviour)")


class UnKD(Distiller):
    name = "unkd"
    Settings = UnKDSettings

    def __init__(self, settings: UnKDSettings, setup):
        super().__init__(settings, setup)
        c = settings
        pop = self.contexts.data.train_item_counts()
        if c.grouping == "authors":
            group = greedy_groups(pop, c.groups)
        else:
            group = popularity_groups(pop, c.groups)
            group[1:][pop[1:] == 0] = -1
        n_groups = int(group.max()) + 1 if (group >= 0).any() else 0
        if c.unseen_items == "last_group" and n_groups:
            group[1:][pop[1:] == 0] = n_groups - 1
        self.group = group.to(self.device)
        self.n_groups = n_groups
        self.members = [torch.nonzero(self.group == g).flatten() for g in range(n_groups)]
        self.counts = pairs_per_group(c.pairs, n_groups) if n_groups else []

    def refresh(self, student) -> None:
        n = self.contexts.n
        width = sum(self.counts)
        if width == 0:
            empty = torch.zeros(n, 0, dtype=torch.long, device=self.device)
            self.hi, self.lo, self.pair_valid = empty, empty.clone(), empty.bool()
            return
        his, los, oks = [], [], []
        for ids in torch.arange(n, device=self.device).split(self._rows()):
            h, l, ok = self._chunk_pairs(ids)
            his.append(h), los.append(l), oks.append(ok)
        self.hi, self.lo, self.pair_valid = torch.cat(his), torch.cat(los), torch.cat(oks)

    def _rows(self) -> int:
        """Contexts per refresh chunk within the budget. Per context: the teacher's masked score
        row and history (masked_rows), one group's copy of it, and over the group's top `depth`
        positions the top values and ids, their item ids and pair_positions' float64 rows (the
        weights, their CDFs and temporaries): under 8 INDEX per position."""
        n_items = self.contexts.data.n_items
        largest = max((m.numel() for m in self.members), default=0)
        depth = min(largest, DEPTH if self.c.draws == "authors" else 2 * max(self.counts) + int(20 * self.c.T))
        state = self.teacher.states.size(1) if hasattr(self.teacher, "states") else 0  # score_all's gathered state
        extra = FLOAT * (largest + state) + 8 * INDEX * depth
        return masked_rows(self.contexts, n_items, self.budget, self.chunk, extra)

    def _chunk_pairs(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(hi, lo, valid) of one chunk of contexts over every group (its scores are freed on
        return, before the next chunk's)."""
        scores = mask_history_(self.teacher.score_all(ids), self.contexts, ids)
        hi_g, lo_g, ok_g = [], [], []
        for members, k in zip(self.members, self.counts):  # a handful of groups, vectorised over contexts
            if k == 0:
                continue
            h, l, ok = self._pairs(scores[:, members], members, k)
            hi_g.append(h), lo_g.append(l), ok_g.append(ok)
        return torch.cat(hi_g, 1), torch.cat(lo_g, 1), torch.cat(ok_g, 1)

    def _pairs(self, scores: torch.Tensor, members: torch.Tensor, k: int):
        """(hi, lo, valid) [rows, k] for one group; scores [rows, group size] of its members."""
        c = self.c
        rows = scores.size(0)
        # authors: their top 1000; distinct (former): the top 2k + 20 T, deeper weighs < e^-20
        depth = min(members.numel(), DEPTH if c.draws == "authors" else 2 * k + int(20 * c.T))
        out = torch.zeros(rows, k, dtype=torch.long, device=scores.device)
        if depth < 2:
            return out, out.clone(), torch.zeros_like(out, dtype=torch.bool)
        top = scores.topk(depth, dim=1)
        valid = torch.isfinite(top.values)
        if c.draws == "authors":
            a, b = pair_positions(valid, c.T, k, self.gen)
            m = k
        else:
            i = torch.arange(depth, device=scores.device, dtype=torch.float32)
            logw = torch.where(valid, -(i + 1) / c.T, float("-inf"))
            m = min(k, depth // 2)
            pos = gumbel_topk(logw, 2 * m, self.gen)
            a, b = pos[:, 0::2], pos[:, 1::2]  # consecutive draws pair up; blocked ones come last
        hi_pos, lo_pos = torch.minimum(a, b), torch.maximum(a, b)
        ok = valid.gather(1, hi_pos) & valid.gather(1, lo_pos) & (hi_pos != lo_pos)  # < 2 unseen: none
        items = members[top.indices]
        pad = out[:, m:]
        hi = torch.cat([items.gather(1, hi_pos), pad], 1)
        lo = torch.cat([items.gather(1, lo_pos), pad], 1)
        ok = torch.cat([ok, torch.zeros_like(pad, dtype=torch.bool)], 1)
        return hi, lo, ok

    def loss(self, ids, states, student):
        diff = student.score_items(states, self.hi[ids]) - student.score_items(states, self.lo[ids])
        ok = self.pair_valid[ids]
        terms = torch.where(ok, -torch.log(torch.sigmoid(diff) + EPS), torch.zeros_like(diff))
        total = terms.sum(1)
        if self.c.reduce == "mean":
            total = total / ok.sum(1).clamp(min=1)
        return total, {}
