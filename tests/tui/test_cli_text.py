"""What the CLI prints for a researcher at an 80-column terminal: the distill summary and epoch
lines, --version and --help, presets list, and runs export (running runs, repeats, stray files)."""

from __future__ import annotations

import io
from importlib.metadata import version

import pandas as pd
from rich.console import Console
from typer.testing import CliRunner

from rcekd_core.config import list_presets, load_preset_dict
from rcekd_tui import cli
from rcekd_tui.cli import app

runner = CliRunner()  # fixtures home, preset (the tiny experiment), write_run: tests/conftest.py
HEADLINE = ["NDCG@10", "Recall@10", "NDCG@20", "Recall@20"]


def test_distill_at_80_columns_fits_every_line(preset, home, monkeypatch):
    res = runner.invoke(app, ["distill", "--preset", preset, "--run-dir", "r", "--seeds", "0,1"],
                        env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    too_long = [line for line in lines if len(line) > 80]
    assert not too_long, "\n".join(too_long)
    header = next(line for line in lines if line.startswith("method"))
    assert header.split() == ["method", "seeds", *HEADLINE]  # each name in full, none cut
    assert "…" not in res.output
    table = [line.split() for line in lines[lines.index(header):] if line.split()[1:2] and line.split()[1].isdigit()]
    rows = {cells[0]: cells[1:] for cells in table}
    assert list(rows) == ["teacher", "popularity", "scratch", "kd", "rcekd"]
    assert rows["teacher"][0] == "1" and "±" not in " ".join(rows["teacher"])
    assert rows["rcekd"][0] == "2" and len(rows["rcekd"]) == 5 and all("±" in c for c in rows["rcekd"][1:])
    assert any(line.startswith("overlap@10 with the teacher:") for line in lines)  # its column had no room
    assert any(line.startswith("rcekd/1 ep 2  loss ") for line in lines)  # the epoch lines, short labels

    wide = Console(width=160, file=io.StringIO())  # the same results on a wide terminal
    monkeypatch.setattr(cli, "console", wide)
    cli.print_results(pd.read_csv(home / "r" / "results.csv").to_dict("records"), home / "r")
    text = wide.file.getvalue()
    assert next(line for line in text.splitlines() if line.startswith("method")).split() == [
        "method", "seeds", *HEADLINE, "overlap@10"]
    assert " ± " in text and "with the teacher:" not in text


def test_version_and_where_to_start():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output == f"rcekd {version('rcekd')}\n"
    res = runner.invoke(app, ["--help"], env={"COLUMNS": "80"})
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "Start here: rcekd distill --preset demo" in text and "or rcekd tui" in text
    assert "--version" in text


def test_presets_list_demo_first_then_by_name_with_descriptions(monkeypatch):
    monkeypatch.delenv("RCEKD_PRESETS", raising=False)  # the shipped presets only
    res = runner.invoke(app, ["presets", "list"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    names = [line.split()[0] for line in lines[2:] if line.strip() and not line[0].isspace()]
    shipped = list_presets()
    assert names == ["demo"] + sorted(set(shipped) - {"demo"})
    assert all(len(line) <= 80 for line in lines) and "…" not in res.output
    demo_row = next(i for i, line in enumerate(lines) if line.startswith("demo "))
    assert "Embedded synthetic" in lines[demo_row]  # presets/demo.yaml's first comment line
    words = set(res.output.replace(",", " ").split())
    assert {m for name in shipped for m in load_preset_dict(name).get("methods", [])} <= words  # none cut
    assert cli.preset_description(shipped["demo"]) == "Embedded synthetic dataset: a quick first run on a laptop CPU."
    assert cli.preset_description(shipped["ml-100k"]) == "MovieLens-100K (offline from the RecBole wheel): SASRec d=128x2 -> d=32x1."


def test_export_refuses_a_running_run_unless_partial(write_run, tmp_path):
    done, live = write_run("done"), write_run("live", end=None)  # no end event, written just now: running
    out = tmp_path / "tidy.csv"
    res = runner.invoke(app, ["runs", "export", str(done.root), str(live.root), "-o", str(out)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"run '{live.root}' is still running; export it when it has finished, or pass --partial" in res.output
    assert not out.exists()
    res = runner.invoke(app, ["runs", "export", str(done.root), str(live.root), "-o", str(out), "--partial"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)
    assert df.groupby("run")["partial"].all().to_dict() == {"done": False, "live": True}


def test_export_twice_and_with_a_run_named_twice_writes_each_row_once(write_run, tmp_path):
    a, b = write_run("a"), write_run("b")
    out = tmp_path / "tidy.csv"
    first = runner.invoke(app, ["runs", "export", str(a.root), str(b.root), "-o", str(out)])
    assert first.exit_code == 0, first.output
    once = pd.read_csv(out)
    again = runner.invoke(app, ["runs", "export", str(a.root), str(b.root), f"{a.root}/", "-o", str(out)])
    assert again.exit_code == 0 and "exported once" in again.output
    assert pd.read_csv(out).equals(once) and not once.duplicated().any()


def test_export_refuses_a_file_among_the_runs(write_run, tmp_path):
    """`rcekd runs export runs/* -o runs/all.csv` run a second time: all.csv is not a run."""
    run = write_run()
    earlier = run.root.parent / "all.csv"
    earlier.write_text("run,method\n")
    res = runner.invoke(app, ["runs", "export", str(run.root), str(earlier), "-o", str(earlier)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"'{earlier}' is a file, not a run directory" in res.output and "runs/*/" in res.output
    assert earlier.read_text() == "run,method\n"
