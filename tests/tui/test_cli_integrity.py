"""No silently wrong number, nothing half-written: divergence, every setting's range, run-dir safety."""

from __future__ import annotations

import dataclasses
import math
import stat
import typing

import pandas as pd
import pytest
from typer.testing import CliRunner

from rcekd_core.config import default_config
from rcekd_tui.cli import app

runner = CliRunner()


def test_a_diverged_fit_is_marked_left_out_and_fails_the_run(preset, home):
    d = home / "run"
    res = runner.invoke(app, ["distill", "--preset", preset, "--run-dir", str(d), "--set", "kd.tau=1e-45"])
    assert res.exit_code == 1, res.output
    assert "1 fit(s) diverged: kd seed 0 (epoch 1)" in res.output and "Traceback" not in res.output
    results = pd.read_csv(d / "results.csv")
    kd = results[results["method"] == "kd"]
    assert set(kd["status"]) == {"diverged"} and kd["NDCG@10"].isna().all()  # no number, never inf
    assert set(results[results["method"] != "kd"]["status"]) == {"finished"}
    assert "kd" not in set(pd.read_csv(d / "summary.csv")["method"])
    assert "kd" not in set(pd.read_csv(d / "significance.csv")["versus"])
    metrics = pd.read_csv(d / "metrics.csv").select_dtypes("number")
    assert metrics.apply(lambda c: c.dropna().map(math.isfinite).all()).all()
    assert (d / "events.jsonl").read_text().count('"kind": "Diverged"') == 1


def _out_of_range(f: dataclasses.Field, tp) -> list[str]:
    """Values just outside a setting's declared range (and a word for Literal choices)."""
    m, out = f.metadata, []
    if typing.get_origin(tp) is typing.Literal:
        return ["bogus"]
    whole = tp is int or typing.get_args(tp) == (int,)
    if m.get("gt") is not None:
        out.append(m["gt"])
    if m.get("ge") is not None:
        out.append(m["ge"] - 1)
    if m.get("lt") is not None:
        out.append(m["lt"])
    if m.get("le") is not None:
        out.append(m["le"] + 1)
    if not whole and out:
        out.append("nan")
    return [str(int(v)) if whole and not isinstance(v, str) else str(v) for v in out]


def _settings() -> list[tuple[str, str]]:
    cfg = default_config()
    sections = {name: getattr(cfg, name) for name in ("data", "teacher", "student", "teacher_train",
                                                        "student_train", "eval")}
    sections.update(cfg.method_settings)
    cases = []
    for name, section in sections.items():
        hints = typing.get_type_hints(type(section))
        for f in dataclasses.fields(section):
            tp = hints[f.name]
            if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
                tp = next(a for a in typing.get_args(tp) if a is not type(None))
            cases += [(f"{name}.{f.name}", v) for v in _out_of_range(f, tp)]
    cases += [("seeds", "-1"), ("teacher_seed", str(2**40)), ("kd_positions", "middle"), ("device", "tpu")]
    return cases


CASES = _settings()


def test_the_walk_covers_every_bounded_setting():
    keys = {k for k, _ in CASES}
    assert {"rcekd.gamma", "student.dropout", "data.noise", "eval.ks", "de.tau_end", "kd.list"} <= keys
    assert len(keys) > 60


@pytest.mark.parametrize("key, value", CASES)
def test_every_out_of_range_setting_is_one_line_exit_2_nothing_written(key, value, preset, home):
    d = home / "bad"
    res = runner.invoke(app, ["distill", "--preset", preset, "--run-dir", str(d), "--set", f"{key}={value}"])
    assert res.exit_code == 2, (key, value, res.output)
    assert res.output.strip().count("\n") == 0 and "Traceback" not in res.output
    assert key.split(".")[-1] in res.output
    assert not d.exists()


@pytest.mark.parametrize("setup, needle", [
    (lambda d: (d / "config.yaml").write_text("mine"), "is not empty"),  # a user's folder
    (lambda d: (d / "results.csv").write_text("model\n"), "already holds a run"),  # a combine output
])
def test_a_used_folder_is_never_overwritten(setup, needle, preset, home):
    d = home / "used"
    d.mkdir()
    setup(d)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    res = runner.invoke(app, ["distill", "--preset", preset, "--run-dir", str(d)])
    assert res.exit_code == 2 and needle in res.output
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


@pytest.mark.parametrize("name", ["/abs/x", "../up", "a b", ""])
def test_a_run_name_cannot_leave_the_runs_folder(name, preset, home):
    res = runner.invoke(app, ["distill", "--preset", preset, "--set", f"name={name}"])
    assert res.exit_code == 2 and "plain folder name" in res.output
    assert not (home / "runs").exists()


def test_duplicate_yaml_keys_and_non_utf8_presets_are_one_line(home):
    dup = home / "dup.yaml"
    dup.write_text("kd: {K: 5}\nkd: {K: 6}\n")
    res = runner.invoke(app, ["distill", "--preset", str(dup)])
    assert res.exit_code == 2 and "given twice" in res.output
    binary = home / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    res = runner.invoke(app, ["distill", "--preset", str(binary)])
    assert res.exit_code == 2 and "not UTF-8" in res.output


def test_written_files_are_readable_by_others(preset, home):
    d = home / "run"
    res = runner.invoke(app, ["distill", "--preset", preset, "--run-dir", str(d), "--methods", "scratch"])
    assert res.exit_code == 0, res.output
    for name in ("config.yaml", "results.csv", "summary.csv", "metrics.csv", "events.jsonl"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o644, name


def test_a_full_disk_is_one_line_and_keeps_what_was_written(preset, home, monkeypatch):
    from rcekd_core.runs import store

    real = store.atomic_write
    writes = {"results": 0}

    def write(path, data):
        if path.name == "results.csv":
            writes["results"] += 1
            if writes["results"] == 2:  # the teacher's rows are written, the first student's are not
                raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(store, "atomic_write", write)
    d = home / "run"
    res = runner.invoke(app, ["distill", "--preset", preset, "--run-dir", str(d)])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines()[-1].startswith("error: cannot read or write")
    assert "No space left on device" in res.output and str(d / "results.csv") in res.output
    kept = pd.read_csv(d / "results.csv")
    assert set(kept["model"]) == {"teacher", "popularity"}  # the earlier results are intact
    assert not list(d.rglob("*.tmp"))


def test_an_empty_run_dir_is_refused_not_taken_as_the_current_folder(preset, home):
    res = runner.invoke(app, ["distill", "--preset", preset, "--run-dir", ""])
    assert res.exit_code == 2 and "--run-dir is empty" in res.output
    assert not (home / "config.yaml").exists() and not (home / "events.jsonl").exists()
