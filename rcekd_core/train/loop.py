"""fit(): Adam, early stopping on validation NDCG@10, best-epoch weights, events per epoch.

One loop serves teachers and students: a Distiller (if any) adds λ · KD to the base loss.
`seconds` is the wall time of an epoch's training (refreshes included), evaluation excluded.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import EvalConfig, TrainConfig
from ..data.sequences import SequenceData
from ..eval.overlap import topk_overlap
from ..eval.ranking import evaluate
from ..kd.base import Distiller, SharedScores
from ..kd.contexts import KDContexts
from .checkpoint import save_checkpoint

Sink = Callable[[dict[str, Any]], None]
SELECT_METRIC = "NDCG@10"


@dataclass
class FitResult:
    best_epoch: int
    best_valid: dict[str, float]
    epochs_run: int
    stopped: bool
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FitSpec:
    """Who is being trained, for labels in events and metrics rows."""

    model: str  # teacher | student
    method: str
    seed: int


def fit(
    model, data: SequenceData, tcfg: TrainConfig, ecfg: EvalConfig, spec: FitSpec, *,
    device: torch.device, sink: Sink, distiller: Distiller | None = None,
    contexts: KDContexts | None = None, reference_top: torch.Tensor | None = None,
    checkpoint: Path | None = None, should_stop: Callable[[], bool] = lambda: False,
    on_epoch: Callable[[int, Any], None] | None = None,
) -> FitResult:
    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    params = list(model.parameters()) + (distiller.parameters() if distiller is not None else [])
    opt = torch.optim.Adam(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    kd_on = distiller is not None and distiller.uses_teacher
    share_scores = kd_on and contexts.mode == "all" and model.loss_type == "ce"
    label = {"model": spec.model, "method": spec.method, "seed": spec.seed}
    select = SELECT_METRIC if 10 in ecfg.ks else f"NDCG@{ecfg.ks[0]}"
    best, best_epoch, best_valid, bad = float("-inf"), 0, {}, 0
    best_state = copy.deepcopy(model.state_dict())
    history: list[dict[str, Any]] = []
    stopped = False
    epoch = 0
    sink({"type": "fit_start", **label, "epochs": tcfg.epochs, "batches": _n_batches(data, tcfg)})
    for epoch in range(1, tcfg.epochs + 1):
        if should_stop():
            stopped, epoch = True, epoch - 1
            break
        model.train()
        t0 = time.perf_counter()
        refresh_s = distiller.timed_refresh(model) if kd_on else 0.0
        sums: dict[str, float] = {}
        perm = torch.randperm(data.n_users, generator=gen)
        for b, users in enumerate(perm.split(tcfg.batch_size)):
            if kd_on and distiller.refresh_every and b and b % distiller.refresh_every == 0:
                refresh_s += distiller.timed_refresh(model)
            inputs, targets = model.batch(data, users)
            states = model.encode(inputs.to(device))
            scorer, kd_states = model, None
            if kd_on:
                ids, mask = contexts.select(users, targets)
                mask = None if mask is None else mask.to(device)
                kd_states = states if mask is None else states[mask]
            if share_scores:  # KD contexts are the base-loss positions: score them once
                scores = model.score_all(kd_states)
                base = model.ce_from_scores(scores, targets.to(device)[mask])
                scorer = SharedScores(model, kd_states, scores)
            else:
                base = model.base_loss(states, targets.to(device))
            loss, parts = base, {"base_loss": base.item()}
            if kd_on:
                per_ctx, extras = distiller.loss(ids.to(device), kd_states, scorer)
                # mean per context x users in batch: the doc's per-batch sum when one context per user
                kd = per_ctx.mean() * len(users)
                loss = base + distiller.lam * kd
                parts.update(kd_loss=kd.item(), **extras)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            parts["loss"] = loss.item()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            if should_stop():
                stopped = True
                break
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {**label, "epoch": epoch, "seconds": seconds}
        row.update({k: v / (b + 1) for k, v in sums.items()})
        if kd_on:
            row["refresh_seconds"] = refresh_s
        if epoch % tcfg.eval_every == 0 or epoch == tcfg.epochs or stopped:
            out = evaluate(model, data, "valid", ecfg.ks, ecfg.chunk, ecfg.mask_history,
                           topk=ecfg.overlap_k, device=device)
            row["valid"] = out.metrics
            if reference_top is not None:
                row[f"overlap@{ecfg.overlap_k}"] = topk_overlap(out.topk, reference_top)
            score = out.metrics[select]
            if score > best:
                best, best_epoch, best_valid, bad = score, epoch, out.metrics, 0
                best_state = copy.deepcopy(model.state_dict())
                if checkpoint is not None:
                    save_checkpoint(checkpoint, best_state, {**label, "epoch": epoch})
            else:
                bad += tcfg.eval_every
        row["best_epoch"] = best_epoch
        history.append(row)
        sink({"type": "epoch", **row})
        if on_epoch:
            on_epoch(epoch, row)
        if stopped or bad >= tcfg.patience:
            break
    model.load_state_dict(best_state)
    if checkpoint is not None and best_epoch == 0:
        save_checkpoint(checkpoint, best_state, {**label, "epoch": 0})
    return FitResult(best_epoch, best_valid, epoch, stopped, history)


def _n_batches(data: SequenceData, tcfg: TrainConfig) -> int:
    return -(-data.n_users // tcfg.batch_size)
