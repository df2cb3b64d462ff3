"""The tidy export, checked against results.csv."""

import pandas as pd

from rcekd_tui.export import COLUMNS, export_tidy, tidy_results


def test_export_tidy_matches_results(write_run, tmp_path):
    run = write_run(methods=("scratch", "rcekd"), seeds=(0, 1))
    out = tmp_path / "x" / "tidy.csv"  # its folder is created
    export_tidy([run.root, run.root], out)
    df = pd.read_csv(out)
    assert list(df.columns) == COLUMNS
    res = pd.read_csv(run.results)
    want = res[(res.method == "rcekd") & (res.split == "test") & (res.seed == 1)]["NDCG@10"].iloc[0]
    got = df[(df.method == "rcekd") & (df.split == "test") & (df.metric == "NDCG@10") & (df.seed == 1)]["value"]
    assert len(got) == 2 and got.iloc[0] == want
    assert set(df.metric) == {"NDCG@10", "Recall@10", "NDCG@20", "Recall@20", "overlap@10"}
    assert df[df.method == "popularity"]["seed"].isna().all()  # reference rows have no seed
    assert not list(out.parent.glob("*.tmp"))


def test_runs_without_results_add_nothing(write_run, tmp_path):
    empty = write_run("empty", results=False)
    assert tidy_results([empty.root, tmp_path / "nowhere"]).empty
    assert list(tidy_results([empty.root]).columns) == COLUMNS


def test_export_of_an_engine_run(finished_run, tmp_path):
    df = export_tidy([finished_run], tmp_path / "tidy.csv")
    assert set(df.metric) >= {"NDCG@10", "Recall@10", "overlap@10"}
