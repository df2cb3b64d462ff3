"""fit(): Adam, early stopping on a validation metric, best-epoch weights, an event per epoch.

One loop serves teachers and students: a Distiller (if any) adds λ · KD to the base loss.
`seconds` is the wall time of an epoch's training (refreshes included), evaluation excluded.
Read top to bottom: set up (or resume), then per epoch train → validate → keep the best →
save the state to resume from → maybe stop, then restore the best weights.

A non-finite loss or validation score raises Diverged (best weights restored first): such a
fit never reports a number. With `resume_file`, the complete training state (weights,
optimiser, every random generator, early stopping, the distiller's own state) is saved after
every epoch, and a fit that finds the file continues from it exactly as if never stopped.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data.sequences import SequenceData
from ..distributed import current as process_group
from ..errors import Diverged
from ..eval.overlap import topk_overlap
from ..eval.ranking import evaluate
from ..kd.base import Distiller, SharedScores
from ..kd.contexts import KDContexts
from ..runs.events import Epoch, Event, FitStart
from ..settings import EvalConfig, TrainConfig
from .checkpoint import load_resume_state, save_checkpoint, save_resume_state

Sink = Callable[[Event], None]


@dataclass
class FitLabel:
    """Who is being trained, for labels in events and metrics rows."""

    model: str  # teacher | student
    method: str
    seed: int


@dataclass
class FitJob:
    """One model to train: the model, its data and settings, and what KD (if any) adds."""

    model: Any
    data: SequenceData
    train: TrainConfig
    eval: EvalConfig
    label: FitLabel
    device: torch.device
    distiller: Distiller | None = None
    contexts: KDContexts | None = None  # where the distiller's contexts sit in a batch
    reference_top: torch.Tensor | None = None  # teacher's validation top-k, for the overlap curve
    checkpoint: Path | None = None  # best weights so far are saved here
    on_epoch: Callable[[int, Epoch], None] | None = None
    resume_file: Path | None = None  # the state after the last completed epoch (read if present)
    on_resume: Callable[[Epoch], None] | None = None  # told the last completed epoch when resuming


@dataclass
class FitResult:
    best_epoch: int
    best_valid: dict[str, float]
    epochs_run: int
    stopped: bool
    history: list[Epoch] = field(default_factory=list)


class Best:
    """The best validation score so far, its epoch and weights; counts epochs without progress."""

    def __init__(self, model, metric: str):
        self.metric = metric
        self.score, self.epoch, self.valid, self.stale = float("-inf"), 0, {}, 0
        self.state = copy.deepcopy(model.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"score": self.score, "epoch": self.epoch, "valid": self.valid, "stale": self.stale,
                "state": self.state}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.score, self.epoch, self.valid, self.stale = d["score"], d["epoch"], d["valid"], d["stale"]
        self.state = d["state"]

    def update(self, model, epoch: int, valid: dict[str, float], every: int) -> bool:
        if valid[self.metric] > self.score:
            self.score, self.epoch, self.valid, self.stale = valid[self.metric], epoch, valid, 0
            self.state = copy.deepcopy(model.state_dict())
            return True
        self.stale += every
        return False


def fit(job: FitJob, sink: Sink, should_stop: Callable[[], bool] = lambda: False) -> FitResult:
    model, tcfg = job.model, job.train
    torch.manual_seed(job.label.seed)
    gen = torch.Generator().manual_seed(job.label.seed)
    kd_on = job.distiller is not None and job.distiller.uses_teacher
    params = list(model.parameters()) + (job.distiller.parameters() if job.distiller is not None else [])
    opt = torch.optim.Adam(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    opt = process_group().wrap_optimizer(opt, params)  # torchrun: step() sums the ranks' gradients
    best = Best(model, job.eval.select)
    history: list[Epoch] = []
    stopped, epoch, done = False, 0, False
    windows = training_windows(job)
    rows = job.data.n_users if windows is None else windows[0].numel()
    sink(FitStart(**vars(job.label), epochs=tcfg.epochs, batches=-(-rows // tcfg.batch_size)))
    if job.resume_file is not None and job.resume_file.is_file():
        epoch, done = resume(job, opt, gen, best)
    for epoch in range(epoch + 1, tcfg.epochs + 1):
        if done:
            epoch -= 1
            break
        if should_stop():
            stopped, epoch = True, epoch - 1
            break
        t0 = time.perf_counter()
        try:
            values, stopped = train_epoch(job, opt, gen, kd_on, should_stop)
            ev = Epoch(**vars(job.label), epoch=epoch, seconds=time.perf_counter() - t0, values=values)
            if epoch % tcfg.eval_every == 0 or epoch == tcfg.epochs or stopped:
                ev.valid, overlap = validate(job)
                if overlap is not None:
                    ev.values[f"overlap@{job.eval.overlap_k}"] = overlap
                if best.update(model, epoch, ev.valid, tcfg.eval_every) and job.checkpoint is not None:
                    save_checkpoint(job.checkpoint, best.state, {**vars(job.label), "epoch": epoch})
        except Diverged as e:
            model.load_state_dict(best.state)
            raise Diverged(f"{e} at epoch {epoch}", epoch, best.epoch) from None
        ev.best_epoch = best.epoch
        history.append(ev)
        if job.on_epoch:
            job.on_epoch(epoch, ev)
        done = stopped or best.stale >= tcfg.patience or epoch == tcfg.epochs
        if job.resume_file is not None and not stopped:
            save_resume_state(job.resume_file, snapshot(job, opt, gen, best, ev, done))
        sink(ev)
        if done:
            break
    model.load_state_dict(best.state)
    if job.checkpoint is not None:  # what the fit keeps, whatever a kill between saves left there
        save_checkpoint(job.checkpoint, best.state, {**vars(job.label), "epoch": best.epoch})
    return FitResult(best.epoch, best.valid, epoch, stopped, history)


def snapshot(job: FitJob, opt, gen: torch.Generator, best: Best, ev: Epoch, done: bool) -> dict[str, Any]:
    """Everything the next epoch depends on, after epoch `ev.epoch` completed."""
    state = {
        "epoch": ev.epoch, "done": done, "event": ev.to_dict(), "model": job.model.state_dict(),
        "optimizer": opt.state_dict(), "best": best.state_dict(), "torch_rng": torch.get_rng_state(),
        "batch_rng": gen.get_state(),
        "distiller": job.distiller.state_dict() if job.distiller is not None else {},
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def resume(job: FitJob, opt, gen: torch.Generator, best: Best) -> tuple[int, bool]:
    """Load the saved state into the fit's objects; (last completed epoch, whether the fit had ended)."""
    state = load_resume_state(job.resume_file, job.device)
    job.model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    best.load_state_dict(state["best"])
    torch.set_rng_state(state["torch_rng"])
    gen.set_state(state["batch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if job.distiller is not None:
        job.distiller.load_state_dict(state["distiller"])
    if job.on_resume is not None:
        job.on_resume(Epoch.from_dict(state["event"]))
    return int(state["epoch"]), bool(state["done"])


def training_windows(job: FitJob) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(users, ends) of the training windows when the fit trains on sliding windows (a
    sequential model with `windows: sliding`); None: one window per user, the last (today's)."""
    if job.train.windows != "sliding" or getattr(job.model, "general", False):
        return None
    return job.data.train_windows(job.model.max_len, job.train.stride)


def train_epoch(job: FitJob, opt, gen: torch.Generator, kd_on: bool,
                should_stop: Callable[[], bool]) -> tuple[dict[str, float], bool]:
    """One pass over the users (or, under sliding windows, every training window) in batches;
    (mean loss parts and extras, stop requested).

    Under sliding windows KD applies only on the rows that are a user's last window (the KD
    contexts are that window's); earlier windows add base loss only, and a batch without KD
    contexts has no KD term (its KD parts are averaged over the batches that had one).
    """
    model, data, distiller, contexts, device = job.model, job.data, job.distiller, job.contexts, job.device
    model.train()
    # KD contexts are the base-loss positions with a full-softmax loss: score them once
    share_scores = kd_on and contexts.mode == "all" and model.loss_type == "ce"
    refresh_s = distiller.timed_refresh(model) if kd_on else 0.0
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    stopped = False
    windows = training_windows(job)
    perm = torch.randperm(data.n_users if windows is None else windows[0].numel(), generator=gen)
    for b, rows in enumerate(perm.split(job.train.batch_size)):
        rows = process_group().shard(rows)  # torchrun: this rank's share of the batch (distributed.py)
        if kd_on and distiller.refresh_every and b and b % distiller.refresh_every == 0:
            refresh_s += distiller.timed_refresh(model)
        if windows is None:
            users, last = rows, None
            inputs, targets = model.batch(data, users)
        else:
            users, ends = windows[0][rows], windows[1][rows]
            last = ends == data.train_lengths[users]
            inputs, targets = data.train_batch_at(users, ends, model.max_len, job.train.stride)
        states = model.encode(inputs.to(device))
        scorer, kd_states, kd_here = model, None, kd_on
        if kd_on:
            ids, mask = contexts.select(users, targets, last)
            mask = None if mask is None else mask.to(device)
            kd_here = last is None or ids.numel() > 0
        if share_scores and last is None:
            kd_states = states[mask]
            scores = model.score_all(kd_states)
            base = model.ce_from_scores(scores, targets.to(device)[mask])
            scorer = SharedScores(model, kd_states, scores)
        elif share_scores:  # score the base positions once; the KD contexts are those of last windows
            keep = (targets > 0).to(device)
            base_states = states[keep]
            scores = model.score_all(base_states)
            base = model.ce_from_scores(scores, targets.to(device)[keep])
            sel = mask[keep]
            kd_states = base_states[sel]
            scorer = SharedScores(model, kd_states, scores[sel])
        else:
            base = model.base_loss(states, targets.to(device))
            if kd_on:
                kd_states = states if mask is None else states[mask]
        loss, parts = base, {"base_loss": base.item()}
        if kd_here:
            per_ctx, extras = distiller.loss(ids.to(device), kd_states, scorer)
            # mean per context x users in batch: the doc's per-batch sum when one context per user
            kd = per_ctx.mean() * (len(users) if last is None else int(last.sum()))
            loss = base + distiller.lam * kd
            parts.update(kd_loss=kd.item(), **extras)
        parts["loss"] = loss.item()
        if process_group().world > 1:  # torchrun: this rank's weighted share of the loss; parts: the batch's
            loss = process_group().weigh(parts, base, int((targets > 0).sum()), *((
                distiller.lam * kd, ids.numel(), len(users) if last is None else int(last.sum())) if kd_here else ()),
                lam=distiller.lam if kd_on else 0.0)
        if not math.isfinite(parts["loss"]):
            raise Diverged(f"the training loss is {parts['loss']}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
            counts[k] = counts.get(k, 0) + 1
        if should_stop():
            stopped = True
            break
    values = {k: v / counts[k] for k, v in sums.items()}
    if kd_on:
        values["refresh_seconds"] = refresh_s
    return values, stopped


def validate(job: FitJob) -> tuple[dict[str, float], float | None]:
    """Validation metrics, and the top-k overlap with the teacher when there is a reference."""
    e = job.eval
    out = evaluate(job.model, job.data, "valid", e.ks, e.chunk, e.mask_history, topk=e.overlap_k, device=job.device,
                   budget=e.memory_bytes)
    overlap = None if job.reference_top is None else topk_overlap(out.topk, job.reference_top)
    return out.metrics, overlap
