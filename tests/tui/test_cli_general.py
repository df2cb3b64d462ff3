"""The CLI end to end with general models (preset demo-mf, protocol ratio), and the one-line
rejections of teacher/student/protocol/loss combinations that cannot work."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rcekd_tui.cli import app

runner = CliRunner()  # fixture home (a temp RCEKD_HOME and working folder): tests/conftest.py

TINY_SETS = [
    "data.n_users=120", "data.n_items=60", "data.n_clusters=6", "data.mean_len=12",
    "teacher.dim=16", "student.dim=4",
    "teacher_train.epochs=3", "teacher_train.patience=5",
    "student_train.epochs=2", "student_train.patience=5",
    "kd.K=5", "rcekd.K=5", "rcekd.L=5", "rcekd.M=10",
]


def sets(items: list[str]) -> list[str]:
    out = []
    for s in items:
        out += ["--set", s]
    return out


@pytest.mark.parametrize("teacher, student", [("mf", "mf"), ("lightgcn", "mf")])
def test_distill_demo_mf_end_to_end(home, teacher, student):
    d = home / "run"
    extra = [f"teacher.arch={teacher}", f"student.arch={student}"]
    res = runner.invoke(app, ["distill", "--preset", "demo-mf", "--methods", "scratch,kd,rcekd",
                              "--run-dir", str(d), *sets(TINY_SETS + extra)])
    assert res.exit_code == 0, res.output
    results = pd.read_csv(d / "results.csv")
    assert set(results["method"]) == {"teacher", "popularity", "scratch", "kd", "rcekd"}
    assert (results["protocol"] == "ratio").all()
    assert (results["masking"] == "history").all()
    students = results[results["model"] == "student"]
    assert len(students) == 3 * 2  # methods x splits
    assert (students["kd_positions"] == "user").all()
    assert (students["arch"] == student).all() and (students["loss"] == "bpr").all()
    assert results[results["model"] != "student"]["kd_positions"].isna().all()
    assert (results[results["model"] == "teacher"]["arch"] == teacher).all()
    assert results["NDCG@10"].between(0, 1).all() and results["Recall@20"].between(0, 1).all()
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    assert cfg["runtime"]["protocol"] == "ratio" and cfg["data"]["protocol"] == "ratio"
    metrics = pd.read_csv(d / "metrics.csv")
    kd_rows = metrics[metrics["method"].isin(["kd", "rcekd"])]
    assert len(kd_rows) and kd_rows["kd_loss"].map(math.isfinite).all()
    assert metrics["base_loss"].map(math.isfinite).all()
    events = [json.loads(x) for x in (d / "events.jsonl").read_text().splitlines()]
    assert events[-1]["type"] == "end" and events[-1]["status"] == "finished"
    view = next(e for e in events if e["type"] == "phase" and e["phase"] == "teacher_view")
    assert view["contexts"] == int(events[0]["dataset"]["users_after_split"])  # one context per user


@pytest.mark.parametrize("args, needle", [
    # an mf teacher with a sequential student (loss set too, so the family check is what fires)
    (["--set", "student.arch=sasrec", "--set", "student.loss=ce"], "must both be sequential"),
    # the sasrec student keeps the preset's bpr loss: the family mismatch is named first
    (["--set", "student.arch=sasrec"], "must both be sequential"),
    # mf under the leave-one-out protocol
    (["--set", "data.protocol=loo"], "data.protocol ratio"),
    # sampled softmax is for hstu only; mf takes bpr or ce
    (["--set", "student.loss=ssm"], "student.loss 'ssm'"),
    (["--set", "teacher.arch=lightgcn", "--set", "teacher.loss=bce"], "teacher.loss 'bce'"),
])
def test_bad_general_combinations_exit_2_with_one_line_and_write_nothing(args, needle, home):
    d = home / "bad"
    argv = ["distill"] + (["--preset", "demo-mf"] if "--preset" not in args else [])
    # tiny sizes first, so that a regression of the check runs seconds, not a full preset
    res = runner.invoke(app, argv + sets(TINY_SETS) + args + ["--run-dir", str(d)])
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error:")
    assert not d.exists() and not (home / "runs").exists()
    assert not (home / "home" / "teachers").exists()  # no teacher trained or cached
