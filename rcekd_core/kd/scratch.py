"""`scratch`: the student trained on its base loss alone (the no-KD baseline)."""

from __future__ import annotations

from .base import Distiller


class Scratch(Distiller):
    name = "scratch"
    uses_teacher = False
