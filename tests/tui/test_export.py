"""The tidy export, checked against results.csv; unreadable files and malformed rows are skipped and named."""

import pandas as pd
import pytest

from rcekd_core.errors import ConfigError
from rcekd_tui.export import COLUMNS, export_tidy, tidy_results
from rcekd_tui.resultsfile import Unreadable, read_results_file


def test_export_tidy_matches_results(write_run, tmp_path):
    run = write_run(methods=("scratch", "rcekd"), seeds=(0, 1))
    out = tmp_path / "x" / "tidy.csv"  # its folder is created
    tidy = export_tidy([run.root, run.root], out)
    assert tidy.notes == [] and tidy.read == [run.root, run.root]
    df = pd.read_csv(out)
    assert list(df.columns) == COLUMNS
    res = pd.read_csv(run.results)
    want = res[(res.method == "rcekd") & (res.split == "test") & (res.seed == 1)]["NDCG@10"].iloc[0]
    got = df[(df.method == "rcekd") & (df.split == "test") & (df.metric == "NDCG@10") & (df.seed == 1)]["value"]
    assert len(got) == 2 and got.iloc[0] == want
    assert set(df.metric) == {"NDCG@10", "Recall@10", "NDCG@20", "Recall@20", "overlap@10"}
    assert df[df.method == "popularity"]["seed"].isna().all()  # reference rows have no seed
    assert not list(out.parent.glob("*.tmp"))


def test_runs_without_results_add_nothing_and_are_named(write_run, tmp_path):
    empty = write_run("empty", results=False)
    tidy = tidy_results([empty.root, tmp_path / "nowhere"])
    assert tidy.frame.empty and list(tidy.frame.columns) == COLUMNS and tidy.read == []
    assert tidy.notes == [f"skipped run '{empty.root}': '{empty.root}' has no results.csv",
                          f"skipped run '{tmp_path / 'nowhere'}': '{tmp_path / 'nowhere'}' has no results.csv"]
    with pytest.raises(ConfigError, match="no run could be read"):
        export_tidy([empty.root], tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_export_of_an_engine_run(finished_run, tmp_path):
    df = export_tidy([finished_run], tmp_path / "tidy.csv").frame
    assert set(df.metric) >= {"NDCG@10", "Recall@10", "overlap@10"}


BAD_FILES = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is binary"),
    "latin1": ("model,method,seed,split,NDCG@10\nstudent,caf\xe9,0,test,0.1\n".encode("latin-1"), "not UTF-8"),
    "no keys": (b"a,b\n1,2\n", "lacks model, method, seed, split"),
    "empty": (b"", "is empty"),
    "repeated header": (b"model,method,seed,split,NDCG@10,NDCG@10\n", "repeats a column"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_unreadable_results_files(write_run, kind):
    data, reason = BAD_FILES[kind]
    run = write_run(kind)
    run.results.write_bytes(data)
    with pytest.raises(Unreadable, match=reason):
        read_results_file(run.root)


def test_malformed_rows_are_skipped_counted_and_named(write_run, tmp_path):
    good, bad = write_run("good"), write_run("bad")
    with bad.results.open("a") as fh:
        fh.write("student,kd,0,test,0.5\n")  # too few cells
        fh.write("student,kd,zero,test,0.5,0.5,0.5,0.5,0.5,2\n")  # a seed that is not an integer
        fh.write("student,kd,1,test,high,0.5,0.5,0.5,0.5,2\n")  # a metric that is not a number
        fh.write(",kd,2,test,0.5,0.5,0.5,0.5,0.5,2\n")  # no model
        fh.write("\n")  # a blank line is not a row
        fh.write("student,kd,3,test,0.5,0.6,0.7,0.8,0.9,2\n")  # fine
    found = read_results_file(bad.root)
    n_rows = len(good.read_result_rows())
    assert len(found.rows) == n_rows + 1 and found.bad == [n_rows + 2, n_rows + 3, n_rows + 4, n_rows + 5]
    tidy = export_tidy([good.root, bad.root], tmp_path / "tidy.csv")
    assert tidy.notes == [f"skipped 4 malformed rows (lines {n_rows + 2}, {n_rows + 3}, {n_rows + 4}, …) "
                          f"of '{bad.results}'"]
    df = pd.read_csv(tmp_path / "tidy.csv")
    kd = df[(df.run == "bad") & (df.method == "kd")]
    assert sorted(kd.seed.unique()) == [3] and len(kd) == 5  # the one good kd row, its five metrics
    assert len(df[df.run == "good"]) == len(df[(df.run == "bad") & (df.method != "kd")])


def test_a_binary_run_is_skipped_and_the_rest_exported(write_run, tmp_path):
    good, broken = write_run("good"), write_run("broken")
    broken.results.write_bytes(b"\x00\x01\x02\x03" * 100)
    tidy = export_tidy([good.root, broken.root], tmp_path / "tidy.csv")
    assert tidy.read == [good.root] and len(tidy.notes) == 1 and "is binary" in tidy.notes[0]
    assert set(pd.read_csv(tmp_path / "tidy.csv").run) == {"good"}


def test_out_must_be_a_writable_file_path(write_run, tmp_path):
    run = write_run()
    with pytest.raises(ConfigError, match="is a folder"):
        export_tidy([run.root], tmp_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="cannot write"):
        export_tidy([run.root], tmp_path / "afile" / "tidy.csv")
    assert (tmp_path / "afile").read_text() == "x"


def test_the_status_of_each_row_is_exported(write_run, tmp_path):
    run = write_run(methods=("scratch", "kd"), seeds=(0,))
    res = pd.read_csv(run.results)
    res["status"] = ["diverged" if m == "kd" else "finished" for m in res["method"]]
    res.to_csv(run.results, index=False)
    df = export_tidy([run.root], tmp_path / "t.csv").frame
    assert set(df[df.method == "kd"]["status"]) == {"diverged"}
    assert set(df[df.method != "kd"]["status"]) == {"finished"}
    old = write_run("old", methods=("scratch",), seeds=(0,))  # written before rows had a status
    assert set(tidy_results([old.root]).frame["status"]) == {"finished"}
