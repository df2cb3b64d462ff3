"""`rcekd runs combine`: one comparison from runs split by method or seed; unlike runs refused."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rcekd_tui.cli import app

runner = CliRunner()  # fixtures home, preset, tiny_settings: tests/conftest.py


def distill(preset, run_dir, *args):
    res = runner.invoke(app, ["distill", "--preset", preset, "--run-dir", str(run_dir), *args])
    assert res.exit_code == 0, res.output
    return run_dir


@pytest.fixture
def split_runs(preset, home):
    """The same experiment run as two invocations: scratch on seeds 0,1; kd and rcekd on seeds 0,1."""
    a = distill(preset, home / "a", "--methods", "scratch", "--seeds", "0,1")
    b = distill(preset, home / "b", "--methods", "kd,rcekd", "--seeds", "0,1")
    return a, b


def test_combine_gives_one_table_with_significance(split_runs, home, tiny_settings):
    a, b = split_runs
    out = home / "both"
    res = runner.invoke(app, ["runs", "combine", str(a), str(b), "--out", str(out)])
    assert res.exit_code == 0, res.output
    combined = pd.read_csv(out / "results.csv")
    ra, rb = pd.read_csv(a / "results.csv"), pd.read_csv(b / "results.csv")
    # references once, every student row of both runs unchanged
    assert (combined["method"] == "teacher").sum() == 2 and (combined["method"] == "popularity").sum() == 2
    students = combined[combined["model"] == "student"].reset_index(drop=True)
    expected = pd.concat([ra[ra["model"] == "student"], rb[rb["model"] == "student"]], ignore_index=True)
    pd.testing.assert_frame_equal(students, expected, check_dtype=False)
    sig = pd.read_csv(out / "significance.csv")
    assert set(sig["versus"]) == {"scratch", "kd"} and (sig["paired_seeds"] == 2).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["method"][:2]) == ["teacher", "popularity"]
    assert set(summary["method"]) == {"teacher", "popularity", "scratch", "kd", "rcekd"}
    prov = yaml.safe_load((out / "combined.yaml").read_text())
    assert prov["combined_from"] == [str(a), str(b)]
    assert prov["methods"]["rcekd"]["run"] == str(b) and prov["methods"]["rcekd"]["settings"]["K"] == tiny_settings["rcekd"]["K"]
    assert "rcekd vs best other method" in res.output


def test_a_combined_folder_gives_the_table_of_its_runs(split_runs, home):
    """`runs table OUT` of a combine output prints what `runs table A B` prints; a combined.yaml
    without its config (an older rcekd's) is refused with the way out."""
    a, b = split_runs
    out = home / "both"
    assert runner.invoke(app, ["runs", "combine", str(a), str(b), "--out", str(out)]).exit_code == 0
    of_runs = runner.invoke(app, ["runs", "table", str(a), str(b), "--format", "latex"])
    of_folder = runner.invoke(app, ["runs", "table", str(out), "--format", "latex"])
    assert of_folder.exit_code == 0, of_folder.output
    assert of_folder.output == of_runs.output and "kd" in of_folder.output and "rcekd" in of_folder.output
    prov = yaml.safe_load((out / "combined.yaml").read_text())
    del prov["config"]
    (out / "combined.yaml").write_text(yaml.safe_dump(prov))
    res = runner.invoke(app, ["runs", "table", str(out)])
    assert res.exit_code == 2 and "keeps no config" in res.output and "combined_from" in res.output
    assert "Traceback" not in res.output


def refused(args, needle, out):
    res = runner.invoke(app, ["runs", "combine", *map(str, args), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (out / "results.csv").exists() and not (out / "combined.yaml").exists()


def test_unlike_runs_are_refused_and_nothing_is_written(split_runs, preset, home):
    a, b = split_runs
    out = home / "out"
    refused([a, a], "is in both", out)  # the same method x seed twice
    refused([a], "at least two", out)
    other_lam = distill(preset, home / "lam", "--methods", "kd", "--seeds", "2", "--set", "kd.lam=0.5")
    refused([b, other_lam], "kd.lam", out)  # one method, two settings
    other_student = distill(preset, home / "dim", "--methods", "kd", "--seeds", "2", "--set", "student.dim=8")
    refused([a, other_student], "student.dim", out)
    other_teacher = distill(preset, home / "teach", "--methods", "kd", "--seeds", "2", "--set", "teacher.dim=8")
    refused([a, other_teacher], "teacher.dim", out)
    refused([a, home / "nowhere"], "has no results.csv", out)
    (home / "broken").mkdir()
    (home / "broken" / "results.csv").write_text("not,a\nrun\n")
    (home / "broken" / "config.yaml").write_text("name: x\n")
    refused([a, home / "broken"], "not a run written by rcekd distill", out)


def test_combine_refuses_an_out_folder_that_holds_results(split_runs, home):
    a, b = split_runs
    out = home / "both"
    assert runner.invoke(app, ["runs", "combine", str(a), str(b), "--out", str(out)]).exit_code == 0
    before = (out / "results.csv").read_text()
    res = runner.invoke(app, ["runs", "combine", str(a), str(b), "--out", str(out)])
    assert res.exit_code == 2 and "already holds results" in res.output
    assert (out / "results.csv").read_text() == before


def test_seeds_of_one_method_split_across_runs_combine(split_runs, preset, home):
    a, _ = split_runs
    c = distill(preset, home / "c", "--methods", "scratch", "--seeds", "2")
    out = home / "seeds"
    assert runner.invoke(app, ["runs", "combine", str(a), str(c), "--out", str(out)]).exit_code == 0
    summary = pd.read_csv(out / "summary.csv").set_index("method")
    assert summary.loc["scratch", "seeds"] == 3
    test = pd.read_csv(out / "results.csv").query("method == 'scratch' and split == 'test'")
    assert sorted(test["seed"]) == [0, 1, 2]
    assert summary.loc["scratch", "NDCG@10 mean"] == pytest.approx(test["NDCG@10"].mean())


def test_a_teacher_with_other_metrics_is_refused(split_runs, home):
    a, b = split_runs
    results = pd.read_csv(b / "results.csv")
    results.loc[results["model"] == "teacher", "NDCG@10"] += 0.01  # as if retrained differently
    results.to_csv(b / "results.csv", index=False)
    refused([a, b], "different teachers", home / "out")
