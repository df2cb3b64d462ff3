"""Checkpoints written atomically: a crash mid-write never leaves a truncated file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_file


def save_checkpoint(path: Path, state: dict[str, Any], meta: dict[str, Any]) -> None:
    with atomic_file(path, "wb") as fh:
        torch.save({"state": state, "meta": meta}, fh)


def load_checkpoint(path: Path, map_location: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    blob = torch.load(path, map_location=map_location, weights_only=True)
    return blob["state"], blob["meta"]


def save_resume_state(path: Path, state: dict[str, Any]) -> None:
    """The complete state of a fit after an epoch (weights, optimiser, generators, ...)."""
    with atomic_file(path, "wb") as fh:
        torch.save(state, fh)


def load_resume_state(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    state = torch.load(path, map_location=map_location, weights_only=True)
    for key in ("torch_rng", "batch_rng"):  # generator states live on the CPU whatever the device
        state[key] = state[key].cpu()
    if "cuda_rng" in state:
        state["cuda_rng"] = [s.cpu() for s in state["cuda_rng"]]
    return state
