"""Sharing the batch's full scores between base CE and the KD term changes nothing but speed."""

from __future__ import annotations

import pytest
import torch

from rcekd_core.kd.base import KDSetup, SharedScores
from rcekd_core.kd.ce import KDSettings
from rcekd_core.kd.contexts import KDContexts
from rcekd_core.kd.rcekd import RCEKDSettings
from rcekd_core.kd.registry import build_distiller
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.models.sasrec import SASRec
from rcekd_core.settings import ModelConfig


@pytest.mark.parametrize("method", ["kd", "rcekd"])
def test_shared_scores_give_the_same_loss_and_gradients(method, sequences):
    torch.manual_seed(0)
    data = sequences(n_users=12, n_items=40, length=9)
    mcfg = ModelConfig(dim=8, blocks=1, heads=1, max_len=8, dropout=0.0)
    teacher, student = SASRec(data.n_items, mcfg), SASRec(data.n_items, mcfg)
    settings = {"kd": KDSettings(K=5), "rcekd": RCEKDSettings(K=5, L=5, M=10)}[method]
    ctx = KDContexts(data, "all", 8)
    view = TeacherView(teacher, ctx, 64, torch.device("cpu"))
    setup = KDSetup(teacher=view, contexts=ctx, device=torch.device("cpu"), seed=0, chunk=1024,
                    epochs=1, student_dim=8)
    d = build_distiller(method, settings, setup)
    d.refresh(student)
    users = torch.arange(data.n_users)
    inputs, targets = data.train_batch(users, 8)
    ids, mask = ctx.select(users, targets)

    def run(shared: bool):
        student.zero_grad()
        states = student.encode(inputs)
        h = states[mask]
        if shared:
            scores = student.score_all(h)
            base = student.ce_from_scores(scores, targets[mask])
            per_ctx, _ = d.loss(ids, h, SharedScores(student, h, scores))
        else:
            base = student.base_loss(states, targets)
            per_ctx, _ = d.loss(ids, h, student)
        (base + per_ctx.mean()).backward()
        return base.detach(), per_ctx.detach(), [p.grad.clone() for p in student.parameters()]

    b1, k1, g1 = run(False)
    b2, k2, g2 = run(True)
    torch.testing.assert_close(b1, b2)
    torch.testing.assert_close(k1, k2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
