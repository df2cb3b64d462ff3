"""The `rcekd` command line (Typer): train-teacher, distill, data, presets, tui, watch, runs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

from rcekd_core.errors import ConfigError, RcekdError
from rcekd_core.runs import (
    store,  # file names for help texts (light: no torch, no pandas)
)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Knowledge distillation for recommender systems (RCE-KD), headless or live.\n\n"
                       "Start here: rcekd distill --preset demo (headless: teacher, students, a table), "
                       "or rcekd tui (set up, watch and compare runs).")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: list the sources, show statistics.")
presets_app = typer.Typer(no_args_is_help=True, help="Experiment presets in presets/*.yaml.")
runs_app = typer.Typer(no_args_is_help=True, help="Past runs: export, combine, table.")
app.add_typer(data_app, name="data")
app.add_typer(presets_app, name="presets")
app.add_typer(runs_app, name="runs")



def torchrun_rank() -> int:
    """This process's rank under torchrun (0 without it); read from the environment, no torch import."""
    return int(os.environ.get("RANK", "0") or 0) if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 else 0


QUIET = torchrun_rank() > 0  # torchrun rank > 0 prints nothing: rank 0 speaks for the run
console = Console(quiet=QUIET)
DEFAULT_RUNS = Path("runs")

DEFAULT_PRESET = "demo"
PresetOpt = typer.Option(None, "--preset", "-p", help="Preset name (see `rcekd presets list`) or a YAML path; default demo.")
SetOpt = typer.Option(None, "--set", help="Override a setting, e.g. --set rcekd.K=100 (repeatable).")
DeviceOpt = typer.Option(None, "--device", help="auto | cpu | cuda (default: the preset's, usually auto).")
DataFileOpt = typer.Option(None, "--data-file", help="Your own CSV/TSV with user, item, timestamp columns.")
RunDirOpt = typer.Option(None, "--run-dir",
                         help="Where to write the run: a new or empty folder (default runs/<preset>-<time>).")
NoRetrainOpt = typer.Option(False, "--no-retrain", help="Refuse a corrupt teacher cache entry instead of "
                            "setting it aside and training the teacher again.")


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rcekd")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed; pip install -e .)"


def print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"rcekd {package_version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    pass  # the options of `rcekd` itself; the help text is the app's


def fail(message: str) -> None:
    """One line naming the problem and the fix, exit code 2, no traceback."""
    Console(stderr=True, quiet=QUIET).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def build_config(preset: str | None, sets: list[str] | None, extra: dict[str, Any]):
    from rcekd_core.config import load_config, merge, parse_overrides

    overrides = merge(parse_overrides(sets or []), extra)
    return load_config(preset or DEFAULT_PRESET, overrides)


def csv_list(text: str | None, kind: type, name: str) -> list | None:
    if text is None:
        return None
    try:
        return [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--{name} expects a comma-separated list, e.g. --{name} 0,1,2; got '{text}'")


def default_run_dir(run_dir: str | None, name: str) -> Path:
    if run_dir is not None and not run_dir.strip():  # it would mean the current folder: never guessed
        raise ConfigError("--run-dir is empty; name a new folder, e.g. --run-dir runs/mine")
    return Path(run_dir) if run_dir is not None else DEFAULT_RUNS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def data_overrides(data_file: Path | None) -> dict[str, Any]:
    return {"data": {"source": "file", "file": str(data_file)}} if data_file else {}


def execute(cfg, run_dir: str | None, teacher_only: bool, retrain: bool = True,
            workers: int = 1) -> tuple[Path, list[dict[str, Any]]]:
    from rcekd_core.experiment import run_experiment

    from .progress import ConsoleDisplay

    display = ConsoleDisplay(console)
    if QUIET:  # torchrun rank > 0: its run events never reach the display; its progress lines neither
        display.say = lambda text: None
    target = default_run_dir(run_dir, cfg.name)
    stop_on_signals()
    rows = run_experiment(cfg, target, display, teacher_only=teacher_only, say=display.say, retrain=retrain,
                          workers=workers)
    return target, rows


def stop_on_signals() -> None:
    """SIGTERM (a scheduler's kill) and SIGHUP (a dropped SSH session) stop the run as Ctrl-C
    does: the engine writes an `end` event, and `rcekd distill --resume` can continue it."""
    import signal

    from rcekd_core.errors import Interrupted

    def handler(signum, frame):
        raise Interrupted(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def guarded(fn):
    """Map RcekdError, OSError and signals to a one-line message and an exit code."""
    import functools

    from rcekd_core.errors import Diverged, Interrupted, WorkerFailed

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (Diverged, WorkerFailed) as e:  # a teacher that diverged, a worker that failed: a failed run
            Console(stderr=True, quiet=QUIET).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        except RcekdError as e:
            fail(str(e))
        except Interrupted as e:
            Console(stderr=True, quiet=QUIET).print(
                f"stopped by signal {e.signum}: the run directory records the run as "
                "stopped; `rcekd distill --resume DIR` continues it")
            raise typer.Exit(128 + e.signum)
        except KeyboardInterrupt:
            Console(stderr=True, quiet=QUIET).print("interrupted: the run directory records the run as stopped; "
                                       "`rcekd distill --resume DIR` continues it")
            raise typer.Exit(130)
        except OSError as e:  # disk full, permission denied, read-only folder, ...
            where = f" {e.filename}" if e.filename else ""
            fail(f"cannot read or write{where} ({e.strerror or e.__class__.__name__}); free space, fix the "
                 "permissions or choose another folder (what was written before is kept)")

    return wrapper


@app.command("train-teacher")
@guarded
def train_teacher(
    preset: Optional[str] = PresetOpt,
    data_file: Optional[Path] = DataFileOpt,
    seed: Optional[int] = typer.Option(None, "--seed", help="Teacher seed (default: the preset's teacher_seed)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Maximum teacher epochs."),
    device: Optional[str] = DeviceOpt,
    run_dir: Optional[str] = RunDirOpt,
    sets: Optional[list[str]] = SetOpt,
    no_retrain: bool = NoRetrainOpt,
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
    target, rows = execute(cfg, run_dir, teacher_only=True, retrain=not no_retrain)
    print_results(rows, target)
    report_unfinished(rows, target)


@app.command()
@guarded
def distill(
    preset: Optional[str] = PresetOpt,
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated methods, e.g. scratch,kd,rcekd, or all."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated student seeds, e.g. 0,1,2."),
    data_file: Optional[Path] = DataFileOpt,
    device: Optional[str] = DeviceOpt,
    run_dir: Optional[str] = RunDirOpt,
    sets: Optional[list[str]] = SetOpt,
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue the run in this directory (killed, stopped or failed): fits with "
        "results are kept, the interrupted one continues from its last completed epoch."),
    include_diverged: bool = typer.Option(
        False, "--include-diverged", help="Keep diverged fits (at their best epoch before diverging) in "
        f"{store.SUMMARY} and {store.SIGNIFICANCE} (same as --set eval.report_diverged=true)."),
    no_retrain: bool = NoRetrainOpt,
    workers: Optional[int] = typer.Option(
        None, "--workers", help="Processes for the method x seed student fits (default 1: one after another "
        "in this process); each gets cores / N threads, and the results are those of the sequential run."),
) -> None:
    """The main job: teacher (cached), then every method x seed; prints a comparison table."""
    if resume is not None:
        given = [flag for flag, v in (("--preset", preset), ("--methods", methods), ("--seeds", seeds),
                                      ("--data-file", data_file), ("--device", device), ("--run-dir", run_dir),
                                      ("--set", sets), ("--include-diverged", include_diverged or None),
                                      ("--workers", workers))
                 if v is not None]
        if given:
            raise ConfigError(f"--resume continues a run with the settings it started with; drop {', '.join(given)}")
        target, rows = execute_resume(resume, retrain=not no_retrain)
    else:
        extra: dict[str, Any] = data_overrides(data_file)
        if methods is not None:
            extra["methods"] = csv_list(methods, str, "methods")
        if seeds is not None:
            extra["seeds"] = csv_list(seeds, int, "seeds")
        if device is not None:
            extra["device"] = device
        if include_diverged:
            extra["eval"] = {"report_diverged": True}
        cfg = build_config(preset, sets, extra)
        target, rows = execute(cfg, run_dir, teacher_only=False, retrain=not no_retrain, workers=1 if workers is None else workers)
    print_results(rows, target)
    report_unfinished(rows, target)


def execute_resume(run_dir: Path, retrain: bool = True) -> tuple[Path, list[dict[str, Any]]]:
    from rcekd_core.experiment import resume_experiment

    from .progress import ConsoleDisplay

    display = ConsoleDisplay(console)
    stop_on_signals()
    return run_dir, resume_experiment(run_dir, display, say=display.say, retrain=retrain)


def report_unfinished(rows: list[dict[str, Any]], run_dir: Path) -> None:
    """Stopped fits: how to finish them. Diverged fits: one line and exit code 1."""
    def fits(status: str) -> list[str]:
        seen = {(r["method"], r["seed"], r.get("epochs")) for r in rows
                if r.get("status") == status and r.get("model") != "popularity"}
        return [f"{m}" + (f" seed {s}" if s not in ("", None) else "") + f" (epoch {e})" for m, s, e in sorted(seen, key=str)]

    stopped = fits("stopped")
    if stopped:
        console.print(f"stopped early, not in the summary: {', '.join(stopped)}; "
                      f"`rcekd distill --resume {run_dir}` finishes them", highlight=False)
    diverged = fits("diverged")
    if diverged:
        Console(stderr=True, quiet=QUIET).print(
            f"[bold red]error:[/] {len(diverged)} fit(s) diverged: {', '.join(diverged)}; "
            f"their rows say status=diverged and they are left out of {store.SUMMARY} "
            "(lower the learning rate or raise the KD temperature)", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def print_results(rows: list[dict[str, Any]], run_dir: Path) -> None:
    """The comparison table on the console (the run directory already holds summary.csv)."""
    import pandas as pd

    from rcekd_core.report import HEADLINE, best_other_gain, comparable, summarize
    from rcekd_core.runs.store import RunDir

    df = comparable(pd.DataFrame(rows))
    if df.empty:
        console.print(f"no finished fit to compare yet — {run_dir}")
        return
    s = summarize(df, "test")
    overlaps = [c for c in df.columns if str(c).startswith("overlap@")]
    table, left_out = fitting_results_table(s, HEADLINE, overlaps, console.width)
    console.print(table)
    for m in left_out:  # columns the console had no room for: lines below, never a broken entry
        entries = [f"{r['method']} {mean_std(r, m, '±').strip()}" for _, r in s.iterrows()]
        for line in packed_lines(f"{m} with the teacher:", entries, console.width):
            console.print(line, highlight=False, soft_wrap=True)
    gain = best_other_gain(df)
    if gain:
        console.print(f"rcekd vs best other method ({gain[0]}): {gain[1]:+.1%} test NDCG@10")
    run = RunDir(run_dir)
    console.print(f"results: {run.results}", highlight=False)
    console.print(f"summary: {run.summary}", highlight=False)


def fitting_results_table(summary, headline: list[str], extra: list[str], width: int) -> tuple[Table, list[str]]:
    """The widest layout that fits `width` without wrapping a cell: "mean ± std" cells with the
    overlap columns, else "mean±std", else without the overlap columns (returned, to print below)."""
    layouts = [(" ± ", headline + extra), ("±", headline + extra), ("±", headline)]
    for sep, shown in layouts:
        table = results_table(summary, shown, sep)
        if natural_width(table) <= width:
            break
    return table, [m for m in headline + extra if m not in shown]


def packed_lines(head: str, entries: list[str], width: int) -> list[str]:
    """head and the entries, comma-separated, in as few lines of `width` as fit; a line breaks
    between entries, and continuation lines are indented."""
    lines, line = [], head
    for i, entry in enumerate(entries):
        piece = entry + ("," if i < len(entries) - 1 else "")
        if len(line) + 1 + len(piece) > width:
            lines.append(line)
            line = "   " + piece
        else:
            line = f"{line} {piece}"
    return lines + [line]


def natural_width(table: Table) -> int:
    """The width the table takes unwrapped (measured with room to spare: rich clamps to the room)."""
    return console.measure(table, options=console.options.update_width(10_000)).maximum


def results_table(summary, metrics: list[str], sep: str) -> Table:
    from rich import box

    table = Table(title="test metrics, mean±std over seeds (full ranking, history masked)",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("method")
    table.add_column("seeds", justify="right")
    for m in metrics:
        table.add_column(m)
    for _, r in summary.iterrows():
        table.add_row(str(r["method"]), str(r["seeds"]), *(mean_std(r, m, sep) for m in metrics))
    return table


def mean_std(row, metric: str, sep: str) -> str:
    """'0.1573±0.0031'; a single fit (std unknown) pads to the same width so the means line up."""
    mean, std = row.get(f"{metric} mean"), row.get(f"{metric} std")
    if not _is_number(mean):
        return "-"
    spread = f"{sep}{std:.4f}" if _is_number(std) else " " * (len(sep) + 6)
    return f"{mean:.4f}{spread}"


def _is_number(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not math.isnan(value)  # NaN: a missing value


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
    from rcekd_core.config import (
        DataConfig,
        _build,
        list_presets,
        load_preset_dict,
        merge,
        parse_overrides,
    )
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

WIDE_PRESETS = 140  # columns from which dataset, teacher and student each get a column


@presets_app.command("list")
@guarded
def presets_list() -> None:
    """Every preset (demo first) with what its file says it is, its dataset, sizes and methods."""
    from rcekd_core.config import list_presets

    presets = list_presets()
    rows = [preset_row(name, presets[name]) for name in sorted(presets, key=lambda n: (n != DEFAULT_PRESET, n))]
    console.print(presets_table(rows, wide=console.width >= WIDE_PRESETS))


def preset_row(name: str, path: Path) -> dict[str, str]:
    from rcekd_core.config import load_preset_dict

    try:
        d = load_preset_dict(name)
    except ConfigError as e:  # a broken preset of the user's: named, the others still listed
        return {"preset": name, "description": f"cannot be read: {e}", "dataset": "", "teacher": "",
                "student": "", "methods": ""}
    data = d.get("data", {})
    return {"preset": name, "description": preset_description(path),
            "dataset": f"{data.get('source')} ({data.get('protocol', 'loo')})",
            "teacher": model_size(d.get("teacher", {})), "student": model_size(d.get("student", {})),
            "methods": ", ".join(d.get("methods", []))}  # ", ": a long list wraps between methods


def presets_table(rows: list[dict[str, str]], wide: bool) -> Table:
    """One column each for dataset, teacher and student when wide; else one column holding the
    three on lines of their own, so the description keeps room. Cells wrap, never end in "…"."""
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("preset", no_wrap=True)  # a name is what one types: never broken
    table.add_column("description", overflow="fold")
    setting = ["dataset", "teacher", "student"] if wide else ["data, models"]
    for column in setting + ["methods"]:
        table.add_column(column, overflow="fold")
    for r in rows:
        models = [r["dataset"], r["teacher"], r["student"]] if wide else [
            "\n".join([r["dataset"], r["teacher"], f"→ {r['student']}"]) if r["dataset"] else ""]
        table.add_row(r["preset"], r["description"], *models, r["methods"])
    return table


def model_size(m: dict[str, Any]) -> str:
    """'sasrec d64×2 len50', 'mf d8'."""
    return (f"{m.get('arch', 'sasrec')} d{m.get('dim')}" + (f"×{m['blocks']}" if "blocks" in m else "")
            + (f" len{m['max_len']}" if "max_len" in m else ""))


def preset_description(path: Path) -> str:
    """The first line of the comment block a preset file starts with, without its '#', up to the
    end of its first sentence: 'MovieLens 100K (offline from the RecBole wheel).'"""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    first = next((line for line in lines if line.strip()), "")
    if not first.startswith("#"):
        return ""  # no leading comment
    text = first.lstrip("#").strip()
    end = text.find(". ")
    return text[:end + 1] if end >= 0 else text


@presets_app.command("show")
@guarded
def presets_show(name: str = typer.Argument(..., help="Preset name.")) -> None:
    """The fully resolved configuration of a preset."""
    from rcekd_core.config import load_config

    console.print(yaml.safe_dump(load_config(name).to_dict(), sort_keys=False), highlight=False)


# ---- TUI and runs ----------------------------------------------------------------------

@app.command()
@guarded
def tui(runs_root: Path = typer.Option(DEFAULT_RUNS, "--runs-root", help="Folder holding run directories.")) -> None:
    """The interactive app: set up, launch, watch, browse, compare and export runs."""
    if runs_root.exists() and not runs_root.is_dir():
        raise ConfigError(f"--runs-root '{runs_root}' is a file; pass the folder holding run directories")
    from .app import run_tui

    run_tui(runs_root)


@app.command()
@guarded
def watch(run_dir: Path = typer.Argument(..., help=f"A run directory (one with {store.EVENTS}, or one whose run is starting), or a sweep folder.")) -> None:
    """Follow a run live (or replay a finished one) in the terminal UI; waits for a run still starting. On a sweep folder: its progress, live."""
    from .runinfo import watch_problem

    problem = watch_problem(run_dir)
    if problem:
        raise ConfigError(problem)
    from .sweepinfo import is_sweep_dir

    if is_sweep_dir(run_dir):  # a sweep: its progress table, live
        from .sweepwatch import watch_sweep

        return watch_sweep(run_dir, console)
    from .app import run_watch

    run_watch(run_dir)


@runs_app.command("export")
@guarded
def runs_export(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories to export (each once, however often named)."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV file to write."),
    partial: bool = typer.Option(False, "--partial", help="Also export runs still running (the fits they "
                                 "have finished), with a partial column marking their rows."),
) -> None:
    """One tidy CSV (run, method, seed, split, status, metric, value) for the given runs. Seed is an
    integer: -1 on the popularity rows, which no seed changes."""
    from rcekd_core.runs.store import RunDir

    from .export import export_tidy, refuse_running, running_runs

    for d in run_dirs:
        if d.is_file():  # e.g. an earlier export beside the runs, caught by `runs/*`
            raise ConfigError(f"'{d}' is a file, not a run directory; pass run directories only "
                              "(e.g. runs/*/ rather than runs/*)")
    if not partial:
        refuse_running(run_dirs)
    under_way = running_runs(run_dirs) if partial else []
    for d in run_dirs:
        if d not in under_way:  # one still running may have finished no fit yet
            RunDir(d).require("results")
    tidy = export_tidy(run_dirs, out, partial=partial)  # raises (nothing written) if no run could be read
    for note in tidy.notes:  # a skipped or repeated run, or a run's skipped rows: one line each
        Console(stderr=True).print(f"[yellow]warning:[/] {note}", highlight=False, soft_wrap=True)
    console.print(f"wrote {len(tidy.frame)} rows from {len(tidy.read)} run(s) to {out}", highlight=False,
                  soft_wrap=True)


@runs_app.command("combine")
@guarded
def runs_combine(
    run_dirs: list[Path] = typer.Argument(..., help="Finished runs of one experiment (methods or seeds split across runs)."),
    out: Path = typer.Option(..., "--out", "-o", help=f"Folder for the combined {store.RESULTS}, {store.SUMMARY}, {store.SIGNIFICANCE}."),
) -> None:
    """One comparison (table, summary, significance tests) from runs of the same teacher and student."""
    from .combine import check_out, combine_runs, write_folder

    check_out(out)
    combined, provenance = combine_runs(run_dirs)  # every check happens before anything is written
    write_folder(out, combined, provenance)
    print_results(combined.to_dict("records"), out)


@runs_app.command("table")
@guarded
def runs_table(
    run_dirs: list[Path] = typer.Argument(..., help="A finished run, or runs of one experiment (methods or seeds split across runs)."),
    fmt: str = typer.Option("md", "--format", "-f", help="md (GitHub table) | latex (booktabs) | csv (plain numbers)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="File to write (default: print the table)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics, e.g. NDCG@10,Recall@10 "
                                          "(default: the headline metrics present)."),
) -> None:
    """A paper-ready results table: mean ± std over seeds per method, the best student in bold, rcekd's significance."""
    from rcekd_core.atomic import atomic_write
    from rcekd_core.paper_table import FORMATS, build_table, render

    if fmt not in FORMATS:  # checked before any run is read
        raise ConfigError(f"unknown --format '{fmt}'; choose from {', '.join(FORMATS)}")
    if out is not None and out.is_dir():
        raise ConfigError(f"--out '{out}' is a folder; pass a file path, e.g. '{out / f'table.{fmt}'}'")
    results, config = table_inputs(run_dirs)
    text = render(build_table(results, config, csv_list(metrics, str, "metrics")), fmt)
    if out is None:
        typer.echo(text, nl=False)  # as is: rich would read LaTeX's [t] as markup
        return
    try:
        atomic_write(out, text)
    except OSError as e:
        raise ConfigError(f"cannot write '{out}': {e.strerror or e}; pass another --out path")
    console.print(f"wrote the {fmt} table of {len(run_dirs)} run(s) to {out}", highlight=False, soft_wrap=True)


def table_inputs(run_dirs: list[Path]):
    """One experiment's results and config: one run as combine reads each run (every row, one per
    key, a config), a `runs combine` output with the config it keeps, several runs through
    combine's checks (their method lists joined, each method's settings from the run that has it)."""
    from rcekd_core.runs.store import RunDir

    from .combine import combine_runs, read_checked_run, read_combined

    if len(run_dirs) == 1:
        one = RunDir(run_dirs[0])
        if one.combined.is_file() and not one.config.is_file():
            return read_combined(Path(run_dirs[0]))
        return read_checked_run(Path(run_dirs[0]))
    results, provenance = combine_runs(run_dirs)
    return results, provenance["config"]


from .sweep_cli import sweep_app  # noqa: E402  (last: it uses the helpers above)

app.add_typer(sweep_app, name="sweep")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
