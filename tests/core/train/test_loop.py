"""fit(): best-epoch weights restored, early stopping, eval_every, the selection metric,
stopping on request, and what the sink receives.

Some tests script the validation metrics (train.loop.validate patched): the model still trains
for real, but which epoch is best is then known in advance.
"""

from __future__ import annotations

import copy

import pytest
import torch

import rcekd_core.train.loop as loop
from rcekd_core.eval.metrics import metric_names
from rcekd_core.eval.ranking import evaluate
from rcekd_core.models.sasrec import SASRec
from rcekd_core.runs.events import Epoch, FitStart
from rcekd_core.settings import EvalConfig, ModelConfig, TrainConfig
from rcekd_core.train.checkpoint import load_checkpoint
from rcekd_core.train.loop import FitJob, FitLabel, fit

CPU = torch.device("cpu")
N_USERS, BATCH = 60, 20  # 3 batches per epoch


@pytest.fixture(scope="module")
def data(sequences):
    return sequences(n_users=N_USERS, n_items=40, length=12)


def model_for(data, seed=0) -> SASRec:
    torch.manual_seed(seed)
    return SASRec(data.n_items, ModelConfig(dim=8, blocks=1, heads=1, max_len=10, dropout=0.1))


def job(data, model, *, epochs=5, patience=50, eval_every=1, lr=0.02, select="NDCG@10", ks=(10, 20),
        **kw) -> FitJob:
    return FitJob(model, data, TrainConfig(epochs=epochs, batch_size=BATCH, lr=lr, patience=patience,
                                           eval_every=eval_every),
                  EvalConfig(ks=list(ks), select=select, overlap_k=5), FitLabel("student", "scratch", 3), CPU, **kw)


def scripted(monkeypatch, *scores: dict[str, float]) -> list[dict[str, float]]:
    """Validation returns these metrics, one dict per validation, in order."""
    left = list(scores)
    monkeypatch.setattr(loop, "validate", lambda j: (dict(left.pop(0)), None))
    return left


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_best_epoch_weights_are_restored_and_evaluate_again_gives_best_valid(data):
    model = model_for(data)
    res = fit(job(data, model, epochs=6), sink=lambda e: None)
    validated = [ev.valid["NDCG@10"] for ev in res.history]
    assert res.best_epoch == 1 + validated.index(max(validated))  # the first epoch with the best score
    assert res.best_valid == res.history[res.best_epoch - 1].valid
    again = evaluate(model, data, "valid", [10, 20]).metrics
    assert again == pytest.approx(res.best_valid)


def test_the_restored_weights_are_the_best_epochs_not_the_last(data, monkeypatch, tmp_path):
    scripted(monkeypatch, *({"NDCG@10": x, "Recall@20": 0.0} for x in (0.1, 0.4, 0.2, 0.3)))
    model = model_for(data)
    states = {}
    res = fit(job(data, model, epochs=4, checkpoint=tmp_path / "best.pt",
                  on_epoch=lambda e, ev: states.__setitem__(e, copy.deepcopy(model.state_dict()))),
              sink=lambda e: None)
    assert res.best_epoch == 2 and res.best_valid == {"NDCG@10": 0.4, "Recall@20": 0.0}
    assert res.epochs_run == 4 and not res.stopped and [ev.best_epoch for ev in res.history] == [1, 2, 2, 2]
    assert same_weights(model.state_dict(), states[2]) and not same_weights(states[2], states[4])
    state, meta = load_checkpoint(tmp_path / "best.pt")  # the checkpoint holds the best weights too
    assert meta["epoch"] == 2 and same_weights(state, states[2])


def test_patience_stops_training(data, monkeypatch):
    left = scripted(monkeypatch, *({"NDCG@10": x} for x in (0.1, 0.3, 0.2, 0.25, 0.3, 0.9, 0.9)))
    res = fit(job(data, model_for(data), epochs=20, patience=3), sink=lambda e: None)
    # best at 2; epochs 3, 4, 5 bring nothing better (an equal score is not better): stop after 5
    assert res.best_epoch == 2 and res.epochs_run == 5 and len(res.history) == 5 and not res.stopped
    assert len(left) == 2  # no validation after the stop


def test_eval_every_validates_every_nth_epoch_and_the_last(data, monkeypatch):
    scripted(monkeypatch, *({"NDCG@10": x} for x in (0.1, 0.2, 0.3)))
    res = fit(job(data, model_for(data), epochs=5, eval_every=2), sink=lambda e: None)
    assert [ev.epoch for ev in res.history if ev.valid] == [2, 4, 5]
    assert [ev.best_epoch for ev in res.history] == [0, 2, 2, 4, 5] and res.best_epoch == 5
    # patience counts epochs: with eval_every 2, two validations without progress are 4 epochs
    scripted(monkeypatch, *({"NDCG@10": x} for x in (0.5, 0.4, 0.3, 0.9)))
    res = fit(job(data, model_for(data), epochs=9, eval_every=2, patience=4), sink=lambda e: None)
    assert [ev.epoch for ev in res.history if ev.valid] == [2, 4, 6]
    assert res.epochs_run == 6 and res.best_epoch == 2


@pytest.mark.parametrize("select, best", [("NDCG@10", 1), ("Recall@20", 3)])
def test_eval_select_picks_the_metric_of_the_best_epoch(data, monkeypatch, select, best):
    scores = [{"NDCG@10": 0.5, "Recall@20": 0.1}, {"NDCG@10": 0.2, "Recall@20": 0.2},
              {"NDCG@10": 0.1, "Recall@20": 0.6}, {"NDCG@10": 0.3, "Recall@20": 0.5}]
    scripted(monkeypatch, *scores)
    res = fit(job(data, model_for(data), epochs=4, select=select), sink=lambda e: None)
    assert res.best_epoch == best and res.best_valid == scores[best - 1]


def test_eval_select_with_real_validation(data):
    res = fit(job(data, model_for(data), epochs=5, select="Recall@20"), sink=lambda e: None)
    recall = [ev.valid["Recall@20"] for ev in res.history]
    assert res.best_epoch == 1 + recall.index(max(recall))


def test_should_stop_stops_after_the_current_batch(data):
    model = model_for(data)
    batches = []
    train_batch = model.batch
    model.batch = lambda d, users: (batches.append(len(users)), train_batch(d, users))[1]
    res = fit(job(data, model, epochs=5), sink=lambda e: None, should_stop=lambda: len(batches) >= 4)
    # epoch 1: 3 batches; epoch 2: the request comes after its first batch, which is then validated
    assert res.stopped and res.epochs_run == 2 and len(batches) == 4
    assert [ev.epoch for ev in res.history] == [1, 2] and res.history[-1].valid


def test_should_stop_before_the_first_epoch_trains_nothing(data):
    model = model_for(data)
    before = copy.deepcopy(model.state_dict())
    events = []
    res = fit(job(data, model, epochs=5), sink=events.append, should_stop=lambda: True)
    assert res.stopped and res.epochs_run == 0 and res.history == [] and res.best_epoch == 0
    assert same_weights(model.state_dict(), before)
    assert [type(e) for e in events] == [FitStart]


def test_the_sink_receives_fit_start_then_one_epoch_per_epoch(data):
    events, seen = [], []
    model = model_for(data)
    with torch.no_grad():
        reference = evaluate(model_for(data, seed=9), data, "valid", [10], topk=5).topk
    res = fit(job(data, model, epochs=3, reference_top=reference, on_epoch=lambda e, ev: seen.append((e, ev))),
              sink=events.append)
    assert isinstance(events[0], FitStart)
    start = events[0]
    assert (start.model, start.method, start.seed, start.epochs, start.batches) == ("student", "scratch", 3, 3, 3)
    epochs = events[1:]
    assert all(isinstance(e, Epoch) for e in epochs) and [e.epoch for e in epochs] == [1, 2, 3]
    assert epochs == res.history and [(e, ev.epoch) for e, ev in seen] == [(1, 1), (2, 2), (3, 3)]
    for ev in epochs:
        assert (ev.model, ev.method, ev.seed) == ("student", "scratch", 3) and ev.seconds > 0
        assert {"loss", "base_loss"} <= set(ev.values) and "kd_loss" not in ev.values
        assert 0 <= ev.get("overlap@5") <= 1 and ev.get("overlap@10") is None  # named by eval.overlap_k
        assert set(ev.valid) == set(metric_names([10, 20]))
