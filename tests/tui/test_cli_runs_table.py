"""`rcekd runs table`: the paper table of a run (or of runs of one experiment) on stdout or in a
file; bad input is one line, exit 2, and no file."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from typer.testing import CliRunner

from rcekd_tui.cli import app

runner = CliRunner()  # hand-written run directories: tests/conftest.py (write_run, NDCG)

SECTIONS = {"data": {"source": "demo", "file": None, "protocol": "loo"},
            "teacher": {"arch": "sasrec", "dim": 64}, "student": {"arch": "gru4rec", "dim": 8},
            "kd": {"lam": 0.01}, "rcekd": {"lam": 0.1}}


def configured(run, **extra):
    """A hand-written run whose config names the backbones, the protocol and each method's λ."""
    run.write_config(run.read_config() | SECTIONS | extra)
    return run


@pytest.fixture
def three_seeds(write_run):
    return configured(write_run("three", methods=("scratch", "kd", "rcekd"), seeds=(0, 1, 2)))


# seed s adds s/1000 to every metric (conftest's NDCG): std .001 (.002 for Recall, twice the base),
# and rcekd − kd is the same on every seed, so the paired test gives p = 0 (**)
MARKDOWN = """\
| method | λ | NDCG@10 | Recall@10 | NDCG@20 | Recall@20 |
|---|---:|---:|---:|---:|---:|
| teacher |  | 0.3000 | 0.6000 | 0.3200 | 0.6400 |
| popularity |  | 0.0500 | 0.1000 | 0.0700 | 0.1400 |
| scratch |  | 0.1010 ± 0.0010 | 0.2020 ± 0.0020 | 0.1210 ± 0.0010 | 0.2420 ± 0.0020 |
| kd | 0.01 | 0.1210 ± 0.0010 | 0.2420 ± 0.0020 | 0.1410 ± 0.0010 | 0.2820 ± 0.0020 |
| rcekd | 0.1 | **0.1510 ± 0.0010**\\*\\* | **0.3020 ± 0.0020**\\*\\* | **0.1710 ± 0.0010**\\*\\* | \
**0.3420 ± 0.0020**\\*\\* |

Table: Test results at the best validation epoch on demo, leave-one-out split; teacher SASRec d=64, \
student GRU4Rec d=8; mean ± std over 3 seeds. Bold: the best student on each metric. \\* / \\*\\*: rcekd \
better than the best other student on that metric (paired t-test over seeds, p < 0.05 / p < 0.01).
"""


def test_markdown_on_stdout(three_seeds):
    res = runner.invoke(app, ["runs", "table", str(three_seeds.root)])
    assert res.exit_code == 0, res.output
    assert res.stdout == MARKDOWN


def test_latex_to_a_file_written_whole(three_seeds, tmp_path):
    out = tmp_path / "tables" / "results.tex"
    res = runner.invoke(app, ["runs", "table", str(three_seeds.root), "--format", "latex", "--out", str(out),
                              "--metrics", "NDCG@10,Recall@10"])
    assert res.exit_code == 0, res.output
    assert f"wrote the latex table of 1 run(s) to {out}" in res.output
    tex = out.read_text()
    assert tex.startswith("\\begin{table}[t]\n") and tex.endswith("\\end{table}\n")
    assert "    rcekd & 0.1 & \\textbf{0.1510 $\\pm$ 0.0010}$^{**}$ & \\textbf{0.3020 $\\pm$ 0.0020}$^{**}$ \\\\\n" in tex
    assert "NDCG@20" not in tex and "student GRU4Rec d=8" in tex
    assert [p.name for p in out.parent.iterdir()] == ["results.tex"]  # no temporary file left


def test_csv_of_runs_combined(write_run):
    a = configured(write_run("a", methods=("scratch", "kd"), seeds=(0, 2)))
    b = configured(write_run("b", methods=("rcekd",), seeds=(0, 2)))
    res = runner.invoke(app, ["runs", "table", str(a.root), str(b.root), "--format", "csv", "--metrics", "NDCG@10"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(io.StringIO(res.stdout)).set_index("method")
    assert list(table.index) == ["teacher", "popularity", "scratch", "kd", "rcekd"]  # a's methods, then b's
    assert table.loc["kd", "lambda"] == 0.01 and table.loc["rcekd", "lambda"] == 0.1
    assert table.loc["rcekd", "seeds"] == 2 and table.loc["rcekd", "NDCG@10 mean"] == pytest.approx(0.151)
    assert table.loc["scratch", "NDCG@10 std"] == pytest.approx(0.002 / 2 ** 0.5, rel=1e-4)  # .100, .102
    assert table.loc["rcekd", "NDCG@10 versus"] == "kd" and table.loc["rcekd", "NDCG@10 p_value"] == 0.0


def test_one_seed_prints_no_std(write_run):
    run = configured(write_run("one", methods=("scratch", "kd", "rcekd"), seeds=(0,)))
    res = runner.invoke(app, ["runs", "table", str(run.root), "--metrics", "NDCG@10"])
    assert res.exit_code == 0, res.output
    assert "| rcekd | 0.1 | **0.1500** |\n" in res.stdout and "±" not in res.stdout.split("Table:")[0]
    assert "one seed per method (no std)" in res.stdout and "No significance test" in res.stdout


def refused(args, needle, out):
    res = runner.invoke(app, ["runs", "table", *map(str, args), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not out.exists()


def test_bad_input_is_one_line_and_writes_nothing(three_seeds, write_run, tmp_path):
    out = tmp_path / "table.md"
    refused([three_seeds.root, "--format", "html"], "unknown --format 'html'; choose from md, latex, csv", out)
    refused([three_seeds.root, "--metrics", "NDCG@5"], "unknown metric NDCG@5; choose from NDCG@10", out)
    refused([write_run("empty", results=False).root], "has no results.csv", out)
    stopped = write_run("stopped")
    stopped.write_results_frame(stopped.read_results().assign(status="stopped"))
    refused([stopped.root], "no finished fit has test results", out)
    other = write_run("other", methods=("rcekd",))
    other.write_config(other.read_config() | SECTIONS | {"data": {"source": "ml-100k"}})
    refused([three_seeds.root, other.root], "differ in data", out)
    folder = tmp_path / "folder"
    folder.mkdir()
    res = runner.invoke(app, ["runs", "table", str(three_seeds.root), "--out", str(folder)])
    assert res.exit_code == 2 and "is a folder; pass a file path" in res.output and not any(folder.iterdir())
