"""RunState folds events into series without any UI; the follower coalesces per poll."""

from rcekd_core.runs.events import EventWriter
from rcekd_tui.follow import RunState, follow


def ev(type_, **kw):
    return {"type": type_, **kw}


def epoch(method, n, model="student", **kw):
    return ev("epoch", model=model, method=method, seed=0, epoch=n, seconds=1.0, loss=2.0 - n / 10,
              base_loss=1.5, valid={"NDCG@10": 0.1 * n, "Recall@10": 0.2 * n}, **kw)


def test_runstate_folds_events_into_series():
    st = RunState()
    lines = st.apply([
        ev("run_start", name="demo", device="cpu", dataset={"users": 3, "items": 4},
           methods=["scratch", "rcekd"], seeds=[0]),
        ev("phase", phase="teacher"), ev("fit_start", model="teacher", method="teacher", seed=0, epochs=2),
        epoch("teacher", 1, model="teacher"), epoch("teacher", 2, model="teacher"),
        ev("result", rows=[{"model": "teacher", "method": "teacher", "seed": 0, "split": "valid", "NDCG@10": 0.5},
                           {"model": "teacher", "method": "teacher", "seed": 0, "split": "test", "NDCG@10": 0.4}]),
        ev("fit_start", model="student", method="rcekd", seed=0, epochs=5),
        epoch("rcekd", 1, kd_loss=9.0, **{"overlap@10": 0.3}),
        epoch("rcekd", 2, kd_loss=8.0, **{"overlap@10": 0.4}),
    ])
    assert st.device == "cpu" and st.methods == ["scratch", "rcekd"]
    assert any("phase teacher" in line for line in lines)
    s = st.series[("student", "rcekd", 0)]
    assert s.epochs == [1, 2] and s.kd_loss == [9.0, 8.0] and s.overlap == [0.3, 0.4]
    assert s.ndcg == [0.1, 0.2]
    assert st.teacher_ndcg == 0.5
    assert [x.method for x in st.students()] == ["rcekd"]
    assert st.epoch == 2 and st.status == "running"
    # 3 epochs left of this fit plus the scratch fit's 5, at 1 s each
    assert st.eta_seconds() == 3 + 5
    assert "rcekd seed 0 epoch 2/5" in st.status_line()
    st.apply([ev("error", kind="ValueError", message="boom"), ev("end", status="failed")])
    assert st.status == "failed" and st.error == "boom" and st.eta_seconds() is None


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
