"""RunState folds event records into series without any UI; the follower coalesces per poll."""

import json

from rcekd_core.runs.events import End, Epoch, Error, EventWriter, FitStart, Phase, Result, RunStart, parse_event
from rcekd_tui.follow import RunState, follow


def epoch(method, n, model="student", **values):
    return Epoch(model=model, method=method, seed=0, epoch=n, seconds=1.0,
                 valid={"NDCG@10": 0.1 * n, "Recall@10": 0.2 * n},
                 values={"loss": 2.0 - n / 10, "base_loss": 1.5, **values})


def test_runstate_folds_events_into_series():
    st = RunState()
    lines = st.apply([
        RunStart(name="demo", device="cpu", dataset={"users": 3, "items": 4}, methods=["scratch", "rcekd"], seeds=[0]),
        Phase(phase="teacher"), FitStart(model="teacher", method="teacher", seed=0, epochs=2),
        epoch("teacher", 1, model="teacher"), epoch("teacher", 2, model="teacher"),
        Result(rows=[{"model": "teacher", "method": "teacher", "seed": 0, "split": "valid", "NDCG@10": 0.5},
                     {"model": "teacher", "method": "teacher", "seed": 0, "split": "test", "NDCG@10": 0.4}]),
        Phase(phase="student", method="rcekd", seed=0),
        FitStart(model="student", method="rcekd", seed=0, epochs=5),
        epoch("rcekd", 1, kd_loss=9.0, **{"overlap@10": 0.3}),
        epoch("rcekd", 2, kd_loss=8.0, **{"overlap@10": 0.4}),
    ])
    assert st.device == "cpu" and st.methods == ["scratch", "rcekd"]
    assert "phase teacher" in lines and "phase student method=rcekd seed=0" in lines
    assert "result teacher seed 0: test NDCG@10 0.4000 Recall@10 -" in lines
    s = st.series[("student", "rcekd", 0)]
    assert s.epochs == [1, 2] and s.kd_loss == [9.0, 8.0] and s.overlap == [0.3, 0.4]
    assert s.ndcg == [0.1, 0.2] and s.loss == [1.9, 1.8] and s.base_loss == [1.5, 1.5]
    assert st.teacher_ndcg == 0.5
    assert [x.method for x in st.students()] == ["rcekd"]
    assert st.epoch == 2 and st.status == "running"
    # 3 epochs left of this fit plus the scratch fit's 5, at 1 s each
    assert st.eta_seconds() == 3 + 5
    assert "rcekd seed 0 epoch 2/5" in st.status_line()
    st.apply([Error(kind="ValueError", message="boom"), End(status="failed")])
    assert st.status == "failed" and st.error == "boom" and st.eta_seconds() is None
    assert st.log[-2:] == ["ERROR ValueError: boom", "end: failed"]


def test_follow_coalesces_and_keeps_every_epoch(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    for n in range(1, 51):
        w.emit(epoch("kd", n))
    with path.open("a") as fh:
        fh.write('{"type": "epo')  # a torn last line is not read yet
    batches = []

    def stop():
        return len(batches) >= 1

    for batch in follow(path, stop, sleep=lambda s: None):
        batches.append(batch)
    assert len(batches) == 1 and len(batches[0]) == 50
    st = RunState()
    st.apply(batches[0])
    assert st.series[("student", "kd", 0)].epochs == list(range(1, 51))


def test_follow_slows_down_after_the_end_event(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.emit(RunStart(name="x"))
    w.emit(End(status="finished"))
    sleeps, polls = [], []

    def stop():
        polls.append(1)
        return len(polls) > 3

    batches = list(follow(path, stop, sleep=sleeps.append))
    assert [type(e) for e in batches[0]] == [RunStart, End]
    assert sleeps and all(s == max(sleeps) for s in sleeps)  # the slow poll from the first batch on


def test_a_run_written_before_the_schema_replays(tmp_path):
    """Lines of an older version (no `v`, values at the top level) fold exactly as today's."""
    old = [
        {"t": 1.0, "type": "run_start", "name": "demo", "device": "cpu", "dataset": {"users": 3, "items": 4},
         "methods": ["kd"], "seeds": [0], "teacher_cached": False},
        {"t": 2.0, "type": "phase", "phase": "teacher", "cached": False, "key": "abc"},
        {"t": 3.0, "type": "fit_start", "model": "student", "method": "kd", "seed": 0, "epochs": 3, "batches": 1},
        {"t": 4.0, "type": "epoch", "model": "student", "method": "kd", "seed": 0, "epoch": 1, "seconds": 0.5,
         "base_loss": 1.0, "kd_loss": 0.5, "loss": 1.5, "overlap@20": 0.25, "valid": {"NDCG@10": 0.1}, "best_epoch": 1},
        {"t": 5.0, "type": "some_future_event", "x": 1},
        {"t": 6.0, "type": "end", "status": "stopped"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in old))
    batch = next(follow(path, lambda: False, sleep=lambda s: None))
    assert len(batch) == 5 and all(e.v == 0 for e in batch)  # the unknown type is skipped
    st = RunState()
    lines = st.apply(batch)
    assert "phase teacher cached=False" in lines and st.status == "stopped" and st.started == 1.0
    s = st.series[("student", "kd", 0)]
    assert s.loss == [1.5] and s.kd_loss == [0.5] and s.overlap == [0.25] and s.ndcg == [0.1]
    assert st.apply([parse_event(old[3])]) == [] and st.series[("student", "kd", 0)].epochs == [1, 1]
