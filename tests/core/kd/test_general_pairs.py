"""Every KD method on a general (MF, LightGCN) teacher-student pair: one context per user."""

from __future__ import annotations

import math

import pytest
import torch

from rcekd_core.config import from_dict, load_config
from rcekd_core.experiment import kd_positions, prepare
from rcekd_core.kd.base import KDSetup, Trajectory
from rcekd_core.kd.contexts import KDContexts, resolve_mode
from rcekd_core.kd.registry import METHODS, build_distiller
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.models.registry import build_model
from rcekd_core.train.checkpoint import load_checkpoint, save_checkpoint
from rcekd_core.train.loop import FitJob, FitLabel, fit
from rcekd_core.train.teacher import trajectory_files, trajectory_name

CPU = torch.device("cpu")

KD_TINY = {
    "data": {"n_users": 50, "n_items": 40, "n_clusters": 4, "mean_len": 10},
    "teacher": {"dim": 8}, "student": {"dim": 4},
    "teacher_train": {"epochs": 3, "batch_size": 16, "lr": 0.01, "patience": 5},
    "student_train": {"epochs": 3, "batch_size": 16, "lr": 0.01, "patience": 5},
    "eval": {"chunk": 16},  # several chunks over the 50 users
    "methods": ["all"],
    "kd": {"K": 5}, "rcekd": {"K": 5, "L": 5, "M": 10},
    "rrd": {"K": 4, "L": 6, "M": 10}, "dcd": {"K": 4, "M": 10}, "cd": {"N": 10},
    "unkd": {"pairs": 2}, "hetcomp": {"K": 5, "p": 1, "every": 1}, "de": {"experts": 3},
}


@pytest.fixture(scope="module", params=["mf", "lightgcn"])
def kd_problem(request, module_home):
    arch = request.param
    cfg = load_config("demo-mf", {**KD_TINY, "teacher": {**KD_TINY["teacher"], "arch": arch},
                                  "student": {**KD_TINY["student"], "arch": arch}})
    data = prepare(cfg).data
    torch.manual_seed(cfg.teacher_seed)
    teacher = build_model(cfg.teacher, data.n_items, data)
    where = module_home / f"trajectory-{arch}"  # checkpoints while the teacher trains, for hetcomp

    def save(epoch, ev):
        save_checkpoint(where / trajectory_name(epoch), teacher.state_dict(), {"epoch": epoch})

    fit(FitJob(teacher, data, cfg.teacher_train, cfg.eval, FitLabel("teacher", "teacher", 0), CPU, on_epoch=save),
        sink=lambda e: None)
    teacher.zero_grad(set_to_none=True)
    teacher.eval()
    contexts = KDContexts(data, kd_positions(cfg), cfg.student.max_len)
    view = TeacherView(teacher, contexts, cfg.eval.chunk, CPU)
    files = trajectory_files(where)

    def checkpoint_view(epoch: int) -> TeacherView:  # a general model needs the data to be built
        model = build_model(cfg.teacher, data.n_items, data)
        model.load_state_dict(load_checkpoint(files[epoch])[0])
        return TeacherView(model, contexts, cfg.eval.chunk, CPU)

    trajectory = Trajectory(sorted(files), None, str(where), checkpoint_view)
    return cfg, data, contexts, view, teacher, trajectory


def test_kd_contexts_of_a_general_pair_are_users(kd_problem):
    cfg, data, contexts, view, teacher, _ = kd_problem
    assert kd_positions(cfg) == "user" and contexts.mode == "user"
    assert contexts.n == data.n_users
    assert view.states.shape == (data.n_users, cfg.teacher.dim)
    with torch.no_grad():
        torch.testing.assert_close(view.states, teacher.encode(torch.arange(data.n_users)))
        torch.testing.assert_close(view.table, teacher.item_table())


@pytest.mark.parametrize("method", list(METHODS))
def test_every_kd_method_trains_a_general_student(kd_problem, method):
    cfg, data, contexts, view, teacher, trajectory = kd_problem
    torch.manual_seed(0)
    student = build_model(cfg.student, data.n_items, data)
    setup = KDSetup(view, contexts, CPU, 0, cfg.eval.chunk, cfg.student_train.epochs, cfg.student.dim)
    if METHODS[method].distiller.needs_trajectory():
        setup.trajectory = trajectory
    d = build_distiller(method, cfg.method_settings.get(method), setup)
    if method == "hetcomp":  # the general teacher's trajectory was loaded (built with the data)
        assert d.checkpoint_epochs == [1, 2, 3] and not setup.warnings
    res = fit(FitJob(student, data, cfg.student_train, cfg.eval, FitLabel("student", method, 0), CPU,
                     distiller=d, contexts=contexts), sink=lambda e: None)
    assert res.epochs_run == cfg.student_train.epochs and res.best_epoch >= 1
    for ev in res.history:
        assert math.isfinite(ev.get("base_loss")) and math.isfinite(ev.get("loss"))
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in ev.valid.values())
        if d.uses_teacher:
            assert math.isfinite(ev.get("kd_loss"))
        else:
            assert "kd_loss" not in ev.values
    if not d.uses_teacher:
        return
    # one batch by hand: the KD term is per user, finite, and its gradient reaches the student only
    student.train()
    d.timed_refresh(student)
    users = torch.tensor([7, 0, 31, 12])
    inputs, targets = student.batch(data, users)
    ids, mask = contexts.select(users, targets)
    assert mask is None and torch.equal(ids, users)
    student.zero_grad()
    per, _ = d.loss(ids, student.encode(inputs), student)
    assert per.shape == (4,) and torch.isfinite(per).all()
    per.sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in student.parameters())
    grads = student.user_emb.weight.grad
    assert grads is not None and grads.abs().sum() > 0
    if cfg.student.arch == "mf":  # an MF user's state is its own row: no other user moves
        others = torch.ones(data.n_users, dtype=torch.bool)
        others[users] = False
        assert grads[others].abs().sum() == 0
    assert all(p.grad is None for p in teacher.parameters())


def test_kd_positions_user_for_general_students_only():
    cfg = from_dict({"teacher": {"arch": "mf", "loss": "bpr"}, "student": {"arch": "lightgcn", "loss": "ce"},
                     "data": {"protocol": "ratio"}})
    assert kd_positions(cfg) == "user"
    assert kd_positions(from_dict({"kd_positions": "last"})) == "last"
    assert kd_positions(from_dict({"kd_positions": "all"})) == "all"
    assert resolve_mode("last", general_student=True) == resolve_mode("all", general_student=True) == "user"
    assert resolve_mode("last", general_student=False) == "last"
