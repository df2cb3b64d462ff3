"""Model names -> classes; adding a backbone is adding a file and a line here."""

from __future__ import annotations

from ..config import ModelConfig
from ..errors import ConfigError
from .base import SequentialRecommender
from .gru4rec import GRU4Rec
from .hstu import HSTU
from .sasrec import SASRec

MODELS: dict[str, type[SequentialRecommender]] = {"sasrec": SASRec, "gru4rec": GRU4Rec, "hstu": HSTU}


def model_names() -> list[str]:
    return list(MODELS)


def build_model(cfg: ModelConfig, n_items: int) -> SequentialRecommender:
    if cfg.arch not in MODELS:
        raise ConfigError(f"unknown model '{cfg.arch}'; choose one of: {', '.join(MODELS)}")
    return MODELS[cfg.arch](n_items, cfg)
