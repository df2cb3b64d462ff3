"""A sweep on the CLI tests' tiny preset (tests/conftest.py), made through the engine's API."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rcekd_core.sweep.plan import plan_sweep
from rcekd_core.sweep.session import Opened, create_sweep
from rcekd_core.sweep.sweepdir import SweepDir


@pytest.fixture
def make_sweep(preset, home) -> Callable[..., Opened]:
    """make_sweep(*param_specs, methods=..., budget=2, sampler="grid", epochs=None, ...): a new
    sweep in home/<name>, its studies created, nothing run yet."""

    def make(*params: str, methods: str = "scratch,kd", budget: int = 2, sampler: str = "grid",
             epochs: int | None = None, prune: bool = False, sets: tuple[str, ...] = (),
             storage: str | None = None, name: str = "sweep") -> Opened:
        plan = plan_sweep(preset, methods.split(","), list(params), budget, sampler, None, epochs, prune,
                          list(sets), storage)
        return create_sweep(SweepDir(home / name), plan)

    return make
