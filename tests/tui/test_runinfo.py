"""Run summaries for the runs and compare screens, in plain Python, checked against pandas."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from rcekd_tui.runinfo import (
    best_method,
    config_diff,
    list_runs,
    mean_by_method,
    number,
    summarize,
    validation_curves,
)


def test_runs_listed_newest_first_with_status_and_best_method(write_run):
    old = write_run("old", end="failed", methods=("scratch",))
    new = write_run("new", end=None, methods=("scratch", "kd", "rcekd"), seeds=(0, 1))
    (old.root.parent / "not-a-run").mkdir()
    os.utime(old.events, (1, 1))
    runs = list_runs(new.root.parent)
    assert [r.name for r in runs] == ["new", "old"]
    assert [r.status for r in runs] == ["running", "failed"]
    r = runs[0]
    assert r.dataset == "demo" and r.methods == ["scratch", "kd", "rcekd"]
    assert r.best_method == "rcekd" and r.best_ndcg == pytest.approx(0.15 + 0.0005)  # mean of seeds 0, 1
    assert list_runs(new.root.parent / "nowhere") == []


def test_a_run_without_results_has_no_best(write_run):
    s = summarize(write_run(results=False).root)
    assert s.best_ndcg is None and s.best_method == "" and s.status == "finished"


def test_means_match_pandas(write_run):
    run = write_run(methods=("scratch", "kd", "rcekd"), seeds=(0, 1, 2))
    rows = run.read_result_rows()
    df = pd.read_csv(run.results)
    for split in ("test", "valid"):
        want = df[df["split"] == split].groupby("method", sort=False)[["NDCG@10", "Recall@10"]].mean()
        got = mean_by_method(rows, split, ["NDCG@10", "Recall@10"])
        assert list(got) == list(want.index)  # teacher, popularity, then the students in run order
        for method, means in got.items():
            assert means == pytest.approx(want.loc[method].to_dict())
    students = df[(df["model"] == "student") & (df["split"] == "test")].groupby("method")["NDCG@10"].mean()
    assert best_method(rows) == (students.idxmax(), pytest.approx(students.max()))


def test_number_reads_csv_text_and_event_values():
    assert [number(v) for v in ("0.25", 0.25, 1, "", None, "nan", float("nan"), "abc", True)] == [
        0.25, 0.25, 1.0, None, None, None, None, None, None]


def test_validation_curves_per_student_fit(write_run):
    run = write_run(methods=("scratch", "rcekd"), epochs=3)
    curves = validation_curves(run.root)
    assert [c[0] for c in curves] == ["scratch/s0", "rcekd/s0"]
    assert curves[0][1] == [1, 2, 3] and curves[0][2] == pytest.approx([0.01, 0.02, 0.03])
    assert validation_curves(run.root.parent / "nowhere") == []


def test_config_diff_only_differences(write_run):
    a = write_run("a", epochs=2)
    b = write_run("b", epochs=7)
    assert config_diff([a.root, b.root]) == {"teacher_train.epochs": [2, 7]}
    assert config_diff([a.root, a.root]) == {}


def test_runs_listed_from_an_engine_run(finished_run):
    runs = list_runs(finished_run.parent)
    assert [r.name for r in runs] == ["tiny-run"]
    r = runs[0]
    assert r.status == "finished" and r.dataset == "demo" and r.methods == ["scratch", "rcekd"]
    assert r.best_ndcg is not None and r.best_method in ("scratch", "rcekd")


def test_runinfo_imports_neither_torch_nor_pandas():
    code = ("import sys, rcekd_tui.runinfo; "
            "print(sorted(m for m in ('torch', 'pandas', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_killed_run_is_listed_as_interrupted(write_run):
    killed = write_run("killed", end=None)
    os.utime(killed.events, (1, 1))  # no pid file, quiet for long
    write_run("stopped", end="stopped")
    assert {r.name: r.status for r in list_runs(killed.root.parent)} == {"killed": "interrupted", "stopped": "stopped"}


def test_summaries_of_damaged_files_never_raise(write_run):
    run = write_run(methods=("scratch",))
    run.config.write_text("data: just text\nmethods: 7\n")
    with run.results.open("a") as fh:
        fh.write("student,kd,0,test,0.9,x,y,z,extra,cells,more\n")  # more cells than columns: key None
        fh.write("student,kd,1,test,inf,nan\n")
    s = summarize(run.root)
    # the long row counts (its surplus cells are ignored); inf reads as missing
    assert s.dataset == "?" and s.methods == [] and (s.best_method, s.best_ndcg) == ("kd", pytest.approx(0.9))
    run.config.write_bytes(b"\x00\xff\xfe binary")
    run.results.write_bytes(b"\xff\xfe\x00 binary")
    run.metrics.write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    s = summarize(run.root)
    assert s.best_ndcg is None and s.dataset == "?" and validation_curves(run.root) == []
    assert number(10**400) is None and number("inf") is None


def test_watch_targets(tmp_path, write_run):
    from rcekd_tui.runinfo import watch_problem

    run = write_run()
    assert watch_problem(run.root) is None
    (tmp_path / "starting").mkdir()
    assert watch_problem(tmp_path / "starting") is None  # no events yet: the screen waits for them
    assert "does not exist" in watch_problem(tmp_path / "nowhere")
    (tmp_path / "f").write_text("x")
    assert "is a file" in watch_problem(tmp_path / "f")
    assert "holds run directories" in watch_problem(run.root.parent) and str(run.root) in watch_problem(run.root.parent)
