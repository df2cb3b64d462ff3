"""The run directory: metrics.csv grows its columns, refusals of used folders, tolerant readers,
and the one atomic write (old file kept, no temporary left when a write fails)."""

from __future__ import annotations

import csv

import pytest

from rcekd_core.atomic import atomic_file, atomic_write
from rcekd_core.errors import ConfigError
from rcekd_core.runs.store import MetricsCsv, RunDir


def rows_of(path):
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        return next(reader), list(reader)


def no_tmp(folder) -> bool:
    return not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_metrics_csv_columns_are_the_union_of_the_rows_keys(tmp_path):
    path = tmp_path / "metrics.csv"
    m = MetricsCsv(path)
    m.append({"model": "teacher", "epoch": 1, "loss": 2.0})
    m.append({"model": "teacher", "epoch": 2, "loss": 1.5})
    assert rows_of(path) == (["model", "epoch", "loss"], [["teacher", "1", "2"], ["teacher", "2", "1.5"]])
    # a key no earlier row had: the header widens and the earlier rows are kept (blank there)
    m.append({"model": "student", "epoch": 1, "loss": 1.25, "gamma": 0.5})
    header, rows = rows_of(path)
    assert header == ["model", "epoch", "loss", "gamma"]
    assert rows == [["teacher", "1", "2", ""], ["teacher", "2", "1.5", ""], ["student", "1", "1.25", "0.5"]]
    # a row lacking a column appends with a blank there, no rewrite needed
    m.append({"model": "student", "epoch": 2, "gamma": 0.25})
    assert rows_of(path)[1][-1] == ["student", "2", "", "0.25"]
    assert no_tmp(tmp_path)
    # a second writer on the same file (a resumed run) picks up its header
    again = MetricsCsv(path)
    assert again.columns == header
    again.append({"model": "student", "epoch": 3, "stage": 1.0})
    header, rows = rows_of(path)
    assert header == ["model", "epoch", "loss", "gamma", "stage"] and len(rows) == 5
    assert rows[0] == ["teacher", "1", "2", "", ""] and rows[-1] == ["student", "3", "", "", "1"]
    assert no_tmp(tmp_path)


def test_check_new_refuses_a_used_folder_or_a_file(tmp_path):
    RunDir(tmp_path / "missing").check_new()  # a new folder is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    RunDir(empty).check_new()  # so is an empty one
    for name in ("command.txt", "stdout.log", "pid"):  # what the TUI's launcher writes first
        (empty / name).write_text("x")
    RunDir(empty).check_new()
    (empty / "config.yaml").write_text("mine: 1")  # anything else is the user's: never overwritten
    with pytest.raises(ConfigError, match="is not empty .*config.yaml"):
        RunDir(empty).check_new()
    for name in ("events.jsonl", "results.csv"):
        used = tmp_path / name.split(".")[0]
        used.mkdir()
        (used / name).write_text("")
        with pytest.raises(ConfigError, match="already holds a run"):
            RunDir(used).check_new()
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="is a file") as e:
        RunDir(f).check_new(flag="--out")
    assert "--out" in str(e.value)


def test_read_config_is_empty_when_missing_or_unreadable(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.read_config() == {}  # no folder at all
    run.create()
    assert run.read_config() == {}
    run.config.write_text("name: [unclosed\n")
    assert run.read_config() == {}
    run.config.write_text("- a list, not a mapping\n")
    assert run.read_config() == {}
    run.config.write_bytes(b"\xff\xfe\x00")
    assert run.read_config() == {}
    run.write_config({"name": "demo", "rcekd": {"K": 5}})
    assert run.read_config() == {"name": "demo", "rcekd": {"K": 5}}


def test_write_results_columns_are_the_union_first_seen_first(tmp_path):
    run = RunDir(tmp_path / "r").create()
    run.write_results([{"model": "teacher", "split": "valid", "NDCG@10": 0.5},
                       {"model": "student", "split": "valid", "overlap@5": 0.25, "NDCG@10": 0.125}])
    header, rows = rows_of(run.results)
    assert header == ["model", "split", "NDCG@10", "overlap@5"]
    assert rows == [["teacher", "valid", "0.5", ""], ["student", "valid", "0.125", "0.25"]]
    assert run.read_result_rows()[1] == {"model": "student", "split": "valid", "NDCG@10": "0.125",
                                         "overlap@5": "0.25"}
    assert no_tmp(run.root)


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_file(path, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("disk full")
    assert path.read_text() == "old" and no_tmp(tmp_path)

    class Unwritable:  # str/bytes only: a TypeError mid-write must not leave a temporary either
        pass

    with pytest.raises(TypeError):
        atomic_write(path, Unwritable())
    assert path.read_text() == "old" and no_tmp(tmp_path)
    atomic_write(path, b"new bytes")
    assert path.read_bytes() == b"new bytes" and no_tmp(tmp_path)
    atomic_write(tmp_path / "deeper" / "g.txt", "made")  # parents are created
    assert (tmp_path / "deeper" / "g.txt").read_text() == "made"
