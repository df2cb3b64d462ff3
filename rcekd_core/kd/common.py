"""Pieces the ranking baselines share: Gumbel top-k sampling, the relaxed ranking loss,
history-masked student lists and ranks, uniform sampling outside a set — all chunked.
"""

from __future__ import annotations

import torch

from .base import score_chunk
from .contexts import KDContexts, context_states, mask_history_

NEG = -1e9  # finite stand-in for -inf where gradients flow: exp() is 0, backward never NaN
SCORE_CAP = 80.0  # the authors' relaxed_ranking_loss (RRD, DCD) caps every student score here


def gumbel_topk(logw: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n distinct columns per row drawn one after another ∝ exp(logw) (Gumbel top-k).

    Same law as successive multinomial draws without replacement; logw may hold -inf
    (never drawn while a finite column is left). Works in log space: no underflow.
    """
    u = torch.rand(logw.shape, generator=gen, device=logw.device).clamp_(1e-12, 1 - 1e-7)
    return (logw - torch.log(-torch.log(u))).topk(n, dim=1).indices


def masked_lse(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """logsumexp over the masked members of each row ([N, k] -> [N]); NEG-ish when none."""
    return torch.logsumexp(torch.where(mask, x, torch.full_like(x, NEG)), dim=1)


def relaxed_ranking_loss(s_top: torch.Tensor, top_valid: torch.Tensor, den_lse: torch.Tensor) -> torch.Tensor:
    """-Σ_k [s_k - log(Σ_{j ≥ k} e^{s_j} + e^{den_lse})] over the valid members of an ordered list.

    s_top [N, K]: student scores of the list in rank order; den_lse [N]: log of the summed
    exp-scores of the items that only ever sit in the denominator. Stable (no raw exp).
    """
    x = torch.where(top_valid, s_top, torch.full_like(s_top, NEG))
    tail = torch.logcumsumexp(x.flip(1), dim=1).flip(1)  # log Σ_{j ≥ k} e^{s_j}
    below = torch.logaddexp(tail, den_lse.unsqueeze(1))
    terms = torch.where(top_valid, s_top - below, torch.zeros_like(s_top))
    return -terms.sum(1)


@torch.no_grad()
def student_top_masked(student, contexts: KDContexts, m: int, chunk: int,
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's top-m items excluding each context's history: (items [n, m], valid [n, m])."""
    items, valid = [], []
    for ids, states in context_states(student, contexts, score_chunk(chunk, student.n_items), device):
        top = mask_history_(student.score_all(states), contexts, ids).topk(m, dim=1)
        items.append(top.indices)
        valid.append(torch.isfinite(top.values))
    return torch.cat(items), torch.cat(valid)


@torch.no_grad()
def student_ranks(student, contexts: KDContexts, items: torch.Tensor, chunk: int,
                  device: torch.device) -> torch.Tensor:
    """0-based rank of items[n, :] in the student's ranking of context n's unseen items.

    rank = number of unseen items the student scores strictly higher; one sort per row and a
    searchsorted, chunked over contexts (no contexts x k x items comparison).
    """
    out = []
    for ids, states in context_states(student, contexts, score_chunk(chunk, student.n_items), device):
        scores = mask_history_(student.score_all(states), contexts, ids)
        asc = scores.sort(dim=1).values
        mine = scores.gather(1, items[ids.to(items.device)].to(scores.device))
        above = scores.size(1) - torch.searchsorted(asc, mine.contiguous(), right=True)
        out.append(above)
    return torch.cat(out)


@torch.no_grad()
def uniform_outside(contexts: KDContexts, excluded: torch.Tensor, n_items: int, n: int,
                    gen: torch.Generator, device: torch.device, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """n distinct items per context, uniform over items not in `excluded[ctx]` nor its history.

    Random keys over the catalogue (chunked over contexts), excluded ones set to -inf, top n.
    Returns (items [N, n], valid [N, n]); invalid only where fewer than n items remain.
    """
    items, valid = [], []
    total = excluded.size(0)
    step = max(1, min(chunk, (1 << 22) // (n_items + 1)))
    for s in range(0, total, step):
        ids = torch.arange(s, min(s + step, total), device=device)
        keys = torch.rand(len(ids), n_items + 1, generator=gen, device=device)
        keys.scatter_(1, excluded[ids], float("-inf"))
        top = mask_history_(keys, contexts, ids).topk(n, dim=1)
        items.append(top.indices)
        valid.append(torch.isfinite(top.values))
    return torch.cat(items), torch.cat(valid)
