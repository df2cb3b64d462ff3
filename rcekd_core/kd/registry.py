"""Method names -> Distiller classes; adding a method is adding a file and a line here."""

from __future__ import annotations

from .base import Distiller
from .ce import CEKD
from .rcekd import RCEKD
from .scratch import Scratch

METHODS: dict[str, type[Distiller]] = {m.name: m for m in (Scratch, CEKD, RCEKD)}


def method_names() -> list[str]:
    return list(METHODS)
