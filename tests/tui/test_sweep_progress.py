"""A sweep's progress as the runs list and `rcekd watch` read it: from the trials' run
directories (hand-written here), without the sweep's storage."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from rcekd_tui.cli import app
from rcekd_tui.runinfo import list_runs
from rcekd_tui.sweepinfo import newest_trial, sweep_progress
from tests.conftest import NDCG, write_run_dir

runner = CliRunner()


def write_sweep(root, trials: dict[str, str | None]):
    """A sweep folder: scratch gets 1 trial, kd 2; `trials` maps trial dir name -> end status."""
    root.mkdir(parents=True)
    (root / "sweep.yaml").write_text(yaml.safe_dump(
        {"preset": "demo", "budgets": {"scratch": 1, "kd": 2}, "metric": "NDCG@10", "methods": ["scratch", "kd"]}))
    for name, end in trials.items():
        write_run_dir(root / "trials" / name, end=end, methods=(name.rsplit("-", 1)[0],), results=end is not None)
    return root


def test_progress_counts_finished_trials_per_method_and_the_best_validation_score(tmp_path):
    sweep = write_sweep(tmp_path / "s", {"scratch-0": "finished", "kd-1": "finished", "kd-2": None})
    p = sweep_progress(sweep)
    assert (p.done, p.budget) == (2, 3)
    assert p.done_by == {"scratch": 1, "kd": 1}
    assert p.best == {"scratch": pytest.approx(NDCG["scratch"] + 0.01), "kd": pytest.approx(NDCG["kd"] + 0.01)}
    assert p.best_method()[0] == "kd" and p.status == "sweep 2/3"


def test_failed_and_diverged_trials_spend_their_slot_but_give_no_score(tmp_path):
    from rcekd_core.runs.store import RunDir

    sweep = write_sweep(tmp_path / "s", {"scratch-0": "failed", "kd-1": "finished", "kd-2": None})
    diverged = RunDir(sweep / "trials" / "kd-1")
    diverged.write_results([{**r, "status": "diverged"} for r in diverged.read_result_rows()])
    p = sweep_progress(sweep)
    assert p.done_by == {"scratch": 1, "kd": 1}  # kd-2 died mid-run (no end, no process): not done
    assert p.best == {}


def test_the_runs_list_shows_a_sweep_beside_runs(tmp_path):
    root = tmp_path / "runs"
    write_run_dir(root / "plain")
    write_sweep(root / "sw", {"scratch-0": "finished", "kd-1": "finished"})
    (root / "broken").mkdir()
    (root / "broken" / "sweep.yaml").write_text("not: [a plan")
    runs = {r.name: r for r in list_runs(root)}
    assert set(runs) == {"plain", "sw"}  # an unreadable plan is left out, not an error
    assert runs["sw"].sweep and runs["sw"].status == "sweep 2/3"
    assert runs["sw"].best_method == "kd, valid" and runs["sw"].best_ndcg == pytest.approx(NDCG["kd"] + 0.01)
    assert not runs["plain"].sweep


def test_newest_trial_is_the_one_written_last(tmp_path):
    import os

    sweep = write_sweep(tmp_path / "s", {"scratch-0": "finished", "kd-1": "finished"})
    old = sweep / "trials" / "scratch-0"
    for f in old.iterdir():
        os.utime(f, (1, 1))
    assert newest_trial(sweep).name == "kd-1"


def test_watch_on_a_finished_sweep_prints_its_table_and_returns(tmp_path):
    sweep = write_sweep(tmp_path / "s", {"scratch-0": "finished", "kd-1": "finished", "kd-2": "finished"})
    res = runner.invoke(app, ["watch", str(sweep)])
    assert res.exit_code == 0, res.output
    assert "3/3 trials done" in res.output and "kd" in res.output and "every trial is done" in res.output
