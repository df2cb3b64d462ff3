"""`rcekd sweep`: start, work, best, confirm, show — an equal-budget Optuna sweep (rcekd_core/sweep/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from rcekd_core.errors import ConfigError
from rcekd_core.sweep.sweepdir import SweepDir

from .cli import DEFAULT_PRESET, PresetOpt, SetOpt, console, csv_list, guarded, stop_on_signals

sweep_app = typer.Typer(no_args_is_help=True, help="Equal-budget hyperparameter sweeps (Optuna): every method "
                        "gets the same number of trials, chosen on seed-0 validation.")

SweepArg = typer.Argument(..., help="The sweep directory (written by `rcekd sweep start --dir`).")
StorageOpt = typer.Option(None, "--storage", help="The sweep's studies elsewhere: an RDB URL (postgresql://...) or a "
                          "journal file path on a shared filesystem (default: the sweep's own, study.db in its "
                          "folder).")


def stopped_hint(sweep: Path, code: int) -> None:
    Console(stderr=True).print(f"stopped: the running trial goes back to the queue; `rcekd sweep work {sweep}` "
                               "continues the sweep", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@sweep_app.command("start")
@guarded
def start(
    preset: Optional[str] = PresetOpt,
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated methods, or all (default: the "
                                          "preset's)."),
    budget: int = typer.Option(..., "--budget", help="Trials per method, the same for every method (grid: at most "
                               "its grid; a method with nothing swept: 1)."),
    params: Optional[list[str]] = typer.Option(
        None, "--param", help="<method>.<setting>=log:a..b (log-uniform), a..b (uniform; integers for an integer "
        "setting) or v1,v2,v3 (a list), e.g. --param rcekd.lam=log:0.001..10 (repeatable)."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, or grid (lists of values only: every point once)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Cap on the student epochs of every trial and of "
                                         "confirm."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Validation metric to maximise, also the best-epoch "
                                         "rule (default: the preset's eval.select, NDCG@10)."),
    storage: Optional[str] = StorageOpt,
    workers: int = typer.Option(1, "--workers", help="Worker processes to start here and wait for (0: create the "
                                "sweep only; add workers with `rcekd sweep work DIR`)."),
    prune: bool = typer.Option(False, "--prune", help="Stop a trial whose validation metric falls below the median "
                               "of earlier trials at the same epoch (after 2 finished trials, past a quarter of the "
                               "epochs)."),
    sweep_dir: Path = typer.Option(..., "--dir", help="A new or empty folder for the sweep."),
    sets: Optional[list[str]] = SetOpt,
) -> None:
    """Create a sweep (one Optuna study per method, each with its budget of trials) and run it."""
    from rcekd_core.sweep.plan import plan_sweep
    from rcekd_core.sweep.session import create_sweep

    sweep = SweepDir(sweep_dir)
    sweep.check_new()
    if not 0 <= workers <= 256:
        raise ConfigError(f"--workers must be between 0 and 256; got {workers}")
    plan = plan_sweep(preset or DEFAULT_PRESET, csv_list(methods, str, "methods"), params or [], budget, sampler,
                      metric, epochs, prune, sets or [], storage)
    opened = create_sweep(sweep, plan)
    print_plan(opened)
    if workers == 0:
        console.print(f"sweep created; run `rcekd sweep work {sweep.root}` once per worker (here or on a cluster)",
                      highlight=False, soft_wrap=True)
        return
    try:
        run_here(opened) if workers == 1 else run_workers(opened, workers)
    except KeyboardInterrupt as e:
        stopped_hint(sweep.root, 128 + getattr(e, "signum", 2))
    print_best(opened)


def print_plan(opened) -> None:
    plan = opened.plan
    cap = f", epochs capped at {plan.epochs}" if plan.epochs else ""
    console.print(f"sweep {opened.sweep.root}: {plan.sampler}, budget {plan.budget} trials per method on "
                  f"seed-{plan.seed} validation {plan.metric}{cap}; storage {opened.url}", highlight=False,
                  soft_wrap=True)
    for m in plan.methods:
        space = plan.space(m)
        note = "" if plan.budgets[m] == plan.budget else (
            " (nothing swept)" if not space else f" (its whole grid of {plan.budgets[m]})")
        what = "; ".join(p.spec for p in space) or "—"
        console.print(f"  {m}: {plan.budgets[m]} trial(s){note}: {what}", highlight=False, soft_wrap=True)


def run_here(opened) -> None:
    from rcekd_core.sweep.worker import work

    stop_on_signals()
    work(opened.sweep, opened.plan, opened.storage, opened.url,
         say=lambda s: console.print(s, highlight=False, soft_wrap=True))


def run_workers(opened, n: int) -> None:
    """The teacher once (so workers find it in the cache), then n `rcekd sweep work` processes,
    each with cores // n threads; waits for all of them."""
    from rcekd_core.config import from_dict
    from rcekd_core.experiment import run_experiment

    from .progress import ConsoleDisplay

    sweep = opened.sweep
    display = ConsoleDisplay(console)
    stop_on_signals()
    run_experiment(from_dict(opened.plan.config), sweep.teacher, display, teacher_only=True, say=display.say)
    threads = str(max(1, (os.cpu_count() or 1) // n))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    sweep.logs.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for i in range(n):
            with sweep.worker_log(i).open("ab") as log:
                procs.append(subprocess.Popen([sys.executable, "-m", "rcekd_tui", "sweep", "work", str(sweep.root)],
                                              stdout=log, stderr=subprocess.STDOUT, env=env))
        console.print(f"{n} workers started ({threads} thread(s) each); logs in {sweep.logs}", highlight=False)
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()  # each puts its running trial back in the queue
        for p in procs:
            p.wait()
        raise
    failed = [f"worker {i} (exit {c}, {sweep.worker_log(i)})" for i, c in enumerate(codes) if c != 0]
    if failed:
        Console(stderr=True).print(f"[bold red]error:[/] {', '.join(failed)}; their trials went back to the queue: "
                                   f"`rcekd sweep work {sweep.root}` continues", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@sweep_app.command("work")
@guarded
def work_cmd(
    sweep_dir: Path = SweepArg,
    storage: Optional[str] = StorageOpt,
    requeue_running: bool = typer.Option(False, "--requeue-running", help="First queue again every trial marked "
                                         "running (a journal storage has no heartbeat: only when no worker is alive)."),
) -> None:
    """One more worker on an existing sweep: runs trials until every method's budget is spent."""
    from rcekd_core.sweep.session import open_sweep
    from rcekd_core.sweep.study import requeue_running as requeue_all

    opened = open_sweep(SweepDir(sweep_dir), storage)
    if requeue_running:
        console.print(f"queued again: {requeue_all(opened.plan, opened.storage, opened.url)} running trial(s)")
    try:
        run_here(opened)
    except KeyboardInterrupt as e:
        stopped_hint(opened.sweep.root, 128 + getattr(e, "signum", 2))
    print_best(opened)


@sweep_app.command("best")
@guarded
def best_cmd(sweep_dir: Path = SweepArg, storage: Optional[str] = StorageOpt) -> None:
    """Per method: the best settings, their validation score, and trials done of the budget."""
    from rcekd_core.sweep.report import write_sensitivity
    from rcekd_core.sweep.session import open_sweep

    opened = open_sweep(SweepDir(sweep_dir), storage)
    print_best(opened)
    write_sensitivity(opened.sweep, opened.plan, opened.storage)


def fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def print_best(opened) -> None:
    from rich import box

    from rcekd_core.sweep.report import best

    plan = opened.plan
    found = best(plan, opened.storage)
    lost = any(b.progress.pruned or b.progress.failed or b.progress.left for b in found.values())
    table = Table(title=f"best per method — seed-{plan.seed} validation {plan.metric} ({opened.sweep.root})",
                  box=box.SIMPLE_HEAD)  # no side borders: the row fits 80 columns
    columns = ["method", "trials", *(["pruned/failed/left"] if lost else []), f"valid {plan.metric}", "trial",
               f"test {plan.metric}", "settings"]
    for col in columns:
        # settings fold rather than end in "…": the chosen values are what the table is for
        table.add_column(col, justify="left" if col in ("method", "settings") else "right",
                         overflow="fold" if col == "settings" else "ellipsis")
    for m, b in found.items():
        p = b.progress
        # the method is the row's: "kd.lam=0.01" reads "lam=0.01"
        settings = ", ".join(f"{k.split('.', 1)[-1] if k.startswith(m + '.') else k}={fmt(v)}"
                             for k, v in b.values.items()) or "—"
        table.add_row(m, f"{p.spent}/{p.budget}", *([f"{p.pruned}/{p.failed}/{p.left}"] if lost else []),
                      "—" if b.value is None else f"{b.value:.4f}", "" if b.number is None else str(b.number),
                      "" if b.test is None else f"{b.test:.4f}", settings)
    console.print(table)


@sweep_app.command("confirm")
@guarded
def confirm_cmd(
    sweep_dir: Path = SweepArg,
    seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated student seeds, e.g. 0,1,2."),
    run_dir: Optional[str] = typer.Option(None, "--run-dir", help="A new or empty folder (default: confirm/ in the "
                                          "sweep)."),
    storage: Optional[str] = StorageOpt,
    workers: int = typer.Option(1, "--workers", help="Processes for the method x seed fits (as `rcekd distill "
                                "--workers`): the results are those of the sequential run."),
    reuse_trials: bool = typer.Option(False, "--reuse-trials", help="The sweep's seed (0) from each method's best "
                                      "trial instead of fitting it again: the other seeds are fitted into --run-dir, "
                                      "then joined with those trials (as `rcekd runs combine`) into --out."),
    out: Optional[Path] = typer.Option(None, "--out", help="--reuse-trials: the folder of the joined comparison "
                                       "(default: confirmed/ in the sweep)."),
) -> None:
    """One run of every method with its best settings on these seeds: results, summary, significance."""
    from rcekd_core.sweep.confirm import confirm_config
    from rcekd_core.sweep.session import open_sweep

    from .cli import execute, print_results, report_unfinished

    opened = open_sweep(SweepDir(sweep_dir), storage)
    chosen = csv_list(seeds, int, "seeds") or []
    cfg, bests = confirm_config(opened, chosen)
    if out is not None and not reuse_trials:
        raise ConfigError("--out names the folder of --reuse-trials' joined comparison; add --reuse-trials or drop --out")
    if reuse_trials:
        target, rows = confirm_with_trials(opened, bests, chosen, run_dir, out, workers)
    else:
        target, rows = execute(cfg, run_dir or str(opened.sweep.confirm), teacher_only=False, workers=workers)
    print_results(rows, target)
    plan = opened.plan
    cap = f", epochs capped at {plan.epochs}" if plan.epochs else ""
    table = Table(title=f"each row tuned with the same budget of {plan.budget} trials on seed-{plan.seed} "
                        f"validation {plan.metric}{cap}")
    for col in ("method", "trials", "settings", f"sweep valid {plan.metric}"):
        table.add_column(col)
    for m, b in bests.items():
        note = "" if b.progress.budget == plan.budget else " (nothing swept)" if not plan.space(m) else " (whole grid)"
        table.add_row(m, f"{b.progress.spent}/{b.progress.budget}{note}",
                      ", ".join(f"{k}={fmt(v)}" for k, v in b.values.items()) or "—", f"{b.value:.4f}")
    console.print(table)
    report_unfinished(rows, target)


def confirm_with_trials(opened, bests: dict, seeds: list[int], run_dir: str | None, out: Path | None,
                        workers: int) -> tuple[Path, list[dict[str, Any]]]:
    """`confirm --reuse-trials`: the seeds other than the sweep's fitted into run_dir, then joined
    with every method's best trial (the sweep's seed, same settings) into `out`; (out, its rows).
    Every check (the seeds, the trials' runs, the output folder) comes before any fit."""
    from .cli import execute
    from .combine import check_out, combine_runs, read_checked_run, write_folder

    plan, sweep = opened.plan, opened.sweep
    if plan.seed not in seeds:
        raise ConfigError(f"--reuse-trials takes seed {plan.seed} from the sweep's trials; include it in --seeds "
                          f"(e.g. {plan.seed},1,2) or drop --reuse-trials")
    trials = [sweep.trial_dir(m, b.number) for m, b in bests.items()]
    for trial in trials:
        read_checked_run(trial)  # a best trial's run must be there and whole
    out = out or sweep.root / "confirmed"
    check_out(out)
    fresh = [s for s in seeds if s != plan.seed]
    if not fresh and len(trials) < 2:
        raise ConfigError("one method's trial and no other seed leave nothing to join; add seeds to --seeds")
    runs = list(trials)
    if fresh:
        cfg = plan.confirm_config({m: b.values for m, b in bests.items()}, fresh)  # bests: checked by the caller
        target, rows = execute(cfg, run_dir or str(sweep.confirm), teacher_only=False, workers=workers)
        if any(r.get("status") == "stopped" for r in rows):
            Console(stderr=True).print(
                f"not joined: the run stopped; resume it (rcekd distill --resume {target}), then join it with "
                f"the trials: rcekd runs combine {target} {' '.join(map(str, trials))} -o {out}",
                highlight=False, soft_wrap=True)
            return target, rows
        runs.insert(0, target)
    combined, provenance = combine_runs(runs)
    write_folder(out, combined, provenance)
    console.print(f"seed {plan.seed}: each method's best trial ({', '.join(str(t) for t in trials)}); "
                  f"joined into {out}", highlight=False, soft_wrap=True)
    return out, combined.to_dict("records")


@sweep_app.command("show")
@guarded
def show_cmd(sweep_dir: Path = SweepArg, storage: Optional[str] = StorageOpt) -> None:
    """Sensitivity: the validation metric against each swept parameter, per method."""
    from rcekd_core.sweep.report import write_sensitivity
    from rcekd_core.sweep.session import open_sweep

    opened = open_sweep(SweepDir(sweep_dir), storage)
    plan = opened.plan
    rows = write_sensitivity(opened.sweep, plan, opened.storage)
    metric = f"valid_{plan.metric}"
    if not rows:
        console.print("nothing swept, or no trial has run yet", highlight=False)
    scores = [r[metric] for r in rows if isinstance(r[metric], (int, float))]
    lo, hi = min(scores, default=0.0), max(scores, default=0.0)
    for m in plan.methods:
        for p in plan.space(m):
            mine = sorted((r for r in rows if r["method"] == m and r["parameter"] == p.name),
                          key=lambda r: (str(type(r["value"])), r["value"]))
            table = Table(title=f"{m}: validation {plan.metric} against {p.name} ({p.spec.split('=', 1)[1]})")
            for col in (p.name, plan.metric, "", "trial", "state"):
                table.add_column(col, justify="left" if col == "" else "right")
            for r in mine:
                v = r[metric]
                bar = "" if not isinstance(v, (int, float)) else "█" * (1 + round(23 * (v - lo) / (hi - lo or 1)))
                table.add_row(fmt(r["value"]), "" if v is None else f"{v:.4f}", bar, str(r["trial"]), r["state"])
            console.print(table)
    print_panels(rows, plan.metric, {p.name for m in plan.methods for p in plan.space(m) if p.kind == "log"})
    console.print(f"written: {opened.sweep.sensitivity}", highlight=False)


def print_panels(rows, metric: str, log_params: set[str]) -> None:
    """Each setting's sensitivity panel as a terminal chart (plain text in a pipe)."""
    import plotext as plt
    from rich.text import Text

    from .sensitivity import draw, panels

    for panel in panels(rows, f"valid_{metric}", log_params):
        draw(plt, panel, metric)
        plt.plotsize(min(console.width, 100), 16)
        plt.title(f"validation {metric} against {panel.setting}, best trial per value")
        console.print(Text.from_ansi(plt.build()))
