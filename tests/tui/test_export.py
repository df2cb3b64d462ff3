"""Run summaries and the tidy export, checked against results.csv."""

import pandas as pd

from rcekd_tui.export import COLUMNS, export_tidy
from rcekd_tui.runinfo import config_diff, list_runs, run_status


def test_runs_listed_with_status(finished_run):
    runs = list_runs(finished_run.parent)
    assert [r.name for r in runs] == ["tiny-run"]
    r = runs[0]
    assert r.status == "finished" and r.dataset == "demo" and r.methods == ["scratch", "rcekd"]
    assert r.best_ndcg is not None and r.best_method in ("scratch", "rcekd")


def test_status_without_end(tmp_path):
    (tmp_path / "events.jsonl").write_text('{"type": "run_start"}\n')
    assert run_status(tmp_path) == "running"
    assert run_status(tmp_path, now=(tmp_path / "events.jsonl").stat().st_mtime + 3600) == "unknown/crashed"


def test_export_tidy_matches_results(finished_run, tmp_path):
    out = tmp_path / "x" / "tidy.csv"
    export_tidy([finished_run, finished_run], out)
    df = pd.read_csv(out)
    assert list(df.columns) == COLUMNS
    res = pd.read_csv(finished_run / "results.csv")
    want = res[(res.method == "rcekd") & (res.split == "test")]["NDCG@10"].iloc[0]
    got = df[(df.method == "rcekd") & (df.split == "test") & (df.metric == "NDCG@10")]["value"]
    assert len(got) == 2 and got.iloc[0] == want
    assert set(df.metric) >= {"NDCG@10", "Recall@10", "overlap@10"}


def test_config_diff_only_differences(finished_run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    text = (finished_run / "config.yaml").read_text().replace("epochs: 2", "epochs: 7", 1)
    (other / "config.yaml").write_text(text)
    diff = config_diff([finished_run, other])
    assert diff == {"teacher_train.epochs": [2, 7]}


def test_status_from_pid_file(tmp_path):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (tmp_path / "stdout.log").write_text("error: boom\n")
    (tmp_path / "pid").write_text(str(proc.pid))
    assert run_status(tmp_path) == "failed"  # exited before writing any event
