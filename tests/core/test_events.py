"""events.jsonl: one flushed JSON line per emit; the tailer waits for a torn line's newline."""

from __future__ import annotations

import json

import torch

from rcekd_core.runs.events import EventTailer, EventWriter, read_events


def test_each_emit_is_on_disk_when_it_returns(tmp_path):
    path = tmp_path / "run" / "events.jsonl"  # parent created on demand
    w = EventWriter(path)
    w.emit({"type": "a", "x": 1})
    # read through an independent handle while the writer is still open
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["type"] == "a" and rec["x"] == 1 and isinstance(rec["t"], float)
    w.emit({"type": "b", "loss": torch.tensor(0.5), "n": torch.tensor(3)})
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    rec = json.loads(lines[1])
    assert rec["loss"] == 0.5 and rec["n"] == 3
    w.close()


def test_writer_appends_to_an_existing_file(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.emit({"type": "first"})
    w.close()
    w = EventWriter(path)
    w.emit({"type": "second"})
    w.close()
    assert [e["type"] for e in read_events(path)] == ["first", "second"]


def test_tailer_returns_each_event_once(tmp_path):
    path = tmp_path / "events.jsonl"
    t = EventTailer(path)
    assert t.poll() == []  # no file yet
    w = EventWriter(path)
    w.emit({"type": "a"})
    w.emit({"type": "b"})
    assert [e["type"] for e in t.poll()] == ["a", "b"]
    assert t.poll() == []
    w.emit({"type": "c"})
    assert [e["type"] for e in t.poll()] == ["c"]
    assert t.poll() == []
    w.close()


def test_torn_last_line_waits_for_its_newline(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.emit({"type": "whole"})
    w.close()
    full = json.dumps({"type": "torn", "payload": "é" * 5, "k": [1, 2, 3]}, ensure_ascii=False) + "\n"
    raw = full.encode("utf-8")
    cut = raw.index("é".encode()) + 1  # split inside a multi-byte character
    with path.open("ab") as fh:
        fh.write(raw[:cut])
    t = EventTailer(path)
    assert [e["type"] for e in t.poll()] == ["whole"]
    assert t.poll() == []  # the partial line is not returned
    with path.open("ab") as fh:
        fh.write(raw[cut:-1])  # complete except the newline
    assert t.poll() == []
    with path.open("ab") as fh:
        fh.write(b"\n")
    got = t.poll()
    assert got == [json.loads(full)]
    assert t.poll() == []  # exactly once
    w = EventWriter(path)
    w.emit({"type": "after"})
    w.close()
    assert [e["type"] for e in t.poll()] == ["after"]


def test_corrupt_line_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "a"}\nnot json\n\n{"type": "b"}\n')
    assert [e["type"] for e in read_events(path)] == ["a", "b"]
