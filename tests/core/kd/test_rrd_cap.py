"""RRD caps student scores at 80 before its relaxed ranking loss, as the authors' code does."""

from __future__ import annotations

import torch

from rcekd_core.kd.common import SCORE_CAP
from rcekd_core.kd.rrd import RRD


class Scores:
    """A student whose score of item i for every state is scores[i]."""

    def __init__(self, scores: torch.Tensor):
        self.scores = scores

    def score_items(self, states, items):
        return self.scores[items] * states.sum(1, keepdim=True)  # states of ones: the raw scores


def rrd_with(interesting, uninteresting) -> RRD:
    d = object.__new__(RRD)  # only what loss() reads
    d.interesting, d.uninteresting = interesting, uninteresting
    d.int_valid = torch.ones_like(interesting, dtype=torch.bool)
    d.unint_valid = torch.ones_like(uninteresting, dtype=torch.bool)
    return d


def test_scores_above_the_cap_count_as_the_cap_and_get_no_gradient():
    ids = torch.tensor([0])
    d = rrd_with(torch.tensor([[1, 2]]), torch.tensor([[3, 4]]))
    raw = torch.tensor([0.0, 120.0, 95.0, 3.0, 200.0], requires_grad=True)
    states = torch.ones(1, 1)
    loss, _ = d.loss(ids, states, Scores(raw))
    capped = torch.tensor([0.0, SCORE_CAP, SCORE_CAP, 3.0, SCORE_CAP])
    s1, s2 = capped[[1, 2]], capped[[3, 4]]
    below = [torch.logsumexp(torch.cat([s1[k:], s2]), 0) for k in range(2)]
    want = -sum(s1[k] - below[k] for k in range(2))
    torch.testing.assert_close(loss[0], want)
    loss.sum().backward()
    assert raw.grad[1] == 0 and raw.grad[2] == 0 and raw.grad[4] == 0 and raw.grad[3] != 0
