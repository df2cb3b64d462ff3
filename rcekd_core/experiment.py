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

from .config import ExperimentConfig, check_sizes
from .data.loader import load_interactions
from .data.sequences import SPLITS, SequenceData
from .errors import ConfigError
from .eval.metrics import metric_names
from .eval.overlap import topk_overlap
from .eval.popularity import Popularity
from .eval.ranking import MASKING_RULE, RankingOutput, evaluate
from .kd.contexts import KDContexts
from .kd.registry import METHODS
from .kd.teacher_view import TeacherView
from .models.registry import build_model, is_general
from .runs.events import EventWriter
from .runs.store import MetricsCsv, ResultsCsv, RunDir
from .train.checkpoint import load_checkpoint, save_checkpoint
from .train.loop import FitSpec, fit
from .train.teacher import TeacherCache

Sink = Callable[[dict[str, Any]], None]


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def kd_positions(cfg: ExperimentConfig) -> str:
    """Where students are distilled: general models have one state per user."""
    return "user" if is_general(cfg.student.arch) else cfg.kd_positions


@dataclass
class Prepared:
    """What is known before anything is written: config, device and data."""

    cfg: ExperimentConfig
    device: torch.device
    data: SequenceData
    stats: dict[str, Any] = field(default_factory=dict)


def prepare(cfg: ExperimentConfig, say: Callable[[str], None] = lambda s: None) -> Prepared:
    device = resolve_device(cfg.device)
    general = is_general(cfg.student.arch)
    if not general and cfg.kd_positions == "all" and cfg.teacher.max_len < cfg.student.max_len:
        raise ConfigError(
            f"kd_positions=all needs teacher.max_len ({cfg.teacher.max_len}) ≥ student.max_len "
            f"({cfg.student.max_len}); raise the teacher's or use --set kd_positions=last"
        )
    inter = load_interactions(cfg.data, progress=say)
    data = SequenceData.from_interactions(inter, cfg.data.protocol)
    if data.n_users == 0:
        raise ConfigError("no user has the 3 interactions a train/validation/test split needs; use a larger dataset")
    check_sizes(cfg, data.n_items)
    stats = {**inter.stats(), "users_after_split": data.n_users, "dropped_users": data.dropped_users}
    return Prepared(cfg, device, data, stats)


class Experiment:
    """One run: writes events/metrics/results as it goes; stops when the STOP file appears."""

    def __init__(self, prep: Prepared, run_dir: Path, display: Sink = lambda e: None):
        self.p = prep
        self.cfg = prep.cfg
        self.run = RunDir(run_dir).create()
        self.run.stop_file.unlink(missing_ok=True)
        self.events = EventWriter(self.run.events)
        self.display = display
        names = metric_names(self.cfg.eval.ks)
        self.metrics = MetricsCsv(self.run.metrics, names)
        self.results = ResultsCsv(self.run.results)
        self.stop_requested = False
        self.teacher_out: dict[str, RankingOutput] = {}

    def emit(self, event: dict[str, Any]) -> None:
        self.events.emit(event)
        if event.get("type") == "epoch":
            flat = {k: v for k, v in event.items() if k != "valid"}
            flat.update({f"valid_{k}": v for k, v in event.get("valid", {}).items()})
            self.metrics.append(flat)
        self.display(event)

    def should_stop(self) -> bool:
        if not self.stop_requested and self.run.stop_file.exists():
            self.stop_requested = True
            self.emit({"type": "stop_requested"})
        return self.stop_requested

    # ---- phases -------------------------------------------------------------------------

    def run_all(self, teacher_only: bool = False) -> list[dict[str, Any]]:
        cfg = self.cfg
        cache = TeacherCache(cfg)
        resolved = cfg.to_dict()
        resolved["runtime"] = {
            "device": str(self.p.device), "teacher_cache": str(cache.dir),
            "teacher_cached": cache.exists(), "torch": str(torch.__version__),
            "host": platform.node(), "protocol": cfg.data.protocol, "masking": MASKING_RULE,
            "teacher_only": teacher_only, "kd_positions": kd_positions(cfg),
        }
        self.run.write_config(resolved)
        self.emit({"type": "run_start", "name": cfg.name, "device": str(self.p.device),
                   "dataset": self.p.stats, "methods": [] if teacher_only else cfg.methods,
                   "seeds": cfg.seeds, "teacher_cached": cache.exists()})
        status = "finished"
        try:
            teacher = self.teacher_phase(cache)
            if not teacher_only and not self.stop_requested:
                self.student_phase(teacher)
            if self.stop_requested:
                status = "stopped"
        except BaseException as e:
            interrupted = isinstance(e, KeyboardInterrupt)
            self.emit({"type": "error", "message": str(e) or e.__class__.__name__,
                       "kind": e.__class__.__name__,
                       "traceback": "" if interrupted else traceback.format_exc(limit=8)})
            self.emit({"type": "end", "status": "stopped" if interrupted else "failed"})
            self.events.close()
            raise
        self.emit({"type": "end", "status": status})
        self.events.close()
        return self.results.rows

    def teacher_phase(self, cache: TeacherCache):
        cfg, data, device = self.cfg, self.p.data, self.p.device
        torch.manual_seed(cfg.teacher_seed)
        teacher = build_model(cfg.teacher, data.n_items, data).to(device)
        cached = cache.exists()
        self.emit({"type": "phase", "phase": "teacher", "cached": cached, "key": cache.key})
        if cached:
            state, _ = load_checkpoint(cache.weights, map_location=device)
            teacher.load_state_dict(state)
            meta = cache.meta()
        else:
            trajectory = cache.dir / "trajectory"  # weights every hetcomp.every epochs, for hetcomp
            shutil.rmtree(trajectory, ignore_errors=True)

            def save_trajectory(epoch: int, row: Any) -> None:
                if epoch % cfg.hetcomp.every == 0:
                    save_checkpoint(trajectory / f"epoch{epoch}.pt", teacher.state_dict(), {"epoch": epoch})

            res = fit(teacher, data, cfg.teacher_train, cfg.eval,
                      FitSpec("teacher", "teacher", cfg.teacher_seed), device=device,
                      sink=self.emit, checkpoint=self.run.checkpoints / "teacher.pt",
                      should_stop=self.should_stop, on_epoch=save_trajectory)
            meta = {"best_epoch": res.best_epoch, "epochs": res.epochs_run}
            if not res.stopped:  # a stopped teacher is not the configured one: never cache it
                save_checkpoint(cache.weights, teacher.state_dict(), meta)
                cache.write_meta({**meta, "config": asdict(cfg.teacher)})
        teacher.eval()
        rows = self.evaluate_model(teacher, "teacher", "teacher", cfg.teacher_seed, meta,
                                   reference=None, cached=cached)
        self.teacher_out = {r["split"]: r.pop("_out") for r in rows}
        pop_rows = self.evaluate_model(Popularity(self.p.data).to(self.p.device), "popularity",
                                       "popularity", "", {}, reference=self.teacher_out)
        for r in pop_rows:
            r.pop("_out")
        self.results.add(rows + pop_rows)
        self.emit({"type": "result", "rows": rows + pop_rows})
        return teacher

    def student_phase(self, teacher) -> None:
        cfg, data, device = self.cfg, self.p.data, self.p.device
        contexts = KDContexts(data, kd_positions(cfg), cfg.student.max_len)
        view = None
        if any(METHODS[m].uses_teacher for m in cfg.methods):
            t0 = time.perf_counter()
            view = TeacherView(teacher, contexts, cfg.eval.chunk, device)
            self.emit({"type": "phase", "phase": "teacher_view", "contexts": contexts.n,
                       "seconds": time.perf_counter() - t0})
        for method in cfg.methods:
            for seed in cfg.seeds:
                if self.should_stop():
                    return
                self.emit({"type": "phase", "phase": "student", "method": method, "seed": seed})
                torch.manual_seed(seed)
                student = build_model(cfg.student, data.n_items, data).to(device)
                distiller = METHODS[method](cfg, view, contexts, device, seed)
                for note in getattr(distiller, "notes", []):
                    self.emit(note)
                res = fit(student, data, cfg.student_train, cfg.eval, FitSpec("student", method, seed),
                          device=device, sink=self.emit, distiller=distiller, contexts=contexts,
                          reference_top=self.teacher_out["valid"].topk,
                          checkpoint=self.run.checkpoints / f"student-{method}-{seed}.pt",
                          should_stop=self.should_stop)
                meta = {"best_epoch": res.best_epoch, "epochs": res.epochs_run}
                rows = self.evaluate_model(student, "student", method, seed, meta,
                                           reference=self.teacher_out)
                for r in rows:
                    r.pop("_out")
                self.results.add(rows)
                self.emit({"type": "result", "rows": rows})

    def evaluate_model(self, model, role: str, method: str, seed: int, meta: dict[str, Any],
                       reference: dict[str, RankingOutput] | None, cached: bool = False) -> list[dict[str, Any]]:
        cfg, data = self.cfg, self.p.data
        arch = getattr(cfg, role, None)  # None for the popularity reference
        rows = []
        for split in SPLITS:
            out = evaluate(model, data, split, cfg.eval.ks, cfg.eval.chunk, cfg.eval.mask_history,
                           topk=cfg.eval.overlap_k, device=self.p.device)
            k = cfg.eval.overlap_k
            overlap = 1.0 if reference is None else topk_overlap(out.topk, reference[split].topk)
            rows.append({
                "model": role, "method": method, "seed": seed, "split": split, **out.metrics,
                f"overlap@{k}": overlap, "best_epoch": meta.get("best_epoch"),
                "epochs": meta.get("epochs"), "dataset": cfg.data.source,
                "arch": arch.arch if arch else role, "dim": arch.dim if arch else "",
                "loss": arch.loss if arch else "", "kd_positions": kd_positions(cfg) if role == "student" else "",
                "protocol": cfg.data.protocol, "masking": MASKING_RULE if cfg.eval.mask_history else "none",
                "teacher_cached": cached if role == "teacher" else "", "_out": out,
            })
        return rows


def run_experiment(cfg: ExperimentConfig, run_dir: Path, display: Sink = lambda e: None,
                   teacher_only: bool = False, say: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    prep = prepare(cfg, say)
    return Experiment(prep, run_dir, display).run_all(teacher_only=teacher_only)
