"""Sensitivity panels: rows → one panel per setting with a line per method, from sensitivity
rows or from a sweep's trial run directories (hand-written here), and the TUI's sweep screen."""

from __future__ import annotations

import math

import pytest
import yaml

from rcekd_tui.sensitivity import panels, rows_from_trials
from tests.conftest import write_run_dir

COL = "valid_NDCG@10"


def row(method, parameter, value, score, trial, state="complete"):
    return {"method": method, "parameter": parameter, "value": value, COL: score, "trial": trial, "state": state}


def test_a_panel_per_setting_a_line_per_method_and_the_best_trial_at_each_value():
    rows = [row("rcekd", "rcekd.lam", 0.1, 0.20, 0), row("rcekd", "rcekd.beta", 1, 0.20, 0),
            row("rcekd", "rcekd.lam", 0.1, 0.15, 1), row("rcekd", "rcekd.beta", 3, 0.15, 1),
            row("rcekd", "rcekd.lam", 0.01, 0.10, 2), row("rcekd", "rcekd.beta", 3, 0.10, 2),
            row("rcekd", "rcekd.lam", 1.0, None, 3, "diverged"), row("rcekd", "rcekd.beta", 5, None, 3, "diverged"),
            row("kd", "kd.lam", 0.001, 0.05, 0), row("kd", "kd.lam", 1.0, math.nan, 1),
            row("kd", "kd.lam", 0.01, 0.30, 2, "pruned")]
    lam, beta = panels(rows, COL)
    assert lam.setting == "lam" and lam.log  # positive values spanning 100x: a log axis
    assert lam.lines == {"rcekd": [(0.01, 0.10), (0.1, 0.20)], "kd": [(0.001, 0.05)]}  # max over beta at 0.1
    assert lam.x(0.01) == pytest.approx(-2.0)
    assert beta.setting == "beta" and not beta.log and beta.lines == {"rcekd": [(1, 0.20), (3, 0.15)]}
    assert beta.ticks() == ([1.0, 3.0], ["1", "3"])


def test_a_log_range_is_drawn_on_a_log_axis_and_words_on_a_categorical_one():
    rows = [row("kd", "kd.lam", 0.5, 0.1, 0), row("kd", "kd.lam", 1.0, 0.2, 1),
            row("kd", "kd.list", "teacher", 0.1, 0), row("kd", "kd.list", "student", 0.2, 1)]
    lam, lst = panels(rows, COL, {"kd.lam"})
    assert lam.log  # only 2x apart, but swept as log:
    assert lst.labels == ["student", "teacher"] and lst.x("teacher") == 1.0
    assert lst.lines == {"kd": [("student", 0.2), ("teacher", 0.1)]}


def write_sweep(root, scores: dict[str, tuple[float, float | None]]):
    """trials/<name>: kd.lam value and the validation score (None: still running)."""
    root.mkdir(parents=True)
    (root / "sweep.yaml").write_text(yaml.safe_dump(
        {"preset": "demo", "budgets": {"kd": len(scores)}, "metric": "NDCG@10", "methods": ["kd"],
         "params": [{"name": "kd.lam", "kind": "log", "spec": "kd.lam=log:0.001..1"}]}))
    for name, (lam, score) in scores.items():
        run = write_run_dir(root / "trials" / name, end=None if score is None else "finished", methods=("kd",),
                            results=score is not None)
        run.write_config({**run.read_config(), "kd": {"lam": lam, "K": 50}})
        if score is not None:
            run.write_results([{**r, "NDCG@10": score} if r["model"] == "student" and r["split"] == "valid" else r
                               for r in run.read_result_rows()])
    return root


def test_rows_come_from_the_finished_trials_run_directories(tmp_path):
    sweep = write_sweep(tmp_path / "s", {"kd-0": (0.001, 0.11), "kd-1": (0.1, 0.14), "kd-2": (1.0, None)})
    metric, logs, rows = rows_from_trials(sweep)
    assert metric == "NDCG@10" and logs == {"kd.lam"}
    assert sorted((r["value"], r[COL], r["trial"]) for r in rows) == [(0.001, 0.11, 0), (0.1, 0.14, 1)]
    (panel,) = panels(rows, COL, logs)
    assert panel.lines == {"kd": [(0.001, 0.11), (0.1, 0.14)]}


def test_an_unreadable_plan_gives_no_rows(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "sweep.yaml").write_text("not: [a plan")
    assert rows_from_trials(tmp_path / "s")[2] == []


async def test_the_sweep_screen_shows_progress_and_a_tab_per_swept_setting(tmp_path):
    from textual.widgets import DataTable, TabbedContent

    from rcekd_tui.app import RcekdApp
    from rcekd_tui.screens.run import RunScreen
    from rcekd_tui.screens.runs import RunsScreen
    from rcekd_tui.screens.sweep import SensitivityChart, SweepScreen

    root = tmp_path / "runs"
    write_sweep(root / "sw", {"kd-0": (0.001, 0.11), "kd-1": (0.1, 0.14)})
    app = RcekdApp(runs_root=root, prewarm=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("enter")  # the sweep's row: its own screen, not a trial
        for _ in range(40):
            await pilot.pause(0.05)
            if isinstance(app.screen, SweepScreen) and app.screen.query(SensitivityChart):
                break
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        table = screen.query_one("#sweep-progress", DataTable)
        assert [str(c) for c in table.get_row_at(0)][:2] == ["kd", "2 / 2"]
        chart = screen.query_one(SensitivityChart)
        assert chart.panel.setting == "lam" and chart.panel.lines["kd"] == [(0.001, 0.11), (0.1, 0.14)]
        assert screen.query_one(TabbedContent).active == "sens-0"
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
        assert app.screen.run_dir.parent == root / "sw" / "trials"
