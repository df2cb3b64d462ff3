"""`hetcomp`: distillation from a teacher's training trajectory (Kang et al., WWW 2023).

Targets: the history-masked top-K lists of a few teacher checkpoints saved during its training
(easy → hard) and of the final teacher. Each context starts on the first list.
Dynamic knowledge construction, as the authors' DKC code does it: every p epochs (from epoch
p on) the student's top-K unseen items are compared with the *next* list of each context by
dist = 1 - NDCG, relevance 2^{exp(-r/10)} - 1 at student position r when the item is in
that list. The first check only records dist; later ones move a context to the next list when
last_dist / dist > α · 0.995^(epoch // p) (it caught up) or < 1 (the authors' code also moves
then), and record the dist to the list after it.
Loss per context: relaxed Plackett–Luce over [positive, current list] with every other item in
the denominator: -Σ_k [s_k - log(Σ_{j ≥ k in list} e^{s_j} + Σ_{o ∉ list} e^{s_o})].
In this sequential setting the "train positive" of a context is its next item (its training
target); a list member equal to it is dropped (counted once). Single-teacher trajectory: the
authors' ensemble of heterogeneous teachers is one teacher here, and their switch to a second
loss form once every user reached the final list is left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from .base import Distiller, rowwise_isin
from .common import NEG, relaxed_ranking_loss, student_top_masked


def trajectory_files(directory: Path) -> dict[int, Path]:
    """epoch -> checkpoint path of the teacher trajectory saved during its training."""
    out = {}
    for p in Path(directory).glob("epoch*.pt"):
        m = re.fullmatch(r"epoch(\d+)\.pt", p.name)
        if m:
            out[int(m.group(1))] = p
    return out


def pick_checkpoints(epochs: list[int], best_epoch: int | None, n: int) -> list[int]:
    """Up to n evenly spaced epochs strictly before the best one (the final teacher)."""
    eligible = sorted(e for e in epochs if best_epoch is None or e < best_epoch)
    if len(eligible) <= n:
        return eligible
    idx = torch.linspace(0, len(eligible) - 1, n).round().long().unique().tolist()
    return [eligible[i] for i in idx]


def ndcg_to_list(s_top: torch.Tensor, s_valid: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """NDCG of the student's top-k against a teacher list, the authors' graded relevance."""
    k = s_top.size(1)
    r = torch.arange(k, device=s_top.device, dtype=torch.float32)
    gain = (2 ** torch.exp(-r / 10) - 1) / torch.log2(r + 2)
    hit = rowwise_isin(s_top, target) & s_valid
    return (hit.float() * gain).sum(1) / gain.sum()


class HetComp(Distiller):
    name = "hetcomp"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        c = self.c = self.cfg.hetcomp
        self.lam = c.lam
        self.notes: list[dict] = []
        lists = [view.topk_masked(c.K) for view in self._trajectory_views()]
        lists.append(self.teacher.topk_masked(c.K))
        self.lists = torch.stack([x for x, _ in lists])  # [stages, n, K]
        self.lists_valid = torch.stack([v for _, v in lists])
        n = self.lists.size(1)
        self.stage = torch.zeros(n, dtype=torch.long, device=self.lists.device)
        self.last_dist: torch.Tensor | None = None
        self.epoch = 0
        self.positive = self.contexts.next_items().to(self.lists.device)
        self._set_current()

    def _trajectory_views(self) -> list:
        """TeacherViews of the chosen trajectory checkpoints, easiest first (built once, here)."""
        from ..models.registry import build_model
        from ..train.checkpoint import load_checkpoint
        from ..train.teacher import TeacherCache
        from .teacher_view import TeacherView

        cache = TeacherCache(self.cfg)
        files = trajectory_files(cache.dir / "trajectory")
        best = cache.meta().get("best_epoch") if cache.exists() else None
        chosen = pick_checkpoints(list(files), best, self.c.checkpoints)
        if not files:
            self.notes.append({"type": "warning", "method": self.name, "message":
                               f"no teacher trajectory under {cache.dir / 'trajectory'} (teacher cached "
                               "before trajectories were saved?): hetcomp distils the final teacher only; "
                               "delete that cache folder to retrain the teacher with its trajectory"})
        elif not chosen:
            self.notes.append({"type": "warning", "method": self.name, "message":
                               f"the teacher's best epoch is {best}: no trajectory checkpoint precedes it, so "
                               "hetcomp distils the final teacher only (lower hetcomp.every to save more often)"})
        views = []
        for e in chosen:
            data = self.contexts.data
            model = build_model(self.cfg.teacher, data.n_items, data).to(self.device)
            state, _ = load_checkpoint(files[e], map_location=self.device)
            model.load_state_dict(state)
            views.append(TeacherView(model, self.contexts, self.cfg.eval.chunk, self.device))
        self.checkpoint_epochs = chosen
        return views

    def _list_of(self, stage: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(stage.numel(), device=stage.device)
        return self.lists[stage, rows]

    def _set_current(self) -> None:
        rows = torch.arange(self.stage.numel(), device=self.stage.device)
        self.current = self.lists[self.stage, rows]
        self.current_valid = self.lists_valid[self.stage, rows] & (self.current != self.positive.unsqueeze(1))

    def refresh(self, student) -> None:
        c = self.c
        self.epoch += 1
        done = self.epoch - 1  # epochs trained so far
        last = self.lists.size(0) - 1
        if last == 0 or done < c.p or done % c.p:
            return
        s_top, s_valid = student_top_masked(student, self.contexts, c.K, self.cfg.eval.chunk, self.device)
        s_top, s_valid = s_top.to(self.stage.device), s_valid.to(self.stage.device)
        nxt = (self.stage + 1).clamp(max=last)
        dist = 1 - ndcg_to_list(s_top, s_valid, self._list_of(nxt))
        if self.last_dist is None:
            self.last_dist = dist
            return
        th = c.alpha * 0.995 ** (done // c.p)
        ratio = self.last_dist / dist  # dist 0: inf (caught up), 0/0: nan -> move as well
        move = (self.stage < last) & ((ratio > th) | (ratio < 1) | torch.isnan(ratio))
        self.stage = self.stage + move.long()
        after = (self.stage + 1).clamp(max=last)
        self.last_dist = torch.where(move, 1 - ndcg_to_list(s_top, s_valid, self._list_of(after)), self.last_dist)
        self._set_current()

    def loss(self, ids, states, student):
        scores = student.score_all(states)  # [batch contexts, items + 1]: one batch at a time
        items = torch.cat([self.positive[ids].unsqueeze(1), self.current[ids]], 1)
        valid = torch.cat([torch.ones_like(items[:, :1], dtype=torch.bool), self.current_valid[ids]], 1)
        in_list = torch.zeros_like(scores, dtype=torch.bool)
        in_list.scatter_(1, torch.where(valid, items, torch.zeros_like(items)), True)
        in_list[:, 0] = True  # padding is never a candidate
        others = torch.logsumexp(scores.masked_fill(in_list, NEG), dim=1)
        per = relaxed_ranking_loss(scores.gather(1, items), valid, others)
        return per, {"stage": self.stage[ids].float().mean().item()}
