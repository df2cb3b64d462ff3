"""events.jsonl: one flushed JSON line per emit; the tailer waits for a torn line's newline;
typed records round-trip through the file, unknown and corrupt lines are skipped and counted."""

from __future__ import annotations

import json

import torch

from rcekd_core.runs.events import (
    SCHEMA_VERSION,
    End,
    Epoch,
    EventTailer,
    EventWriter,
    FitStart,
    Phase,
    RunStart,
    RunWarning,
    read_events,
)


def test_each_emit_is_on_disk_when_it_returns(tmp_path):
    path = tmp_path / "run" / "events.jsonl"  # parent created on demand
    w = EventWriter(path)
    w.emit(Phase(phase="teacher", cached=False, key="k"))
    # read through an independent handle while the writer is still open
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["type"] == "phase" and rec["phase"] == "teacher" and rec["cached"] is False
    assert isinstance(rec["t"], float) and rec["v"] == SCHEMA_VERSION
    assert "method" not in rec  # unset optional fields are left out of the line
    w.emit(Epoch(model="student", method="kd", epoch=1, values={"loss": torch.tensor(0.5), "n": torch.tensor(3)}))
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    rec = json.loads(lines[1])
    assert rec["loss"] == 0.5 and rec["n"] == 3  # tensors as plain numbers, values at the top level
    w.close()


def test_writer_appends_to_an_existing_file(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.emit(RunStart(name="first"))
    w.close()
    w = EventWriter(path)
    w.emit(End(status="finished"))
    w.close()
    events = read_events(path)
    assert [e.type for e in events] == ["run_start", "end"]
    assert isinstance(events[0], RunStart) and events[0].name == "first"


def test_tailer_returns_each_event_once(tmp_path):
    path = tmp_path / "events.jsonl"
    t = EventTailer(path)
    assert t.poll() == []  # no file yet
    w = EventWriter(path)
    w.emit(Phase(phase="a"))
    w.emit(Phase(phase="b"))
    assert [e.phase for e in t.poll()] == ["a", "b"]
    assert t.poll() == []
    w.emit(Phase(phase="c"))
    assert [e.phase for e in t.poll()] == ["c"]
    assert t.poll() == []
    w.close()


def test_torn_last_line_waits_for_its_newline(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.emit(Phase(phase="whole"))
    w.close()
    full = json.dumps({"type": "warning", "v": 1, "t": 1.0, "method": "é" * 5, "message": "m"},
                      ensure_ascii=False) + "\n"
    raw = full.encode("utf-8")
    cut = raw.index("é".encode()) + 1  # split inside a multi-byte character
    with path.open("ab") as fh:
        fh.write(raw[:cut])
    t = EventTailer(path)
    assert [e.phase for e in t.poll()] == ["whole"]
    assert t.poll() == []  # the partial line is not returned
    with path.open("ab") as fh:
        fh.write(raw[cut:-1])  # complete except the newline
    assert t.poll() == []
    with path.open("ab") as fh:
        fh.write(b"\n")
    got = t.poll()
    assert got == [RunWarning(t=1.0, v=1, method="é" * 5, message="m")]
    assert t.poll() == [] and t.skipped == 0  # exactly once
    w = EventWriter(path)
    w.emit(Phase(phase="after"))
    w.close()
    assert [e.phase for e in t.poll()] == ["after"]


def test_corrupt_and_unknown_lines_are_skipped_and_counted_not_fatal(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "phase", "phase": "a"}\nnot json\n\n{"type": "from_the_future"}\n[1, 2]\n'
                    '{"type": "phase", "phase": "b"}\n')
    t = EventTailer(path)
    assert [e.phase for e in t.poll()] == ["a", "b"]
    assert t.skipped == 3  # the blank line is not counted
    assert [e.type for e in read_events(path)] == ["phase", "phase"]


def test_records_round_trip_and_old_lines_parse_with_defaults(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    sent = [RunStart(name="n", device="cpu", dataset={"users": 3}, methods=["kd"], seeds=[0, 1]),
            FitStart(model="teacher", method="teacher", seed=0, epochs=4, batches=2),
            Epoch(model="student", method="rcekd", seed=1, epoch=2, seconds=0.25, best_epoch=1,
                  valid={"NDCG@10": 0.5}, values={"loss": 1.5, "gamma": 0.3, "overlap@5": 0.2}),
            End(status="stopped")]
    for ev in sent:
        w.emit(ev)
    w.close()
    got = read_events(path)
    assert got == sent  # emit stamped `t` on the sent records too
    ep = got[2]
    assert ep.get("gamma") == 0.3 and ep.get("stage") is None and ep.overlap == 0.2
    assert ep.row() == {"model": "student", "method": "rcekd", "seed": 1, "epoch": 2, "seconds": 0.25,
                        "loss": 1.5, "gamma": 0.3, "overlap@5": 0.2, "best_epoch": 1, "valid_NDCG@10": 0.5}
    # a line written before the schema had a version: no "v", extras at the top level
    old = tmp_path / "old.jsonl"
    old.write_text('{"type": "epoch", "model": "teacher", "epoch": 3, "loss": 2.0, "valid": {"NDCG@10": 0.1}}\n')
    (ev,) = read_events(old)
    assert isinstance(ev, Epoch) and ev.v == 0 and ev.epoch == 3 and ev.values == {"loss": 2.0}
    assert ev.method == "" and ev.best_epoch == 0 and ev.valid == {"NDCG@10": 0.1}


def test_a_writer_after_a_torn_line_starts_a_new_line(tmp_path):
    from rcekd_core.runs.events import End, Resumed

    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.emit(End(status="stopped"))
    w.close()
    with path.open("a") as fh:
        fh.write('{"type": "epoch", "epo')  # a writer killed mid-line
    w = EventWriter(path)
    w.emit(Resumed(fits_done=1))
    w.close()
    t = EventTailer(path)
    assert [e.type for e in t.poll()] == ["end", "resumed"] and t.skipped == 1


def test_a_line_nested_too_deep_is_skipped_not_fatal(tmp_path):
    from rcekd_core.runs.events import End

    path = tmp_path / "events.jsonl"
    path.write_text("[" * 100_000 + "\n")
    w = EventWriter(path)
    w.emit(End())
    w.close()
    t = EventTailer(path)
    assert [e.type for e in t.poll()] == ["end"] and t.skipped == 1
