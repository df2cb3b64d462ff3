"""TeacherView: cached states give the same scores as the teacher itself, by either path."""

from __future__ import annotations

import torch

from rcekd_core.kd.contexts import KDContexts
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.models.sasrec import SASRec
from rcekd_core.settings import ModelConfig


def test_scores_of_lists_match_direct_scores_both_paths(sequences):
    torch.manual_seed(0)
    data = sequences()
    teacher = SASRec(data.n_items, ModelConfig(dim=8, blocks=1, heads=1, max_len=6, dropout=0.0))
    for mode in ("last", "all"):
        ctx = KDContexts(data, mode, 5)
        view = TeacherView(teacher, ctx, chunk=4, device=torch.device("cpu"))
        n = view.states.size(0)
        narrow = torch.randint(1, data.n_items + 1, (n, 2))
        wide = torch.randint(1, data.n_items + 1, (n, 6))  # 8 columns: the full-matmul path
        for lists in ([narrow], [narrow, wide]):
            got = view.scores_of_lists(lists)
            ids = torch.arange(n)
            for g, x in zip(got, lists):
                torch.testing.assert_close(g, view.scores(ids, x))
        # direct: the teacher's own last state for mode last
        if mode == "last":
            with torch.no_grad():
                teacher.eval()
                direct = teacher.score_all(teacher.encode_last(data.contexts("valid", torch.arange(data.n_users), 6)))
            torch.testing.assert_close(view.score_all(torch.arange(n))[:, 1:], direct[:, 1:])
