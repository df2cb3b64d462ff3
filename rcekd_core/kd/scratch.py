"""`scratch`: the student trained on its base loss alone (the no-KD baseline)."""

from __future__ import annotations

from .base import Distiller


class Scratch(Distiller):
    name = "scratch"
    Settings = None  # nothing to set: no section in the config
    uses_teacher = False

    def __init__(self, settings, setup):
        self.lam = 0.0

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
