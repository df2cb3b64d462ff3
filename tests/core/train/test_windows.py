"""Sliding training windows (TrainConfig.windows = sliding): the window table, every training
target once per epoch, KD only on each user's last window, and `last` exactly as before."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from rcekd_core.config import from_dict
from rcekd_core.data.sequences import SequenceData
from rcekd_core.errors import ConfigError
from rcekd_core.kd.base import Distiller, KDSetup, SharedScores
from rcekd_core.kd.ce import KDSettings
from rcekd_core.kd.contexts import KDContexts, context_states
from rcekd_core.kd.registry import build_distiller
from rcekd_core.kd.teacher_view import TeacherView
from rcekd_core.models.mf import MF
from rcekd_core.models.sasrec import SASRec
from rcekd_core.runs.events import FitStart
from rcekd_core.settings import BIG, EvalConfig, MethodSettings, ModelConfig, TrainConfig
from rcekd_core.train import loop
from rcekd_core.train.loop import FitJob, FitLabel, fit, train_epoch

CPU = torch.device("cpu")
L = 4  # the window of the hand-made cases


def hand_made() -> SequenceData:
    """Users of 3, 7 and 12 items (training lengths 1, 5, 10); items are 1, 2, ... in order."""
    lengths = torch.tensor([3, 7, 12])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    return SequenceData(3, 30, torch.arange(1, 23), offsets)


def test_window_table_and_targets_with_disjoint_windows():
    d = hand_made()
    users, ends = d.train_windows(L, 0)  # stride 0 = max_len: disjoint windows
    assert users.tolist() == [0, 1, 1, 2, 2, 2]
    assert ends.tolist() == [1, 5, 1, 10, 6, 2]
    inputs, targets = d.train_batch_at(users, ends, L, 0)
    assert inputs.tolist() == [[0, 0, 0, 1], [5, 6, 7, 8], [0, 0, 0, 4],
                               [17, 18, 19, 20], [13, 14, 15, 16], [0, 0, 11, 12]]
    # last windows: the last state's next item is the validation item (masked); earlier
    # windows: it is a training item, so it is a target
    assert targets.tolist() == [[0, 0, 0, 0], [6, 7, 8, 0], [0, 0, 0, 5],
                                [18, 19, 20, 0], [14, 15, 16, 17], [0, 0, 12, 13]]
    assert d.train_windows(L, L)[1].tolist() == ends.tolist()


def test_window_table_and_targets_with_overlapping_windows():
    d = hand_made()
    users, ends = d.train_windows(L, 2)
    assert users.tolist() == [0, 1, 1, 2, 2, 2, 2]
    assert ends.tolist() == [1, 5, 1, 10, 6, 4, 2]
    inputs, targets = d.train_batch_at(users, ends, L, 2)
    assert inputs[4:].tolist() == [[13, 14, 15, 16], [11, 12, 13, 14], [0, 0, 11, 12]]
    # an earlier window trains its last `stride` states; the rest are another window's
    assert targets.tolist() == [[0, 0, 0, 0], [6, 7, 8, 0], [0, 0, 0, 5],
                                [18, 19, 20, 0], [0, 0, 16, 17], [0, 0, 14, 15], [0, 0, 12, 13]]
    users, ends = d.train_windows(L, 1)  # stride 1: each earlier target with a full window
    _, targets = d.train_batch_at(users, ends, L, 1)
    assert ends[users == 2].tolist() == [10, 6, 5, 4, 3, 2, 1]
    assert targets[users == 2][1:].tolist() == [[0, 0, 0, t] for t in (17, 16, 15, 14, 13, 12)]


def target_pairs(d: SequenceData, max_len: int, stride: int) -> list[tuple[int, int]]:
    """(user, position) of every target over all windows, checked against the sequence."""
    users, ends = d.train_windows(max_len, stride)
    _, targets = d.train_batch_at(users, ends, max_len, stride)
    pos = (ends - max_len + 1).unsqueeze(1) + torch.arange(max_len)
    row, col = (targets > 0).nonzero(as_tuple=True)
    assert torch.equal(targets[row, col], d.items[d.offsets[users[row]] + pos[row, col]])
    return sorted(zip(users[row].tolist(), pos[row, col].tolist()))


@pytest.mark.parametrize("protocol", ["loo", "ratio"])
@pytest.mark.parametrize("max_len", [1, 3, 5])
def test_every_training_target_trains_exactly_once(sequences, protocol, max_len):
    base = sequences(n_users=20, n_items=40, length=17, seed=3)
    lengths = torch.arange(20) % 14 + 3  # 3 .. 16 items per user
    keep = torch.arange(17).unsqueeze(0) < lengths.unsqueeze(1)
    items = base.items.view(20, 17)[keep]
    d = SequenceData(20, 40, items, torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)]),
                     protocol=protocol)
    every = sorted((u, p) for u in range(20) for p in range(1, int(d.train_lengths[u])))
    for stride in range(max_len + 1):
        assert target_pairs(d, max_len, stride) == every, stride
    if max_len > 1:  # a stride beyond the window skips targets, never repeats one
        fewer = target_pairs(d, max_len, max_len + 2)
        assert len(set(fewer)) == len(fewer) and set(fewer) < set(every)


def test_the_last_window_of_each_user_is_train_batch(sequences):
    d = sequences(n_users=30, n_items=40, length=15, seed=1)
    for max_len, stride in [(4, 0), (4, 1), (6, 3), (20, 0)]:
        users, ends = d.train_windows(max_len, stride)
        last = ends == d.train_lengths[users]
        assert torch.equal(users[last], torch.arange(d.n_users))  # one last window per user
        got = d.train_batch_at(users[last], ends[last], max_len, stride)
        want = d.train_batch(torch.arange(d.n_users), max_len)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


# ---- the loop --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(sequences):
    return sequences(n_users=40, n_items=30, length=14, seed=2)


def sasrec(data, loss="ce", seed=0, dropout=0.0) -> SASRec:
    torch.manual_seed(seed)
    return SASRec(data.n_items, ModelConfig(dim=8, blocks=1, heads=1, max_len=L, dropout=dropout, loss=loss))


def job(data, model, windows="last", stride=0, epochs=1, **kw) -> FitJob:
    train = TrainConfig(epochs=epochs, batch_size=16, lr=0.01, patience=50, windows=windows, stride=stride)
    return FitJob(model, data, train, EvalConfig(ks=[10], overlap_k=5), FitLabel("student", "scratch", 3), CPU, **kw)


def count_targets(monkeypatch, data, model) -> list[int]:
    """Training targets per batch, whichever way the loop builds its batches."""
    seen = []
    at, batch = data.train_batch_at, model.batch

    def spy_at(*a, **k):
        out = at(*a, **k)
        seen.append(int((out[1] > 0).sum()))
        return out

    def spy_batch(*a, **k):
        out = batch(*a, **k)
        seen.append(int((out[1] > 0).sum()))
        return out
    monkeypatch.setattr(data, "train_batch_at", spy_at)
    monkeypatch.setattr(model, "batch", spy_batch)
    return seen


def test_a_sliding_fit_trains_every_target_once_per_epoch(data, monkeypatch):
    t = data.train_lengths
    every, last_only = int((t - 1).clamp(min=0).sum()), int((t - 1).clamp(min=0, max=L - 1).sum())
    assert every > last_only
    counts = {}
    for windows in ("last", "sliding"):
        model = sasrec(data)
        seen = count_targets(monkeypatch, data, model)
        events = []
        res = fit(job(data, model, windows, epochs=2), sink=events.append)
        assert res.epochs_run == 2 and all(math.isfinite(ev.values["loss"]) for ev in res.history)
        start = next(e for e in events if isinstance(e, FitStart))
        assert len(seen) == 2 * start.batches  # FitStart counts the batches of an epoch
        counts[windows] = sum(seen[: start.batches])
        monkeypatch.undo()
    assert counts == {"last": last_only, "sliding": every}
    n_windows = data.train_windows(L, 0)[0].numel()
    assert n_windows > data.n_users


def test_general_models_ignore_windows(data, monkeypatch):
    model = MF(data.n_items, ModelConfig(arch="mf", dim=4, loss="bpr"), data)
    assert loop.training_windows(job(data, model, "sliding")) is None
    seen = count_targets(monkeypatch, data, model)
    fit(job(data, model, "sliding"), sink=lambda e: None)
    assert len(seen) == math.ceil(data.n_users / 16)


class Spy(Distiller):
    """Records what the loop hands the KD term; a small real loss so there is a gradient."""

    name = "spy"

    def __init__(self, setup: KDSetup, model, batches: list):
        super().__init__(MethodSettings(lam=0.5), setup)
        self.model, self.batches = model, batches
        self.calls: dict[int, tuple[torch.Tensor, bool]] = {}  # batch -> (ids, shared scores)

    def loss(self, ids, states, student):
        with torch.no_grad():  # the states at these ids are the contexts' own states
            want = torch.cat([s for _, s in context_states(self.model, self.contexts, 64, CPU)])[ids]
            torch.testing.assert_close(states, want)
            if isinstance(student, SharedScores):  # the shared scores belong to these states
                torch.testing.assert_close(student.score_all(states)[:, 1:],
                                           self.model.score_all(states)[:, 1:])
        self.calls[len(self.batches) - 1] = (ids.clone(), isinstance(student, SharedScores))
        return states.pow(2).sum(1) * 1e-3, {}


@pytest.mark.parametrize("mode, loss", [("all", "ce"), ("all", "bce"), ("last", "ce")])
def test_kd_under_sliding_windows_is_applied_on_last_windows_only(data, monkeypatch, mode, loss):
    model = sasrec(data, loss)  # no dropout: a context's state is the same in training and eval
    ctx = KDContexts(data, mode, L)
    batches = []
    spy = Spy(KDSetup(teacher=None, contexts=ctx, device=CPU, seed=0, chunk=64, epochs=1, student_dim=8),
              model, batches)
    at = data.train_batch_at

    def spy_at(users, ends, *a):
        batches.append((users, ends))
        return at(users, ends, *a)
    monkeypatch.setattr(data, "train_batch_at", spy_at)
    res = fit(job(data, model, "sliding", stride=2, distiller=spy, contexts=ctx), sink=lambda e: None)
    assert len(batches) == math.ceil(data.train_windows(L, 2)[0].numel() / 16)
    # every context once per epoch, in the batch that holds its user's last window
    assert sorted(torch.cat([ids for ids, _ in spy.calls.values()]).tolist()) == list(range(ctx.n))
    owner = ctx.prefix()[0]
    for b, (users, ends) in enumerate(batches):
        last_users = users[ends == data.train_lengths[users]].tolist()
        with_contexts = sorted(u for u in last_users if bool((owner == u).any()))
        if not with_contexts:  # only earlier windows: base loss only
            assert b not in spy.calls
            continue
        assert sorted(set(owner[spy.calls[b][0]].tolist())) == with_contexts
    assert len(spy.calls) < len(batches)  # some batches had no last window
    assert {shared for _, shared in spy.calls.values()} == {mode == "all" and loss == "ce"}
    assert math.isfinite(res.history[0].values["kd_loss"])


def reference_epoch(job: FitJob, opt, gen, kd_on: bool) -> dict[str, float]:
    """The training epoch as it was before windows existed (one window per user), verbatim."""
    model, data, distiller, contexts, device = job.model, job.data, job.distiller, job.contexts, job.device
    model.train()
    share_scores = kd_on and contexts.mode == "all" and model.loss_type == "ce"
    if kd_on:
        distiller.timed_refresh(model)
    sums: dict[str, float] = {}
    perm = torch.randperm(data.n_users, generator=gen)
    for b, users in enumerate(perm.split(job.train.batch_size)):
        inputs, targets = model.batch(data, users)
        states = model.encode(inputs.to(device))
        scorer, kd_states = model, None
        if kd_on:
            ids, mask = contexts.select(users, targets)
            mask = None if mask is None else mask.to(device)
            kd_states = states if mask is None else states[mask]
        if share_scores:
            scores = model.score_all(kd_states)
            base = model.ce_from_scores(scores, targets.to(device)[mask])
            scorer = SharedScores(model, kd_states, scores)
        else:
            base = model.base_loss(states, targets.to(device))
        loss, parts = base, {"base_loss": base.item()}
        if kd_on:
            per_ctx, extras = distiller.loss(ids.to(device), kd_states, scorer)
            kd = per_ctx.mean() * len(users)
            loss = base + distiller.lam * kd
            parts.update(kd_loss=kd.item(), **extras)
        parts["loss"] = loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
    return {k: v / (b + 1) for k, v in sums.items()}


@pytest.mark.parametrize("method, loss", [("scratch", "ce"), ("kd", "ce"), ("kd", "bce")])
def test_last_windows_train_exactly_as_before(data, method, loss):
    values = []
    for epoch in (train_epoch, None):
        model = sasrec(data, loss, dropout=0.2)
        ctx = KDContexts(data, "all", L)
        distiller = None
        if method == "kd":
            teacher = sasrec(data, seed=5)
            view = TeacherView(teacher, ctx, 64, CPU)
            distiller = build_distiller("kd", KDSettings(K=5, lam=0.3), KDSetup(
                teacher=view, contexts=ctx, device=CPU, seed=0, chunk=64, epochs=1, student_dim=8))
        j = job(data, model, distiller=distiller, contexts=ctx)
        torch.manual_seed(3)
        gen = torch.Generator().manual_seed(3)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        if epoch is None:
            values.append((reference_epoch(j, opt, gen, distiller is not None), copy.deepcopy(model.state_dict())))
        else:
            out, _ = epoch(j, opt, gen, distiller is not None, lambda: False)
            out.pop("refresh_seconds", None)
            values.append((out, copy.deepcopy(model.state_dict())))
    (new, w_new), (old, w_old) = values
    assert new == old  # bit for bit
    assert all(torch.equal(w_new[k], w_old[k]) for k in w_new)


def test_a_sliding_fit_resumes_exactly(data, tmp_path):
    straight = sasrec(data, dropout=0.2)
    fit(job(data, straight, "sliding", stride=3, epochs=3), sink=lambda e: None)
    model = sasrec(data, dropout=0.2)
    file = tmp_path / "resume.pt"
    n_batches = math.ceil(data.train_windows(L, 3)[0].numel() / 16)
    calls = []
    res = fit(job(data, model, "sliding", stride=3, epochs=3, resume_file=file), sink=lambda e: None,
              should_stop=lambda: calls.append(1) or len(calls) == n_batches + 2)  # before epoch 2
    assert res.stopped and res.epochs_run == 1 and file.is_file()
    model = sasrec(data, seed=9, dropout=0.2)
    res = fit(job(data, model, "sliding", stride=3, epochs=3, resume_file=file), sink=lambda e: None)
    assert res.epochs_run == 3
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), straight.state_dict().values()))


@pytest.mark.parametrize("values, needle", [
    ({"student_train": {"stride": -1}}, "'student_train.stride' must be in [0, "),
    ({"teacher_train": {"stride": BIG + 1}}, "'teacher_train.stride' must be in [0, "),
    ({"student_train": {"windows": "all"}}, "unknown student_train.windows 'all'; choose last or sliding"),
])
def test_window_settings_are_validated(values, needle):
    with pytest.raises(ConfigError) as e:
        from_dict(values)
    assert needle in str(e.value)


def test_window_settings_default_to_last_and_load():
    cfg = from_dict({"student_train": {"windows": "sliding", "stride": 10}})
    assert (cfg.student_train.windows, cfg.student_train.stride) == ("sliding", 10)
    assert (cfg.teacher_train.windows, cfg.teacher_train.stride) == ("last", 0)
