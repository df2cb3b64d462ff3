"""`hetcomp`: distillation from a teacher's training trajectory (Kang et al., WWW 2023).

Follows the authors' `HetComp` (woriazzc/RCEKD, modeling/KD/baseline.py); docs/methods.md (hetcomp).
Targets: history-masked top-K lists of teacher checkpoints saved while it trained (easy → hard).
`pick: earliest` (the authors'): `checkpoints` lists in total, the first ones of [checkpoints
before the best epoch, in epoch order, then the final teacher] (their sorted checkpoint folder
with BEST_EPOCH last, of which only the first hetcomp_num_ckpt are ever used); `pick: spread`:
`checkpoints` evenly spaced checkpoints before the best epoch plus the final teacher.
Each context starts on the first list.
Dynamic knowledge construction (their `_DKC`): while the mean stage rounded to 2 decimals is
below the last, every p epochs (from epoch p on) the student's top-K unseen items are
compared with the *next* list of each context by dist = 1 - NDCG (rounded to 4 decimals),
relevance 2^{exp(-r/10)} - 1 at student position r when the item is in that list. The first
check only records dist; later ones move a context to the next list when
last_dist / dist > α · 0.995^(epoch // p) or < 1 (0/0 does not move), and record the dist
to the list after it.
Positives P (`positives: first`, the authors'): each context's first n_P history items, n_P the
smallest history length over all contexts (their pos_K, the user's first training items);
`positives: next`: the context's next item. A list member that is a positive is dropped.
Loss per context, student scores s clamped to [-40, 40] (as theirs), "others" O = the items
outside the context's history, the current list and P:
  `form: per_item` (their overall_loss, × 2): -2 Σ_{i ∈ P ∪ list} [s_i - log(e^{s_i} + Σ_O e^{s_o})];
  `form: plackett_luce` (the project's former form, no clamp): relaxed Plackett–Luce over
  [P, list] with every item outside them in the denominator (history included).
`rank_phase` (their rank_loss, once the rounded mean stage is the last list; from the start
with a single list): with h = the list's first K // 2, q = its first K // 10 and D_X = Σ of
e^{s_o} over o outside the history, P and X, each log floored at log(1e-5):
  PL(P | D_h) + [PL(h | D_h) + PL(q | D_q)] / 2,  PL(X | D) = -Σ_k [s_k - log(Σ_{j ≥ k} e^{s_j} + D)].
Single-teacher trajectory: the authors' ensemble of heterogeneous teachers is one teacher here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import ConfigError
from ..memory import DEFAULT_BUDGET
from ..settings import MethodSettings, setting
from .base import Distiller, rowwise_isin
from .common import NEG, relaxed_ranking_loss, student_top_masked

SCORE_CLAMP = 40.0  # the authors clamp the student's scores to [-40, 40] in get_loss
LOG_FLOOR = math.log(1e-5)  # the authors' torch.clamp(below, 1e-5) before the log


def pick_checkpoints(epochs: list[int], best_epoch: int | None, n: int) -> list[int]:
    """`spread`: up to n evenly spaced epochs strictly before the best one (the final teacher)."""
    eligible = sorted(e for e in epochs if best_epoch is None or e < best_epoch)
    if len(eligible) <= n:
        return eligible
    idx = torch.linspace(0, len(eligible) - 1, n).round().long().unique().tolist()
    return [eligible[i] for i in idx]


def earliest_checkpoints(epochs: list[int], best_epoch: int | None, n: int) -> tuple[list[int], bool]:
    """`earliest`: the first n of [epochs strictly before the best one..., the final teacher].

    Returns (checkpoint epochs, whether the final teacher is one of the n lists).
    """
    eligible = sorted(e for e in epochs if best_epoch is None or e < best_epoch)
    if len(eligible) >= n:
        return eligible[:n], False
    return eligible, True


def ndcg_to_list(s_top: torch.Tensor, s_valid: torch.Tensor, target: torch.Tensor,
                 budget: int = DEFAULT_BUDGET) -> torch.Tensor:
    """NDCG of the student's top-k against a teacher list, the authors' graded relevance, in
    float64 and rounded to 4 decimals as their _get_NDCG_u."""
    k = s_top.size(1)
    r = torch.arange(k, device=s_top.device, dtype=torch.float64)
    gain = 2 ** torch.exp(-r / 10) - 1
    denom = torch.log2(r + 2)
    hit = rowwise_isin(s_top, target, budget) & s_valid
    dcg = (hit.double() * gain / denom).sum(1)
    return torch.round(dcg / (gain / denom).sum(), decimals=4)


def capped_pl(s: torch.Tensor, valid: torch.Tensor, den_lse: torch.Tensor) -> torch.Tensor:
    """-Σ_k [s_k - max(log(Σ_{j ≥ k} e^{s_j} + e^{den_lse}), log 1e-5)] over the valid members."""
    x = torch.where(valid, s, torch.full_like(s, NEG))
    tail = torch.logcumsumexp(x.flip(1), dim=1).flip(1)
    below = torch.logaddexp(tail, den_lse.unsqueeze(1)).clamp(min=LOG_FLOOR)
    return -torch.where(valid, s - below, torch.zeros_like(s)).sum(1)


@dataclass
class HetCompSettings(MethodSettings):
    """HetComp (Kang et al. 2023): easy-to-hard lists from the teacher's training trajectory."""

    lam: float = setting(0.005, "weight λ of the KD term (authors: lmbda 0.005, configs/citeulike/bpr/hetcomp.yaml)",
                         ge=0)
    alpha: float = setting(1.05, "switch threshold alpha * 0.995^(epoch // p) "
                                 "(authors: hetcomp_alpha, configs/citeulike/bpr/hetcomp.yaml)", gt=0)
    p: int = setting(10, "epochs between switch checks (authors: hetcomp_p, configs/citeulike/bpr/hetcomp.yaml)",
                     gt=0)
    K: int = setting(50, "list length (history masked), also the NDCG cut-off of the switch test "
                         "(authors: hetcomp_K, configs/citeulike/bpr/hetcomp.yaml)", gt=0, items=True)
    every: int = setting(2, "teacher training saves its weights every this many epochs (authors: 50 over up to "
                            "1000 epochs, run.sh --ckpt_interval)", gt=0)
    checkpoints: int = setting(3, "earliest: lists in total (authors: hetcomp_num_ckpt, "
                                  "configs/citeulike/bpr/hetcomp.yaml); spread: checkpoints besides the final", ge=0)
    pick: Literal["earliest", "spread"] = setting(
        "earliest", "earliest: the first saved checkpoints, then the final teacher if room (the authors'); "
                    "spread: evenly spaced before the best epoch + the final")
    positives: Literal["first", "next"] = setting(
        "first", "first: each context's first history items, as many as the shortest history (the authors'); "
                 "next: its next item")
    form: Literal["per_item", "plackett_luce"] = setting(
        "per_item", "per_item: each listed item against the non-history, non-listed items, x 2 (the authors'); "
                    "plackett_luce: one ranking over [positives, list]")
    rank_phase: bool = setting(
        True, "switch to the authors' rank_loss once the mean stage reaches the final list; False: never")

    def check(self, prefix: str) -> None:
        if self.pick == "earliest" and self.checkpoints < 1:
            raise ConfigError(f"{prefix}checkpoints must be ≥ 1 with {prefix}pick = earliest: it counts the lists, "
                              "the final teacher included")


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
        views, with_final = self._trajectory_views()
        lists = [view.topk_masked(c.K) for view in views]
        if with_final:
            lists.append(self.teacher.topk_masked(c.K))
        self.lists = torch.stack([x for x, _ in lists])  # [stages, n, K]
        self.lists_valid = torch.stack([v for _, v in lists])
        n = self.lists.size(1)
        self.stage = torch.zeros(n, dtype=torch.long, device=self.lists.device)
        self.last_dist: torch.Tensor | None = None
        self.v_result = 0.0  # the authors' rounded mean stage: gates the checks and the rank phase
        self.epoch = 0
        self.positive = self._positives().to(self.lists.device)  # [n, P]
        self._set_current()

    def _positives(self) -> torch.Tensor:
        if self.c.positives == "next":
            return self.contexts.next_items().unsqueeze(1)
        users, ends = self.contexts.prefix()
        n_pos = int(ends.min()) if len(ends) else 0  # the authors' pos_K: the shortest history
        data = self.contexts.data
        return data.items[data.offsets[users].unsqueeze(1) + torch.arange(n_pos)]

    def _trajectory_views(self) -> tuple[list, bool]:
        """TeacherViews of the chosen trajectory checkpoints, easiest first (built once, here),
        and whether the final teacher's list follows them."""
        c = self.c
        traj = self.setup.trajectory
        # a cached teacher may hold checkpoints saved for another `every`: only this one's count
        epochs = [e for e in traj.epochs if e % c.every == 0] if traj is not None else []
        best = traj.best_epoch if traj is not None else None
        if c.pick == "earliest":
            chosen, with_final = earliest_checkpoints(epochs, best, c.checkpoints)
        else:
            chosen, with_final = pick_checkpoints(epochs, best, c.checkpoints), True
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
        elif c.pick == "earliest" and len(chosen) + 1 < c.checkpoints:
            self.setup.warnings.append(
                f"only {len(chosen)} trajectory checkpoints precede the teacher's best epoch {best}: hetcomp "
                f"distils {len(chosen) + 1} lists, not hetcomp.checkpoints = {c.checkpoints} "
                "(lower hetcomp.every to save more often)")
        self.checkpoint_epochs = chosen
        return [traj.view(e) for e in chosen], with_final

    def state_dict(self) -> dict:
        return {**super().state_dict(), "stage": self.stage, "last_dist": self.last_dist, "epoch": self.epoch,
                "v_result": self.v_result}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.stage, self.last_dist, self.epoch = state["stage"], state["last_dist"], state["epoch"]
        self.v_result = state.get("v_result", round(self.stage.double().mean().item(), 2))
        self._set_current()

    def _list_of(self, stage: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(stage.numel(), device=stage.device)
        return self.lists[stage, rows]

    def _set_current(self) -> None:
        rows = torch.arange(self.stage.numel(), device=self.stage.device)
        self.current = self.lists[self.stage, rows]
        self.current_valid = self.lists_valid[self.stage, rows] & ~rowwise_isin(self.current, self.positive, self.budget)

    @property
    def last(self) -> int:
        return self.lists.size(0) - 1

    def refresh(self, student) -> None:
        c = self.c
        self.epoch += 1
        done = self.epoch - 1  # epochs trained so far (the authors' 0-based epoch)
        last = self.last
        if self.v_result >= last or done < c.p or done % c.p:
            return
        s_top, s_valid = student_top_masked(student, self.contexts, c.K, self.chunk, self.device, self.budget)
        s_top, s_valid = s_top.to(self.stage.device), s_valid.to(self.stage.device)
        nxt = (self.stage + 1).clamp(max=last)
        dist = 1 - ndcg_to_list(s_top, s_valid, self._list_of(nxt), self.budget)
        if self.last_dist is None:
            self.last_dist = dist
        else:
            th = c.alpha * 0.995 ** (done // c.p)
            ratio = self.last_dist / dist  # dist 0: inf (caught up, moves); 0 / 0: nan (stays)
            move = (self.stage < last) & ((ratio > th) | (ratio < 1))
            self.stage = self.stage + move.long()
            after = (self.stage + 1).clamp(max=last)
            self.last_dist = torch.where(move, 1 - ndcg_to_list(s_top, s_valid, self._list_of(after), self.budget),
                                         self.last_dist)
            self._set_current()
        self.v_result = round(self.stage.double().mean().item(), 2)

    def _excluded(self, ids: torch.Tensor, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """[B, items + 1] True at padding, each context's history and its positives."""
        out = torch.zeros(shape, dtype=torch.bool, device=device)
        out[:, 0] = True
        for x in (self.contexts.history(ids), self.positive[ids]):
            if x.numel():
                out.scatter_(1, x.to(device), True)
        return out

    @staticmethod
    def _others_lse(s: torch.Tensor, excluded: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
        """log Σ e^{s_o} over the items neither excluded nor in `block` [B, k] ([B])."""
        if block.numel():
            excluded = excluded.scatter(1, block, True)
        return torch.logsumexp(s.masked_fill(excluded, NEG), dim=1)

    def loss(self, ids, states, student):
        c = self.c
        scores = student.score_all(states)  # [batch contexts, items + 1]: one batch at a time
        extras = {"stage": self.stage[ids].float().mean().item()}
        pos, cur, cur_valid = self.positive[ids], self.current[ids], self.current_valid[ids]
        pos_valid = torch.ones_like(pos, dtype=torch.bool)
        if c.rank_phase and self.v_result >= self.last:
            s = scores.clamp(-SCORE_CLAMP, SCORE_CLAMP)
            h, q = c.K // 2, c.K // 10
            excluded = self._excluded(ids, s.shape, s.device)
            den_h = self._others_lse(s, excluded, cur[:, :h])
            den_q = self._others_lse(s, excluded, cur[:, :q])
            per_pos = capped_pl(s.gather(1, pos), pos_valid, den_h)
            per_top = (capped_pl(s.gather(1, cur[:, :h]), cur_valid[:, :h], den_h)
                       + capped_pl(s.gather(1, cur[:, :q]), cur_valid[:, :q], den_q))
            return per_pos + per_top / 2, extras
        items = torch.cat([pos, cur], 1)
        valid = torch.cat([pos_valid, cur_valid], 1)
        if c.form == "per_item":
            s = scores.clamp(-SCORE_CLAMP, SCORE_CLAMP)
            others = self._others_lse(s, self._excluded(ids, s.shape, s.device), cur)
            s_m = s.gather(1, items)
            below = torch.logaddexp(s_m, others.unsqueeze(1)).clamp(min=LOG_FLOOR)
            return -2 * torch.where(valid, s_m - below, torch.zeros_like(s_m)).sum(1), extras
        in_list = torch.zeros_like(scores, dtype=torch.bool)
        in_list.scatter_(1, torch.where(valid, items, torch.zeros_like(items)), True)
        in_list[:, 0] = True  # padding is never a candidate
        others = torch.logsumexp(scores.masked_fill(in_list, NEG), dim=1)
        return relaxed_ranking_loss(scores.gather(1, items), valid, others), extras
