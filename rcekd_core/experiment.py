"""run_experiment(): the one orchestration entry — data, teacher, students, run directory.

Everything that can be rejected (config, data files, sizes) is checked before the run
directory is written, so a bad input leaves nothing half-written.
"""

from __future__ import annotations

import platform
import shutil
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from . import distributed
from .atomic import remove_temp_files
from .config import ExperimentConfig, check_sizes
from .data.loader import load_interactions
from .data.sequences import SPLITS, SequenceData
from .device import resolve_device
from .errors import ConfigError, Diverged
from .eval.metrics import metric_names
from .eval.overlap import topk_overlap
from .eval.popularity import Popularity
from .eval.ranking import MASKING_RULE, RankingOutput, evaluate
from .kd.base import KDSetup, Trajectory
from .kd.contexts import KDContexts, resolve_mode
from .kd.registry import METHODS, build_distiller
from .kd.teacher_view import TeacherView
from .models.registry import build_model, is_general
from .runs.events import (
    End,
    Epoch,
    Error,
    Event,
    EventWriter,
    Phase,
    Result,
    Resumed,
    RunStart,
    RunWarning,
    StopRequested,
)
from .runs.store import MetricsCsv, RunDir, drop_epochs_after
from .train.checkpoint import load_checkpoint, save_checkpoint
from .train.loop import FitJob, FitLabel, FitResult, fit
from .train.teacher import CorruptEntry, TeacherCache, trajectory_files, trajectory_name

Sink = Callable[[Event], None]
FINAL = ("finished", "diverged")  # fits a resumed run keeps; stopped ones continue


class Quiet:
    """The event writer and run lock of a torchrun rank > 0: it writes nothing (rank 0 writes the run)."""

    def emit(self, event: Event) -> None:
        pass

    def close(self) -> None:
        pass


def kd_positions(cfg: ExperimentConfig) -> str:
    """Where students are distilled: `last`, `all`, or `user` (general models: one state per user)."""
    return resolve_mode(cfg.kd_positions, is_general(cfg.student.arch))


def train_windows(cfg: ExperimentConfig, role: str) -> str:
    """The training windows of a result row's model: `last`, `sliding/<stride>`; '' where none
    (general models train on every training item of each user; the popularity reference)."""
    arch, train = getattr(cfg, role, None), getattr(cfg, f"{role}_train", None)
    if arch is None or train is None or is_general(arch.arch):
        return ""
    return "last" if train.windows == "last" else f"sliding/{train.stride or arch.max_len}"


def trajectory_periods(cfg: ExperimentConfig) -> set[int]:
    """Teacher epochs between trajectory checkpoints, as every registered method asks.

    All registered methods, not only those of this run: the teacher is cached and shared,
    so a later run of a trajectory method must find its checkpoints.
    """
    periods = {m.distiller.trajectory_every(cfg.method(name))
               for name, m in METHODS.items() if m.settings is not None and name in cfg.method_settings}
    return periods - {0}


def kd_setup(cfg: ExperimentConfig, view: TeacherView | None, contexts: KDContexts, device: torch.device,
             seed: int) -> KDSetup:
    """What a distiller of this run gets besides its own settings."""
    return KDSetup(view, contexts, device, seed, cfg.eval.chunk, cfg.student_train.epochs, cfg.student.dim,
                   budget=cfg.eval.memory_bytes)


@dataclass
class Prepared:
    """What is known before anything is written: config, device and data."""

    cfg: ExperimentConfig
    device: torch.device
    data: SequenceData
    stats: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""  # of the processed interactions: the teacher cache's key is built on it


def prepare(cfg: ExperimentConfig, say: Callable[[str], None] = lambda s: None) -> Prepared:
    device = resolve_device(cfg.device)
    inter = load_interactions(cfg.data, progress=say)
    data = SequenceData.from_interactions(inter, cfg.data.protocol)
    if data.n_users == 0:
        raise ConfigError("no user has the 3 interactions a train/validation/test split needs; use a larger dataset")
    check_sizes(cfg, data.n_items)
    stats = {**inter.stats(), "users_after_split": data.n_users, "dropped_users": data.dropped_users}
    return Prepared(cfg, device, data, stats, inter.fingerprint())


class Experiment:
    """One run: writes events/metrics/results as it goes; stops when the STOP file appears.

    With `resume`, the run directory already holds part of the run: fits with results are
    kept as they are, an unfinished fit continues from its last completed epoch, the rest run.
    With `workers` > 1 the student fits run in that many processes (parallel.py); `fits` limits
    the run to those (method, seed) fits (a worker's share).
    """

    def __init__(self, prep: Prepared, run_dir: Path, display: Sink = lambda e: None, resume: bool = False,
                 retrain: bool = True, workers: int = 1, fits: list[tuple[str, int]] | None = None):
        self.p = prep
        self.cfg = prep.cfg
        self.group = distributed.current()
        self.main = self.group.is_main  # torchrun: rank 0 alone writes the run; the others compute with it
        self.run = RunDir(run_dir).create() if self.main else RunDir(run_dir)
        self._lock = self.run.lock() if self.main else Quiet()
        if self.main and not resume and self.run.holds_results():  # another process started here since check_new
            self._lock.close()
            raise ConfigError(f"'{self.run.root}' already holds a run; pass a new --run-dir")
        if self.main:
            self.run.clear_stop()
        self.resuming = resume
        if resume:
            for folder in (self.run.root, self.run.checkpoints, self.run.trajectory):
                remove_temp_files(folder)  # what a killed writer left
        self.events = EventWriter(self.run.events) if self.main else Quiet()
        self.display = display
        self.metrics = MetricsCsv(self.run.metrics)
        # a resumed run keeps finished (and diverged) fits; stopped ones continue
        self.rows = [r for r in self.run.read_result_values() if r.get("status") in FINAL] if resume else []
        if resume and self.run.parts.is_dir():
            from .parallel import adopt_parts

            try:
                adopt_parts(self)  # what workers of an earlier attempt left in their parts
            except ConfigError:
                self._lock.close()
                raise
        if not any(r["model"] == "teacher" for r in self.rows):  # the references go with the teacher
            self.rows = [r for r in self.rows if r["model"] != "popularity"]
        self.done = {(r["model"], r["method"], r["seed"]) for r in self.rows}
        self.stop_requested = False
        self.teacher_out: dict[str, RankingOutput] = {}
        self.cache = TeacherCache(self.cfg, prep.fingerprint)
        self.retrain = retrain  # a corrupt cache entry: train again (True) or refuse (False)
        self.teacher_meta: dict[str, Any] = {}
        self.contexts: KDContexts | None = None
        self.workers = workers
        self.fits = None if fits is None else [tuple(f) for f in fits]

    def emit(self, event: Event) -> None:
        if not self.main:  # torchrun rank > 0: a null sink
            return
        self.events.emit(event)
        if isinstance(event, Epoch):
            self.metrics.append(event.row())
        self.display(event)

    def add_results(self, rows: list[dict[str, Any]]) -> None:
        self.rows = self.in_run_order(self.rows + rows)
        if self.main:
            self.run.write_results(self.rows)
        self.emit(Result(rows=rows))

    def in_run_order(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Teacher, popularity, then methods x seeds as a sequential run fits them (parallel
        workers and resumes deliver fits in another order; the file does not show it)."""
        fits = [(m, s) for m in self.cfg.methods for s in self.cfg.seeds]

        def place(row: dict[str, Any]) -> int:
            if row["model"] != "student":
                return -2 if row["model"] == "teacher" else -1
            fit = (row["method"], row["seed"])
            return fits.index(fit) if fit in fits else len(fits)

        return sorted(rows, key=place)  # stable: a fit's splits keep their order

    def should_stop(self) -> bool:
        asked = not self.stop_requested and self.main and self.run.stop_requested()
        if self.group.main_flag(asked):  # torchrun: rank 0's STOP, so every rank stops at the same batch
            self.stop_requested = True
            self.emit(StopRequested())
        return self.stop_requested

    # ---- phases -------------------------------------------------------------------------

    def run_all(self, teacher_only: bool = False) -> list[dict[str, Any]]:
        try:
            return self._run_all(teacher_only)
        finally:
            self._lock.close()

    def _run_all(self, teacher_only: bool) -> list[dict[str, Any]]:
        cfg, cache = self.cfg, self.cache
        if self.resuming:
            students = len({k for k in self.done if k[0] == "student"})
            self.emit(Resumed(fits_done=students + any(k[0] == "teacher" for k in self.done),
                              continuing=self.continuing()))
        else:
            resolved = cfg.to_dict()
            resolved["runtime"] = {
                "device": str(self.p.device), "teacher_cache": str(cache.dir),
                "teacher_cached": cache.exists(), "torch": str(torch.__version__),
                "host": platform.node(), "protocol": cfg.data.protocol, "masking": MASKING_RULE,
                "teacher_only": teacher_only, "kd_positions": kd_positions(cfg),
                "data_fingerprint": self.p.fingerprint, "workers": self.workers,
                "data_file": str(Path(cfg.data.file).expanduser().resolve()) if cfg.data.file else None,
            }
            if self.group.world > 1:
                resolved["runtime"]["torchrun"] = {"world_size": self.group.world,
                                                  "backend": "nccl" if self.group.device.type == "cuda" else "gloo"}
            if self.main:
                self.run.write_config(resolved)
            self.emit(RunStart(name=cfg.name, device=str(self.p.device), dataset=self.p.stats,
                               methods=[] if teacher_only else list(cfg.methods), seeds=list(cfg.seeds),
                               teacher_cached=cache.exists()))
        status = "finished"
        try:
            teacher = self.teacher_phase()
            if not teacher_only and not self.stop_requested:
                self.student_phase(teacher)
            if self.stop_requested:
                status = "stopped"
            self.write_tables()
        except BaseException as e:
            interrupted = isinstance(e, KeyboardInterrupt)
            self.emit(Error(message=str(e) or e.__class__.__name__, kind=e.__class__.__name__,
                            traceback="" if interrupted else traceback.format_exc(limit=8)))
            self.emit(End(status="stopped" if interrupted else "failed", diverged=self.diverged()))
            self.events.close()
            raise
        self.emit(End(status=status, diverged=self.diverged()))
        self.events.close()
        return self.rows

    def diverged(self) -> int:
        return len({(r["method"], r["seed"]) for r in self.rows if r.get("status") == "diverged"})

    def continuing(self) -> str:
        """The fit a resumed run picks up first, for the `resumed` event."""
        todo = [("teacher", "teacher", self.cfg.teacher_seed)]
        todo += [("student", m, s) for m in self.cfg.methods for s in self.cfg.seeds]
        for model, method, seed in todo:
            if (model, method, seed) not in self.done:
                who = "teacher" if model == "teacher" else f"{method} seed {seed}"
                path = self.run.resume_file(model, method, seed)
                return f"{who} from its last completed epoch" if path.is_file() else f"{who} from the start"
        return "nothing: every fit has results"

    def write_tables(self) -> None:
        """summary.csv and significance.csv beside results.csv, from the file as written."""
        from .report import tables

        if self.rows and self.main:
            self.run.write_summary(*tables(self.run.read_results(), self.cfg.eval.report_diverged))

    def fit(self, job: FitJob) -> FitResult:
        """fit() with the run's resume file, and metrics.csv repaired when it continues."""
        label = vars(job.label)
        if not self.main:  # torchrun rank > 0: no checkpoint, trajectory or resume file
            job.checkpoint = job.on_epoch = None
            return fit(job, self.emit, self.should_stop)
        job.resume_file = self.run.resume_file(**label)
        job.on_resume = lambda ev: drop_epochs_after(self.run.metrics, label, ev.epoch, ev.row())
        if not job.resume_file.is_file():  # starts over: rows of a first epoch stopped before any save go
            drop_epochs_after(self.run.metrics, label, 0, None)
        return fit(job, self.emit, self.should_stop)

    def finish_fit(self, label: FitLabel, status: str) -> None:
        """Its results are written: the state to resume from is no longer needed, unless the fit
        was stopped early (a resumed run continues it from that state)."""
        if status != "stopped" and self.main:
            self.run.resume_file(**vars(label)).unlink(missing_ok=True)

    def teacher_phase(self):
        cfg, data, device = self.cfg, self.p.data, self.p.device
        label = FitLabel("teacher", "teacher", cfg.teacher_seed)
        torch.manual_seed(cfg.teacher_seed)
        teacher = build_model(cfg.teacher, data.n_items, data).to(device)
        if ("teacher", "teacher", cfg.teacher_seed) in self.done:  # resumed after the teacher
            self.teacher_meta = self.load_cached(teacher) or self.load_from_run(teacher)
            teacher.eval()
            rows = self.evaluate_model(teacher, "teacher", "teacher", cfg.teacher_seed, {}, reference=None)
            self.teacher_out = {r["split"]: r["_out"] for r in rows}
            return teacher
        # a teacher fit under way in this run continues (even if it reached the cache before a
        # kill): its rows must read as trained here, as an uninterrupted run's do
        under_way = self.run.resume_file(**vars(label)).is_file()
        meta = None if under_way or not self.main else self.load_cached(teacher)
        if self.group.world > 1:  # torchrun: rank 0's cache entry, its meta and weights, on every rank
            meta = self.group.broadcast_object(meta)
            if meta is not None:
                self.group.broadcast_tensors(list(teacher.state_dict().values()))
        cached = meta is not None
        if cached and self.main:  # the run keeps its own copy: a resume must not depend on the shared cache
            save_checkpoint(self.run.checkpoint("teacher"), teacher.state_dict(), {**vars(label), **meta})
        self.emit(Phase(phase="teacher", cached=cached, key=self.cache.key))
        status = "finished"
        if not cached:
            torch.manual_seed(cfg.teacher_seed)  # a fresh model, whatever a failed load left
            teacher = build_model(cfg.teacher, data.n_items, data).to(device)
            meta, stopped = self.train_teacher(teacher, label)
            status = "stopped" if stopped else "finished"
        self.teacher_meta = meta
        teacher.eval()
        rows = self.evaluate_model(teacher, "teacher", "teacher", cfg.teacher_seed, {**meta, "status": status},
                                   reference=None, cached=cached)
        self.teacher_out = {r["split"]: r.pop("_out") for r in rows}
        pop_rows = self.evaluate_model(Popularity(self.p.data).to(self.p.device), "popularity",
                                       "popularity", "", {"status": "finished"}, reference=self.teacher_out)
        for r in pop_rows:
            r.pop("_out")
        self.add_results(rows + pop_rows)
        self.finish_fit(label, status)
        return teacher

    def train_teacher(self, teacher, label: FitLabel) -> tuple[dict[str, Any], bool]:
        """Fit the teacher, saving its trajectory in the run, then publish it to the cache."""
        cfg, run = self.cfg, self.run
        if self.main and not run.resume_file(**vars(label)).is_file():
            shutil.rmtree(run.trajectory, ignore_errors=True)
        periods = trajectory_periods(cfg)

        def save_trajectory(epoch: int, ev: Epoch) -> None:
            if any(epoch % p == 0 for p in periods):
                save_checkpoint(run.trajectory / trajectory_name(epoch), teacher.state_dict(), {"epoch": epoch})

        job = FitJob(teacher, self.p.data, cfg.teacher_train, cfg.eval, label, self.p.device,
                     checkpoint=run.checkpoint("teacher"), on_epoch=save_trajectory)
        try:
            res = self.fit(job)
        except Diverged as e:  # without a teacher there is nothing to distil
            raise Diverged(f"the teacher diverged: {e}; lower teacher_train.lr", e.epoch, e.best_epoch) from None
        meta = {"best_epoch": res.best_epoch, "epochs": res.epochs_run}
        if not res.stopped and self.main:  # a stopped teacher is not the configured one: never cache it
            try:
                self.cache.store(run.checkpoint("teacher"), {**meta, "config": asdict(cfg.teacher)},
                                 trajectory_files(run.trajectory))
            except OSError as e:
                self.emit(RunWarning(method="teacher", message=(
                    f"cannot write the teacher cache under {self.cache.root} ({e.strerror or e}); the next "
                    "run trains the teacher again")))
        self.group.barrier()  # torchrun: the cache entry is complete before another rank reads it
        return meta, res.stopped

    def load_cached(self, teacher) -> dict[str, Any] | None:
        """The cache entry's weights into `teacher` and its meta; None when there is none. A
        corrupt entry is set aside and reported (then trained again), or refused."""
        cache = self.cache
        if not cache.exists():
            return None
        try:
            meta = cache.verify()
            state, _ = load_checkpoint(cache.weights, map_location=self.p.device)
            teacher.load_state_dict(state)
            return meta
        except Exception as e:  # noqa: BLE001 — whatever a damaged file raises, the entry is unusable
            reason = str(e) if isinstance(e, CorruptEntry) else f"its weights do not load: {e.__class__.__name__}"
            if not self.retrain:
                raise ConfigError(f"teacher cache entry {cache.dir} is corrupt ({reason}); delete it, "
                                  "or run without --no-retrain to train the teacher again") from None
            aside = cache.set_aside()
            self.emit(RunWarning(method="teacher", message=(
                f"teacher cache entry {cache.dir} is corrupt ({reason}): moved to {aside}, training again")))
            return None

    def load_from_run(self, teacher) -> dict[str, Any]:
        """A resumed run whose cache entry is gone: the teacher's best weights from the run itself."""
        state, _ = load_checkpoint(self.run.checkpoint("teacher"), map_location=self.p.device)
        teacher.load_state_dict(state)
        row = next(r for r in self.rows if r["model"] == "teacher")
        return {"best_epoch": row.get("best_epoch"), "epochs": row.get("epochs")}

    def trajectory(self) -> Trajectory:
        """The teacher's saved checkpoints (cache entry, else this run's), loaded on demand."""
        cfg, data, device = self.cfg, self.p.data, self.p.device
        files = self.cache.trajectory_files() or trajectory_files(self.run.trajectory)
        where = self.cache.trajectory_dir if self.cache.exists() else self.run.trajectory
        contexts = self.contexts

        def view(epoch: int) -> TeacherView:
            model = build_model(cfg.teacher, data.n_items, data).to(device)
            state, _ = load_checkpoint(files[epoch], map_location=device)
            model.load_state_dict(state)
            return TeacherView(model, contexts, cfg.eval.chunk, device, budget=cfg.eval.memory_bytes)

        return Trajectory(sorted(files), self.teacher_meta.get("best_epoch"), str(where), view)

    def student_phase(self, teacher) -> None:
        cfg, data, device = self.cfg, self.p.data, self.p.device
        todo = [(m, s) for m in cfg.methods for s in cfg.seeds if ("student", m, s) not in self.done
                and (self.fits is None or (m, s) in self.fits)]
        if self.workers > 1 and todo:
            if self.cache.exists():  # the workers load the teacher from there
                from .parallel import run_in_parts

                return run_in_parts(self, todo)
            self.emit(RunWarning(method="teacher", message=(
                f"the teacher is not in the cache ({self.cache.dir}), which the workers load it from: "
                "the students run one after another in this process")))
        self.contexts = contexts = KDContexts(data, kd_positions(cfg), cfg.student.max_len)
        view = None
        if any(METHODS[m].distiller.uses_teacher for m, _ in todo):
            t0 = time.perf_counter()
            view = TeacherView(teacher, contexts, cfg.eval.chunk, device, budget=cfg.eval.memory_bytes)
            self.emit(Phase(phase="teacher_view", contexts=contexts.n, seconds=time.perf_counter() - t0))
        for method, seed in todo:
            if self.should_stop():
                return
            self.train_student(method, seed, view)

    def train_student(self, method: str, seed: int, view: TeacherView | None) -> None:
        cfg, data, device, contexts = self.cfg, self.p.data, self.p.device, self.contexts
        label = FitLabel("student", method, seed)
        self.emit(Phase(phase="student", method=method, seed=seed))
        torch.manual_seed(seed)
        student = build_model(cfg.student, data.n_items, data).to(device)
        setup = kd_setup(cfg, view, contexts, device, seed)
        if METHODS[method].distiller.needs_trajectory():
            setup.trajectory = self.trajectory()
        distiller = build_distiller(method, cfg.method_settings.get(method), setup)
        for message in setup.warnings:
            self.emit(RunWarning(method=method, message=message))
        job = FitJob(student, data, cfg.student_train, cfg.eval, label, device, distiller=distiller,
                     contexts=contexts, reference_top=self.teacher_out["valid"].topk,
                     checkpoint=self.run.checkpoint("student", method, seed))
        try:
            res = self.fit(job)
            meta = {"best_epoch": res.best_epoch, "epochs": res.epochs_run,
                    "status": "stopped" if res.stopped else "finished"}
        except Diverged as e:
            self.emit(Error(message=f"{method} seed {seed} diverged: {e}; its rows say status=diverged "
                                    "(lower the learning rate, or raise a KD temperature)",
                            kind="Diverged", method=method, seed=seed, epoch=e.epoch))
            meta = {"best_epoch": e.best_epoch, "epochs": e.epoch, "status": "diverged"}
        try:
            rows = self.evaluate_model(student, "student", method, seed, meta, reference=self.teacher_out)
        except Diverged as e:  # finite on validation, not on test: still no number to report
            self.emit(Error(message=f"{method} seed {seed} diverged: {e}", kind="Diverged", method=method,
                            seed=seed, epoch=meta["epochs"]))
            meta = {**meta, "status": "diverged", "best_epoch": 0}
            rows = self.evaluate_model(student, "student", method, seed, meta, reference=self.teacher_out)
        for r in rows:
            r.pop("_out")
        self.add_results(rows)
        self.finish_fit(label, meta["status"])

    def evaluate_model(self, model, role: str, method: str, seed: int, meta: dict[str, Any],
                       reference: dict[str, RankingOutput] | None, cached: bool = False) -> list[dict[str, Any]]:
        """One row per split. A diverged fit is evaluated at its best epoch before diverging
        (never at a non-finite state); with no such epoch its metrics are left empty."""
        cfg, data = self.cfg, self.p.data
        arch = getattr(cfg, role, None)  # None for the popularity reference
        rows = []
        for split in SPLITS:
            out = None
            if meta.get("status") != "diverged" or meta.get("best_epoch"):
                out = evaluate(model, data, split, cfg.eval.ks, cfg.eval.chunk, cfg.eval.mask_history,
                               topk=cfg.eval.overlap_k, device=self.p.device, budget=cfg.eval.memory_bytes)
            k = cfg.eval.overlap_k
            metrics = out.metrics if out is not None else dict.fromkeys(metric_names(cfg.eval.ks))
            overlap = None if out is None else 1.0 if reference is None else topk_overlap(out.topk, reference[split].topk)
            rows.append({
                "model": role, "method": method, "seed": seed, "split": split, **metrics,
                f"overlap@{k}": overlap, "best_epoch": meta.get("best_epoch"),
                "epochs": meta.get("epochs"), "dataset": cfg.data.source,
                "arch": arch.arch if arch else role, "dim": arch.dim if arch else "",
                "loss": arch.loss if arch else "", "kd_positions": kd_positions(cfg) if role == "student" else "",
                "protocol": cfg.data.protocol, "masking": MASKING_RULE if cfg.eval.mask_history else "none",
                "train_windows": train_windows(cfg, role),
                "teacher_cached": cached if role == "teacher" else "", "status": meta.get("status", "finished"),
                "_out": out,
            })
        return rows


def run_experiment(cfg: ExperimentConfig, run_dir: Path, display: Sink = lambda e: None,
                   teacher_only: bool = False, say: Callable[[str], None] = lambda s: None,
                   retrain: bool = True, workers: int = 1) -> list[dict[str, Any]]:
    """The one entry (`rcekd distill`, `rcekd train-teacher`, the TUI's launches, tests).

    Every input check (config, data, sizes, the run directory itself) happens before the run
    directory is written, so a bad input leaves nothing behind. `workers`: processes for the
    student fits (parallel.py).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be at least 1 (processes for the student fits); got {workers}")
    group = join_torchrun(cfg, workers)
    prep = prepare(cfg, say)
    run_dir = Path(group.broadcast_object(str(run_dir)))  # rank 0's (a default name holds the time)
    problem = None
    if group.is_main:
        try:
            RunDir(run_dir).check_new()
        except ConfigError as e:
            problem = str(e)
    problem = group.broadcast_object(problem)  # every rank stops on rank 0's answer
    if problem is not None:
        raise ConfigError(problem)
    say(f"run directory: {run_dir}")
    return Experiment(prep, run_dir, display, retrain=retrain, workers=workers).run_all(teacher_only=teacher_only)


def join_torchrun(cfg: ExperimentConfig, workers: int = 1) -> distributed.Group:
    """Under torchrun, join its process group (distributed.py); else the one-process group."""
    if distributed.launched()[1] == 1:
        return distributed.current()
    if workers > 1:
        raise ConfigError("--workers N does not combine with torchrun (the ranks already share every fit); "
                          "drop --workers")
    return distributed.setup(resolve_device(cfg.device))


def run_config(run: RunDir) -> tuple[ExperimentConfig, dict[str, Any]]:
    """The config a run was started with, and its runtime section (config.yaml)."""
    from .config import from_dict

    config = run.read_config()
    runtime = config.pop("runtime", {}) or {}
    if runtime.get("data_file") and isinstance(config.get("data"), dict):
        config["data"]["file"] = runtime["data_file"]  # as started, wherever the resume runs from
    return from_dict(config), runtime


def check_same_data(run: RunDir, runtime: dict[str, Any], prep: Prepared) -> None:
    cfg = prep.cfg
    if runtime.get("data_fingerprint") and runtime["data_fingerprint"] != prep.fingerprint:
        raise ConfigError(f"the data of '{run.root}' changed since the run started "
                          f"({cfg.data.file or cfg.data.source}); resuming would mix two data sets — "
                          "restore the data or start a new run")


def resume_experiment(run_dir: Path, display: Sink = lambda e: None,
                      say: Callable[[str], None] = lambda s: None, retrain: bool = True) -> list[dict[str, Any]]:
    """`rcekd distill --resume D`: continue the run in D with the config (and workers) it was started with."""
    from .runs.status import last_end

    if distributed.launched()[1] > 1:
        raise ConfigError("--resume under torchrun is not supported yet; resume the run in one process: "
                          f"rcekd distill --resume {run_dir}")
    run = RunDir(run_dir)
    if not run.root.is_dir() or not run.config.is_file():
        raise ConfigError(f"'{run.root}' holds no run to resume (no {run.config.name}); pass a run directory")
    end = last_end(run.root)
    if end is not None and end.status == "finished":
        raise ConfigError(f"'{run.root}' has finished; nothing to resume (start a new run with another --run-dir)")
    cfg, runtime = run_config(run)
    prep = prepare(cfg, say)
    check_same_data(run, runtime, prep)
    say(f"resuming {run.root}")
    workers = runtime.get("workers", 1)
    return Experiment(prep, run.root, display, resume=True, retrain=retrain,
                      workers=workers if isinstance(workers, int) and workers >= 1 else 1).run_all(
        teacher_only=bool(runtime.get("teacher_only")))
