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

from dataclasses import dataclass

import torch

from ..settings import MethodSettings, setting
from .base import Distiller, rowwise_isin
from .common import NEG, relaxed_ranking_loss, student_top_masked


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


@dataclass
class HetCompSettings(MethodSettings):
    """HetComp (Kang et al. 2023): easy-to-hard lists from the teacher's training trajectory."""

    lam: float = setting(0.005, "weight λ of the KD term", ge=0)
    alpha: float = setting(1.05, "switch threshold alpha * 0.995^(epoch // p)", gt=0)
    p: int = setting(10, "epochs between switch checks", gt=0)
    K: int = setting(50, "list length (history masked), also the NDCG cut-off of the switch test", gt=0, items=True)
    every: int = setting(2, "teacher training saves its weights every this many epochs", gt=0)
    checkpoints: int = setting(3, "trajectory checkpoints used (evenly spaced before the best epoch) + final", ge=0)


class HetComp(Distiller):
    name = "hetcomp"
    Settings = HetCompSettings

    @classmethod
    def trajectory_every(cls, settings: HetCompSettings) -> int:
        return settings.every

    @classmethod
    def needs_trajectory(cls) -> bool:
        return True

    def __init__(self, settings: HetCompSettings, setup):
        super().__init__(settings, setup)
        c = settings
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
        traj = self.setup.trajectory
        epochs = traj.epochs if traj is not None else []
        best = traj.best_epoch if traj is not None else None
        chosen = pick_checkpoints(epochs, best, self.c.checkpoints)
        where = traj.where if traj is not None else "the teacher cache"
        if not epochs:
            self.setup.warnings.append(
                f"no teacher trajectory under {where} (teacher cached before trajectories were saved?): "
                "hetcomp distils the final teacher only; delete that cache folder to retrain the teacher "
                "with its trajectory")
        elif not chosen:
            self.setup.warnings.append(
                f"the teacher's best epoch is {best}: no trajectory checkpoint precedes it, so hetcomp "
                "distils the final teacher only (lower hetcomp.every to save more often)")
        self.checkpoint_epochs = chosen
        return [traj.view(e) for e in chosen]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "stage": self.stage, "last_dist": self.last_dist, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.stage, self.last_dist, self.epoch = state["stage"], state["last_dist"], state["epoch"]
        self._set_current()

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
        s_top, s_valid = student_top_masked(student, self.contexts, c.K, self.chunk, self.device)
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
