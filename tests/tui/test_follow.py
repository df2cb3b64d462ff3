"""RunState folds event records into series without any UI; the follower coalesces per poll."""

import json

from rcekd_core.runs.events import (
    End,
    Epoch,
    Error,
    EventWriter,
    FitStart,
    Phase,
    Result,
    RunStart,
    StopRequested,
    parse_event,
)
from rcekd_tui.follow import FAST, RunState, follow


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
    # the same epoch again (a resumed run redoes the one it was killed in) replaces the point
    assert st.apply([parse_event(old[3])]) == [] and st.series[("student", "kd", 0)].epochs == [1]


# ---- resumed runs ------------------------------------------------------------------------

def _resumed_type():
    """runs/events.py's Resumed record; a stand-in of the same shape until it lands there."""
    from dataclasses import dataclass
    from typing import ClassVar

    from rcekd_core.runs import events

    if hasattr(events, "Resumed"):
        return events.Resumed

    @dataclass
    class Resumed(events.Event):
        type: ClassVar[str] = "resumed"
        fits_done: int = 0
        continuing: str = ""

    return Resumed


def _killed_part():
    """A run killed in rcekd's 5th epoch (after its event was written): no `end`."""
    return [
        RunStart(name="demo", device="cpu", methods=["scratch", "rcekd"], seeds=[0]),
        FitStart(model="teacher", method="teacher", seed=0, epochs=2), epoch("teacher", 1, model="teacher"),
        Result(rows=[{"model": "teacher", "method": "teacher", "seed": 0, "split": "valid", "NDCG@10": 0.5}]),
        FitStart(model="student", method="rcekd", seed=0, epochs=8),
        *[epoch("rcekd", n) for n in range(1, 6)],
    ]


def test_a_resumed_run_replaces_the_redone_epoch_and_runs_again():
    Resumed = _resumed_type()
    st = RunState()
    st.apply(_killed_part())
    assert st.mark_interrupted() == ["the run's process is gone without an end event: interrupted"]
    assert st.status == "interrupted" and st.eta_seconds() is None
    assert st.status_line("interrupted — press r to resume").startswith(
        "interrupted — press r to resume | phase waiting | rcekd seed 0 epoch 5/8")
    fits_before = st.fits_done
    lines = st.apply([
        Resumed(fits_done=1, continuing="rcekd seed 0 from epoch 5"),
        Result(rows=[{"model": "teacher", "method": "teacher", "seed": 0, "split": "valid", "NDCG@10": 0.5}]),
        FitStart(model="student", method="rcekd", seed=0, epochs=8),
        epoch("rcekd", 5, kd_loss=0.123), epoch("rcekd", 6, kd_loss=0.1),
    ])
    assert lines == ["resumed: 1 finished fits kept; continuing rcekd seed 0 from epoch 5"]
    assert st.status == "running" and st.phase == "resumed"
    s = st.series[("student", "rcekd", 0)]
    assert s.epochs == [1, 2, 3, 4, 5, 6]  # epoch 5 once: the redone one
    assert s.kd_loss[4] == 0.123 and len(s.loss) == len(s.ndcg) == len(s.seconds) == 6
    assert len(st.results) == 1 and st.fits_done == fits_before  # a kept fit re-reported is not a new one


def test_a_redone_epoch_drops_the_points_after_it():
    st = RunState()
    st.apply([epoch("kd", n) for n in (1, 2, 3, 4)] + [epoch("kd", 3, kd_loss=7.0)])
    s = st.series[("student", "kd", 0)]
    assert s.epochs == [1, 2, 3] and s.kd_loss == [None, None, 7.0] and st.epoch == 3


def test_a_stopped_run_that_is_resumed_is_running():
    Resumed = _resumed_type()
    st = RunState()
    st.apply(_killed_part() + [StopRequested(), End(status="stopped")])
    assert st.status == "stopped" and st.stop_requested
    st.apply([Resumed(fits_done=1, continuing="")])
    assert st.status == "running" and not st.stop_requested and st.log[-1] == "resumed: 1 finished fits kept"
    st.apply([End(status="finished")])
    assert st.status == "finished"


def test_any_new_event_means_an_interrupted_run_was_only_quiet():
    st = RunState()
    st.apply(_killed_part())
    st.mark_interrupted()
    st.apply([epoch("rcekd", 6)])
    assert st.status == "running"
    st.apply([End(status="stopped")])
    assert st.mark_interrupted() == [] and st.status == "stopped"  # an ended run is never interrupted


def test_follow_polls_fast_again_after_a_resumed_event(tmp_path):
    from rcekd_core.runs import events

    if not hasattr(events, "Resumed"):
        import pytest

        pytest.skip("runs/events.py has no Resumed record yet")
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.emit(RunStart(name="x"))
    w.emit(End(status="stopped"))
    w.emit(events.Resumed(fits_done=1, continuing="kd seed 0 from epoch 2"))
    sleeps, polls = [], []

    def stop():
        polls.append(1)
        return len(polls) > 2

    batches = list(follow(path, stop, sleep=sleeps.append))
    assert [e.type for e in batches[0]] == ["run_start", "end", "resumed"]
    assert sleeps == [FAST] * len(sleeps)  # not the slow poll of an ended run
    st = RunState()
    st.apply(batches[0])
    assert st.status == "running"


# ---- unreadable lines ----------------------------------------------------------------------

GARBAGE = [
    b"\x00\x01\x02\xff\xfe binary\n",
    b'{"type": "epoch", "method": "caf\xe9"}\n',  # Latin-1, not UTF-8
    b"[1, 2, 3]\n",  # JSON, but a list, not an object
    b'"just a string"\n',
    b'{"no type": 1}\n',
    b'{"type": "epoch", "model": "student", "method": "kd", "seed": 0, "epoch": "five"}\n',
    b'{"type": "epoch", "model": "student", "method": "kd", "seed": 0, "epoch": 9, "valid": [1, 2]}\n',
    b'{"type": "fit_start", "model": "student", "method": "kd", "seed": {}, "epochs": 3}\n',
    b'{"type": "run_start", "name": "x", "dataset": "not a dict"}\n',
    b'{"type": "result", "rows": "not a list"}\n',
    b'{"type": "result", "rows": [1, 2]}\n',
    b'{"type": "end", "status": ["finished"]}\n',
    b"{not json at all\n",
]


def test_unreadable_and_malformed_lines_are_skipped_and_counted(tmp_path):
    from rcekd_core.runs.events import EventTailer

    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.emit(RunStart(name="demo", device="cpu", methods=["kd"], seeds=[0]))
    w.emit(epoch("kd", 1))
    with path.open("ab") as fh:
        fh.write(b"".join(GARBAGE))
        fh.write(b'{"type": "epoch", "model": "student", "method": "kd", "seed": 0, "epoch": 2, "seconds": 1,'
                 b' "loss": 1e999, "valid": {"NDCG@10": NaN, "Recall@10": "high"}}\n')  # odd values: missing
    w.emit(epoch("kd", 3))
    tailer = EventTailer(path)
    batch = next(follow(path, lambda: False, sleep=lambda s: None, tailer=tailer))
    st = RunState()
    lines = st.apply(batch, tailer.skipped)
    assert lines[-1] == f"skipped {len(GARBAGE)} unreadable lines of events.jsonl"
    assert st.skipped == len(GARBAGE) and st.status == "running"
    s = st.series[("student", "kd", 0)]
    assert s.epochs == [1, 2, 3] and s.loss[1] is None and s.ndcg[1] is None and s.recall[1] is None
    assert len(s.loss) == len(s.ndcg) == len(s.seconds) == 3  # a skipped record left no half point
    assert st.apply([], tailer.skipped) == []  # told once
    with path.open("ab") as fh:
        fh.write(b"\xff\xff\n")
    assert next(follow(path, lambda: False, sleep=lambda s: None, tailer=tailer)) == []  # only garbage: still told
    assert st.apply([], tailer.skipped) == ["skipped 1 unreadable line of events.jsonl"]


def test_a_line_nested_too_deep_for_json_does_not_stop_the_follower(tmp_path):
    from rcekd_core.runs.events import EventTailer

    path = tmp_path / "events.jsonl"
    path.write_bytes(b"[" * 100000 + b"\n")
    tailer = EventTailer(path)
    assert next(follow(path, lambda: False, sleep=lambda s: None, tailer=tailer)) == [] and tailer.skipped >= 1
    EventWriter(path).emit(epoch("kd", 1))
    assert [e.epoch for e in next(follow(path, lambda: False, sleep=lambda s: None, tailer=tailer))] == [1]
