"""`rcekd watch`, `runs export` and `runs combine` on damaged input: one line, exit 2, no traceback,
nothing written; what can be read is, and what was skipped is said."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from rcekd_tui.cli import app

runner = CliRunner()  # hand-written run directories: tests/conftest.py (write_run)


def one_line_error(res, needle: str) -> None:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)  # typer.Exit(2), nothing else
    assert needle in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output


# ---- watch ----------------------------------------------------------------------------------

@pytest.fixture
def watched(monkeypatch):
    """The run directories `rcekd watch` would open (the app is not started)."""
    import rcekd_tui.app

    seen = []
    monkeypatch.setattr(rcekd_tui.app, "run_watch", seen.append)
    return seen


def test_watch_refuses_what_is_not_a_run_directory(tmp_path, write_run, watched):
    one_line_error(runner.invoke(app, ["watch", str(tmp_path / "nowhere")]), "does not exist")
    (tmp_path / "file.txt").write_bytes(b"\x00\xff")
    one_line_error(runner.invoke(app, ["watch", str(tmp_path / "file.txt")]), "is a file")
    run = write_run()
    one_line_error(runner.invoke(app, ["watch", str(run.root.parent)]), "holds run directories")
    assert watched == []


def test_watch_waits_for_a_run_that_has_not_started(tmp_path, write_run, watched):
    (tmp_path / "starting").mkdir()
    res = runner.invoke(app, ["watch", str(tmp_path / "starting")])
    assert res.exit_code == 0, res.output
    binary = write_run("binary")
    binary.events.write_bytes(b"\x00\x01\xff\n" * 10)  # the screen skips and counts such lines
    assert runner.invoke(app, ["watch", str(binary.root)]).exit_code == 0
    assert watched == [tmp_path / "starting", binary.root]


# ---- runs export ----------------------------------------------------------------------------

BROKEN = {
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
    "latin1": "model,method,seed,split,NDCG@10\nstudent,caf\xe9,0,test,0.1\n".encode("latin-1"),
    "no key columns": b"a,b,c\n1,2,3\n",
    "empty": b"",
}


@pytest.mark.parametrize("kind", BROKEN)
def test_export_of_only_unreadable_runs_fails_and_writes_nothing(write_run, tmp_path, kind):
    run = write_run()
    run.results.write_bytes(BROKEN[kind])
    out = tmp_path / "tidy.csv"
    res = runner.invoke(app, ["runs", "export", str(run.root), "-o", str(out)])
    one_line_error(res, "no run could be read")
    assert str(run.results) in res.output or str(run.root) in res.output
    assert not out.exists()


def test_export_skips_an_unreadable_run_and_says_so(write_run, tmp_path):
    good, broken = write_run("good"), write_run("broken")
    broken.results.write_bytes(BROKEN["binary"])
    out = tmp_path / "tidy.csv"
    res = runner.invoke(app, ["runs", "export", str(good.root), str(broken.root), "-o", str(out)])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("warning: skipped run") and "is binary" in lines[0]
    assert lines[1].startswith("wrote ") and "from 1 run(s)" in lines[1]
    assert out.read_text().startswith("run,method,seed,split,status,metric,value\n")


def test_export_skips_malformed_rows_and_counts_them(write_run, tmp_path):
    run = write_run()
    with run.results.open("a") as fh:
        fh.write("student,kd,zero,test,0.5,0.5,0.5,0.5,0.5,2\n")
        fh.write("not,enough\n")
    out = tmp_path / "tidy.csv"
    res = runner.invoke(app, ["runs", "export", str(run.root), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "warning: skipped 2 malformed rows" in res.output and str(run.results) in res.output
    assert ",kd," not in out.read_text()


def test_export_out_must_be_a_file_path(write_run, tmp_path):
    run = write_run()
    folder = tmp_path / "exports"
    folder.mkdir()
    one_line_error(runner.invoke(app, ["runs", "export", str(run.root), "-o", str(folder)]), "is a folder")
    assert list(folder.iterdir()) == []
    (tmp_path / "afile").write_text("keep")
    one_line_error(runner.invoke(app, ["runs", "export", str(run.root), "-o", str(tmp_path / "afile" / "x.csv")]),
                   "cannot write")
    assert (tmp_path / "afile").read_text() == "keep"


def test_export_of_a_run_without_results_still_fails(tmp_path):
    one_line_error(runner.invoke(app, ["runs", "export", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.csv")]),
                   "has no results.csv")
    assert not (tmp_path / "x.csv").exists()


# ---- runs combine ---------------------------------------------------------------------------

@pytest.fixture
def two_runs(write_run):
    """One experiment run twice: scratch in one, kd in the other (hand-written)."""
    return write_run("a", methods=("scratch",)), write_run("b", methods=("kd",))


def combine(a, b, out):
    return runner.invoke(app, ["runs", "combine", str(a.root), str(b.root), "--out", str(out)])


def test_hand_written_runs_combine(two_runs, tmp_path):
    res = combine(*two_runs, tmp_path / "both")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "both" / "results.csv").is_file() and (tmp_path / "both" / "summary.csv").is_file()


DAMAGE = {
    "binary results": ("results.csv", BROKEN["binary"], "is binary"),
    "latin-1 results": ("results.csv", BROKEN["latin1"], "is not UTF-8 text"),
    "results without key columns": ("results.csv", BROKEN["no key columns"], "not a run written by rcekd distill"),
    "empty results": ("results.csv", b"", "is empty"),
    "binary config": ("config.yaml", b"\x00\xff\xfe\x01 binary", "is not UTF-8 text"),
    "config that is a list": ("config.yaml", b"- a\n- b\n", "not a mapping"),
    "config that is not YAML": ("config.yaml", b"data: [unclosed\n", "is not valid YAML"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_combine_refuses_a_damaged_run_naming_the_file(two_runs, tmp_path, kind):
    a, b = two_runs
    name, data, needle = DAMAGE[kind]
    (b.root / name).write_bytes(data)
    out = tmp_path / "out"
    res = combine(a, b, out)
    one_line_error(res, needle)
    assert str(b.root) in res.output
    assert not out.exists()


@pytest.mark.parametrize("row, needle", [
    ("student,kd,1,test,0.5\n", "1 malformed row"),  # too few cells
    ("student,kd,one,test,0.5,0.5,0.5,0.5,0.5,2\n", "1 malformed row"),  # seed not an integer
    ("student,kd,1,test,NaN-ish,0.5,0.5,0.5,0.5,2\n", "1 malformed row"),  # metric not a number
    ("student,kd,0,test,0.5,0.5,0.5,0.5,0.5,2\n", "more than once"),  # kd seed 0 test is there already
])
def test_combine_refuses_partial_or_repeated_rows(two_runs, tmp_path, row, needle):
    a, b = two_runs
    with b.results.open("a") as fh:
        fh.write(row)
    out = tmp_path / "out"
    res = combine(a, b, out)
    one_line_error(res, needle)
    assert str(b.results) in res.output and not out.exists()


def test_combine_refuses_a_missing_config(two_runs, tmp_path):
    a, b = two_runs
    b.config.unlink()
    one_line_error(combine(a, b, tmp_path / "out"), "has no config.yaml")


def test_combine_out_must_be_a_folder(two_runs, tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("mine")
    one_line_error(combine(*two_runs, out), "is a file")
    assert out.read_text() == "mine"
    (tmp_path / "afile").write_text("x")
    one_line_error(combine(*two_runs, tmp_path / "afile" / "sub"), "cannot write")
    assert (tmp_path / "afile").read_text() == "x"


def test_combine_with_a_config_whose_runtime_is_odd(two_runs, tmp_path):
    a, b = two_runs
    cfg = yaml.safe_load(b.config.read_text())
    b.config.write_text(yaml.safe_dump({**cfg, "runtime": "not a mapping"}))
    res = combine(a, b, tmp_path / "out")
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output


def test_tui_refuses_a_runs_root_that_is_a_file(tmp_path, monkeypatch):
    import rcekd_tui.app

    monkeypatch.setattr(rcekd_tui.app, "run_tui", lambda root: pytest.fail("the app must not start"))
    (tmp_path / "runs").write_bytes(b"\x00")
    one_line_error(runner.invoke(app, ["tui", "--runs-root", str(tmp_path / "runs")]), "is a file")
