"""Method names -> Distiller classes; adding a method is adding a file and a line here."""

from __future__ import annotations

from .base import Distiller
from .cd import CD
from .ce import CEKD
from .dcd import DCD
from .de import DE
from .hetcomp import HetComp
from .rcekd import RCEKD
from .rrd import RRD
from .scratch import Scratch
from .unkd import UnKD

METHODS: dict[str, type[Distiller]] = {
    m.name: m for m in (Scratch, CEKD, RCEKD, RRD, DCD, CD, UnKD, HetComp, DE)
}


def method_names() -> list[str]:
    return list(METHODS)
