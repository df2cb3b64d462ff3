"""Pieces the ranking baselines share: Gumbel top-k sampling, the relaxed ranking loss,
history-masked student lists and ranks, uniform sampling outside a set — all chunked.
"""

from __future__ import annotations

import torch

from ..distributed import shard_contexts
from ..memory import DEFAULT_BUDGET, FLOAT, HISTORY, INDEX, rows_within
from ..topk import SELECT_BYTES, select, top_k
from .contexts import KDContexts, context_states, mask_history_

NEG = -1e9  # finite stand-in for -inf where gradients flow: exp() is 0, backward never NaN
SCORE_CAP = 80.0  # the authors' relaxed_ranking_loss (RRD, DCD) caps every student score here


def gumbel_topk(logw: torch.Tensor, n: int, gen: torch.Generator, ordered: bool = True) -> torch.Tensor:
    """n distinct columns per row drawn one after another ∝ exp(logw) (Gumbel top-k).

    Same law as successive multinomial draws without replacement; logw may hold -inf
    (never drawn while a finite column is left). Works in log space: no underflow.
    `ordered=False`: the same drawn set in no particular order, for callers that need only
    the set (on CPU an unsorted selection takes half the time).
    """
    u = torch.rand(logw.shape, generator=gen, device=logw.device).clamp_(1e-12, 1 - 1e-7)
    keys = logw - torch.log(-torch.log(u))
    if not ordered:
        return keys.topk(n, dim=1, sorted=False).indices
    return select(keys, n, inplace=True).indices


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


def history_width(contexts: KDContexts) -> int:
    """The longest history any context has (its prefix ends within the training part)."""
    lengths = contexts.data.train_lengths
    return int(lengths.max()) if lengths.numel() else 0


def masked_rows(contexts: KDContexts, n_items: int, budget: int, chunk: int, extra: int = 0) -> int:
    """Contexts per chunk of a pass that holds a float32 score row with its history masked
    (the row, the history row that masks it) plus `extra` bytes per row; at most `chunk`."""
    row = FLOAT * (n_items + 1) + HISTORY * history_width(contexts) + extra
    return rows_within(budget, row, cap=chunk)


@torch.no_grad()
def student_top_masked(student, contexts: KDContexts, m: int, chunk: int, device: torch.device,
                       budget: int = DEFAULT_BUDGET) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's top-m items excluding each context's history: (items [n, m], valid [n, m])."""
    items, valid = [], []
    rows = masked_rows(contexts, student.n_items, budget, chunk, SELECT_BYTES * (student.n_items + 1))
    contexts = (shard := shard_contexts(contexts)).contexts  # torchrun: this rank's share (distributed.py)
    with shard.group.failing_together():
        for ids, states in context_states(student, contexts, rows, device):
            top = top_k(mask_history_(student.score_all(states), contexts, ids), m, inplace=True)
            items.append(top.indices)
            valid.append(torch.isfinite(top.values))
    items, valid = shard.gather(items), shard.gather(valid)  # every rank's share, at its contexts
    return torch.cat(items), torch.cat(valid)


def count_above(scores: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """[N, n] scores, [N, k] values -> [N, k] int64: entries of scores[r] strictly above values[r, j].

    Counts instead of sorting the row: the k values are sorted (k ≪ n), each score finds how
    many of them lie strictly below it (one searchsorted), a per-row histogram of those counts
    summed from the top says how many scores exceed each value. O(n log k) per row, exact for
    ties and ±inf (NaN is not ordered). A loop over the k values would be O(n k): 10-16x
    slower than this on CPU at k = 500 (DCD's M) and 1,683 items, where this takes about the
    sort's time (less at 100k items) and 12 instead of 16 bytes per score with the score row.
    """
    k = values.size(1)
    sorted_values, order = values.sort(dim=1)
    below = torch.searchsorted(sorted_values, scores, right=False)  # values < score, 0..k
    hist = torch.zeros(scores.size(0), k + 1, dtype=torch.long, device=scores.device)
    hist.scatter_add_(1, below, torch.ones((), dtype=torch.long, device=scores.device).expand_as(below))
    above_sorted = hist.flip(1).cumsum(1).flip(1)[:, 1:]  # scores above the j-th smallest value
    return torch.empty_like(above_sorted).scatter_(1, order, above_sorted)


def rank_row_bytes(n_items: int, k: int) -> int:
    """Per-row bytes of a rank pass besides its score row: count_above's positions (INDEX per
    item) and its k-wide rows (the list's ids and scores, sorted values and order, histogram,
    its flips and cumsum, the result: under 8 INDEX per list entry)."""
    return INDEX * (n_items + 1) + 8 * INDEX * (k + 1)


@torch.no_grad()
def student_ranks(student, contexts: KDContexts, items: torch.Tensor, chunk: int, device: torch.device,
                  budget: int = DEFAULT_BUDGET) -> torch.Tensor:
    """0-based rank of items[n, :] in the student's ranking of context n's unseen items.

    rank = number of unseen items the student scores strictly higher (history and padding are
    -inf, never above anything), counted per row by count_above, chunked over contexts.
    """
    rows = masked_rows(contexts, student.n_items, budget, chunk, rank_row_bytes(student.n_items, items.size(1)))
    return torch.cat([
        _unseen_ranks(student, contexts, ids, states, items)
        for ids, states in context_states(student, contexts, rows, device)
    ])


def _unseen_ranks(student, contexts: KDContexts, ids: torch.Tensor, states: torch.Tensor,
                  items: torch.Tensor) -> torch.Tensor:
    """One chunk of student_ranks (its scores are freed on return, before the next chunk's)."""
    scores = mask_history_(student.score_all(states), contexts, ids)
    mine = scores.gather(1, items[ids.to(items.device)].to(scores.device))
    return count_above(scores, mine)


@torch.no_grad()
def uniform_outside(contexts: KDContexts, excluded: torch.Tensor, n_items: int, n: int,
                    gen: torch.Generator, device: torch.device, chunk: int = 1024,
                    budget: int = DEFAULT_BUDGET) -> tuple[torch.Tensor, torch.Tensor]:
    """n distinct items per context, uniform over items not in `excluded[ctx]` nor its history.

    Random keys over the catalogue (chunked over contexts: a float32 key row and its history
    per context), excluded ones set to -inf, top n.
    Returns (items [N, n], valid [N, n]); invalid only where fewer than n items remain.
    """
    items, valid = [], []
    total = excluded.size(0)
    step = masked_rows(contexts, n_items, budget, chunk, SELECT_BYTES * (n_items + 1))
    for s in range(0, total, step):
        ids = torch.arange(s, min(s + step, total), device=device)
        top = _outside_top(contexts, excluded, ids, n_items, n, gen)
        items.append(top.indices)
        valid.append(torch.isfinite(top.values))
    return torch.cat(items), torch.cat(valid)


def _outside_top(contexts: KDContexts, excluded: torch.Tensor, ids: torch.Tensor, n_items: int, n: int,
                 gen: torch.Generator):
    """One chunk of uniform_outside (its keys are freed on return, before the next chunk's)."""
    keys = torch.rand(len(ids), n_items + 1, generator=gen, device=ids.device)
    keys.scatter_(1, excluded[ids], float("-inf"))
    return top_k(mask_history_(keys, contexts, ids), n, inplace=True)
