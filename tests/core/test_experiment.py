"""run_experiment() end to end on a tiny demo config: every method, the teacher trajectory,
metrics.csv columns that follow what was measured, and the tables it writes itself."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from rcekd_core.config import load_config
from rcekd_core.errors import ConfigError
from rcekd_core.experiment import run_experiment
from rcekd_core.kd.registry import METHODS
from rcekd_core.runs.events import Epoch, RunWarning, read_events
from rcekd_core.runs.store import RunDir

TINY = {
    "name": "tiny",
    "data": {"source": "demo", "n_users": 50, "n_items": 40, "n_clusters": 4, "mean_len": 8},
    "teacher": {"dim": 8, "blocks": 1, "heads": 1, "max_len": 10},
    "student": {"dim": 4, "blocks": 1, "heads": 1, "max_len": 10},
    "teacher_train": {"epochs": 3, "patience": 5},
    "student_train": {"epochs": 2, "patience": 5},
    "eval": {"overlap_k": 5},
    "methods": ["all"],
    "kd": {"K": 5},
    "rcekd": {"K": 5, "L": 5, "M": 10},
    "rrd": {"K": 4, "L": 6, "M": 10},
    "dcd": {"K": 4, "M": 10},
    "cd": {"N": 10},
    "unkd": {"pairs": 2},
    "hetcomp": {"K": 5, "p": 1, "every": 1},
    "de": {"experts": 3},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Every method once on the tiny demo, with its own RCEKD_HOME (teacher cache)."""
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("RCEKD_HOME", str(home))
    try:
        cfg = load_config("demo", TINY)
        d = RunDir(tmp_path_factory.mktemp("runs") / "all")
        rows = run_experiment(cfg, d.root)
        yield cfg, d, rows
    finally:
        mp.undo()


def students(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["model"] == "student"]


def test_every_method_runs_end_to_end(run):
    cfg, d, rows = run
    results = d.read_results()
    assert len(results) == len(rows)
    want = set(METHODS)
    assert want == {"scratch", "kd", "rcekd", "rrd", "dcd", "cd", "unkd", "hetcomp", "de"}
    assert set(students(results)["method"]) == want
    assert results["NDCG@10"].notna().all()
    entry = Path(d.read_config()["runtime"]["teacher_cache"])  # the cache entry the run published
    assert sorted(p.name for p in (entry / "trajectory").glob("*.pt")) == ["epoch1.pt", "epoch2.pt", "epoch3.pt"]
    events = read_events(d.events)
    assert events[0].type == "run_start" and events[-1].type == "end" and events[-1].status == "finished"
    warnings = [e for e in events if isinstance(e, RunWarning)]
    best = int(results[results.model == "teacher"]["best_epoch"].iloc[0])
    if best > 1:  # a checkpoint precedes the best epoch: the trajectory is used
        assert not warnings
    else:
        assert len(warnings) == 1 and warnings[0].method == "hetcomp" and "best epoch" in warnings[0].message
    kd_losses = [e.get("kd_loss") for e in events if isinstance(e, Epoch) and e.method in want - {"scratch"}]
    assert len(kd_losses) == 2 * (len(want) - 1) and all(math.isfinite(x) for x in kd_losses)


def test_metrics_columns_follow_what_was_measured(run):
    _, d, _ = run
    metrics = d.read_metrics()
    st = students(metrics)
    assert "overlap@5" in metrics.columns and "overlap@10" not in metrics.columns
    assert st["overlap@5"].between(0, 1).all()  # every validated student epoch
    assert metrics[metrics["model"] == "teacher"]["overlap@5"].isna().all()  # no reference for the teacher
    for column, method in (("stage", "hetcomp"), ("de_tau", "de"), ("gamma", "rcekd")):
        assert column in metrics.columns
        mine = st["method"] == method
        assert mine.sum() == 2 and st.loc[mine, column].notna().all(), column
        assert st.loc[~mine, column].isna().all(), column  # no other method reports it
    assert (st[st["method"] == "hetcomp"]["stage"] >= 0).all() and (st[st["method"] == "de"]["de_tau"] > 0).all()
    assert {"valid_NDCG@10", "valid_Recall@20", "epoch", "seconds", "best_epoch"} <= set(metrics.columns)
    results = d.read_results()
    assert "overlap@5" in results.columns and "overlap@10" not in results.columns


def test_summary_and_significance_are_written_by_run_experiment(run):
    _, d, _ = run
    summary = pd.read_csv(d.summary)
    assert list(summary["method"][:2]) == ["teacher", "popularity"]
    assert set(summary["method"]) == set(METHODS) | {"teacher", "popularity"}
    assert {"NDCG@10 mean", "NDCG@10 std", "overlap@5 mean"} <= set(summary.columns)
    sig = pd.read_csv(d.significance)
    assert set(sig["versus"]) == set(METHODS) - {"rcekd"} and (sig["method"] == "rcekd").all()
    assert (sig["split"] == "test").all() and (sig["paired_seeds"] == 1).all()


def test_a_used_run_directory_is_refused_and_left_alone(run, monkeypatch, tmp_path):
    cfg, d, _ = run
    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))
    before = {p.name: p.stat().st_mtime_ns for p in d.root.iterdir()}
    with pytest.raises(ConfigError, match="already holds a run"):
        run_experiment(cfg, d.root)
    assert {p.name: p.stat().st_mtime_ns for p in d.root.iterdir()} == before
    assert not (tmp_path / "home" / "teachers").exists()  # nothing trained


@pytest.mark.parametrize("positions", ["last", "all"])
def test_a_sequential_pair_runs_under_the_ratio_protocol(positions, tmp_path, monkeypatch):
    """The paper's protocol for its HSTU runs: per-user 80/10/10, the validation and test sets
    as targets, students distilled at the last training state or at every training prefix."""
    from rcekd_core.data.sequences import SequenceData
    from rcekd_core.experiment import kd_positions, prepare
    from rcekd_core.kd.contexts import KDContexts
    from rcekd_core.runs.events import Phase

    monkeypatch.setenv("RCEKD_HOME", str(tmp_path / "home"))
    cfg = load_config("demo", {**TINY, "methods": ["scratch", "kd", "rcekd"], "kd_positions": positions,
                               "data": {**TINY["data"], "protocol": "ratio", "mean_len": 20}})
    data: SequenceData = prepare(cfg).data
    assert data.multi_target and int(data.n_valid.max()) >= 2  # sets, not single items
    d = RunDir(tmp_path / "run")
    run_experiment(cfg, d.root)
    results = d.read_results()
    assert set(results["protocol"]) == {"ratio"} and results["NDCG@10"].notna().all()
    view = next(e for e in read_events(d.events) if isinstance(e, Phase) and e.phase == "teacher_view")
    contexts = KDContexts(data, kd_positions(cfg), cfg.student.max_len)
    want = data.n_users if positions == "last" else int((data.train_lengths - 1).clamp(0, 9).sum())
    assert view.contexts == contexts.n == want
