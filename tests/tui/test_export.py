"""The tidy export, checked against results.csv; unreadable files and malformed rows are skipped and named."""

import pandas as pd
import pytest

from rcekd_core.errors import ConfigError
from rcekd_tui.export import COLUMNS, NO_SEED, StillRunning, export_tidy, tidy_results
from rcekd_tui.resultsfile import Unreadable, read_results_file
from rcekd_tui.screens.export_job import export_path, start_export
from tests.conftest import write_run_dir


def test_export_tidy_matches_results(write_run, tmp_path):
    run = write_run(methods=("scratch", "rcekd"), seeds=(0, 1))
    out = tmp_path / "x" / "tidy.csv"  # its folder is created
    tidy = export_tidy([run.root], out)
    assert tidy.notes == [] and tidy.read == [run.root]
    df = pd.read_csv(out)
    assert list(df.columns) == COLUMNS
    res = pd.read_csv(run.results)
    want = res[(res.method == "rcekd") & (res.split == "test") & (res.seed == 1)]["NDCG@10"].iloc[0]
    got = df[(df.method == "rcekd") & (df.split == "test") & (df.metric == "NDCG@10") & (df.seed == 1)]["value"]
    assert len(got) == 1 and got.iloc[0] == want
    assert set(df.metric) == {"NDCG@10", "Recall@10", "NDCG@20", "Recall@20", "overlap@10"}
    assert not list(out.parent.glob("*.tmp"))


def test_seed_reads_back_as_an_integer_column(write_run, tmp_path):
    """pandas reads `seed` as int64 with no dtype given: popularity, which no seed changes, says NO_SEED."""
    run = write_run(methods=("scratch", "rcekd"), seeds=(0, 1))
    export_tidy([run.root], tmp_path / "tidy.csv")
    df = pd.read_csv(tmp_path / "tidy.csv")
    assert pd.api.types.is_integer_dtype(df["seed"])
    assert sorted(df[df.method.isin(["scratch", "rcekd"])]["seed"].unique()) == [0, 1]
    assert set(df[df.method == "popularity"]["seed"]) == {NO_SEED} and set(df[df.method == "teacher"]["seed"]) == {0}
    assert len(df.groupby(["method", "seed"])) == 6  # teacher, popularity (kept: a NaN key would be dropped), 2 x 2
    with_dtype = pd.read_csv(tmp_path / "tidy.csv", dtype={"seed": "Int64"})
    assert with_dtype["seed"].tolist() == df["seed"].tolist()


def test_the_same_run_named_twice_is_exported_once(write_run, tmp_path):
    run = write_run()
    once = export_tidy([run.root], tmp_path / "once.csv")
    spellings = [run.root, run.root, run.root.parent / ".." / "runs" / "run"]
    twice = export_tidy(spellings, tmp_path / "twice.csv")
    assert twice.read == [run.root] and len(twice.frame) == len(once.frame)
    assert twice.notes == [f"'{run.root}' named twice: exported once",
                           f"'{spellings[2]}' is '{run.root}' again: exported once"]
    export_tidy([run.root], tmp_path / "once.csv")  # exporting again replaces the file, adds nothing
    assert pd.read_csv(tmp_path / "once.csv").equals(pd.read_csv(tmp_path / "twice.csv"))


def test_runs_of_the_same_name_are_told_apart_by_path(tmp_path):
    a = write_run_dir(tmp_path / "sweep-a" / "trials" / "kd-0")
    b = write_run_dir(tmp_path / "sweep-b" / "trials" / "kd-0")
    df = export_tidy([a.root, b.root], tmp_path / "tidy.csv").frame
    assert set(df.run) == {str(a.root), str(b.root)}
    assert len(df[df.run == str(a.root)]) == len(df[df.run == str(b.root)])


def test_a_running_run_is_refused_unless_partial(write_run, tmp_path):
    done, running = write_run("done"), write_run("live", end=None)  # no end event, written just now: running
    out = tmp_path / "tidy.csv"
    with pytest.raises(StillRunning, match=r"run '.*live' is still running; export it when it has finished, "
                                           r"or pass --partial"):
        export_tidy([done.root, running.root], out)
    assert not out.exists()
    df = export_tidy([done.root, running.root], out, partial=True).frame
    assert list(df.columns) == COLUMNS + ["partial"]
    assert set(df[df.run == "live"]["partial"]) == {True} and set(df[df.run == "done"]["partial"]) == {False}
    assert pd.read_csv(out)["partial"].dtype == bool
    only_done = export_tidy([done.root], out, partial=True).frame  # the same columns when none is running
    assert list(only_done.columns) == COLUMNS + ["partial"] and not only_done["partial"].any()


def test_tui_exports_of_the_same_second_get_their_own_files(tmp_path):
    first = export_path(tmp_path)
    first.write_text("x")
    second = export_path(tmp_path)
    assert second != first and second.name.startswith(first.stem) and second.suffix == ".csv"


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


class InlineScreen:
    """What start_export needs of a screen, running its worker at once on this thread."""

    def __init__(self):
        self.notes: list[tuple[str, str]] = []
        self.app = self

    def call_from_thread(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)

    def run_worker(self, job, **kwargs):
        job()

    def notify(self, text, severity="information", markup=True):
        self.notes.append((text, severity))


def test_the_tui_export_refuses_a_running_run_with_a_warning(write_run, tmp_path):
    done, live = write_run("done"), write_run("live", end=None)
    screen = InlineScreen()
    start_export(screen, [done.root, live.root], tmp_path, "wrote {rows} rows to {out}")
    [(text, severity)] = screen.notes
    assert severity == "warning" and text.startswith("not exported: live is still running")
    assert "--partial" in text and not list(tmp_path.glob("export-*.csv"))
    start_export(screen, [done.root, done.root], tmp_path, "wrote {rows} rows to {out}")  # one run, selected twice
    text, severity = screen.notes[-1]
    assert text.startswith(f"wrote {len(tidy_results([done.root]).frame)} rows to") and severity == "warning"
    assert text.endswith("named twice: exported once")
