"""The CLI end to end on a tiny config: run directory contents, teacher cache, bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rcekd_tui.cli import app

runner = CliRunner()  # fixtures home, preset (the tiny experiment): tests/conftest.py


def test_distill_writes_a_complete_run_directory(preset, home):
    d = home / "run1"
    res = runner.invoke(app, ["distill", "--preset", preset, "--run-dir", str(d), "--seeds", "0,1"])
    assert res.exit_code == 0, res.output
    results = pd.read_csv(d / "results.csv")
    assert set(results["method"]) == {"teacher", "popularity", "scratch", "kd", "rcekd"}
    students = results[results["model"] == "student"]
    assert len(students) == 3 * 2 * 2  # methods x seeds x splits
    assert set(results["split"]) == {"valid", "test"}
    assert (results["NDCG@10"] >= 0).all() and "overlap@10" in results
    events = [json.loads(line) for line in (d / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "run_start" and events[-1] == {**events[-1], "type": "end", "status": "finished"}
    metrics = pd.read_csv(d / "metrics.csv")
    assert {"model", "method", "seed", "epoch", "seconds", "base_loss", "kd_loss", "gamma"} <= set(metrics.columns)
    assert metrics[metrics["method"] == "rcekd"]["gamma"].between(0, 1).all()
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    assert cfg["rcekd"]["K"] == 5 and cfg["runtime"]["teacher_cached"] is False
    assert (d / "summary.csv").exists() and (d / "significance.csv").exists()
    assert "rcekd" in res.output


def test_second_run_reuses_the_cached_teacher(preset, home):
    first = runner.invoke(app, ["train-teacher", "--preset", preset, "--run-dir", str(home / "t")])
    assert first.exit_code == 0, first.output
    res = runner.invoke(app, ["distill", "--preset", preset, "--methods", "scratch", "--run-dir", str(home / "s")])
    assert res.exit_code == 0, res.output
    metrics = pd.read_csv(home / "s" / "metrics.csv")
    assert (metrics["model"] == "student").all()
    events = [json.loads(x) for x in (home / "s" / "events.jsonl").read_text().splitlines()]
    phase = next(e for e in events if e["type"] == "phase" and e["phase"] == "teacher")
    assert phase["cached"] is True
    t1 = pd.read_csv(home / "t" / "results.csv")
    t2 = pd.read_csv(home / "s" / "results.csv")
    assert t1[t1.model == "teacher"]["NDCG@10"].tolist() == t2[t2.model == "teacher"]["NDCG@10"].tolist()


def test_same_seed_reproduces_results(preset, home):
    for name in ("a", "b"):
        res = runner.invoke(app, ["distill", "--preset", preset, "--methods", "rcekd", "--run-dir", str(home / name)])
        assert res.exit_code == 0, res.output
    a = pd.read_csv(home / "a" / "results.csv")
    b = pd.read_csv(home / "b" / "results.csv")
    pd.testing.assert_frame_equal(a.drop(columns=["teacher_cached"]), b.drop(columns=["teacher_cached"]))


@pytest.mark.parametrize("args, needle", [
    (["distill", "--preset", "no-such-preset"], "unknown preset"),
    (["distill", "--methods", "scratch,nope"], "unknown method"),
    (["distill", "--set", "rcekd.M=2"], "rcekd.M"),
    (["distill", "--set", "student.dim=-4"], "student.dim"),
    (["distill", "--set", "bogus.key=1"], "unknown setting"),
    (["distill", "--set", "student_train.lr=fast"], "student_train.lr"),
    (["train-teacher", "--epochs", "-1"], "epochs"),
    (["distill", "--seeds", "0,x"], "--seeds"),
    (["distill", "--set", "rcekd.M=100000"], "exceeds"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, needle, home):
    d = home / "bad"
    res = runner.invoke(app, args + ["--run-dir", str(d)])
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert "Traceback" not in res.output
    assert not (d / "results.csv").exists() and not (d / "events.jsonl").exists()


@pytest.mark.parametrize("content, needle", [
    (None, "not found"),
    ("", "empty"),
    ("a,b,c\n1,2,3\n", "column"),
    ("user,item,timestamp\n1,2,yesterday\n", "timestamp"),
    ("user,item,timestamp\n1,2,3\n", "3 interactions"),
])
def test_bad_data_files(content, needle, home):
    f = home / "mine.csv"
    if content is not None:
        f.write_text(content)
    d = home / "bad"
    res = runner.invoke(app, ["train-teacher", "--data-file", str(f), "--run-dir", str(d)])
    assert res.exit_code == 2, res.output
    assert needle in res.output.lower()
    assert not d.exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is present")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error(home):
    res = runner.invoke(app, ["train-teacher", "--device", "cuda", "--run-dir", str(home / "g")])
    assert res.exit_code == 2 and "no CUDA GPU" in res.output
    assert not (home / "g").exists()


def test_user_data_file_runs(home, preset):
    rows = ["user,item,timestamp"] + [f"{u},{(u * 7 + t) % 30 + 1},{t}" for u in range(40) for t in range(8)]
    f = home / "mine.csv"
    f.write_text("\n".join(rows) + "\n")
    res = runner.invoke(app, ["train-teacher", "--preset", preset, "--data-file", str(f), "--run-dir", str(home / "u")])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(home / "u" / "results.csv")) == 4  # teacher and popularity, 2 splits


def test_data_info_and_presets(home):
    res = runner.invoke(app, ["data", "info", "nope"])
    assert res.exit_code == 2 and "unknown dataset" in res.output
    res = runner.invoke(app, ["presets", "show", "demo"])
    assert res.exit_code == 0 and "rcekd:" in res.output
    res = runner.invoke(app, ["presets", "list"])
    assert "demo" in res.output


def test_console_entry_point_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "rcekd_tui", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "distill" in out.stdout


ALL_METHODS_TINY = {
    "name": "tiny",
    "data": {"source": "demo", "n_users": 50, "n_items": 40, "n_clusters": 4, "mean_len": 8},
    "teacher": {"dim": 8, "blocks": 1, "heads": 1, "max_len": 10},
    "student": {"dim": 4, "blocks": 1, "heads": 1, "max_len": 10},
    "teacher_train": {"epochs": 3, "patience": 5},
    "student_train": {"epochs": 2, "patience": 5},
    "kd": {"K": 5},
    "rcekd": {"K": 5, "L": 5, "M": 10},
    "rrd": {"K": 4, "L": 6, "M": 10},
    "dcd": {"K": 4, "M": 10},
    "cd": {"N": 10},
    "unkd": {"pairs": 2},
    "hetcomp": {"K": 5, "p": 1, "every": 1},
    "de": {"experts": 3},
}


def test_distill_all_methods_end_to_end(home):
    preset = home / "all.yaml"
    preset.write_text(yaml.safe_dump(ALL_METHODS_TINY))
    d = home / "run"
    res = runner.invoke(app, ["distill", "--preset", str(preset), "--methods", "all", "--run-dir", str(d)])
    assert res.exit_code == 0, res.output
    results = pd.read_csv(d / "results.csv")
    want = {"scratch", "kd", "rcekd", "rrd", "dcd", "cd", "unkd", "hetcomp", "de"}
    assert want <= set(results[results.model == "student"]["method"])
    assert results["NDCG@10"].notna().all()
    trajectory = sorted(p.name for p in (home / "home" / "teachers").glob("*/trajectory/*.pt"))
    assert trajectory == ["epoch1.pt", "epoch2.pt", "epoch3.pt"]
    events = [json.loads(x) for x in (d / "events.jsonl").read_text().splitlines()]
    warnings = [e for e in events if e["type"] == "warning"]
    best = int(results[results.model == "teacher"]["best_epoch"].iloc[0])
    if best > 1:  # a checkpoint precedes the best epoch: the trajectory is used
        assert not warnings
    else:
        assert len(warnings) == 1 and "best epoch" in warnings[0]["message"]
    kd_losses = [e["kd_loss"] for e in events if e["type"] == "epoch" and e.get("method") in want - {"scratch"}]
    assert kd_losses and all(math.isfinite(x) for x in kd_losses)
