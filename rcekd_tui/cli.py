"""The `rcekd` command line (Typer): train-teacher, distill, data, presets, tui, watch, runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

from rcekd_core.errors import ConfigError, RcekdError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Knowledge distillation for recommender systems (RCE-KD), headless or live.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: list the sources, show statistics.")
presets_app = typer.Typer(no_args_is_help=True, help="Experiment presets in presets/*.yaml.")
runs_app = typer.Typer(no_args_is_help=True, help="Past runs: export, combine.")
app.add_typer(data_app, name="data")
app.add_typer(presets_app, name="presets")
app.add_typer(runs_app, name="runs")

console = Console()
DEFAULT_RUNS = Path("runs")

PresetOpt = typer.Option("demo", "--preset", "-p", help="Preset name (see `rcekd presets list`) or a YAML path.")
SetOpt = typer.Option(None, "--set", help="Override a setting, e.g. --set rcekd.K=100 (repeatable).")
DeviceOpt = typer.Option(None, "--device", help="auto | cpu | cuda (default: the preset's, usually auto).")
DataFileOpt = typer.Option(None, "--data-file", help="Your own CSV/TSV with user, item, timestamp columns.")
RunDirOpt = typer.Option(None, "--run-dir", help="Where to write the run (default runs/<preset>-<time>).")


def fail(message: str) -> None:
    """One line naming the problem and the fix, exit code 2, no traceback."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def build_config(preset: str, sets: list[str] | None, extra: dict[str, Any]):
    from rcekd_core.config import load_config, merge, parse_overrides

    overrides = merge(parse_overrides(sets or []), extra)
    return load_config(preset, overrides)


def csv_list(text: str | None, kind: type, name: str) -> list | None:
    if text is None:
        return None
    try:
        return [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--{name} expects a comma-separated list, e.g. --{name} 0,1,2; got '{text}'")


def fresh_run_dir(run_dir: Path | None, name: str) -> Path:
    if run_dir is None:
        run_dir = DEFAULT_RUNS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (run_dir / "events.jsonl").exists():
        raise ConfigError(f"'{run_dir}' already holds a run; pass a new --run-dir or delete that folder")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir '{run_dir}' is a file; pass a folder path")
    return run_dir


def data_overrides(data_file: Path | None) -> dict[str, Any]:
    return {"data": {"source": "file", "file": str(data_file)}} if data_file else {}


def execute(cfg, run_dir: Path | None, teacher_only: bool) -> tuple[Path, list[dict[str, Any]]]:
    from rcekd_core.experiment import Experiment, prepare

    from .progress import ConsoleDisplay

    display = ConsoleDisplay(console)
    prep = prepare(cfg, say=display.say)  # every input check happens before the run dir exists
    target = fresh_run_dir(run_dir, cfg.name)
    display.say(f"run directory: {target}")
    rows = Experiment(prep, target, display).run_all(teacher_only=teacher_only)
    return target, rows


def guarded(fn):
    """Map RcekdError (and Ctrl-C) to a one-line message and an exit code."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RcekdError as e:
            fail(str(e))
        except KeyboardInterrupt:
            Console(stderr=True).print("interrupted: the run directory records the run as stopped")
            raise typer.Exit(130)

    return wrapper


@app.command("train-teacher")
@guarded
def train_teacher(
    preset: str = PresetOpt,
    data_file: Optional[Path] = DataFileOpt,
    seed: Optional[int] = typer.Option(None, "--seed", help="Teacher seed (default: the preset's teacher_seed)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Maximum teacher epochs."),
    device: Optional[str] = DeviceOpt,
    run_dir: Optional[Path] = RunDirOpt,
    sets: Optional[list[str]] = SetOpt,
) -> None:
    """Train (or load from the cache) and evaluate the teacher of a preset."""
    extra: dict[str, Any] = data_overrides(data_file)
    if seed is not None:
        extra["teacher_seed"] = seed
    if epochs is not None:
        extra["teacher_train"] = {"epochs": epochs}
    if device is not None:
        extra["device"] = device
    cfg = build_config(preset, sets, extra)
    target, rows = execute(cfg, run_dir, teacher_only=True)
    print_results(rows, target)


@app.command()
@guarded
def distill(
    preset: str = PresetOpt,
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated methods, e.g. scratch,kd,rcekd, or all."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated student seeds, e.g. 0,1,2."),
    data_file: Optional[Path] = DataFileOpt,
    device: Optional[str] = DeviceOpt,
    run_dir: Optional[Path] = RunDirOpt,
    sets: Optional[list[str]] = SetOpt,
) -> None:
    """The main job: teacher (cached), then every method x seed; prints a comparison table."""
    extra: dict[str, Any] = data_overrides(data_file)
    if methods is not None:
        extra["methods"] = csv_list(methods, str, "methods")
    if seeds is not None:
        extra["seeds"] = csv_list(seeds, int, "seeds")
    if device is not None:
        extra["device"] = device
    cfg = build_config(preset, sets, extra)
    target, rows = execute(cfg, run_dir, teacher_only=False)
    print_results(rows, target)


def print_results(rows: list[dict[str, Any]], run_dir: Path) -> None:
    import pandas as pd

    from rcekd_core.report import best_other_gain, significance, summarize

    df = pd.DataFrame(rows)
    s = summarize(df, "test")
    table = Table(title=f"test metrics (full ranking, history masked) — {run_dir}")
    table.add_column("method")
    table.add_column("seeds", justify="right")
    for m in ("NDCG@10", "Recall@10", "NDCG@20", "Recall@20", "overlap@10"):
        table.add_column(m, justify="right")
    for _, r in s.iterrows():
        cells = []
        for m in ("NDCG@10", "Recall@10", "NDCG@20", "Recall@20", "overlap@10"):
            mean, std = r.get(f"{m} mean"), r.get(f"{m} std")
            cells.append("" if mean is None else f"{mean:.4f} ± {std:.4f}" if r["seeds"] > 1 else f"{mean:.4f}")
        table.add_row(str(r["method"]), str(r["seeds"]), *cells)
    console.print(table)
    gain = best_other_gain(df)
    if gain:
        console.print(f"rcekd vs best other method ({gain[0]}): {gain[1]:+.1%} test NDCG@10")
    sig = significance(df)
    if not sig.empty:
        sig.to_csv(run_dir / "significance.csv", index=False)
    s.to_csv(run_dir / "summary.csv", index=False)
    console.print(f"results: {run_dir / 'results.csv'}  summary: {run_dir / 'summary.csv'}")


# ---- data ------------------------------------------------------------------------------

@data_app.command("list")
@guarded
def data_list() -> None:
    """The named data sources."""
    from rcekd_core.data.sources import SOURCES

    table = Table("name", "description", "expected after preprocessing")
    for s in SOURCES.values():
        exp = s.expected or {}
        table.add_row(s.name, s.description, ", ".join(f"{k} {v}" for k, v in exp.items()))
    console.print(table)


@data_app.command("info")
@guarded
def data_info(
    name: str = typer.Argument(..., help="A source from `rcekd data list`, or a preset name."),
    data_file: Optional[Path] = DataFileOpt,
    sets: Optional[list[str]] = SetOpt,
) -> None:
    """Users, items, interactions and mean sequence length after preprocessing."""
    from rcekd_core.config import DataConfig, _build, list_presets, load_preset_dict, merge, parse_overrides
    from rcekd_core.data.loader import dataset_info
    from rcekd_core.data.sources import source_names

    over = merge(parse_overrides(sets or []), data_overrides(data_file)).get("data", {})
    if name in source_names():
        base = {"source": name}
        if name in list_presets() and load_preset_dict(name).get("data", {}).get("source") == name:
            base = load_preset_dict(name)["data"]
    elif name in list_presets():
        base = load_preset_dict(name).get("data", {})
    else:
        raise ConfigError(f"unknown dataset '{name}'; choose from: {', '.join(source_names())}")
    cfg = _build(DataConfig, merge(base, over), "data.")
    info = dataset_info(cfg)
    for k, v in info.items():
        console.print(f"{k:>13}: {v:.2f}" if isinstance(v, float) else f"{k:>13}: {v}", highlight=False)


# ---- presets ---------------------------------------------------------------------------

@presets_app.command("list")
def presets_list() -> None:
    """Every preset with its dataset and teacher/student sizes."""
    from rcekd_core.config import list_presets, load_preset_dict

    table = Table("preset", "dataset", "teacher", "student", "methods")
    for name in list_presets():
        d = load_preset_dict(name)
        t, s = d.get("teacher", {}), d.get("student", {})
        size = lambda m: (f"{m.get('arch', 'sasrec')} d{m.get('dim')}" + (f"×{m['blocks']}" if "blocks" in m else "")
                          + (f" len{m['max_len']}" if "max_len" in m else ""))
        data = d.get("data", {})
        dataset = f"{data.get('source')} ({data.get('protocol', 'loo')})"
        table.add_row(name, dataset, size(t), size(s), ",".join(d.get("methods", [])))
    console.print(table)


@presets_app.command("show")
@guarded
def presets_show(name: str = typer.Argument(..., help="Preset name.")) -> None:
    """The fully resolved configuration of a preset."""
    from rcekd_core.config import load_config

    console.print(yaml.safe_dump(load_config(name).to_dict(), sort_keys=False), highlight=False)


# ---- TUI and runs ----------------------------------------------------------------------

@app.command()
def tui(runs_root: Path = typer.Option(DEFAULT_RUNS, "--runs-root", help="Folder holding run directories.")) -> None:
    """The interactive app: set up, launch, watch, browse, compare and export runs."""
    from .app import run_tui

    run_tui(runs_root)


@app.command()
@guarded
def watch(run_dir: Path = typer.Argument(..., help="A run directory (one with events.jsonl).")) -> None:
    """Follow a run live (or replay a finished one) in the terminal UI."""
    if not (run_dir / "events.jsonl").exists():
        raise ConfigError(f"'{run_dir}' has no events.jsonl; pass a run directory written by rcekd distill")
    from .app import run_watch

    run_watch(run_dir)


@runs_app.command("export")
@guarded
def runs_export(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories to export."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV file to write."),
) -> None:
    """One tidy CSV (run, method, seed, split, metric, value) for the given runs."""
    from .export import export_tidy

    for d in run_dirs:
        if not (d / "results.csv").exists():
            raise ConfigError(f"'{d}' has no results.csv; pass finished run directories")
    df = export_tidy(run_dirs, out)
    console.print(f"wrote {len(df)} rows to {out}")


@runs_app.command("combine")
@guarded
def runs_combine(
    run_dirs: list[Path] = typer.Argument(..., help="Finished runs of one experiment (methods or seeds split across runs)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the combined results.csv, summary.csv, significance.csv."),
) -> None:
    """One comparison (table, summary, significance tests) from runs of the same teacher and student."""
    from rcekd_core.runs.store import atomic_write

    from .combine import combine_runs

    if (out / "results.csv").exists() or (out / "events.jsonl").exists():
        raise ConfigError(f"'{out}' already holds results; pass a new --out folder")
    combined, provenance = combine_runs(run_dirs)  # every check happens before anything is written
    atomic_write(out / "results.csv", combined.to_csv(index=False))
    atomic_write(out / "combined.yaml", yaml.safe_dump(provenance, sort_keys=False))
    print_results(combined.to_dict("records"), out)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
