"""Method names -> (Distiller class, its settings class); adding a method is a file and a line here.

Config loading builds one section per registered method from its settings class, so a new
method's settings are known to presets, `--set`, validation and the TUI without touching
them. `register` also serves plugins and tests (a method defined outside the package).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import MethodSettings
from .base import Distiller, KDSetup
from .cd import CD
from .ce import CEKD
from .dcd import DCD
from .de import DE
from .hetcomp import HetComp
from .rcekd import RCEKD
from .rrd import RRD
from .scratch import Scratch
from .unkd import UnKD


@dataclass(frozen=True)
class Method:
    distiller: type[Distiller]
    settings: type[MethodSettings] | None  # None: the method has nothing to set (scratch)


METHODS: dict[str, Method] = {}


def register(distiller: type[Distiller]) -> type[Distiller]:
    """Make a Distiller (with its `name` and `Settings`) available under its name."""
    METHODS[distiller.name] = Method(distiller, distiller.Settings)
    return distiller


def unregister(name: str) -> None:
    METHODS.pop(name, None)


for _cls in (Scratch, CEKD, RCEKD, RRD, DCD, CD, UnKD, HetComp, DE):
    register(_cls)


def method_names() -> list[str]:
    return list(METHODS)


def build_distiller(name: str, settings: MethodSettings | None, setup: KDSetup) -> Distiller:
    """The named method's Distiller for one student fit."""
    return METHODS[name].distiller(settings, setup)
