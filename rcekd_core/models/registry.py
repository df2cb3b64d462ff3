"""Model names -> classes; adding a backbone is adding a file and a line here."""

from __future__ import annotations

from ..errors import ConfigError
from ..settings import ModelConfig
from .base import Recommender
from .gru4rec import GRU4Rec
from .hstu import HSTU
from .lightgcn import LightGCN
from .mf import MF
from .sasrec import SASRec

SEQUENTIAL: dict[str, type[Recommender]] = {"sasrec": SASRec, "gru4rec": GRU4Rec, "hstu": HSTU}
GENERAL: dict[str, type[Recommender]] = {"mf": MF, "lightgcn": LightGCN}
MODELS = {**SEQUENTIAL, **GENERAL}


def model_names() -> list[str]:
    return list(MODELS)


def model_settings() -> dict[str, tuple[str, ...]]:
    """Per backbone, the ModelConfig sizes it reads (dim, blocks, heads, max_len, dropout)."""
    return {name: cls.settings for name, cls in MODELS.items()}


def is_general(arch: str) -> bool:
    return arch in GENERAL


def build_model(cfg: ModelConfig, n_items: int, data=None) -> Recommender:
    """A model for n_items items; general models also need the data (users, training graph)."""
    if cfg.arch not in MODELS:
        raise ConfigError(f"unknown model '{cfg.arch}'; choose one of: {', '.join(MODELS)}")
    if cfg.arch in GENERAL:
        return GENERAL[cfg.arch](n_items, cfg, data)
    return MODELS[cfg.arch](n_items, cfg)
