"""Full-ranking evaluation over all items, chunked over contexts (memory O(chunk x items)).

Masking rule (the same for every model): items the user interacted with before the target
(the whole history, not only the model's window) are set to -inf. Ties are pessimistic: the
rank of the target counts every other item scoring >= the target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..data.sequences import SequenceData
from ..models.base import SequentialRecommender
from .metrics import metrics_from_ranks

MASKING_RULE = "history"  # written into every result row


@dataclass
class RankingOutput:
    metrics: dict[str, float]
    topk: torch.Tensor  # [n_users, k] the model's top items per context (for overlap)


def masked_scores(
    model: SequentialRecommender, data: SequenceData, split: str, users: torch.Tensor,
    mask_history: bool, device: torch.device,
) -> torch.Tensor:
    ctx = data.contexts(split, users, model.max_len).to(device)
    scores = model.score_all(model.encode_last(ctx))
    if mask_history:
        hist = data.history(split, users).to(device)
        scores.scatter_(1, hist, float("-inf"))  # column 0 (padding) is -inf already
    return scores


def user_chunks(n_users: int, chunk: int) -> Iterator[torch.Tensor]:
    for start in range(0, n_users, chunk):
        yield torch.arange(start, min(start + chunk, n_users))


@torch.no_grad()
def evaluate(
    model: SequentialRecommender, data: SequenceData, split: str, ks: list[int],
    chunk: int = 1024, mask_history: bool = True, topk: int = 10,
    device: torch.device | None = None,
) -> RankingOutput:
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    ranks, tops = [], []
    for users in user_chunks(data.n_users, chunk):
        scores = masked_scores(model, data, split, users, mask_history, device)
        target = data.targets(split, users).to(device)
        t_score = scores.gather(1, target.unsqueeze(1))
        ranks.append(((scores >= t_score).sum(1) - 1).cpu())
        tops.append(scores.topk(topk, dim=1).indices.cpu())
    model.train(was_training)
    return RankingOutput(metrics_from_ranks(torch.cat(ranks), ks), torch.cat(tops))
